"""Choosing the law on held-out training trajectories (leave one out) instead of on the ones it trained on.

Usage: ``python benchmarks/law_cv.py [--dataset real_pendulum] [--seeds 0 1 2 3] [--folds 0 1 2 3]
[--inner-rule polyak] [--outer-lr 3e-4] [--epochs E] [--jobs N] [--device cpu] [--out DIR]``.

The ranking chooses the law whose meta-tailored model has the lowest rollout MSE on the training
trajectories, the same trajectories meta-tailoring fitted. On the real pendulum the two survivors
(p^2 - c cos q and q^2 + c p^2) are close on that criterion, and which one wins depends on the MLP's seed.
This script asks whether the choice is steadier when it is made out of sample. For every MLP seed and every
fold j (one of the training trajectories), :func:`meta_tailor.cv_fold` runs the protocol without
trajectory j: the pretrained MLP (seeded) and :func:`meta_tailor.rank` with the dataset's paper settings, on
the survivors of the search on all training trajectories (so every fold ranks the same laws; their fitted
constants are only starting points, which meta-tailoring learns again; a search without one trajectory
can keep other laws). Then it rolls out every finalist's tailored model from the first state of
trajectory j. ``fsearch rank --law-choice cv`` makes the same choice for one seed. A law's
cross-validation score is its mean held-out rollout MSE over the folds; the CV choice is the law with the
lowest score. Nothing here looks at the test trajectory.

Each (seed, fold) is one job, written to ``OUT/seedS-foldJ.json`` when done (a re-run skips finished
jobs), so jobs can run side by side (``--jobs``; one torch thread each). Prints, per seed, each fold's
in-sample winner, both laws' CV scores and the CV choice, and how often each law is chosen each way.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd


def _job(dataset: str, seed: int, fold: int, table: pd.DataFrame, opts: dict, out: Path) -> dict:
    from formula_search.data import load_dataset
    from meta_tailor.advanced import cv_fold, paper_configs

    path = out / f"seed{seed}-fold{fold}.json"
    if path.is_file():
        return json.loads(path.read_text())
    data = load_dataset(dataset)
    if not 0 <= fold < len(data.train):
        raise SystemExit(f"fold {fold}: {dataset} has {len(data.train)} training trajectories")
    mlp_cfg, cfg = paper_configs(data.protocol, inner_rule=opts["inner_rule"])
    tailor = cfg.tailor
    if opts["outer_lr"]:
        tailor = replace(tailor, outer_lr=opts["outer_lr"])
    if opts["epochs"] is not None:
        tailor = replace(tailor, epochs=opts["epochs"])
    rows = cv_fold(
        table,
        data,
        [fold],
        mlp_config=replace(mlp_cfg, seed=seed),
        config=replace(cfg, device=opts["device"], tailor=tailor),
        threads=1,
    )
    laws = [
        {
            "formula": r["formula"],
            "param": r["params"],
            "rank": r["in_sample_rank"],
            "train_rollout_mse": r["train_rollout_mse"],
            "held_out_mse": r["held_out_mse"],
        }
        for r in rows
    ]
    result = {"seed": seed, "fold": fold, "laws": laws, "wall_s": rows[0]["wall_s"]}
    path.write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="real_pendulum")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--inner-rule", choices=["sgd", "polyak"], default="sgd")
    ap.add_argument("--outer-lr", type=float, default=None, help="default: the paper setting's")
    ap.add_argument("--epochs", type=int, default=None, help="long-stage epochs (default 100)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="runs/law-cv")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = {"inner_rule": args.inner_rule, "outer_lr": args.outer_lr, "device": args.device,
            "epochs": args.epochs}  # fmt: skip
    from joblib import Parallel, delayed

    from formula_search.advanced import FitConfig
    from formula_search.data import load_dataset
    from formula_search.pipeline import SearchConfig, search

    table, _ = search(
        load_dataset(args.dataset), config=SearchConfig(fit=FitConfig(device=args.device))
    )
    tasks = [(s, f) for s in args.seeds for f in args.folds]
    results = Parallel(n_jobs=args.jobs)(
        delayed(_job)(args.dataset, s, f, table, opts, out) for s, f in tasks
    )
    rows = [
        {"seed": r["seed"], "fold": r["fold"], **law, "wall_s": r["wall_s"]}
        for r in results
        for law in r["laws"]
    ]
    df = pd.DataFrame(rows)
    df.to_csv(out / "folds.csv", index=False)
    pd.set_option("display.width", 200)
    print(df.drop(columns=["param"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    winners = df[df["rank"] == 1]  # each (seed, fold)'s in-sample winner
    in_sample = winners.groupby("seed")["formula"].agg(_counts)
    cv = df.groupby(["seed", "formula"])["held_out_mse"].mean().unstack("formula")
    summary = cv.assign(
        cv_choice=cv.idxmin(axis=1),
        in_sample_wins_per_fold=in_sample,
    )
    print("\nmean held-out rollout MSE over the folds (the CV score), per seed:")
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    print("\nCV choice over seeds:", _counts(summary["cv_choice"]))
    print("in-sample winner over (seed, fold):", _counts(winners["formula"]))
    per_fold = df.pivot_table(index=["seed", "fold"], columns="formula", values="held_out_mse")
    print("lowest held-out MSE over (seed, fold):", _counts(per_fold.idxmin(axis=1)))
    summary.to_csv(out / "summary.csv")


def _counts(labels: pd.Series) -> dict[str, int]:
    """How often each label occurs, as plain ints (readable in print and in the CSV)."""
    return {k: int(v) for k, v in labels.value_counts().items()}


if __name__ == "__main__":
    main()
