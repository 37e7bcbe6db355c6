"""``fsearch video``: neural-embedding Noether Networks for video prediction (generate, train, evaluate, plot,
experiment). A thin layer over :mod:`meta_tailor.video`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import click

from formula_search.cli._common import parse_study_steps, progress_bar
from formula_search.errors import InputError
from formula_search.io import atomic_path, read_table, write_table

DEFAULT_ROOT = Path("fsearch-out/video")

#: Defaults that ``--preset`` gives the options left unset (an option given on the command line wins).
#: "cpu": the pixel pendulum at 32x32 with a smaller model, measured in docs/video.md (about 20 minutes
#: per seed for the paper's 50 + 20 epochs on 2 CPU cores).
PRESETS: dict[str, dict[str, int]] = {
    "paper": {},
    "cpu": {
        "episodes": 40,
        "size": 32,
        "nf": 16,
        "g_dim": 64,
        "rnn_size": 128,
        "batch_size": 8,
        "steps_per_epoch": 100,
    },
}


def _apply_preset(kw: dict) -> None:
    """Fill the options of ``kw`` left unset from its ``preset`` (removed from ``kw``)."""
    preset = kw.pop("preset")
    if preset != "paper" and (kw["dataset"] != "pendulum" or kw["data_file"] is not None):
        raise InputError(f"--preset {preset} is for the built-in pendulum; give sizes as options")
    for key, value in PRESETS[preset].items():
        if key in kw and kw[key] is None:
            kw[key] = value


def _data_options(f: Callable) -> Callable:
    opts = [
        click.option(
            "--dataset",
            type=click.Choice(["pendulum", "ramp", "physics101"]),
            default="pendulum",
            show_default=True,
            help="Built-in pixel pendulum, synthetic ramp, or Physics 101 ramp clips.",
        ),
        click.option(
            "--preset",
            type=click.Choice(list(PRESETS)),
            default="paper",
            show_default=True,
            help="Sizes: the paper's, or cpu: the pendulum at 32x32 with a smaller model (40 episodes, "
            "--nf 16, --g-dim 64, --rnn-size 128, --batch-size 8, 100 batches per epoch), about 20 "
            "minutes per seed on 2 CPU cores. Options given explicitly win.",
        ),
        click.option(
            "--data",
            "data_file",
            type=click.Path(dir_okay=False),
            default=None,
            help="A data file written by `fsearch video generate` (overrides --dataset).",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False),
            default=str(DEFAULT_ROOT / "cache"),
            show_default=True,
            help="Where generated data sets are cached.",
        ),
        click.option(
            "--episodes", type=int, default=None, help="Episodes / videos (pendulum 200, ramp 389)."
        ),
        click.option(
            "--steps", type=int, default=None, help="Frames per episode (pendulum 200, ramp 22)."
        ),
        click.option(
            "--n-train", type=int, default=None, help="Training episodes (pendulum 5, ramp 311)."
        ),
        click.option(
            "--size", type=int, default=None, help="Frame side in pixels (pendulum 64, ramp 128)."
        ),
        click.option(
            "--data-seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the data generator.",
        ),
        click.option(
            "--jobs",
            type=int,
            default=-1,
            show_default=True,
            help="Processes rendering pendulum episodes (-1: every core); the data do not depend on it.",
        ),
        click.option(
            "--physics101-root",
            type=click.Path(file_okay=False),
            default=None,
            help="Folder holding the Physics 101 data (published layout) for --dataset physics101.",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _load_data(
    dataset, data_file, cache_dir, episodes, steps, n_train, size, data_seed, physics101_root, jobs
):  # noqa: ANN001, ANN202
    from meta_tailor.video import (
        PendulumVideoConfig,
        RampConfig,
        config_key,
        generate_ramp_video,
        load_or_generate_pendulum,
        load_physics101_ramp,
        load_video_data,
        save_video_data,
    )

    if data_file is not None:
        return load_video_data(data_file), Path(data_file)
    if dataset == "physics101":
        if physics101_root is None:
            raise InputError("--dataset physics101 needs --physics101-root")
        with progress_bar() as p:
            task = p.add_task("reading Physics 101 clips", total=None)
            data = load_physics101_ramp(
                physics101_root,
                size=size or 128,
                frames=steps or 22,
                progress=lambda n, task=task: p.advance(task, n),
            )
        path = Path(cache_dir) / "physics101-ramp.npz"
        save_video_data(data, path)
        return data, path
    if dataset == "pendulum":
        d = PendulumVideoConfig()
        cfg = PendulumVideoConfig(
            episodes=episodes or d.episodes,
            steps=steps or d.steps,
            n_train=n_train or d.n_train,
            size=size or d.size,
            seed=data_seed,
        )
        cached = Path(cache_dir) / f"pendulum-{config_key(cfg)}.npz"
        if cached.is_file():
            return load_video_data(cached), cached
        with progress_bar() as p:
            task = p.add_task("rendering pendulum episodes", total=cfg.episodes)
            return load_or_generate_pendulum(
                cfg, cache_dir=cache_dir, progress=lambda n: p.advance(task, n), n_jobs=jobs
            )
    d = RampConfig()
    cfg = RampConfig(
        sequences=episodes or d.sequences,
        n_train=n_train or d.n_train,
        size=size or d.size,
        frames=steps or d.frames,
        seed=data_seed,
    )
    path = Path(cache_dir) / f"ramp-{config_key(cfg)}.npz"
    if path.is_file():
        return load_video_data(path), path
    with progress_bar() as p:
        task = p.add_task("rendering ramp videos", total=cfg.sequences)
        data = generate_ramp_video(cfg, progress=lambda n: p.advance(task, n))
    save_video_data(data, path)
    return data, path


def _model_options(f: Callable) -> Callable:
    """The options of the model and its training: ``--device``, sizes and schedule, then the inner loop."""
    for o in reversed(_network_options() + _inner_options()):
        f = o(f)
    return f


def _network_options() -> list[Callable]:
    """``--device`` and the sizes and training schedule of SVG (options, in the order shown)."""
    return [
        click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
        ),
        click.option(
            "--nf", type=int, default=None, help="Encoder filters of the first layer (paper 64)."
        ),
        click.option(
            "--g-dim", type=int, default=None, help="Frame encoding / LSTM output size (128)."
        ),
        click.option(
            "--rnn-size", type=int, default=None, help="LSTM units (pendulum 256, ramp 128)."
        ),
        click.option(
            "--batch-size",
            type=int,
            default=None,
            help="Sequences per batch (pendulum 32, ramp 2).",
        ),
        click.option(
            "--lr",
            type=float,
            default=None,
            help="Outer Adam learning rate (pendulum 1e-3, ramp 1e-4).",
        ),
        click.option("--svg-epochs", type=int, default=None, help="Epochs of SVG (pendulum 50)."),
        click.option(
            "--meta-epochs",
            type=int,
            default=None,
            help="Epochs of Algorithm 1 and extra SVG epochs (20).",
        ),
        click.option(
            "--steps-per-epoch", type=int, default=None, help="Batches per epoch (pendulum 600)."
        ),
        click.option(
            "--train-future",
            type=int,
            default=None,
            help="Frames predicted in training (pendulum 10).",
        ),
        click.option(
            "--eval-future",
            type=int,
            default=None,
            help="Frames predicted at evaluation (pendulum 26).",
        ),
    ]


def _inner_options() -> list[Callable]:
    """The Noether Network's inner loop and whether SVG trains with it (options, in the order shown)."""
    return [
        click.option(
            "--loss-form",
            type=click.Choice(["a", "b"]),
            default=None,
            help="Noether loss 2(a) or 2(b).",
        ),
        click.option(
            "--inner-lr",
            type=float,
            default=None,
            help="Inner learning rate (pendulum 0.5, ramp 1e-4).",
        ),
        click.option("--inner-steps", type=int, default=None, help="Inner steps in training (1)."),
        click.option(
            "--inner-reduction",
            type=click.Choice(["sum", "mean"]),
            default=None,
            help="Noether loss over embedding dimensions: sum (paper's equation 2, default) or mean "
            "(the authors' released code; a step k times smaller for embedding size k).",
        ),
        click.option(
            "--inner-optimizer",
            type=click.Choice(["sgd", "polyak", "adam"]),
            default=None,
            help="Inner step: sgd (the paper's fixed rate, default); polyak (the rate of each example "
            "is --inner-lr x L / |grad L|^2, so --inner-lr is the fraction of its Noether loss one step "
            "removes, whatever the embedding's scale); adam.",
        ),
        click.option(
            "--freeze-predictor/--train-predictor",
            default=False,
            show_default=True,
            help="Keep SVG fixed during meta-training (the paper's pendulum variant).",
        ),
    ]


