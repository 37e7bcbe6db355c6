"""``fsearch pretrain``, ``rank``, ``run`` and ``reproduce`` (``export`` and ``plot``: :mod:`.export_cmd`).

A run directory (``RUN``, default ``runs/DATASET``) holds:

- ``model.pt``: the pretrained vanilla MLP (``fsearch pretrain``; loaded with ``weights_only=True``);
- ``pretrain_curve.csv``: its training loss after each number of Adam steps (0 to 2000);
- ``ranking.csv``: the ranking table (:data:`meta_tailor.RANK_COLUMNS`), one row per accepted survivor;
- ``screen.csv``: every screened (formula, inner_lr, inner_steps) and its screen loss;
- ``meta_curves.csv``: the long stage epoch by epoch, per finalist and outer rate: outer loss and the
  training rollout MSE the returned epoch is chosen by (:data:`meta_tailor.CURVE_COLUMNS`);
- ``comparators.csv``: vanilla MLP, MLP with more epochs, Noether winner, oracle, HNN
  (:data:`meta_tailor.COMPARATOR_COLUMNS`);
- ``horizons.csv``: test error per prediction horizon and method;
- ``law_ranking.csv``: with ``--law-choice paper`` (and another inner rule or outer rate), the ranking that
  chose the law, with the paper's inner rule and outer rate;
- ``cv.csv``: with ``--law-choice cv``, every fold's held-out rollout MSE per finalist
  (:data:`meta_tailor.CV_COLUMNS`); the ranking's ``cv_mse`` is its mean over the folds;
- ``winner.pt``: the meta-tailored winner's MLP weights and formula parameters;
- ``meta.json``: dataset, variables and units, settings, device, timings, and the winner.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import click

from formula_search.cli._common import MEASURE, SMOOTHING, dedup_option, progress_bar
from formula_search.cli.export_cmd import (
    METHOD_NAMES,
    export_cmd,
    law_rows,
    method_description,
    plot_cmd,
    read_meta,
)
from formula_search.errors import InputError

DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to compute.",
)


TAILOR = click.option(
    "--tailor",
    "tailor",
    type=click.Choice(["state", "trajectory"]),
    default=None,
    help="Tailoring per trajectory (Algorithm 1, the default) or per query state.",
)


INNER_RULE = click.option(
    "--inner-rule",
    type=click.Choice(["sgd", "polyak"]),
    default="sgd",
    show_default=True,
    help="Inner step: the paper's fixed rate (sgd), or a Polyak rate per sequence (the rate is the "
    "fraction of the sequence's Noether loss one step removes; screens 0.1 to 1).",
)


def _run_dir(run: str | None, dataset: str) -> Path:
    return Path(run) if run else Path("runs") / Path(dataset).stem


def _load_data(options: dict):
    from formula_search.data import dataset_from_options

    return dataset_from_options(**options)


def _write_json(obj: dict, path: Path) -> None:
    from formula_search.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def _model_fingerprint(data, options: dict, mlp_cfg) -> dict:
    """What a saved model must match to be reused: the data it was trained on and its settings.

    ``keep`` is left out while it has its default, so models saved before it existed are still reused."""
    settings = asdict(mlp_cfg)
    if settings["keep"] == "last":
        del settings["keep"]
    return {
        "dataset": data.name,
        "noise": float(options.get("noise") or 0.0),
        "seed": int(options.get("seed") or 0),
        "n_train": int(sum(len(t.x) for t in data.train)),
        "mlp": json.dumps(settings, sort_keys=True),
    }


def _pretrain(
    data,
    options: dict,
    run: Path,
    *,
    steps: int | None,
    device: str,
    model_seed: int = 0,
    keep: str = "last",
    need_adam: bool = False,
) -> tuple[float, bool]:
    """Train and save the vanilla MLP unless RUN/model.pt was trained on the same data and settings.

    ``model_seed`` seeds the MLP's initialisation and ``keep`` chooses its returned weights
    (:attr:`~meta_tailor.MLPConfig.keep`); the comparators (HNN, the MLP with more epochs) take both from
    the saved model. The model is saved with its Adam state; ``need_adam`` retrains a model saved without
    one (before ``--outer-adam`` existed).
    Returns the seconds spent and whether a model was trained.
    """
    from meta_tailor import load_adam_state, load_mlp, paper_configs, pretrain, save_mlp

    mlp_cfg, _ = paper_configs(data.name)
    mlp_cfg = replace(mlp_cfg, seed=model_seed, keep=keep)
    if steps is not None:
        mlp_cfg = replace(mlp_cfg, steps=steps)
    fingerprint = _model_fingerprint(data, options, mlp_cfg)
    path = run / "model.pt"
    if path.exists():
        try:
            _, _, saved = load_mlp(path)
        except InputError:
            saved = {}
        if all(saved.get(k) == v for k, v in fingerprint.items()) and (
            not need_adam or load_adam_state(path) is not None
        ):
            return 0.0, False
    t0 = time.perf_counter()
    curve: list[float] = []
    adam: dict = {}
    with progress_bar() as bar:
        task = bar.add_task("pretrain MLP", total=mlp_cfg.steps)
        model = pretrain(
            data,
            config=mlp_cfg,
            device=device,
            progress=lambda s: bar.update(task, completed=s + 1),
            curve=curve,
            adam_state=adam,
        )
    save_mlp(
        model, path, config=mlp_cfg, n_vars=len(data.var_names), adam_state=adam, **fingerprint
    )
    _write_pretrain_curve(curve, run / "pretrain_curve.csv", keep=mlp_cfg.keep)
    return time.perf_counter() - t0, True


#: ``fsearch pretrain`` warns when the last step's training loss is this many times the run's lowest.
SPIKE_WARNING = 1.5


def _write_pretrain_curve(curve: list[float], path: Path, *, keep: str) -> None:
    """Write the pretraining loss per step (``step`` 0..steps, the last row after the last step) and say
    on stderr when the run stopped well above its lowest loss."""
    import pandas as pd
    from rich.console import Console

    from formula_search.io import write_table

    if not curve:
        return
    write_table(pd.DataFrame({"step": range(len(curve)), "loss": curve}), path)
    low = min(range(len(curve)), key=curve.__getitem__)
    final = curve[-1]
    if keep == "last" and final > SPIKE_WARNING * curve[low]:
        Console(stderr=True).print(
            f"note: pretraining stopped on a loss spike: training loss {final:.3g} after the last step, "
            f"{final / curve[low]:.1f}x the lowest of the run ({curve[low]:.3g} at step {low}). The "
            "reference set-up keeps the last step; --pretrain-keep best keeps the lowest. "
            f"Curve: {path}"
        )


def _resolve(device: str) -> str:
    from meta_tailor import resolve_device

    try:
        return resolve_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _search(
    data,
    *,
    depth: int,
    dedup: str,
    ratio: float,
    jobs: int,
    device: str,
    seed: int,
    measure: str = "derivative",
    smoothing: str = "auto",
):
    """Survivors of the symbolic search (enumerate + fit), reusing a cached search of the same inputs."""
    from rich.console import Console

    from formula_search._fit import FitConfig
    from formula_search.pipeline import SearchConfig, search

    fit = FitConfig(
        ratio=ratio, jobs=jobs, device=device, seed=seed, measure=measure, smoothing=smoothing
    )
    config = SearchConfig(depth=depth, dedup=dedup, fit=fit)
    console = Console(stderr=True)
    with progress_bar() as bar:
        task = bar.add_task(f"enumerate depth {depth} ({dedup})", total=None)
        computed = []

        def enumerated(n: int) -> None:
            computed.append(n)
            bar.update(task, description=f"fit {n} candidates", total=n, completed=0)

        table, path = search(
            data,
            config=config,
            on_enumerated=enumerated,
            progress=lambda k: bar.advance(task, k),
        )
        if not computed:  # the same inputs were searched before: nothing was enumerated or fitted
            bar.update(task, description="search: the cached result", total=1, completed=1)
    n_acc = int(table["accepted"].sum())
    stored = "saved to" if computed else "reused from"
    console.print(f"search: {len(table)} candidates, {n_acc} conserved ({stored} {path})")
    if n_acc == 0:
        from formula_search._fit import explain_empty

        raise InputError(
            f"no formula up to depth {depth} is conserved on {data.name} at ratio {ratio}: "
            + explain_empty(table, ratio)
        )
    return table, str(path)


def _execute(
    options: dict,
    *,
    survivors: str | None,
    run: str | None,
    depth: int,
    dedup: str,
    ratio: float,
    jobs: int,
    top_k: int | None,
    epochs: int | None,
    pretrain_steps: int | None,
    comparators: bool,
    hnn: bool,
    device: str,
    tailor: str | None = None,
    inner_rule: str = "sgd",
    outer_lr: tuple[float, ...] = (),
    inner_integrator: str | None = None,
    outer_warmup: int | None = None,
    outer_decay: str | None = None,
    model_seed: int = 0,
    pretrain_keep: str = "last",
    law_choice: str = "train",
    cv_folds: int | None = None,
    outer_adam: str = "fresh",
    law_from: str | None = None,
    measure: str = "derivative",
    smoothing: str = "auto",
) -> tuple[Path, dict]:
    """The rank stage (and, with ``comparators``, the evaluation of every method) into a run directory."""
    from formula_search.io import read_table, write_table
    from meta_tailor import comparators as run_comparators
    from meta_tailor import load_adam_state, load_mlp, rank

    device = _resolve(device)
    data = _load_data(options)
    out = _run_dir(run, data.name)
    # bad input fails before any work
    if law_choice == "cv":
        from meta_tailor import cv_folds as check_folds

        cv_folds = cv_folds if cv_folds is not None else min(4, len(data.train))
        check_folds(len(data.train), cv_folds)
    else:
        cv_folds = None
    if len(set(outer_lr)) != len(outer_lr):
        raise InputError(f"--outer-lr: a rate is given twice ({', '.join(map(str, outer_lr))})")
    if survivors and law_from:
        raise InputError(
            "--survivors and --law-from both name the formulas to rank: give one of them"
        )
    if law_from and law_choice != "train":
        raise InputError(
            f"--law-from gives the law; --law-choice {law_choice} would choose another"
        )
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if law_from:
        table, source = _law_from(Path(law_from), data.name, options)
    elif survivors:
        table = read_table(survivors)
        source = str(survivors)
    else:
        table, source = _search(
            data,
            depth=depth,
            dedup=dedup,
            ratio=ratio,
            jobs=jobs,
            device=device,
            seed=int(options.get("seed") or 0),
            measure=measure,
            smoothing=smoothing,
        )
    timings["search_s"] = time.perf_counter() - t0
    timings["pretrain_s"], _ = _pretrain(
        data,
        options,
        out,
        steps=pretrain_steps,
        device=device,
        model_seed=model_seed,
        keep=pretrain_keep,
        need_adam=outer_adam == "continue",
    )
    model, mlp_cfg, _ = load_mlp(out / "model.pt")
    adam = load_adam_state(out / "model.pt") if outer_adam == "continue" else None
    settings = dict(
        device=device,
        top_k=top_k,
        epochs=epochs,
        tailor=tailor,
        inner_integrator=inner_integrator,
        outer_warmup=outer_warmup,
        outer_decay=outer_decay,
        outer_adam=outer_adam,
    )
    cfg = _rank_config(data.name, inner_rule=inner_rule, outer_lr=outer_lr, **settings)
    law_cfg = None
    if law_choice == "paper":
        # the law is chosen by a ranking with the paper's inner rule and outer rate; with those settings
        # themselves it is the ranking below
        law_cfg = _rank_config(data.name, inner_rule="sgd", outer_lr=(), **settings)
        law_cfg = None if law_cfg == cfg else law_cfg

    stamps = {"start": time.perf_counter()}
    with progress_bar() as bar:
        tasks = {}

        def progress(stage, done, total):
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)
            stamps[stage] = time.perf_counter()

        if law_cfg is not None:
            table = _choose_by_paper_settings(
                table, model, data, law_cfg=law_cfg, cfg=cfg, adam=adam, out=out,
                progress=lambda stage, done, total: progress(f"law: {stage}", done, total),
            )  # fmt: skip
            timings["law_stage_s"] = time.perf_counter() - stamps["start"]
            stamps["start"] = time.perf_counter()  # its stages were stamped as "law: STAGE"
        else:
            (out / "law_ranking.csv").unlink(missing_ok=True)
        res = rank(table, model, data, config=cfg, progress=progress, outer_state=adam)
        timings["screen_s"] = stamps.get("screen", stamps["start"]) - stamps["start"]
        timings["meta_tailor_s"] = time.perf_counter() - stamps.get("screen", stamps["start"])
        if law_choice == "cv":
            t1 = time.perf_counter()
            res, cv_folds = _choose_by_cv(
                res, data, mlp_cfg=mlp_cfg, cfg=cfg, folds=cv_folds, jobs=jobs, out=out,
                progress=progress,
            )  # fmt: skip
            timings["cv_s"] = time.perf_counter() - t1
        else:
            (out / "cv.csv").unlink(missing_ok=True)
        write_table(res.table, out / "ranking.csv")
        write_table(res.screen, out / "screen.csv")
        write_table(res.curves, out / "meta_curves.csv")
        winner = res.table.iloc[0].to_dict() if res.winner_model is not None else None
        if res.winner_model is not None:
            import torch

            from formula_search.io import atomic_path

            with atomic_path(out / "winner.pt") as tmp:
                torch.save(
                    {"state_dict": res.winner_model.state_dict(), "theta": res.winner_theta}, tmp
                )
        if comparators:
            t1 = time.perf_counter()
            comp = run_comparators(
                model,
                data,
                mlp_config=mlp_cfg,
                rank_config=cfg,
                winner=winner,
                winner_model=res.winner_model,
                oracle=data.hamiltonian,
                include_hnn=hnn,
                progress=progress,
                outer_state=adam,
            )
            timings["comparators_s"] = time.perf_counter() - t1
            write_table(comp.table, out / "comparators.csv")
            write_table(comp.horizons, out / "horizons.csv")
    meta = {
        "dataset": data.name,
        "dataset_options": options,
        "noise": options.get("noise"),
        "seed": options.get("seed", 0),
        "model_seed": model_seed,
        "variables": [{"name": v.name, "unit": v.unit} for v in data.variables],
        "time_step": float(data.time_step),
        "hamiltonian": data.hamiltonian,
        "survivors": source,
        "measure": measure,
        "most_conserved": _most_conserved(table),
        "law_from": law_from,
        "n_survivors": int(table["accepted"].sum()) if "accepted" in table else len(table),
        "depth": depth,
        "dedup": dedup,
        "device": device,
        "tailor_mode": cfg.tailor.mode,
        "inner_rule": cfg.tailor.inner_rule,
        "law_choice": law_choice,
        "law_rank_config": asdict(law_cfg) if law_cfg is not None else None,
        "cv_folds": cv_folds,
        "rank_config": asdict(cfg),
        "mlp_config": asdict(mlp_cfg),
        "timings": timings,
        "winner": {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in (winner or {}).items()
        },
    }
    _write_json(meta, out / "meta.json")
    return out, meta


def _law_from(run: Path, dataset: str, options: dict):
    """The winning law of an earlier run on the same data, as a one-row survivors table (its formula and the
    fit's constants, where meta-tailoring starts from): ``--law-from RUN``."""
    import pandas as pd

    meta = read_meta(run)
    same = json.loads(json.dumps(options, default=str))
    if meta.get("dataset") != dataset or meta.get("dataset_options", same) != same:
        raise InputError(
            f"--law-from {run}: that run is on other data ({meta.get('dataset')}, "
            f"{meta.get('dataset_options')}); give the same dataset options as it had"
        )
    winner = meta.get("winner") or {}
    if not winner.get("formula"):
        raise InputError(f"--law-from {run}: that run chose no law (no finalist was meta-tailored)")
    return _one_law(pd.DataFrame([winner])), f"{run} (its law: {winner['formula']})"


def _one_law(ranking):
    """The winner (rank 1) of a ranking table as a one-row survivors table: its formula and the fit's
    constants, from which meta-tailoring starts again. Empty when no finalist was ranked."""
    import pandas as pd

    top = ranking[ranking["rank"] == 1]
    return pd.DataFrame(
        {
            "formula": list(top["formula"]),
            "params": list(top["fitted_params"]),  # rank() reads lists and their text alike
            "accepted": [True] * len(top),
        }
    )


def _choose_by_paper_settings(table, model, data, *, law_cfg, cfg, adam, out: Path, progress):
    """``--law-choice paper``: rank ``table`` with the paper's inner rule and outer rate (``law_cfg``), write
    RUN/law_ranking.csv, say what chose the law, and return the winner as a one-row survivors table."""
    from rich.console import Console

    from formula_search.io import write_table
    from meta_tailor import rank

    law_stage = rank(table, model, data, config=law_cfg, progress=progress, outer_state=adam)
    write_table(law_stage.table, out / "law_ranking.csv")
    Console(stderr=True).print(_law_stage_summary(law_stage.table, cfg))
    return _one_law(law_stage.table)


def _law_stage_summary(ranking, cfg) -> str:
    """What ``--law-choice paper`` says of its law stage: each finalist's training rollout MSE (its
    criterion), best first, and the settings the chosen law is then meta-tailored with."""
    finalists = ranking.dropna(subset=["rank"]).sort_values("rank")
    listed = ", ".join(f"{r.formula}: {r.train_rollout_mse:.4g}" for r in finalists.itertuples())
    rates = cfg.outer_lrs or (cfg.tailor.outer_lr,)
    return (
        f"law choice by the paper's inner rule and outer rate (training rollout MSE; law_ranking.csv): "
        f"{listed or 'no finalist'}; the law is then meta-tailored alone with inner rule "
        f"{cfg.tailor.inner_rule}, outer rate {', '.join(f'{r:g}' for r in rates)}"
    )


def _rank_config(
    dataset: str,
    *,
    inner_rule: str,
    outer_lr: tuple[float, ...],
    device: str,
    top_k: int | None,
    epochs: int | None,
    tailor: str | None,
    inner_integrator: str | None,
    outer_warmup: int | None,
    outer_decay: str | None,
    outer_adam: str,
):
    """The ranking settings: the paper's for ``dataset`` and ``inner_rule``, with the command line's choices
    (``None``: the paper's) on top."""
    from meta_tailor import paper_configs

    _, cfg = paper_configs(dataset, inner_rule=inner_rule)
    cfg = replace(cfg, device=device)
    if top_k is not None:
        cfg = replace(cfg, top_k=top_k)
    tail = {
        "epochs": epochs,
        "mode": tailor,
        "outer_lr": outer_lr[0] if outer_lr else None,
        "inner_integrator": inner_integrator,
        "outer_warmup": outer_warmup,
        "outer_decay": outer_decay,
        "outer_adam": outer_adam,
    }
    cfg = replace(
        cfg, tailor=replace(cfg.tailor, **{k: v for k, v in tail.items() if v is not None})
    )
    if len(outer_lr) > 1:
        cfg = replace(cfg, outer_lrs=tuple(outer_lr))
    return cfg


def _choose_by_cv(res, data, *, mlp_cfg, cfg, folds, jobs, out: Path, progress):
    """Re-rank ``res`` by cross-validation over the training trajectories; write RUN/cv.csv.

    Returns the re-ranked result and the number of folds (``None`` when there was nothing to choose)."""
    from rich.console import Console

    from formula_search.io import write_table
    from meta_tailor import choose_by_cv, cross_validate

    console = Console(stderr=True)
    finalists = res.table.dropna(subset=["rank"])
    if len(finalists) < 2:
        console.print("law choice: one finalist, nothing to cross-validate")
        (out / "cv.csv").unlink(missing_ok=True)
        return res, None
    cv = cross_validate(
        finalists.assign(params=finalists["fitted_params"]),
        data,
        mlp_config=mlp_cfg,
        config=cfg,
        folds=folds,
        jobs=jobs,
        progress=progress,
    )
    write_table(cv.folds, out / "cv.csv")
    for line in _cv_summary(cv):
        console.print(line)
    return choose_by_cv(res, cv), folds


def _cv_summary(cv) -> list[str]:
    """What the command says of a CV choice (:class:`meta_tailor.CVResult`): each law's mean held-out MSE
    with the folds it is best in, then the margin of the first over the runner-up, noting when the folds'
    vote disagrees with the mean (one fold with large errors can decide the mean)."""
    scores, wins = cv.scores, cv.fold_wins
    folds = cv.folds["fold"].nunique()
    listed = ", ".join(
        f"{f}: {v:.4g} (lowest in {wins[f]} of {folds} folds)" for f, v in scores.items()
    )
    lines = [f"law choice by {folds}-fold CV (mean held-out rollout MSE): {listed}"]
    if len(scores) >= 2 and math.isfinite(scores.iloc[1]) and scores.iloc[0] > 0:
        margin = scores.iloc[1] / scores.iloc[0] - 1
        lines.append(
            f"CV margin: the runner-up's mean is {100 * margin:.1f}% higher"
            + ("; the folds' vote disagrees with the mean" if wins.max() > wins.iloc[0] else "")
        )
    return lines


MODEL_SEED = click.option(
    "--model-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the MLP's and the HNN's initialisation (0 is the reference set-up's). A run "
    "directory keeps one pretrained MLP: another seed retrains it.",
)


PRETRAIN_KEEP = click.option(
    "--pretrain-keep",
    type=click.Choice(["last", "best"]),
    default="last",
    show_default=True,
    help="Weights the MLP (and the HNN and the MLP with more epochs) keep: those after the last Adam "
    "step (the reference set-up's), or those with the lowest training loss of all steps (full-batch "
    "Adam keeps spiking, and the last step may land on a spike).",
)


def _stage_options(f):
    """Options shared by ``fsearch rank`` and ``fsearch run``."""
    decorators = [
        _dataset_options,
        click.option(
            "--survivors",
            type=click.Path(dir_okay=False),
            default=None,
            help="Fitter output (.csv/.parquet) to rank [default: run the search, or reuse a cached one].",
        ),
        click.option(
            "--depth",
            type=click.IntRange(min=1),
            default=7,
            show_default=True,
            help="Largest formula size in tokens (tree nodes) for the search.",
        ),
        dedup_option(),
        click.option(
            "--ratio", type=float, default=0.01, show_default=True, help="Fit filter threshold."
        ),
        MEASURE,
        SMOOTHING,
        click.option(
            "--jobs",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Processes for the fit, and for the folds of --law-choice cv.",
        ),
        click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET]."),
        click.option(
            "--top-k",
            type=click.IntRange(min=1),
            default=None,
            help="Survivors meta-tailored after the screen [20].",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(min=0),
            default=None,
            help="Meta-tailoring epochs [100].",
        ),
        click.option(
            "--pretrain-steps",
            type=click.IntRange(min=0),
            default=None,
            help="Steps if the MLP must be trained [2000].",
        ),
        TAILOR,
        INNER_RULE,
        click.option(
            "--outer-lr",
            type=click.FloatRange(min=0, min_open=True),
            multiple=True,
            help="Adam rate of the MLP weights in meta-tailoring [1e-3]. Repeat it to screen several: "
            "each finalist keeps the rate with the lowest training rollout MSE (the time grows with "
            "their number).",
        ),
        click.option(
            "--inner-integrator",
            type=click.Choice(["euler", "rk4"]),
            default=None,
            help="Trajectory mode's inner rollout: the paper's finite difference x + f(x) dt (euler) "
            "or one RK4 step per dt, the integrator of the evaluation [rk4].",
        ),
        click.option(
            "--outer-warmup",
            type=click.IntRange(min=0),
            default=None,
            help="Meta-tailoring steps over which the outer Adam rates rise linearly to their values "
            "(a fresh Adam moves every weight by about the full rate at its first step; 0: none) [10].",
        ),
        click.option(
            "--outer-decay",
            type=click.Choice(["none", "cosine"]),
            default=None,
            help="Outer Adam rates after the warm-up: constant, or falling as a half cosine towards zero "
            "at the last epoch, so that the long stage settles [none].",
        ),
        click.option(
            "--outer-adam",
            type=click.Choice(["fresh", "continue"]),
            default="fresh",
            show_default=True,
            help="The outer Adam of the MLP weights: a fresh optimiser, or the MLP's pretraining Adam "
            "continued (its moment estimates scale each weight's first outer steps; the MLP with more "
            "epochs and the oracle continue it too).",
        ),
        click.option(
            "--law-from",
            type=click.Path(file_okay=False),
            default=None,
            help="Meta-tailor only the law an earlier run on the same data chose (its run directory), "
            "starting from the fit's constants: the law found with one setting, the predictor built "
            "with another (e.g. a first run with the paper's settings, then --inner-rule polyak).",
        ),
        click.option(
            "--law-choice",
            type=click.Choice(["train", "cv", "paper"]),
            default="train",
            show_default=True,
            help="Choose the winner by the meta-tailored models' rollouts of the training trajectories "
            "(train, the paper's), or by cross-validation over them (cv: the MLP's pretraining and the "
            "ranking again without each fold, scored by rollouts of the held-out trajectories; costs "
            "--cv-folds more rankings, run in --jobs processes), or as train but with the paper's inner "
            "rule and outer rate (paper: the law of a ranking with --inner-rule sgd and --outer-lr 1e-3, "
            "then meta-tailored alone with this run's settings; written to law_ranking.csv).",
        ),
        click.option(
            "--cv-folds",
            type=click.IntRange(min=2),
            default=None,
            help="Folds of --law-choice cv; trajectory j goes to fold j mod K [4, or the number of "
            "training trajectories if fewer].",
        ),
        MODEL_SEED,
        PRETRAIN_KEEP,
        DEVICE,
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _dataset_options(f):
    from formula_search.data import dataset_options

    return dataset_options(f)


@click.command("pretrain")
@_dataset_options
@click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET].")
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=None,
    help="Adam steps [default: 2000, the paper's].",
)
@MODEL_SEED
@PRETRAIN_KEEP
@DEVICE
def pretrain_cmd(run, steps, model_seed, pretrain_keep, device, **kwargs):
    """Train the baseline MLP (HNN "vanilla MLP") and save it as RUN/model.pt."""
    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    data = _load_data(options)
    out = _run_dir(run, data.name)
    secs, trained = _pretrain(
        data,
        options,
        out,
        steps=steps,
        device=_resolve(device),
        model_seed=model_seed,
        keep=pretrain_keep,
    )
    if trained:
        click.echo(f"wrote {out / 'model.pt'} ({secs:.1f} s)")
    else:
        click.echo(f"{out / 'model.pt'} is already trained on these data and settings")


