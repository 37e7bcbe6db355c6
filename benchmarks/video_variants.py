"""Compare Noether Network variants on the pixel pendulum against the two SVG baselines, over seeds.

Every variant of a seed starts from the same SVG checkpoint, so SVG and "SVG (more steps)" are trained once
per seed; then "SVG (more steps)" and every variant train side by side in parallel processes (on a GPU they
share the card). Each model is evaluated on the test windows as `fsearch video evaluate` does.

    python benchmarks/video_variants.py --seeds 3 --device cuda --steps-per-epoch 40 --max-windows 2 \\
        --variant "paper-sum:" --variant "mean-frozen:reduction=mean,freeze_predictor=1"

A variant is NAME:KEY=VALUE,... with keys inner_lr, reduction (sum|mean), loss_form (a|b), inner_steps,
inner_optimizer (sgd|polyak|adam) and freeze_predictor (0|1); an empty list is the paper's set-up (sum,
lr 0.5, predictor trained too). Writes
OUT/seedK/METHOD.pt and .csv (checkpoint and per-step table of each finished model), OUT/results.csv (per
method, seed and predicted step), OUT/overall.csv (mean and standard error over seeds) and OUT/metrics.png,
and prints the overall table with the mean Noether loss before and after the inner step and the
seconds spent training in the call that evaluated the model. A re-run evaluates again only what changed:
each table has a record beside it (OUT/seedK/*.json: checkpoint digest, data and evaluation settings).
--collect-only tabulates what has finished (after an interrupted run).

--test-time adam500:optimizer=adam,lr=1e-4,steps=500 also evaluates every variant with another inner loop
at test time (rows VARIANT@adam500). --study 0,1,10,100,500 adds the paper's figure-6 study of every
variant (Adam, lr 1e-4, on one test window per episode unless --study-windows says more):
OUT/inner_steps.csv and OUT/inner_steps.png, with standard errors over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import pandas as pd

from formula_search.errors import InputError

_NOETHER_KEYS = {"inner_lr": float, "reduction": str, "loss_form": str, "inner_steps": int,
                 "inner_optimizer": str}  # fmt: skip


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


def parse_test_time(spec: str) -> tuple[str, dict]:
    """``NAME:optimizer=adam,lr=1e-4,steps=500`` -> (name, inner-loop settings for evaluation)."""
    name, _, rest = spec.partition(":")
    keys = {"optimizer": ("inner_optimizer", str), "lr": ("inner_lr", float),
            "steps": ("inner_steps", int)}  # fmt: skip
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise InputError(f"--test-time {spec!r}: the name must be letters, digits, '_', '.' or '-'")
    out = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in keys:
            raise InputError(f"--test-time {spec!r}: unknown key {key!r} (optimizer, lr, steps)")
        field, kind = keys[key]
        try:
            out[field] = kind(value)
        except ValueError:
            raise InputError(f"--test-time {spec!r}: bad value for {key}: {value!r}") from None
    from meta_tailor.video import INNER_OPTIMIZERS

    if out.get("inner_optimizer", "sgd") not in INNER_OPTIMIZERS:
        raise InputError(
            f"--test-time {spec!r}: optimizer must be one of {', '.join(INNER_OPTIMIZERS)}"
        )
    if out.get("inner_steps", 0) < 0 or out.get("inner_lr", 1.0) <= 0:
        raise InputError(f"--test-time {spec!r}: steps must be >= 0 and lr > 0")
    return name, out


def _job(data_path, method, config, stage, path, init_from, max_windows, extra):  # noqa: ANN001, ANN202
    """Train one stage (resuming), evaluate it on the test split, write ``<path>.csv`` (per-step table).

    For a Noether model, ``extra["test_time"]`` ({name: inner settings}) adds one evaluation per entry with
    that test-time inner loop instead of the trained one (``<path>@NAME.csv``, method ``METHOD@NAME``), and
    ``extra["study"]`` (None or (steps, optimizer, lr, windows)) the figure-6 study
    (``<path>-inner_steps.csv``). A table whose record (``.json`` beside it) shows the same checkpoint
    contents, data and evaluation settings is kept instead of computed again: re-running after an
    interrupted call, or with one more ``--test-time``, costs only what is new.
    """
    from formula_search.io import write_table
    from meta_tailor.video import (
        evaluate,
        inner_steps_study,
        load_models,
        load_video_data,
        train_stage,
    )

    data = load_video_data(data_path)
    t0 = time.perf_counter()
    train_stage(data.train, config=config, stage=stage, path=path, init_from=init_from)
    seconds = time.perf_counter() - t0
    path = Path(path)
    base = {"checkpoint": _digest(path), "data": str(data_path), "config": _eval_config(config),
            "max_windows": max_windows}  # fmt: skip
    model, emb = None, None

    def todo(table: Path, **settings) -> dict | None:  # noqa: ANN003
        """None when ``table`` is up to date, else the record to write beside it once computed."""
        nonlocal model, emb
        record = {**base, **settings}
        if table.is_file() and _record_path(table).is_file():
            if json.loads(_record_path(table).read_text()) == record:
                return None
        if model is None:
            model, emb = load_models(path, config)
        return record

    def write(df: pd.DataFrame, table: Path, record: dict) -> None:
        write_table(df, table)
        _record_path(table).write_text(json.dumps(record, indent=1))

    main = path.with_suffix(".csv")
    main_record = todo(main)
    if main_record is not None:
        df = evaluate(model, emb, data.test, config=config, max_windows_per_episode=max_windows)
        write(df.assign(method=method, seed=config.seed, train_s=round(seconds, 1)), main,
              main_record)  # fmt: skip
    if stage != "noether":
        return
    for name, inner in extra["test_time"].items():
        table = path.with_name(f"{path.stem}@{name}.csv")
        record = todo(table, test_time=inner)
        if record is None:
            continue
        nc = dataclasses.replace(config.noether, **inner)
        tt = evaluate(model, emb, data.test, config=config, noether=nc,
                      max_windows_per_episode=max_windows)  # fmt: skip
        write(tt.assign(method=f"{method}@{name}", seed=config.seed, train_s=0.0), table, record)
    study = extra["study"]
    if study is not None:
        steps, optimizer, lr, windows = study
        # the study has its own windows: a new --max-windows must not run it again
        record = todo(_study_path(path), max_windows=windows, study=[list(steps), optimizer, lr])
        if record is not None:
            st = inner_steps_study(
                model, emb, data.test, config=config, steps=steps, optimizer=optimizer, lr=lr,
                max_windows_per_episode=windows,
            )  # fmt: skip
            write(st.assign(method=method, seed=config.seed), _study_path(path), record)


def _digest(path: Path) -> str:
    """SHA-256 of a checkpoint's bytes (survives copies between machines, unlike a time stamp)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _eval_config(config) -> dict:  # noqa: ANN001
    """The configuration as evaluation sees it: everything but the device, in JSON types."""
    out = json.loads(json.dumps(config.to_dict()))
    out.pop("device", None)
    return out