def _video_config(
    data,
    *,
    seed,
    device,
    nf,
    g_dim,
    rnn_size,
    batch_size,
    lr,
    svg_epochs,
    meta_epochs,  # noqa: ANN001, ANN202
    steps_per_epoch,
    train_future,
    eval_future,
    loss_form,
    inner_lr,
    inner_steps,
    inner_reduction,
    inner_optimizer,
    freeze_predictor,
):
    from meta_tailor.video import pendulum_config, ramp_config

    ramp = data.actions.shape[2] == 0
    base = ramp_config() if ramp else pendulum_config()
    _, _, c, h, _ = data.frames.shape
    model = dataclasses.replace(
        base.model,
        channels=c,
        size=h,
        nf=nf or base.model.nf,
        g_dim=g_dim or base.model.g_dim,
        rnn_size=rnn_size or base.model.rnn_size,
        action_dim=data.actions.shape[2],
    )
    noether = dataclasses.replace(
        base.noether,
        loss_form=loss_form or base.noether.loss_form,
        inner_lr=base.noether.inner_lr if inner_lr is None else inner_lr,
        inner_steps=base.noether.inner_steps if inner_steps is None else inner_steps,
        reduction=inner_reduction or base.noether.reduction,
        inner_optimizer=inner_optimizer or base.noether.inner_optimizer,
    )

    def pick(v, d):  # noqa: ANN001, ANN202
        return d if v is None else v

    return dataclasses.replace(
        base,
        model=model,
        noether=noether,
        seed=seed,
        device=device,
        batch_size=pick(batch_size, base.batch_size),
        lr=pick(lr, base.lr),
        svg_epochs=pick(svg_epochs, base.svg_epochs),
        meta_epochs=pick(meta_epochs, base.meta_epochs),
        steps_per_epoch=pick(steps_per_epoch, base.steps_per_epoch),
        train_future=pick(train_future, base.train_future),
        eval_future=pick(eval_future, base.eval_future),
        freeze_predictor=freeze_predictor,
    )


