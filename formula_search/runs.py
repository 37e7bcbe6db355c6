"""The whole pipeline as a library function: search, pretrain, rank, comparators, into a run folder.

:func:`discover` is what ``fsearch run`` does (``fsearch rank`` without the comparators), without the
terminal summary; :class:`Discovery` reads a run folder back. A run folder is written as a whole or not
at all: the stages write into a temporary folder inside it, whose files replace the earlier run's only
when every stage is done (a pretrained model of the same data and settings is carried over and reused), so
an interrupted run never leaves old and new files mixed; files of the user's in the folder are not touched. The folder's layout is :data:`RUN_FILES`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import dsl
from formula_search.errors import InputError
from formula_search.progress import progress_bar

#: What a run folder holds (``fsearch run``); ``law.tex``, ``report.md`` and the plots come from export.
RUN_FILES = {
    "model.pt": "the pretrained vanilla MLP (loaded with weights_only=True)",
    "pretrain_curve.csv": "its training loss after each number of Adam steps",
    "ranking.csv": "the ranking table (meta_tailor.advanced.RANK_COLUMNS), one row per accepted survivor",
    "screen.csv": "every screened (formula, inner_lr, inner_steps) and its screen loss",
    "meta_curves.csv": "the long stage epoch by epoch, per finalist and outer rate",
    "comparators.csv": "vanilla MLP, MLP with more epochs, Noether winner, oracle, HNN",
    "horizons.csv": "test error per prediction horizon and method",
    "law_ranking.csv": "--law-choice paper: the ranking that chose the law",
    "cv.csv": "--law-choice cv: every fold's held-out rollout MSE per finalist",
    "winner.pt": "the meta-tailored winner's MLP weights and formula parameters",
    "meta.json": "dataset, variables and units, settings, device, timings, the winner, and a run id",
}


def run_folder(run: str | None, dataset: str) -> Path:
    return Path(run) if run else Path("runs") / Path(dataset).stem


def load_data(options: dict):
    from formula_search.data import dataset_from_options

    return dataset_from_options(**options)


def write_json(obj: dict, path: Path) -> None:
    from formula_search.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def model_fingerprint(data, options: dict, mlp_cfg) -> dict:
    """What a saved model must match to be reused: the data it was trained on and its settings.

    ``keep`` is left out while it has its default, so models saved before it existed are still reused."""
    settings = asdict(mlp_cfg)
    if settings["keep"] == "last":
        del settings["keep"]
    import hashlib

    h = hashlib.sha256()
    for (
        tr
    ) in data.train:  # the training numbers themselves: two arrays of one name are not one dataset
        h.update(tr.t.tobytes())
        h.update(tr.x.tobytes())
        h.update(tr.dxdt.tobytes())
    return {
        "dataset": data.name,
        "noise": float(options.get("noise") or 0.0),
        "seed": int(options.get("seed") or 0),
        "n_train": int(sum(len(t.x) for t in data.train)),
        "train_sha256": h.hexdigest(),
        "mlp": json.dumps(settings, sort_keys=True),
    }


def pretrain_stage(
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
    from meta_tailor import load_mlp, pretrain, save_mlp
    from meta_tailor.advanced import load_adam_state, paper_configs

    mlp_cfg, _ = paper_configs(data.name)
    mlp_cfg = replace(mlp_cfg, seed=model_seed, keep=keep)
    if steps is not None:
        mlp_cfg = replace(mlp_cfg, steps=steps)
    fingerprint = model_fingerprint(data, options, mlp_cfg)
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


def resolve_device_name(device: str) -> str:
    from meta_tailor.advanced import resolve_device

    try:
        return resolve_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def search_stage(
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
    operators: tuple[str, ...] | None = None,
):
    """Survivors of the symbolic search (enumerate + fit), reusing a cached search of the same inputs."""
    from rich.console import Console

    from formula_search.advanced import FitConfig
    from formula_search.pipeline import SearchConfig, search

    fit = FitConfig(
        ratio=ratio, jobs=jobs, device=device, seed=seed, measure=measure, smoothing=smoothing
    )
    config = SearchConfig(depth=depth, dedup=dedup, fit=fit, operators=operators)
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
        from formula_search.advanced import explain_empty

        raise InputError(
            f"no formula up to depth {depth} is conserved on {data.name} at ratio {ratio}: "
            + explain_empty(table, ratio)
        )
    return table, str(path)


def execute(
    options: dict,
    *,
    data=None,
    survivors: str | None = None,
    run: str | None = None,
    depth: int = 7,
    dedup: str = "conservation",
    ratio: float = 0.01,
    jobs: int = 1,
    top_k: int | None = None,
    epochs: int | None = None,
    pretrain_steps: int | None = None,
    comparators: bool = True,
    hnn: bool = True,
    device: str = "auto",
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
    operators: tuple[str, ...] | None = None,
) -> tuple[Path, dict]:
    """The rank stage (and, with ``comparators``, the evaluation of every method) into the run folder
    ``run`` (default ``runs/DATASET``), written as a whole or not at all. ``data``: the dataset, when it is
    not the one ``options`` name (arrays in memory)."""
    device = resolve_device_name(device)
    if data is None:
        data = load_data(options)
    cv_folds = _check_options(
        data, law_choice=law_choice, cv_folds=cv_folds, outer_lr=outer_lr, survivors=survivors,
        law_from=law_from,
    )  # fmt: skip
    final = run_folder(run, data.name)
    from formula_search.io import read_table, write_table
    from meta_tailor import comparators as run_comparators
    from meta_tailor import load_mlp, rank
    from meta_tailor.advanced import load_adam_state

    with _run_folder(final) as out:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if law_from:
            table, source = _law_from(Path(law_from), data.name, options)
        elif survivors:
            table = read_table(survivors)
            source = str(survivors)
        else:
            table, source = search_stage(
                data,
                depth=depth,
                dedup=dedup,
                ratio=ratio,
                jobs=jobs,
                device=device,
                seed=int(options.get("seed") or 0),
                measure=measure,
                smoothing=smoothing,
                operators=operators,
            )
        timings["search_s"] = time.perf_counter() - t0
        timings["pretrain_s"], _ = pretrain_stage(
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
                        {"state_dict": res.winner_model.state_dict(), "theta": res.winner_theta},
                        tmp,
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
            "run_id": uuid.uuid4().hex,
            "model_sha256": _file_hash(out / "model.pt"),
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
            "most_conserved": most_conserved(table),
            "law_from": law_from,
            "n_survivors": int(table["accepted"].sum()) if "accepted" in table else len(table),
            "depth": depth,
            "dedup": dedup,
            "operators": list(operators) if operators is not None else None,
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
        write_json(meta, out / "meta.json")
    return final, meta


#: Files that export and plot add to a run folder.
EXPORT_FILES = ("law.tex", "report.md")

#: Plots ``fsearch plot`` writes into a run folder.
PLOT_FILES = (
    "horizon_error.png",
    "law_along_test.png",
    "meta_curves.png",
    "cv.png",
    "pretrain_curve.png",
)

#: Every file a run, its export and its plots own in a run folder: a new run replaces them all (those it
#: does not write are removed, so nothing of an earlier run stays beside it); other files are not touched.
OWNED_FILES = tuple(RUN_FILES) + EXPORT_FILES + PLOT_FILES


def _check_folder(final: Path) -> None:
    if final.exists() and not final.is_dir():
        raise InputError(f"{final}: is a file, not a run folder")


def _check_options(data, *, law_choice, cv_folds, outer_lr, survivors, law_from):
    """Bad input fails before any work (and before the run folder is touched); returns ``cv_folds``."""
    if law_choice == "cv":
        from meta_tailor.advanced import cv_folds as check_folds

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
    return cv_folds


@contextlib.contextmanager
def _run_folder(final: Path):
    """The temporary folder a run writes into (:func:`_start_folder`): committed into ``final`` when the
    block ends normally (:func:`_commit_folder`), removed when it raises (and ``final`` with it, if the
    run made it and it is still empty)."""
    created = not final.exists()
    out = _start_folder(final)
    try:
        yield out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if created and final.is_dir() and not any(final.iterdir()):
            final.rmdir()  # a failed first run leaves no empty folder behind
        raise
    _commit_folder(out, final)


def _start_folder(final: Path) -> Path:
    """A fresh temporary folder inside ``final`` (made if needed), holding its pretrained model if any."""
    _check_folder(final)
    ensure_writable(final)
    for stale in final.glob(".partial-*"):  # left by a run that was killed (no Python exception)
        shutil.rmtree(stale, ignore_errors=True)
    out = final / f".partial-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    for name in ("model.pt", "pretrain_curve.csv"):
        if (final / name).is_file():
            shutil.copy2(final / name, out / name)
    return out


def _commit_folder(out: Path, final: Path) -> None:
    """Move the finished run's files from ``out`` into ``final``, replacing every file an earlier run
    owned there (:data:`OWNED_FILES`) and touching no other file; ``meta.json`` last. If a move fails,
    the earlier run's files are put back and the error says where the new run is."""
    backup = final / f".old-{uuid.uuid4().hex[:8]}"
    backup.mkdir()
    moved: list[str] = []
    try:
        for name in OWNED_FILES:
            if (final / name).exists():
                (final / name).rename(backup / name)
        names = sorted((p.name for p in out.iterdir()), key=lambda n: n == "meta.json")
        for name in names:
            (out / name).rename(final / name)
            moved.append(name)
    except OSError as exc:
        for (
            name
        ) in moved:  # the new files go back to the temporary folder, the old ones back in place
            (final / name).rename(out / name)
        for p in backup.iterdir():
            p.rename(final / p.name)
        backup.rmdir()
        raise InputError(
            f"{final}: could not move the finished run into place ({exc}); it is in {out}"
        ) from None
    out.rmdir()
    shutil.rmtree(backup, ignore_errors=True)


