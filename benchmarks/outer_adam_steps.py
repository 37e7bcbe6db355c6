"""The outer Adam's steps, fresh or continuing the pretraining's: how far each step moves the MLP weights.

Usage: ``python benchmarks/outer_adam_steps.py [--dataset ideal_pendulum] [--seed 0] [--keep best]
[--law "p^2 + c_0*cos(q)" --param -3.0 --inner-lr 1e-3] [--epochs 30] [--every 1]``.

Pretrains the paper's MLP (``--seed``, ``--keep``, two torch threads as the tables in the docs), then
meta-tailors it with one law (trajectory mode, the command line's defaults: warm-up of 10 steps, rate 1e-3)
twice: with a fresh outer Adam and with ``outer_adam="continue"``. Torch's optimiser hooks read every step
of the MLP weights' Adam and the script prints, per outer step: the outer loss before the step, the rate
(after the warm-up factor), the mean over weights of |update| / rate (a fresh Adam's first step moves every
weight by about the rate: 1.0), and the mean over weights of g^2 / v, the squared gradient against Adam's
second-moment estimate before the step (much below 1: the step is damped by the pretraining's history;
above 1: the estimate lags the gradients).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import pandas as pd
import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from formula_search.data import load_dataset
from meta_tailor.advanced import (
    dsl_compiler,
    make_mlp,
    meta_tailor,
    paper_configs,
    prepare_ranking,
    train_mlp,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ideal_pendulum")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default="best", choices=["last", "best"])
    ap.add_argument("--law", default="p^2 + c_0*cos(q)")
    ap.add_argument("--param", type=float, default=-3.0)
    ap.add_argument("--inner-lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--every", type=int, default=1, help="print every k-th step")
    args = ap.parse_args()
    torch.set_num_threads(2)

    ds = load_dataset(args.dataset)
    mlp_cfg, rank_cfg = paper_configs(ds.protocol)
    mlp_cfg = replace(mlp_cfg, keep=args.keep, seed=args.seed)
    x, dxdt = (torch.as_tensor(a, dtype=torch.float32) for a in ds.stacked("train"))
    model = make_mlp(x.shape[1], hidden=mlp_cfg.hidden, seed=args.seed)
    state: dict = {}
    train_mlp(model, x, dxdt, config=mlp_cfg, adam_state=state)
    train = prepare_ranking(ds.train, "cpu")
    g = dsl_compiler(ds.var_names)(args.law)[0]

    steps: list[tuple[float, float, float]] = []
    before: dict = {}

    def pre(opt, _args, _kwargs):
        group = opt.param_groups[0]  # meta_tailor's first group: the MLP weights
        before.clear()
        for p in group["params"]:
            v = opt.state.get(p, {}).get("exp_avg_sq")
            grad = p.grad + group["weight_decay"] * p.detach()
            ratio = None if v is None else float((grad**2 / (v + 1e-30)).mean())
            before[p] = (p.detach().clone(), ratio)

    def post(opt, _args, _kwargs):
        group = opt.param_groups[0]
        params = group["params"]
        moved = [float((p.detach() - before[p][0]).abs().mean()) / group["lr"] for p in params]
        ratios = [before[p][1] for p in params if before[p][1] is not None]
        steps.append(
            (
                group["lr"],
                sum(moved) / len(moved),
                sum(ratios) / len(ratios) if ratios else float("nan"),
            )
        )

    cfg = replace(rank_cfg.tailor, inner_lr=args.inner_lr, epochs=args.epochs)
    rows = []
    handles = [register_optimizer_step_pre_hook(pre), register_optimizer_step_post_hook(post)]
    try:
        for start in ("fresh", "continue"):
            steps.clear()
            res = meta_tailor(
                model,
                g,
                torch.tensor([args.param]),
                x,
                dxdt,
                dt=ds.time_step,
                config=replace(cfg, outer_adam=start),
                trajectories=train.groups,
                outer_state=state,
            )
            for k, ((rate, moved, ratio), loss) in enumerate(zip(steps, res.losses), start=1):
                if k <= 3 or k % args.every == 0:
                    rows.append((start, k, loss, rate, moved, ratio))
    finally:
        for h in handles:
            h.remove()
    table = pd.DataFrame(
        rows, columns=["outer_adam", "step", "outer_loss", "rate", "update/rate", "g^2/v"]
    )
    pd.set_option("display.width", 160)
    print(
        f"{ds.name}, MLP seed {args.seed} ({args.keep} weights, Adam state after {state['step']} "
        f"steps), law {args.law}, inner rate {args.inner_lr}"
    )
    for _, part in table.groupby("outer_adam", sort=False):
        print(part.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