def _record_path(table: Path) -> Path:
    return table.with_suffix(".json")


def _study_path(path) -> Path:  # noqa: ANN001
    return Path(path).with_name(Path(path).stem + "-inner_steps.csv")


def collect(root: Path, labels: dict[str, str], max_windows: int | None) -> pd.DataFrame:
    """Gather every finished model's table under ``root``; write results, overall and the plot.

    A table recorded as evaluated on another number of test windows per episode than ``max_windows`` is
    left out (with a message), so that one table never mixes two sets of test sequences.
    """
    from formula_search.io import write_table
    from meta_tailor.video import inner_steps_summary, overall_table, plot_inner_steps, plot_metrics

    def current(table: Path) -> bool:
        record = _record_path(table)
        return not record.is_file() or json.loads(record.read_text())["max_windows"] == max_windows

    files = sorted(f for f in root.glob("seed*/*.csv") if not f.stem.endswith("-inner_steps"))
    stale = [f for f in files if not current(f)]
    if stale:
        print(f"left out, evaluated on another --max-windows than {max_windows}: "
              + ", ".join(str(f.relative_to(root)) for f in stale))  # fmt: skip
        files = [f for f in files if f not in stale]
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
    studies = sorted(root.glob("seed*/*-inner_steps.csv"))
    if studies:
        study = pd.concat([pd.read_csv(f) for f in studies], ignore_index=True)
        write_table(study, root / "inner_steps.csv")
        plot_inner_steps(study, root / "inner_steps.png", labels=labels,
                         title=f"inner steps at test time, {study['seed'].nunique()} seed(s)")  # fmt: skip
        with pd.option_context("display.width", 200, "display.float_format", "{:.6g}".format):
            print(inner_steps_summary(study).to_string(index=False))
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
    ap.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="test windows per episode (default all); the tables keep only models evaluated so",
    )
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
        "--test-time",
        action="append",
        default=[],
        help="NAME:optimizer=adam,lr=1e-4,steps=500 (repeat): also evaluate every variant with this "
        "test-time inner loop, as method VARIANT@NAME",
    )
    ap.add_argument(
        "--study",
        default="",
        help="inner-step counts for the figure-6 study of every variant, e.g. 0,1,10,100,500",
    )
    ap.add_argument("--study-optimizer", choices=["sgd", "adam"], default="adam")
    ap.add_argument("--study-lr", type=float, default=1e-4, help="the paper's figure 6: Adam, 1e-4")
    ap.add_argument("--study-windows", type=int, default=1, help="test windows per episode")
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
    steps = tuple(int(k) for k in args.study.split(",")) if args.study else ()
    study = (steps, args.study_optimizer, args.study_lr, args.study_windows) if steps else None
    test_time = dict(parse_test_time(t) for t in args.test_time)
    if len(test_time) != len(args.test_time):
        raise InputError("--test-time: names must differ")
    extra = {"study": study, "test_time": test_time}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    root = Path(args.out)

    def run(tasks, data_path):  # noqa: ANN001, ANN202
        Parallel(n_jobs=args.jobs or len(tasks), backend="loky")(
            delayed(_job)(data_path, *t, args.max_windows, extra) for t in tasks
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
    labels |= {f"{v}@{t}": f"Noether: {v}, test-time {t}" for v in variants for t in test_time}
    overall = collect(root, labels, args.max_windows)
    with pd.option_context("display.width", 200, "display.float_format", "{:.6g}".format):
        print(overall.to_string(index=False))
    print(f"wrote {root}/results.csv, overall.csv, metrics.png")


if __name__ == "__main__":
    try:
        main()
    except InputError as e:
        raise SystemExit(f"error: {e}") from None
