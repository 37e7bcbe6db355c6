"""Compare Noether Network variants on the pixel pendulum against the two SVG baselines, over seeds.

Every variant of a seed starts from the same SVG checkpoint, so SVG and "SVG (more steps)" are trained once
per seed; then "SVG (more steps)" and every variant train side by side in parallel processes (on a GPU they
share the card). Each model is evaluated on the test windows as `fsearch video evaluate` does.

    python benchmarks/video_variants.py --seeds 3 --device cuda --steps-per-epoch 40 --max-windows 2 \\
        --variant "paper-sum:" --variant "mean-frozen:reduction=mean,freeze_predictor=1"

A variant is NAME:KEY=VALUE,... with keys inner_lr, reduction (sum|mean), loss_form (a|b), inner_steps and
freeze_predictor (0|1); an empty list is the paper's set-up (sum, lr 0.5, predictor trained too). Writes
OUT/seedK/METHOD.pt and .csv (checkpoint and per-step table of each finished model), OUT/results.csv (per
method, seed and predicted step), OUT/overall.csv (mean and standard error over seeds) and OUT/metrics.png,
and prints the overall table with the mean Noether loss before and after the inner step and the
seconds spent training in this call (near 0 for a model that had already finished). --collect-only
tabulates what has finished (after an interrupted run).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

from formula_search.errors import InputError

_NOETHER_KEYS = {"inner_lr": float, "reduction": str, "loss_form": str, "inner_steps": int}


def parse_variant(spec: str, base):  # noqa: ANN001, ANN201
    """``NAME:key=value,...`` -> (name, config derived from ``base``)."""
    name, _, rest = spec.partition(":")
    if not name or name in ("svg", "svg_more"):
        raise InputError(f"--variant {spec!r}: needs a name other than svg and svg_more")
    noether, freeze = {}, base.freeze_predictor
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key == "freeze_predictor":
            freeze = value not in ("0", "false", "")
        elif key in _NOETHER_KEYS:
            noether[key] = _NOETHER_KEYS[key](value)
        else:
            raise InputError(f"--variant {spec!r}: unknown key {key!r}")
    cfg = dataclasses.replace(
        base, noether=dataclasses.replace(base.noether, **noether), freeze_predictor=freeze
    )
    return name, cfg


def _job(data_path, method, config, stage, path, init_from, max_windows):  # noqa: ANN001, ANN202
    """Train one stage (resuming), evaluate it on the test split, write ``<path>.csv`` (per-step table)."""
    from formula_search.io import write_table
    from meta_tailor.video import evaluate, load_models, load_video_data
    from meta_tailor.video._train import train_stage

    data = load_video_data(data_path)
    t0 = time.perf_counter()
    train_stage(data.train, config=config, stage=stage, path=path, init_from=init_from)
    seconds = time.perf_counter() - t0
    model, emb = load_models(path, config)
    df = evaluate(model, emb, data.test, config=config, max_windows_per_episode=max_windows)
    df = df.assign(method=method, seed=config.seed, train_s=round(seconds, 1))
    write_table(df, Path(path).with_suffix(".csv"))


def collect(root: Path, labels: dict[str, str]) -> pd.DataFrame:
    """Gather every finished model's table under ``root``; write results, overall and the plot."""
    from formula_search.io import write_table
    from meta_tailor.video._experiment import overall_table
    from meta_tailor.video._plots import plot_metrics

    files = sorted(root.glob("seed*/*.csv"))
    if not files:
        raise InputError(f"{root}: no finished models")
    results = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    others = sorted(set(results["method"]) - {"svg", "svg_more"})
    order = {m: i for i, m in enumerate(["svg", "svg_more", *others])}
    results = results.sort_values(
        ["method", "seed", "step"], key=lambda c: c.map(order) if c.name == "method" else c
    )
    write_table(results, root / "results.csv")
    overall = overall_table(results)
    extra = results.groupby("method", sort=False)[["noether_before", "noether_after", "train_s"]]
    overall = overall.join(extra.mean(), on="method")
    write_table(overall, root / "overall.csv")
    seeds = results["seed"].nunique()
    plot_metrics(results, root / "metrics.png", labels=labels, title=f"{seeds} seed(s)")
    return overall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default="runs/video-variants")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--variant", action="append", default=[], help="NAME:key=value,... (repeat)")
    ap.add_argument("--svg-epochs", type=int, default=50)
    ap.add_argument("--meta-epochs", type=int, default=20)
    ap.add_argument("--steps-per-epoch", type=int, default=600)
    ap.add_argument("--max-windows", type=int, default=None, help="test windows per episode")
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--n-train", type=int, default=5)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--nf", type=int, default=64)
    ap.add_argument("--g-dim", type=int, default=128)
    ap.add_argument("--rnn-size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--cache-dir", default="fsearch-out/video/cache")
    ap.add_argument("--jobs", type=int, default=0, help="parallel processes (0: one per task)")
    ap.add_argument(
        "--collect-only", action="store_true", help="only tabulate the models already finished"
    )
    args = ap.parse_args()

    from joblib import Parallel, delayed

    from meta_tailor.video import (
        METHOD_LABELS,
        ModelConfig,
        PendulumVideoConfig,
        load_or_generate_pendulum,
        pendulum_config,
    )

    base = pendulum_config(
        model=ModelConfig(size=args.size, nf=args.nf, g_dim=args.g_dim, rnn_size=args.rnn_size),
        batch_size=args.batch_size,
        svg_epochs=args.svg_epochs,
        meta_epochs=args.meta_epochs,
        steps_per_epoch=args.steps_per_epoch,
        device=args.device,
    )
    variants = dict(parse_variant(v, base) for v in (args.variant or ["paper:"]))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    root = Path(args.out)

    def run(tasks, data_path):  # noqa: ANN001, ANN202
        Parallel(n_jobs=args.jobs or len(tasks), backend="loky")(
            delayed(_job)(data_path, *t, args.max_windows) for t in tasks
        )

    tasks = []
    for s in seeds:
        (root / f"seed{s}").mkdir(parents=True, exist_ok=True)
        tasks.append(("svg", dataclasses.replace(base, seed=s), "svg",
                      root / f"seed{s}" / "svg.pt", None))  # fmt: skip
    second = []
    for s in seeds:
        svg = root / f"seed{s}" / "svg.pt"
        second.append(("svg_more", dataclasses.replace(base, seed=s), "svg_more",
                       root / f"seed{s}" / "svg_more.pt", svg))  # fmt: skip
        for name, cfg in variants.items():
            second.append((name, dataclasses.replace(cfg, seed=s), "noether",
                           root / f"seed{s}" / f"noether-{name}.pt", svg))  # fmt: skip
    if not args.collect_only:  # tabulating finished models needs no data
        data_cfg = PendulumVideoConfig(episodes=args.episodes, n_train=args.n_train, size=args.size)
        _, data_path = load_or_generate_pendulum(data_cfg, cache_dir=args.cache_dir)
        t0 = time.perf_counter()
        run(tasks, data_path)
        t1 = time.perf_counter()
        run(second, data_path)
        print(f"wall: SVG stage {t1 - t0:.0f} s, second stage {time.perf_counter() - t1:.0f} s")
    labels = {**METHOD_LABELS, **{v: f"Noether: {v}" for v in variants}}
    overall = collect(root, labels)
    with pd.option_context("display.width", 200, "display.float_format", "{:.6g}".format):
        print(overall.to_string(index=False))
    print(f"wrote {root}/results.csv, overall.csv, metrics.png")


if __name__ == "__main__":
    main()