@click.command("rank")
@_stage_options
@click.option(
    "--comparators/--no-comparators",
    default=True,
    show_default=True,
    help="Also train and evaluate the comparators.",
)
@click.option("--hnn/--no-hnn", default=True, show_default=True, help="Include the HNN comparator.")
def rank_cmd(**kwargs):
    """Rank conserved formulas by meta-tailoring the pretrained MLP; write RUN/ranking.csv and more.

    Without --survivors it runs (or reuses, when cached) the search: enumeration up to --depth tokens and
    the fit with its variance-ratio filter.
    """
    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    out, meta = _execute(options, **kwargs)
    winner = meta["winner"]
    if winner:
        click.echo(
            f"winner: {winner['formula']} params={winner['params']} test RMSE {winner['test_rmse']:.4g}"
        )
    click.echo(f"wrote {out}/ranking.csv, screen.csv, meta_curves.csv, meta.json")


def _most_conserved(table) -> dict | None:
    """The fit's first survivor (best ratio; simpler first among ties), or ``None``."""
    from formula_search._fit import survivors

    if not {"accepted", "ratio", "formula", "params", "size", "n_params"} <= set(table.columns):
        return None
    best = survivors(table)
    if best.empty:
        return None
    row = best.iloc[0]
    return {
        "formula": str(row["formula"]),
        "params": str(row["params"]),
        "ratio": float(row["ratio"]),
    }


