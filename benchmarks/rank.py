"""Wall time of the ranking stages: the one-step screen and the meta-tailoring (100-epoch) stage.

Usage: ``python benchmarks/rank.py [--dataset ideal_pendulum] [--device auto|cpu|cuda] [--full]
[--survivors FILE] [--threads N]``. Without ``--full``: a quick setting (fewer candidates, 20 epochs, a
smaller pretraining). With ``--full``: the paper's settings (210 candidates, 9 inner rates, top 20, 100
epochs, 2000-step pretraining). Without ``--survivors`` the candidate list is a fixed set of 7-token
formulas (the true law among them) repeated to the wanted size: the cost of a candidate does not depend on
which formula it is, so this measures the stage, not the fitter. Prints one table row per stage.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd
import torch

from formula_search.data import load_dataset
from meta_tailor.advanced import paper_configs, pretrain, rank, resolve_device

FORMULAS = {
    ("q", "p"): [
        ("p^2 - c_0*cos(q)", [3.0]),
        ("p^2 + c_0*q^2", [1.5]),
        ("q^2 + c_0*p^2", [1.0]),
        ("p^2 + c_0*cos(q)", [-3.0]),
        ("p*p - c_0*cos(q)", [2.5]),
        ("c_0*p^2 - cos(q)", [0.33]),
        ("p^2 - c_0*sin(q)", [1.0]),
    ]
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ideal_pendulum")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--survivors", default=None)
    ap.add_argument("--candidates", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_dataset(args.dataset)
    mlp_cfg, rank_cfg = paper_configs(data.protocol)
    n = args.candidates or (210 if args.full else 20)
    if not args.full:
        mlp_cfg = replace(mlp_cfg, steps=300)
        rank_cfg = replace(rank_cfg, top_k=5, tailor=replace(rank_cfg.tailor, epochs=20))
    rank_cfg = replace(rank_cfg, device=device)
    if args.survivors:
        from formula_search.io import read_table

        survivors = read_table(args.survivors)
    else:
        base = FORMULAS[tuple(data.var_names)]
        rows = [base[i % len(base)] for i in range(n)]
        survivors = pd.DataFrame({"formula": [f for f, _ in rows], "params": [p for _, p in rows]})

    t0 = time.perf_counter()
    model = pretrain(data, config=mlp_cfg, device=device).model
    t_pre = time.perf_counter() - t0

    stamps: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        stamps[stage] = time.perf_counter()

    t0 = time.perf_counter()
    res = rank(survivors, model, data, config=rank_cfg, progress=progress)
    t_end = time.perf_counter()
    t_screen = stamps["screen"] - t0
    t_long = t_end - stamps["screen"]
    n_pairs = len(res.screen)
    n_top = int(res.table["rank"].notna().sum())
    print(
        f"device={device} threads={torch.get_num_threads()} dataset={args.dataset} full={args.full}"
    )
    print(f"{'stage':<14}{'work':<44}{'wall_s':>10}")
    print(
        f"{'pretrain':<14}{f'{mlp_cfg.steps} Adam steps, width {mlp_cfg.hidden}':<44}{t_pre:>10.1f}"
    )
    print(
        f"{'screen':<14}{f'{len(survivors)} formulas x {n_pairs // len(survivors)} (lr, steps)':<44}{t_screen:>10.1f}"
    )
    print(
        f"{'meta-tailor':<14}{f'{n_top} formulas x {rank_cfg.tailor.epochs} epochs + rollouts':<44}{t_long:>10.1f}"
    )
    print(f"{'rank total':<14}{'':<44}{t_end - t0:>10.1f}")
    best = res.table.iloc[0]
    print(
        f"winner: {best['formula']} params={best['params']} inner_lr={best['inner_lr']:.4g} "
        f"train_rollout_mse={best['train_rollout_mse']:.3g} test_rmse={best['test_rmse']:.4g}"
    )


if __name__ == "__main__":
    main()
