"""Meta-tailoring of fixed laws at several outer (Adam) rates: training rollout MSE and test RMSE.

Usage: ``python benchmarks/outer_rates.py [--dataset real_pendulum] [--outer-lrs 1e-3 3e-4 1e-4]
[--inner-rule polyak] [--steps 3] [--law FORMULA PARAM INNER_LR ...] [--epochs 100] [--device cpu]``.

The ranking keeps one outer rate (``--outer-lr``, default 1e-3) for every finalist and then chooses the law
with the lowest training rollout MSE. This script asks how much that choice depends on the outer rate: it
pretrains the paper's MLP (seed 0, as ``fsearch run``), meta-tailors every law at every outer rate (the laws
of one rate stacked in one :func:`meta_tailor_many` call, 100 epochs, epoch chosen by training rollouts as
in the ranking), and prints per (rate, law): the meta-learned parameter, the training rollout MSE (the
ranking's criterion), the test RMSE (never used to choose) and which law the training criterion prefers.

Default laws: the two real-pendulum survivors with their fitted constants and the Polyak rates that the
screen of ``fsearch run --dataset real_pendulum --inner-rule polyak`` chose for them with 3 inner steps
(its ``screen.csv``/``ranking.csv``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd
import torch

from formula_search.data import load_dataset
from meta_tailor.advanced import (
    dsl_compiler,
    evaluate_field,
    meta_tailor_many,
    paper_configs,
    prepare_ranking,
    pretrain,
    tailored_model,
)

REAL_PENDULUM_LAWS = [
    ("q^2 + c_0*p^2", 0.92907427, 10.0**-0.25),
    ("p^2 + c_0*cos(q)", -2.4469938, 10.0**-0.5),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="real_pendulum")
    ap.add_argument("--outer-lrs", type=float, nargs="+", default=[1e-3, 3e-4, 1e-4])
    ap.add_argument("--inner-rule", default="polyak", choices=["sgd", "polyak"])
    ap.add_argument("--steps", type=int, default=3, help="inner steps")
    ap.add_argument("--epochs", type=int, default=None, help="meta-tailoring epochs [100]")
    ap.add_argument(
        "--law",
        nargs=3,
        action="append",
        metavar=("FORMULA", "PARAM", "INNER_LR"),
        help="a one-parameter law, its starting parameter and inner rate (repeat; default: the two "
        "real-pendulum survivors)",
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()

    laws = [(f, float(p), float(r)) for f, p, r in args.law] if args.law else REAL_PENDULUM_LAWS
    ds = load_dataset(args.dataset)
    mlp_cfg, rank_cfg = paper_configs(ds.protocol, inner_rule=args.inner_rule)
    model = pretrain(ds, config=mlp_cfg, device=args.device).model.to(args.device)
    train = prepare_ranking(ds.train, args.device)
    compile_ = dsl_compiler(ds.var_names)
    gs = [compile_(f)[0] for f, _, _ in laws]
    base = replace(rank_cfg.tailor, inner_steps=args.steps)
    if args.epochs is not None:
        base = replace(base, epochs=args.epochs)
    with torch.no_grad():
        vanilla = evaluate_field(model, ds.test, device=args.device, method="")[1]

    rows = []
    for outer in args.outer_lrs:
        cfg = replace(base, outer_lr=outer)
        t0 = time.perf_counter()
        results = meta_tailor_many(
            model,
            [(g, torch.tensor([p], device=args.device), lr) for g, (_, p, lr) in zip(gs, laws)],
            dt=ds.time_step,
            config=cfg,
            trajectories=train.groups,
        )
        wall = time.perf_counter() - t0
        for g, (f, _, lr), res in zip(gs, laws, results):
            field = tailored_model(
                res.model.to(args.device),
                g,
                res.theta,
                lr=lr,
                steps=args.steps,
                dt=ds.time_step,
                tailor=replace(cfg, inner_lr=lr),
            )
            rows.append(
                {
                    "outer_lr": outer,
                    "law": f,
                    "inner_lr": round(lr, 4),
                    "param": round(float(res.theta[0]), 4),
                    "train_rollout_mse": evaluate_field(
                        field, train.trajectories, device=args.device, method=""
                    )[0],
                    "test_rmse": evaluate_field(field, ds.test, device=args.device, method="")[1],
                    "wall_s": round(wall, 1),
                }
            )
    table = pd.DataFrame(rows)
    best = table.groupby("outer_lr")["train_rollout_mse"].transform("min")
    table["chosen_by_train"] = table["train_rollout_mse"] == best
    pd.set_option("display.width", 200)
    print(
        f"{ds.name}: inner rule {args.inner_rule}, {args.steps} inner steps, "
        f"{base.epochs} epochs; vanilla MLP test RMSE {vanilla:.4f}"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.5g}"))


if __name__ == "__main__":
    main()