class _TrainBars:
    """Rich progress bars for the training stages: one bar per stage, the loss in its description."""

    def __init__(self) -> None:
        self.bars = progress_bar()
        self.tasks: dict[str, object] = {}

    def __enter__(self) -> _TrainBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int, loss: float) -> None:
        from meta_tailor.video import METHOD_LABELS

        task = self.tasks.get(stage)
        if (
            task is None or self.bars.tasks[task].completed >= done
        ):  # a new seed starts the stage again
            task = self.tasks[stage] = self.bars.add_task("", total=total, completed=done - 1)
        desc = f"{METHOD_LABELS[stage]:<18} train MSE {loss:.5f}"
        self.bars.update(task, completed=done, description=desc)


@click.group(name="video")
def video_group() -> None:
    """Neural-embedding Noether Networks for video prediction (the paper's Algorithm 1).

    Typical session: `fsearch video experiment --seeds 3 --out runs/pendulum`, or step by step
    `fsearch video generate`, `fsearch video train --out R`, `fsearch video evaluate --out R`,
    `fsearch video plot R/results.csv`.
    """


@video_group.command("generate")
@_data_options
def generate_cmd(**kw: object) -> None:
    """Render (or read) a video data set and cache it as arrays with its actions."""
    _apply_preset(kw)
    data, path = _load_data(**kw)
    n, t, c, h, w = data.frames.shape
    click.echo(
        f"{data.name}: {n} episodes x {t} frames of {c}x{h}x{w} ({data.n_train} train) -> {path}"
    )


