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
law a seed-averaged criterion would choose). For the built-in datasets it ends with the paper's claims as the
acceptance of the meta-tailoring stage checks them (:func:`formula_search.paper.check_claims`: the law with
its constant's range, and the error checks), and in how many seeds each holds; ``seeds.csv`` has them per
seed (columns ``holds: CLAIM``).

Options after ``--`` go to ``fsearch run`` unchanged (for example ``-- --inner-rule polyak``). A seed whose
run directory is finished is only read again, so an interrupted study resumes where it stopped; use a new
``--out`` for other options. ``--collect-only`` tabulates the finished seeds without running anything.
``--law-from DIR`` (an earlier ``--out``) makes each seed's run meta-tailor only the law that seed chose
there: two studies, the first for the law (say with the paper's settings), the second for the predictor
(``-- --inner-rule polyak ...``); ``-- --protocol polyak`` (the law by the paper's protocol, the default
``--law-choice paper``) does both in one study, and no options at all let each run choose its protocol on its
training data. ``-- --law-choice cv`` needs a named protocol (``-- --protocol paper --law-choice cv``).
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
#: prefix of the columns of ``seeds.csv`` that say whether a claim of the paper holds (the claim follows it)
CLAIM = "holds: "


def _row(seed: int, run: Path) -> dict:
    import dsl
    from formula_search.cli.export_cmd import law_rows
    from formula_search.runs import run_claims

    meta = json.loads((run / "meta.json").read_text())
    comp = pd.read_csv(run / "comparators.csv").set_index("method")
    laws = law_rows(run, meta, 1)
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
        from meta_tailor.advanced import CVResult

        cv = CVResult(folds=pd.read_csv(run / "cv.csv"))
        row["cv_folds_won"] = f"{cv.fold_wins.get(row['formula'], 0)}/{cv.folds['fold'].nunique()}"
    row.update({m: comp.loc[m, "test_rmse"] for m in METHODS if m in comp.index})
    row["wall_s"] = meta["timings"].get("total_s")
    # the paper's claims as the acceptance checks them (formula_search.paper), for the built-in datasets
    checks = run_claims(meta, laws[0] if laws else None, comp.reset_index())
    for check in checks or []:
        row[f"{CLAIM}{check.claim}"] = check.holds
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
    ap.add_argument(
        "--law-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="an earlier --out of this script: each seed meta-tailors only the law that seed's run there "
        "chose (fsearch run --law-from DIR/seedS), e.g. the law by the paper's settings and the "
        "predictor by other options given after --",
    )
    args = ap.parse_args(argv)

    rows = []
    for seed in args.seeds:
        run = args.out / f"seed{seed}"
        done = (run / "comparators.csv").exists() and (run / "meta.json").exists()
        if not done and not args.collect_only:
            cmd = [sys.executable, "-m", "formula_search.cli", "run", "--dataset", args.dataset]
            cmd += ["--model-seed", str(seed), "--run", str(run), *extra]
            if args.law_from is not None:
                earlier = args.law_from / f"seed{seed}"
                if not (earlier / "meta.json").exists():
                    sys.exit(f"--law-from: {earlier} has no finished run for seed {seed}")
                cmd += ["--law-from", str(earlier)]
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
    claims = [c for c in table if c.startswith(CLAIM)]
    shown = table.drop(columns=["formula", *claims])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
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
    if claims:
        print(
            "\nthe paper's claims as the acceptance checks them (formula_search.paper), seeds where they hold:"
        )
        met = table[claims].astype(bool)
        for claim in claims:
            print(f"  {met[claim].sum()} of {len(met)}: {claim.removeprefix(CLAIM)}")
        print(f"  {met.all(axis=1).sum()} of {len(met)}: all of them")
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "seeds.csv", index=False)
    print(f"\nwrote {args.out / 'seeds.csv'}")


if __name__ == "__main__":
    main()