def _finish(out: Path, meta: dict, console) -> list | None:
    """After ranking with comparators: LaTeX and Markdown export, plots, and a summary on the terminal.
    Returns the paper's claims checked on the run (:func:`_run_claims`), which the summary prints."""
    from rich.table import Table

    import dsl
    from formula_search.io import read_table

    laws = law_rows(out, meta, 1)
    for fmt, name in (("latex", "law.tex"), ("markdown", "report.md")):
        ctx = export_cmd.make_context("export", [str(out), "--format", fmt, "-o", str(out / name)])
        with ctx:
            export_cmd.invoke(ctx)
    ctx = plot_cmd.make_context("plot", [str(out)])
    with ctx:
        plot_cmd.invoke(ctx)
    table = Table(title=f"{meta['dataset']}: long-term prediction on the test trajectories")
    for col in ("method", "description", "test RMSE"):
        table.add_column(col, justify="right" if col == "test RMSE" else "left")
    comp_path = out / "comparators.csv"
    if comp_path.exists():
        for _, c in read_table(comp_path).iterrows():
            table.add_row(
                METHOD_NAMES.get(c["method"], c["method"]).replace("$\\mathcal{H}$", "H"),
                method_description(c["description"]),
                f"{c['test_rmse']:.4g}",
            )
    console.print(table)
    if laws:
        law = laws[0]
        console.print(f"discovered law: [bold]{dsl.to_display(law['expr'], law['params'])}[/bold]")
        console.print(f"LaTeX: {dsl.to_latex(law['expr'], law['params'])}")
        best = meta.get("most_conserved")
        if best and dsl.to_text(law["expr"]) != best["formula"]:
            expr = dsl.parse(best["formula"], [v["name"] for v in meta["variables"]])
            values = [
                float(v) for v in best["params"].split(";") if v.strip()
            ]  # the fit table's form
            shown = dsl.to_display(expr, values or None)
            console.print(
                f"most conserved by the fit: {shown} (ratio {best['ratio']:.2g}); the law above is the "
                "one that most improved the meta-tailored predictions"
            )
    checks = (
        _run_claims(meta, laws[0] if laws else None, read_table(comp_path))
        if comp_path.exists()
        else None
    )
    if checks:
        _print_claims(checks, console)
        hint = _opt_in_hint(meta, checks)
        if hint:
            console.print(hint)
    return checks