@video_group.command("train")
@_data_options
@_model_options
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batches."
)
@click.option(
    "--out", type=click.Path(file_okay=False), default=str(DEFAULT_ROOT / "run"), show_default=True
)
def train_cmd(out: str, seed: int, **kw: object) -> None:
    """Train SVG, SVG (more steps) and the Noether Network; checkpoints resume when interrupted."""
    _apply_preset(kw)
    data_kw = {k: kw.pop(k) for k in list(kw) if k in _DATA_KEYS}
    data, path = _load_data(**data_kw)
    config = _video_config(data, seed=seed, **kw)
    from meta_tailor.video import train_all

    with _TrainBars() as bars:
        paths = train_all(data.train, config=config, out_dir=out, progress=bars)
    with atomic_path(Path(out) / "data.json") as tmp:
        tmp.write_text(json.dumps({"data": str(Path(path).resolve())}))
    for m, p in paths.items():
        click.echo(f"{m}: {p}")


_DATA_KEYS = {
    "dataset",
    "data_file",
    "cache_dir",
    "episodes",
    "steps",
    "n_train",
    "size",
    "data_seed",
    "physics101_root",
    "jobs",
}


def _study_options(f):  # noqa: ANN001, ANN202
    """``--study-optimizer`` and ``--study-lr``: the figure-6 study's inner loop, apart from evaluation's."""
    f = click.option(
        "--study-lr",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Inner learning rate of the --study (default: the trained one).",
    )(f)
    return click.option(
        "--study-optimizer",
        type=click.Choice(["sgd", "adam"]),
        default="sgd",
        show_default=True,
        help="Inner optimizer of the --study (the paper's figure 6: adam, with --study-lr 1e-4).",
    )(f)


@video_group.command("evaluate")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_ROOT / "run"),
    show_default=True,
    help="A run folder written by `fsearch video train`.",
)
@click.option(
    "--inner-steps", type=int, default=None, help="Inner steps at test time (default: as trained)."
)
@click.option(
    "--inner-optimizer",
    type=click.Choice(["sgd", "polyak", "adam"]),
    default=None,
    help="Inner step at test time (default: as trained).",
)
@click.option(
    "--inner-lr",
    type=float,
    default=None,
    help="Inner learning rate at test time (default: as trained).",
)
@click.option(
    "--study",
    default="",
    help="Comma-separated inner-step counts for the figure-6 study, e.g. 0,1,5,20.",
)
@_study_options
@click.option(
    "--max-windows", type=int, default=None, help="Test windows per episode (default: all)."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None)
def evaluate_cmd(
    out: str,
    inner_steps,
    inner_optimizer,
    inner_lr,
    study,
    study_optimizer,
    study_lr,
    max_windows,
    device,
) -> None:  # noqa: ANN001
    """Per-step MSE, PSNR and SSIM on held-out sequences; writes results.csv (and inner_steps.csv)."""
    ks = parse_study_steps(study)  # before any evaluation: a typo costs nothing
    from meta_tailor.video import METHODS, inner_steps_study, load_models, overall_table

    run = Path(out)
    config, data = _load_run(run, device)
    nc = dataclasses.replace(
        config.noether,
        inner_optimizer=inner_optimizer or config.noether.inner_optimizer,
        inner_steps=config.noether.inner_steps if inner_steps is None else inner_steps,
        inner_lr=config.noether.inner_lr if inner_lr is None else inner_lr,
    )
    import pandas as pd

    tables = []
    for m in METHODS:
        if not (run / f"{m}.pt").is_file():
            continue
        model, emb = load_models(run / f"{m}.pt", config)
        tables.append(_evaluate_method(m, model, emb, data, config, nc, max_windows))
        if m == "noether" and ks:
            st = inner_steps_study(
                model,
                emb,
                data,
                config=config,
                steps=ks,
                optimizer=study_optimizer,
                lr=study_lr,
                max_windows_per_episode=max_windows,
            )
            write_table(st.assign(seed=config.seed), run / "inner_steps.csv")
            click.echo(st.to_string(index=False))
    if not tables:
        raise InputError(f"{run}: no checkpoints")
    results = pd.concat(tables, ignore_index=True)
    write_table(results, run / "results.csv")
    click.echo(overall_table(results).to_string(index=False))
    click.echo(f"wrote {run / 'results.csv'}")