def _law_from(run: Path, dataset: str, options: dict):
    """The winning law of an earlier run on the same data, as a one-row survivors table (its formula and the
    fit's constants, where meta-tailoring starts from): ``--law-from RUN``."""
    import pandas as pd

    meta = read_meta(run)

    def given(opts):  # options left unset are None in the CLI's record and absent in discover()'s
        return {k: v for k, v in json.loads(json.dumps(opts, default=str)).items() if v is not None}

    same = given(options)
    if meta.get("dataset") != dataset or given(meta.get("dataset_options", options)) != same:
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
    from meta_tailor.advanced import paper_configs

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
    from meta_tailor.advanced import choose_by_cv, cross_validate

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
    for line in cv_summary(cv):
        console.print(line)
    return choose_by_cv(res, cv), folds


def cv_summary(cv) -> list[str]:
    """What the command says of a CV choice (:class:`meta_tailor.advanced.CVResult`): each law's mean held-out MSE
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


def most_conserved(table) -> dict | None:
    """The fit's first survivor (best ratio; simpler first among ties), or ``None``."""
    from formula_search.advanced import survivors

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


def _file_hash(path: Path) -> str | None:
    import hashlib

    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_writable(folder: Path) -> None:
    """Make ``folder`` and write a probe file there now, so that a read-only place fails before the
    work, not after it (raises the file system's :class:`OSError`, which names the path)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".probe-{uuid.uuid4().hex[:8]}"
    probe.write_bytes(b"")
    probe.unlink()


def check_run(run: Path, meta: dict) -> None:
    """Refuse a run folder whose model was replaced after the run (``fsearch pretrain`` into it again):
    its ranking and comparators would be reported beside another model.

    Raises:
        InputError: naming the folder and what to rerun.
    """
    expected = meta.get("model_sha256")
    if expected is not None and _file_hash(Path(run) / "model.pt") != expected:
        raise InputError(
            f"{run}: model.pt is not the model this run ranked with (it was replaced or removed after "
            "the run); rerun `fsearch rank` (or `run`) into this folder"
        )


def read_meta(run: Path) -> dict:
    path = run / "meta.json"
    if not path.exists():
        raise InputError(f"{run}: not a run directory (no meta.json); run `fsearch rank` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: broken JSON ({exc.msg})") from exc


# ---------------------------------------------------------------------------------------------------------
# The public entry point


def run_claims(meta: dict, law: dict | None, comp) -> list | None:
    """The paper's claims (:func:`formula_search.paper.check_claims`) checked on a run: ``law`` is its winner
    (a row of the export's law table, or ``None``), ``comp`` its
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


@dataclass(frozen=True, eq=False)
class Discovery:
    """A finished run folder: the laws ranked by meta-tailoring, the comparators, the settings.

    Attributes:
        folder: the run folder (:data:`RUN_FILES`).
        meta: its ``meta.json``: dataset, variables, settings, timings, the winner.
    """

    folder: Path
    meta: dict

    @classmethod
    def load(cls, folder: str | Path) -> Discovery:
        """Read a run folder written by :func:`discover` or ``fsearch run``/``rank``."""
        folder = Path(folder)
        return cls(folder, read_meta(folder))

    @property
    def laws(self):
        """The ranking (``ranking.csv``, columns :data:`meta_tailor.advanced.RANK_COLUMNS`), best first."""
        from formula_search.io import read_table

        table = read_table(self.folder / "ranking.csv")
        return table.sort_values("rank", na_position="last", kind="stable").reset_index(drop=True)

    @property
    def comparators(self):
        """Test errors of every method (``comparators.csv``), or ``None`` when they were not run."""
        from formula_search.io import read_table

        path = self.folder / "comparators.csv"
        return read_table(path) if path.exists() else None

    def _law(self, i: int):
        from formula_search.io import parse_params

        laws = self.laws.dropna(subset=["rank"])
        if not 0 <= i < len(laws):
            raise IndexError(f"law {i}: the run ranked {len(laws)} law(s)")
        names = [v["name"] for v in self.meta["variables"]]
        row = laws.iloc[i]
        return dsl.parse(row["formula"], names), parse_params(row["params"])

    def sympy(self, i: int = 0):
        """The ``i``-th ranked law with its meta-tailored constants, as sympy."""
        expr, params = self._law(i)
        return dsl.to_sympy(expr, list(params) or None)

    def latex(self, i: int = 0, digits: int = 4) -> str:
        """The ``i``-th ranked law in LaTeX."""
        expr, params = self._law(i)
        return dsl.to_latex(expr, list(params) or None, digits=digits)

    def save(self, folder: str | Path) -> Discovery:
        """A copy of the run's files at ``folder`` (written whole, like the run itself)."""
        folder = Path(folder)
        with _run_folder(folder) as out:
            for name in OWNED_FILES:
                if (self.folder / name).is_file():
                    shutil.copy2(self.folder / name, out / name)
        return Discovery.load(folder)

    def __repr__(self) -> str:
        winner = (self.meta.get("winner") or {}).get("formula")
        return f"Discovery({self.meta.get('dataset')}: winner {winner or 'none'}; {self.folder})"


def discover(
    data,
    *,
    folder: str | Path | None = None,
    depth: int = 7,
    dedup: str = "conservation",
    measure: str = "derivative",
    ratio: float = 0.01,
    jobs: int = 1,
    device: str = "auto",
    comparators: bool = True,
    hnn: bool = True,
    seed: int = 0,
    **options,
) -> Discovery:
    """Search, pretrain, rank and compare, as ``fsearch run`` does, into a run folder.

    Args:
        data: a :class:`formula_search.Dataset` (e.g. :meth:`~formula_search.Dataset.from_arrays`) or the
            name or path of one.
        folder: the run folder (default ``runs/DATASET``); written as a whole or not at all.
        depth, dedup, measure, ratio: the search (see :func:`formula_search.search`).
        jobs, device, seed: worker processes, ``auto``/``cpu``/``cuda``, the data's random seed.
        comparators, hnn: also train and evaluate the comparators (and HNN among them).
        options: any option of ``fsearch run`` by its Python name (``top_k``, ``epochs``,
            ``pretrain_steps``, ``inner_rule``, ``outer_lr`` (a tuple), ``law_choice``, ``model_seed``,
            ``survivors``, ``operators``, ...), and the dataset options of ``load_dataset`` (``noise``, ``columns``, ...).

    Returns:
        The :class:`Discovery` of the run folder.
    """
    from formula_search.data import DATASET_OPTIONS, Dataset

    # every option of execute() that discover() does not name itself
    own = {"options", "data", "run", "depth", "dedup", "measure", "ratio", "jobs", "device",
           "comparators", "hnn"}  # fmt: skip
    stage_keys = set(inspect.signature(execute).parameters) - own
    unknown = set(options) - stage_keys - set(DATASET_OPTIONS)
    if unknown:
        raise InputError(f"discover: unknown option(s) {', '.join(sorted(unknown))}")
    stage = {k: v for k, v in options.items() if k in stage_keys}
    if "outer_lr" in stage:
        stage["outer_lr"] = tuple(stage["outer_lr"])
    if stage.get("operators") is not None:
        stage["operators"] = dsl.check_operators(stage["operators"])
    dataset_opts = {k: v for k, v in options.items() if k in DATASET_OPTIONS}
    if isinstance(data, Dataset):
        if dataset_opts:
            raise InputError("discover: dataset options apply to a name or path, not to a Dataset")
        opts, loaded = {"dataset": data.name, "seed": seed}, data
    else:
        opts, loaded = {"dataset": str(data), "seed": seed, **dataset_opts}, None
    final, _ = execute(
        opts,
        data=loaded,
        run=None if folder is None else str(folder),
        depth=depth,
        dedup=dedup,
        ratio=ratio,
        jobs=jobs,
        comparators=comparators,
        hnn=hnn,
        device=device,
        measure=measure,
        **stage,
    )
    return Discovery.load(final)