def _opt_in_hint(meta: dict, checks: list) -> str | None:
    """After a claim fails on a dataset with an opt-in setting of ours (:data:`formula_search.paper.OPT_IN`)
    that the run did not use: a line that names it."""
    from formula_search.paper import OPT_IN, opt_in_args

    settings = OPT_IN.get(meta.get("dataset"))
    if not settings or all(c.holds for c in checks):
        return None
    used = (
        meta.get("measure", "paper") == settings["measure"]
        and meta.get("inner_rule") == settings["inner_rule"]
        and meta.get("law_choice") == settings["law_choice"]
        and meta.get("rank_config", {}).get("tailor", {}).get("outer_lr") == settings["outer_lr"][0]
    )
    if used:
        return None
    return (
        f"hint: our opt-in setting `{opt_in_args(meta['dataset'])}` (not the paper's) met every one of these "
        "claims in the MLP seeds tested (docs/meta-tailoring.md)"
    )


def _run_claims(meta: dict, law: dict | None, comp) -> list | None:
    """The paper's claims (:func:`formula_search.paper.check_claims`) checked on a run: ``law`` is its winner
    (a row of :func:`~formula_search.cli.export_cmd.law_rows`, or ``None``), ``comp`` its
    ``comparators.csv``. ``None`` unless the data are one of the paper's built-in datasets without added
    noise."""
    from formula_search.paper import check_claims

    dataset = meta["dataset"]
    # not for noisy simulations, nor for a file of the user's that happens to share a built-in name
    if meta.get("noise") or meta.get("dataset_options", {}).get("dataset", dataset) != dataset:
        return None
    names = [v["name"] for v in meta["variables"]]
    rmse = dict(zip(comp["method"], comp["test_rmse"].astype(float)))
    return check_claims(
        dataset, law["expr"] if law else None, law["params"] if law else [], names, rmse
    )