def _load_run(run: Path, device: str | None):
    """``(config, test episodes)`` of a run folder written by `fsearch video train`."""
    from meta_tailor.video import VideoConfig, load_video_data

    if not (run / "config.json").is_file() or not (run / "data.json").is_file():
        raise InputError(
            f"{run}: not a run folder (train one with `fsearch video train --out {run}`)"
        )
    config = VideoConfig.from_dict(json.loads((run / "config.json").read_text()))
    if device:
        config = dataclasses.replace(config, device=device)
    data = load_video_data(json.loads((run / "data.json").read_text())["data"]).test
    return config, data


def _evaluate_method(m: str, model, emb, data, config, noether, max_windows):
    """One method's per-step metrics on the test episodes, with a progress bar."""
    from meta_tailor.video import METHOD_LABELS, evaluate

    with progress_bar() as p:
        task = p.add_task(f"evaluating {METHOD_LABELS[m]}", total=None)
        df = evaluate(
            model,
            emb,
            data,
            config=config,
            noether=noether,
            max_windows_per_episode=max_windows,
            progress=lambda n, task=task: p.advance(task, n),
        )
    return df.assign(method=m, seed=config.seed)


@video_group.command("plot")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="PNG to write (default: metrics.png beside RESULTS).",
)
@click.option(
    "--inner-steps-table",
    type=click.Path(dir_okay=False),
    default=None,
    help="An inner_steps.csv to plot as well (figure 6).",
)
def plot_cmd(results: str, output: str | None, inner_steps_table: str | None) -> None:
    """Plot MSE, PSNR and SSIM per predicted step with standard errors over seeds (figures 3 and 4)."""
    from meta_tailor.video import METHOD_LABELS, plot_inner_steps, plot_metrics

    df = read_table(results)
    path = plot_metrics(df, output or Path(results).with_name("metrics.png"), labels=METHOD_LABELS)
    click.echo(f"wrote {path}")
    if inner_steps_table:
        st = read_table(inner_steps_table)
        if not {"inner_steps", "mse", "noether_loss"} <= set(st.columns):
            raise InputError(f"{inner_steps_table}: not an inner-steps table")
        click.echo(f"wrote {plot_inner_steps(st, Path(path).with_name('inner_steps.png'))}")


@video_group.command("experiment")
@_data_options
@_model_options
@click.option("--seeds", type=int, default=3, show_default=True, help="Number of model seeds.")
@click.option(
    "--first-seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seeds are FIRST..FIRST+N-1 (run seeds in parallel processes, then `fsearch video plot`).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_ROOT / "experiment"),
    show_default=True,
)
@click.option(
    "--max-windows", type=int, default=None, help="Test windows per episode (default: all)."
)
@click.option(
    "--study",
    default="0,1,2,5,10",
    show_default=True,
    help="Inner-step counts for the figure-6 study.",
)
@_study_options
def experiment_cmd(
    seeds: int,
    first_seed: int,
    out: str,
    max_windows: int | None,
    study: str,
    study_optimizer: str,
    study_lr: float | None,
    **kw: object,
) -> None:
    """The acceptance protocol: per seed train SVG, SVG (more steps), Noether Network; evaluate; tables + plots."""
    if seeds < 1:
        raise InputError("--seeds must be at least 1")
    ks = parse_study_steps(study)
    _apply_preset(kw)
    data_kw = {k: kw.pop(k) for k in list(kw) if k in _DATA_KEYS}
    data, _ = _load_data(**data_kw)
    config = _video_config(data, seed=0, **kw)
    from meta_tailor.video import overall_table, run_experiment

    with _TrainBars() as bars:
        results = run_experiment(
            data,
            config=config,
            seeds=tuple(range(first_seed, first_seed + seeds)),
            out_dir=out,
            max_windows_per_episode=max_windows,
            inner_steps=ks,
            study_optimizer=study_optimizer,
            study_lr=study_lr,
            progress=bars.bars.console.print,
            train_progress=bars,
        )
    click.echo(overall_table(results).to_string(index=False))
    click.echo(f"wrote {out}/results.csv, summary.csv, overall.csv, metrics.png")
