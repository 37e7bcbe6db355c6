"""How much the discovered law and the errors depend on the MLP's initialisation: ``fsearch run`` per seed.

Usage: ``python benchmarks/model_seeds.py [--dataset real_pendulum] [--seeds 0 1 2 3 4] [--out DIR]
[--collect-only] [-- EXTRA fsearch run OPTIONS]``.

The reference set-up trains the vanilla MLP from seed 0, and every table in the docs comes from that one
initialisation. This script runs the whole pipeline (``fsearch run --model-seed S``, one run directory per
seed under ``--out``) for several seeds, one after the other. It prints per seed the winning law with its
meta-learned constant, its inner rate and steps, its training rollout MSE (the ranking's criterion), the
test RMSE of every method and the wall time (with ``--law-choice cv``, also in how many folds the winner had
the lowest held-out error); then how often each formula won, the mean and spread of each
method's test RMSE, and every finalist's training rollout MSE and test RMSE averaged over the seeds (the
law a seed-averaged criterion would choose). For the built-in datasets it ends with the acceptance of the
meta-tailoring stage checked seed by seed (the law, its constant's range and the error checks of
:data:`ACCEPTANCE`) and in how many seeds each holds.

Options after ``--`` go to ``fsearch run`` unchanged (for example ``-- --inner-rule polyak``). A seed whose
run directory is finished is only read again, so an interrupted study resumes where it stopped; use a new
``--out`` for other options. ``--collect-only`` tabulates the finished seeds without running anything.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

METHODS = ["vanilla_mlp", "mlp_more_epochs", "noether", "oracle", "hnn"]

#: The meta-tailoring acceptance per built-in dataset: the law (DSL text, compared with sympy), the range of its
#: meta-learned constant c_0, and the error checks on the test RMSEs of a seed's row.
ACCEPTANCE = {
    "ideal_pendulum": (
        "p^2 + c_0*cos(q)",
        (-3.03, -2.97),
        {
            "15% below MLP": lambda r: r["noether"] <= 0.85 * r["vanilla_mlp"],
            "oracle +5%": lambda r: r["noether"] <= 1.05 * r["oracle"],
        },
    ),
    "ideal_spring": (
        "q^2 + c_0*p^2",
        (0.99, 1.01),
        {
            "below MLP": lambda r: r["noether"] < r["vanilla_mlp"],
            "oracle +5%": lambda r: r["noether"] <= 1.05 * r["oracle"],
        },
    ),
    "real_pendulum": (
        "p^2 + c_0*cos(q)",
        (-2.5, -2.3),
        {
            "MSE 10x below MLP": lambda r: 10 * r["noether"] ** 2 <= r["vanilla_mlp"] ** 2,
            "below HNN": lambda r: r["noether"] < r["hnn"],
        },
    ),
}


def acceptance(dataset: str, table: pd.DataFrame) -> pd.DataFrame | None:
    """Per seed, which criteria of the acceptance hold (``None`` for a dataset without one): the law, its
    constant, each error check, and all of them together."""
    import sympy

    import dsl

    if dataset not in ACCEPTANCE:
        return None
    text, (low, high), checks = ACCEPTANCE[dataset]
    target = dsl.to_sympy(dsl.parse(text))

    def same_law(formula: str) -> bool:
        try:
            return sympy.simplify(dsl.to_sympy(dsl.parse(formula)) - target) == 0
        except dsl.ParseError:
            return False

    out = pd.DataFrame({"seed": table["seed"]})
    out["law"] = [same_law(f) for f in table["formula"]]
    c0 = pd.to_numeric(table["params"].astype(str).str.split().str[0], errors="coerce")
    out["constant"] = out["law"] & c0.between(low, high)
    for name, check in checks.items():
        out[name] = [bool(check(r)) for _, r in table.iterrows()]
    out["all"] = out.drop(columns="seed").all(axis=1)
    return out


def _row(seed: int, run: Path) -> dict:
    import dsl
    from formula_search.cli.rank_cmd import _law_rows

    meta = json.loads((run / "meta.json").read_text())
    comp = pd.read_csv(run / "comparators.csv").set_index("method")
    laws = _law_rows(run, meta, 1)
    row = {"seed": seed, "formula": "(none)", "law": "(none)"}
    if laws:
        law = laws[0]
        row["formula"] = law["formula"]
        row["law"] = dsl.to_display(law["expr"], law["params"])
        row["params"] = " ".join(f"{v:.5g}" for v in law["params"])
        row.update(inner_lr=law["inner_lr"], inner_steps=law["inner_steps"])
    row["train_mse"] = comp.loc["noether", "train_rollout_mse"]
    # with --law-choice cv: in how many folds the winner had the lowest held-out error
    if (run / "cv.csv").exists() and laws:
        from meta_tailor import CVResult

        cv = CVResult(folds=pd.read_csv(run / "cv.csv"))
        row["cv_folds_won"] = f"{cv.fold_wins.get(row['formula'], 0)}/{cv.folds['fold'].nunique()}"
    row.update({m: comp.loc[m, "test_rmse"] for m in METHODS if m in comp.index})
    row["wall_s"] = meta["timings"].get("total_s")
    return row


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="real_pendulum")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", type=Path, default=Path("fsearch-out/model-seeds"))
    ap.add_argument("--collect-only", action="store_true")
    args = ap.parse_args(argv)

    rows = []
    for seed in args.seeds:
        run = args.out / f"seed{seed}"
        done = (run / "comparators.csv").exists() and (run / "meta.json").exists()
        if not done and not args.collect_only:
            cmd = [sys.executable, "-m", "formula_search.cli", "run", "--dataset", args.dataset]
            cmd += ["--model-seed", str(seed), "--run", str(run), *extra]
            print(f"seed {seed}: {' '.join(cmd[2:])}", flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        if (run / "comparators.csv").exists():
            rows.append(_row(seed, run))
    if not rows:
        sys.exit("no finished seed to tabulate")
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.drop(columns="formula").to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nwins per formula:")
    print(table["formula"].value_counts().to_string())
    methods = [m for m in METHODS if m in table]
    summary = table[methods].agg(["mean", "std", "min", "max"]).T
    print("\ntest RMSE over seeds:")
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    finalists = pd.concat(
        [
            pd.read_csv(args.out / f"seed{r['seed']}" / "ranking.csv").assign(seed=r["seed"])
            for r in rows
        ]
    ).dropna(subset=["rank"])
    print("\nevery finalist, mean over seeds (training rollout MSE is the ranking's criterion):")
    per_formula = finalists.groupby("formula").agg(
        seeds=("seed", "count"),
        wins=("rank", lambda r: int((r == 1).sum())),
        train_mse=("train_rollout_mse", "mean"),
        train_mse_max=("train_rollout_mse", "max"),
        test_rmse=("test_rmse", "mean"),
    )
    print(per_formula.sort_values("train_mse").to_string(float_format=lambda v: f"{v:.4g}"))
    met = acceptance(args.dataset, table)
    if met is not None:
        _, (low, high), _ = ACCEPTANCE[args.dataset]
        print(f"\nacceptance per seed (constant c_0 in [{low}, {high}]):")
        print(met.to_string(index=False))
        counts = met.drop(columns="seed").sum().astype(int)
        print("held in: " + ", ".join(f"{k} {v} of {len(met)}" for k, v in counts.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "seeds.csv", index=False)
    print(f"\nwrote {args.out / 'seeds.csv'}")


if __name__ == "__main__":
    main()