def _print_claims(checks: list, console) -> None:
    """One line per claim: whether it holds, what it says, and our numbers."""
    from rich.markup import escape

    console.print("the paper's claims, as the acceptance checks them (one MLP seed):")
    for c in checks:
        verdict = "[green]holds[/green]" if c.holds else "[red]does not hold[/red]"
        console.print(f"  {verdict}: {escape(c.claim)}: {escape(c.ours)}")


@click.command("run")
@_stage_options
@click.option("--hnn/--no-hnn", default=True, show_default=True, help="Include the HNN comparator.")
def run_cmd(**kwargs):
    """Run the whole pipeline end to end: search, pretrain, rank, comparators, export and plots.

    Every stage is cached by its inputs: a second run on the same data reuses the search and the
    pretrained model. The run directory gets ranking.csv, comparators.csv, law.tex, report.md and PNG plots.
    """
    from rich.console import Console

    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    console = Console()
    t0 = time.perf_counter()
    out, meta = _execute(options, comparators=True, **kwargs)
    meta["timings"]["total_s"] = time.perf_counter() - t0
    _write_json(meta, out / "meta.json")
    _finish(out, meta, console)
    console.print(f"run directory: {out} ({meta['timings']['total_s']:.0f} s)")


@click.command("reproduce")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/reproduce",
    show_default=True,
    help="Folder for the three run directories and the report.",
)
@click.option(
    "--datasets",
    default="ideal_pendulum,ideal_spring,real_pendulum",
    show_default=True,
    help="Comma-separated built-in datasets to run.",
)
@dedup_option()
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="[20]")
@click.option("--epochs", type=click.IntRange(min=0), default=None, help="[100]")
@click.option("--pretrain-steps", type=click.IntRange(min=0), default=None, help="[2000]")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True)
@TAILOR
@INNER_RULE
@PRETRAIN_KEEP
@click.option(
    "--opt-in/--no-opt-in",
    default=True,
    show_default=True,
    help="Also run each dataset that has one with our opt-in setting that meets the paper's claims where "
    "its protocol does not (formula_search.paper.OPT_IN; the real pendulum: --measure paper --inner-rule polyak "
    "--outer-lr 3e-4 --law-choice paper), as a second row (about 5 min more on a CPU).",
)
@DEVICE
def reproduce_cmd(
    out,
    datasets,
    dedup,
    top_k,
    epochs,
    pretrain_steps,
    jobs,
    tailor,
    inner_rule,
    pretrain_keep,
    opt_in,
    device,
):
    """Reproduce the paper's three scientific experiments and write OUT/report.md beside the paper's numbers."""
    from rich.console import Console

    import dsl
    from formula_search.data import list_datasets
    from formula_search.io import atomic_path, read_table
    from formula_search.paper import OPT_IN, PAPER, law_constant, opt_in_args

    names = [d.strip() for d in datasets.split(",") if d.strip()]
    known = set(list_datasets()["name"])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown dataset(s) {', '.join(unknown)}; see `fsearch datasets list`")
    console = Console()
    lines = [
        "# Reproduction of the Noether Networks scientific experiments",
        "",
        f"Search: depth 7, dedup `{dedup}`; ranking: the paper's protocol (see docs/meta-tailoring.md); "
        f"trained models keep their {'last-step' if pretrain_keep == 'last' else 'lowest-loss'} weights "
        f"(`--pretrain-keep {pretrain_keep}`).",
        "",
        "| dataset | discovered law | constant (ours / paper) | method | test RMSE (ours) | paper |",
        "|---|---|---|---|---|---|",
    ]
    claims: list[str] = []
    # (dataset, row label and run directory, settings over the command's)
    experiments = [(name, name, {}) for name in names]
    if opt_in:
        experiments += [(n, f"{n}-opt-in", OPT_IN[n]) for n in names if n in OPT_IN]
    for name, label, settings in experiments:
        console.rule(label)
        options = {"dataset": name, "seed": 0, "noise": None}
        t0 = time.perf_counter()
        run_dir, meta = _execute(
            options,
            survivors=None,
            run=str(Path(out) / label),
            depth=7,
            dedup=dedup,
            ratio=0.01,
            jobs=jobs,
            top_k=top_k,
            epochs=epochs,
            pretrain_steps=pretrain_steps,
            comparators=True,
            hnn=True,
            device=device,
            tailor=tailor,
            pretrain_keep=pretrain_keep,
            # the paper's tables are reproduced with the paper's measure
            **({"inner_rule": inner_rule, "measure": "paper"} | settings),
        )
        meta["timings"]["total_s"] = time.perf_counter() - t0
        _write_json(meta, run_dir / "meta.json")
        checks = _finish(run_dir, meta, console)
        laws = law_rows(run_dir, meta, 1)
        paper = PAPER.get(name, {})
        law = laws[0] if laws else None
        law_text = dsl.to_display(law["expr"], law["params"]) if law else "none"
        names_ = [v["name"] for v in meta["variables"]]
        # the same reading of the constant as the law's claim: a law of another form has none
        k = law_constant(name, law["expr"], law["params"], names_) if law and paper else None
        const = f"{k:.4g} / {paper['constant']:.4g}" if k is not None else "n/a"
        comp = read_table(run_dir / "comparators.csv")
        if checks:
            claims += [
                f"| {label} | {c.claim} | {c.ours} | {'yes' if c.holds else '**no**'} |"
                for c in checks
            ]
        for i, (_, c) in enumerate(comp.iterrows()):
            ref = paper.get("rmse", {}).get(c["method"])
            lines.append(
                f"| {label if i == 0 else ''} | {('`' + law_text + '`') if i == 0 else ''} | "
                f"{const if i == 0 else ''} | {METHOD_NAMES.get(c['method'], c['method'])} | "
                f"{c['test_rmse']:.4g} | {'' if ref is None else ref} |"
            )
    for name, label, _ in experiments:
        if label != name:
            lines += [
                "",
                f"`{label}`: {name} with `{opt_in_args(name)}` (ours, not the paper's; "
                "docs/meta-tailoring.md).",
            ]
    if claims:
        lines += [
            "",
            "## The paper's claims, checked on these runs",
            "",
            "The thresholds are those of docs/meta-tailoring.md (`formula_search.paper`); one run per dataset "
            "(MLP seed 0). Over MLP seeds: `python benchmarks/model_seeds.py --dataset NAME --seeds ...`.",
            "",
            "| dataset | claim | ours | holds |",
            "|---|---|---|---|",
            *claims,
        ]
    report = Path(out) / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    console.print(f"wrote {report}")
