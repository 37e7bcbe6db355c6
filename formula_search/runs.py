"""The whole pipeline as a library function: search, pretrain, rank, comparators, into a run folder.

:func:`discover` is what ``fsearch run`` does (``fsearch rank`` without the comparators), without the
terminal summary; :class:`Discovery` reads a run folder back. A run folder is written as a whole or not
at all: the stages write into a temporary folder inside it, whose files replace the earlier run's only
when every stage is done (a pretrained model of the same data and settings is carried over and reused), so
an interrupted run never leaves old and new files mixed; files of the user's in the folder are not touched. The folder's layout is :data:`RUN_FILES`.

:func:`execute` runs the stages one after the other (:class:`RunSettings` holds their options): the
formulas to rank (:func:`search_stage`, or a file, or an earlier run's law), the pretrained MLP
(:func:`pretrain_stage`), the law choice and the ranking, the comparators, and ``meta.json``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import dsl
from formula_search._law_choice import (
    choose_law_by_cv,
    choose_law_by_paper_settings,
    cv_summary,
    law_from_run,
    one_law,
    write_law_stage,
)
from formula_search._protocol_choice import (
    PAPER,
    ProtocolPlan,
    choose_protocol,
    describe_protocol,
    plan_protocol,
    protocol_record,
)
from formula_search._run_folder import (
    OWNED_FILES,
    RUN_FILES,
    check_run,
    ensure_writable,
    file_hash,
    read_meta,
    run_folder,
    staged_folder,
    write_json,
)
from formula_search.errors import InputError
from formula_search.progress import progress_bar

__all__ = [
    "RUN_FILES",
    "Discovery",
    "RunSettings",
    "check_run",
    "cv_summary",
    "describe_protocol",
    "discover",
    "ensure_writable",
    "execute",
    "load_data",
    "model_fingerprint",
    "most_conserved",
    "pretrain_stage",
    "read_meta",
    "resolve_device_name",
    "run_claims",
    "run_folder",
    "search_stage",
    "write_json",
]


def load_data(options: dict):
    from formula_search.data import dataset_from_options

    return dataset_from_options(**options)


def model_fingerprint(data, options: dict, mlp_cfg) -> dict:
    """What a saved model must match to be reused: the data it was trained on and its settings.

    ``keep`` is left out while it has its default, so models saved before it existed are still reused."""
    settings = asdict(mlp_cfg)
    if settings["keep"] == "last":
        del settings["keep"]
    import hashlib

    h = hashlib.sha256()
    # the training numbers themselves: two arrays of one name are not one dataset
    for tr in data.train:
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

    mlp_cfg, _ = paper_configs(data.protocol)
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
    with progress_bar() as bar:
        task = bar.add_task("pretrain MLP", total=mlp_cfg.steps)
        model, curve, adam = pretrain(
            data,
            config=mlp_cfg,
            device=device,
            progress=lambda s: bar.update(task, completed=s + 1),
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
    derivatives: str = "auto",
    stride: int | None = None,
):
    """Survivors of the symbolic search (enumerate + fit), reusing a cached search of the same inputs."""
    from rich.console import Console

    from formula_search.advanced import FitConfig
    from formula_search.pipeline import SearchConfig, search

    fit = FitConfig(
        ratio=ratio, jobs=jobs, device=device, seed=seed, measure=measure, smoothing=smoothing,
        derivatives=derivatives, stride=stride,
    )  # fmt: skip
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


# ---------------------------------------------------------------------------------------------------------
# The stages of a run, one after the other


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The options of a run (``fsearch rank`` and ``run``, by their Python names), as :func:`execute`
    takes them. ``None`` leaves a setting to the paper's configuration of the dataset."""

    survivors: str | None = None
    run: str | None = None
    depth: int = 7
    dedup: str = "conservation"
    ratio: float = 0.01
    jobs: int = 1
    top_k: int | None = None
    epochs: int | None = None
    pretrain_steps: int | None = None
    comparators: bool = True
    hnn: bool = True
    device: str = "auto"
    tailor: str | None = None
    protocol: str = "auto"
    inner_rule: str | None = None
    outer_lr: tuple[float, ...] = ()
    inner_integrator: str | None = None
    outer_warmup: int | None = None
    outer_decay: str | None = None
    model_seed: int = 0
    pretrain_keep: str = "last"
    law_choice: str = "paper"
    cv_folds: int | None = None
    outer_adam: str = "fresh"
    law_from: str | None = None
    measure: str | None = None
    smoothing: str = "auto"
    derivatives: str = "auto"
    stride: int | None = None
    operators: tuple[str, ...] | None = None
    terms: int | None = None
    term_depth: int | None = None
    term_library: str | None = None
    extra_terms: tuple[str, ...] = ()
    beam: int | None = None


@dataclass(frozen=True)
class _Pretrained:
    """The pretrained MLP of a run, its :class:`~meta_tailor.MLPConfig`, and its Adam state when the
    outer Adam continues it (``--outer-adam continue``; else ``None``)."""

    model: Any
    config: Any
    adam: dict | None


def execute(options: dict, *, data=None, **settings) -> tuple[Path, dict]:
    """The rank stage (and, with ``comparators``, the evaluation of every method) into the run folder
    ``run`` (default ``runs/DATASET``), written as a whole or not at all. ``data``: the dataset, when it is
    not the one ``options`` name (arrays in memory); ``settings``: the fields of :class:`RunSettings`.

    Returns the run folder and its ``meta.json``."""
    s = RunSettings(**settings)
    s = replace(s, device=resolve_device_name(s.device))
    if data is None:
        data = load_data(options)
    s = replace(s, measure=s.measure or data.search_measure(terms=bool(_card_terms(data, s))))
    plan = plan_protocol(s.protocol, s.inner_rule, s.outer_lr, data.protocol)
    s = replace(s, cv_folds=_check_options(data, s, plan))
    final = run_folder(s.run, data.name)
    with staged_folder(final) as out:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        table, source = _formulas_stage(data, options, s)
        searched = table
        timings["search_s"] = time.perf_counter() - t0
        timings["pretrain_s"], pre = _pretrain_and_load(data, options, out, s)
        ranked = _rank_and_compare(table, pre, data, s, plan=plan, out=out, timings=timings)
        meta = _run_meta(
            data,
            options,
            s,
            out=out,
            source=source,
            searched=searched,
            ranked=ranked,
            mlp_cfg=pre.config,
            timings=timings,
        )
        write_json(meta, out / "meta.json")
    return final, meta


def terms_stage(
    data, *, terms, term_depth, beam, operators, ratio, device, seed, smoothing, library=None,
    derivatives="auto", stride=None, extra=(),
):  # fmt: skip
    """Laws of up to ``terms`` terms (:func:`formula_search.advanced.term_search`) on the training split,
    instead of the enumeration (``--terms`` or the card's ``[search]``); ``None`` settings: the defaults."""
    from dataclasses import asdict

    from rich.console import Console

    from formula_search.advanced import FitConfig, FitData, TermConfig, term_search

    given = {
        "max_terms": terms,
        "term_depth": term_depth,
        "beam": beam,
        "operators": operators,
        "library": library,
        "extra": tuple(extra) or None,
    }
    config = TermConfig(
        **{**asdict(TermConfig()), **{k: v for k, v in given.items() if v is not None}}
    )
    fit = FitConfig(
        ratio=ratio, device=device, seed=seed, smoothing=smoothing, derivatives=derivatives,
        stride=stride,
    )  # fmt: skip
    console = Console(stderr=True)
    with console.status("term search...") as status:
        table = term_search(
            FitData.from_dataset(data, "train"),
            config=config,
            fit_config=fit,
            progress=lambda line: status.update(f"term search: {line}"),
        )
    what = f"term search: up to {config.max_terms} terms of up to {config.term_depth} tokens"
    if config.library != "enumerate":
        what = f"term search: up to {config.max_terms} terms of the {config.library} library"
    n_acc = int(table["accepted"].sum()) if len(table) else 0
    console.print(f"{what}, beam {config.beam}: {n_acc} law(s)")
    if n_acc == 0:
        raise InputError(
            f"no law of {what.removeprefix('term search: ')} is conserved on {data.name} at ratio "
            f"{ratio}; try a larger --term-depth or --beam, or --term-library products"
        )
    return table, what


def _card_terms(data, s: RunSettings) -> int | None:
    """The term search's most terms: ``--terms``, else the card's ``[search] terms`` (``None``: enumerate)."""
    return s.terms if s.terms is not None else (getattr(data, "search", {}) or {}).get("terms")


def _formulas_stage(data, options: dict, s: RunSettings):
    """The formulas to rank and where they come from: the law of ``--law-from``, the ``--survivors`` file,
    or the symbolic search (:func:`search_stage`)."""
    from formula_search.io import read_table

    if s.law_from:
        return law_from_run(Path(s.law_from), data.name, options)
    if s.survivors:
        return read_table(s.survivors), str(s.survivors)
    card = getattr(data, "search", {}) or {}
    terms = _card_terms(data, s)
    operators = s.operators if s.operators is not None else card.get("operators")
    if terms:
        return terms_stage(
            data,
            terms=terms,
            term_depth=s.term_depth if s.term_depth is not None else card.get("term_depth"),
            beam=s.beam if s.beam is not None else card.get("beam"),
            library=s.term_library if s.term_library is not None else card.get("library"),
            extra=tuple(s.extra_terms) or tuple(card.get("extra_terms", ())),
            operators=tuple(operators) if operators is not None else None,
            ratio=s.ratio,
            device=s.device,
            seed=int(options.get("seed") or 0),
            smoothing=s.smoothing,
            derivatives=s.derivatives,
            stride=s.stride,
        )
    return search_stage(
        data,
        depth=s.depth,
        dedup=s.dedup,
        ratio=s.ratio,
        jobs=s.jobs,
        device=s.device,
        seed=int(options.get("seed") or 0),
        measure=s.measure,
        smoothing=s.smoothing,
        operators=tuple(operators) if operators is not None else None,
        derivatives=s.derivatives,
        stride=s.stride,
    )


def _pretrain_and_load(data, options: dict, out: Path, s: RunSettings) -> tuple[float, _Pretrained]:
    """Pretrain the MLP into ``out`` unless the one there matches (:func:`pretrain_stage`), then load it.
    Returns the seconds the training took (0 when the model was reused) and the model."""
    from meta_tailor import load_mlp
    from meta_tailor.advanced import load_adam_state

    secs, _ = pretrain_stage(
        data,
        options,
        out,
        steps=s.pretrain_steps,
        device=s.device,
        model_seed=s.model_seed,
        keep=s.pretrain_keep,
        need_adam=s.outer_adam == "continue",
    )
    model, mlp_cfg, _ = load_mlp(out / "model.pt")
    adam = load_adam_state(out / "model.pt") if s.outer_adam == "continue" else None
    return secs, _Pretrained(model, mlp_cfg, adam)


class _StageProgress:
    """The progress callback ``(stage, done, total)`` of the ranking's stages: one bar per stage, and the
    time each stage last moved, which splits the ranking's time into the screen and the long stage."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.tasks: dict[str, Any] = {}
        self.stamps = {"start": time.perf_counter()}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done)
        self.stamps[stage] = time.perf_counter()

    def prefixed(self, prefix: str):
        """The same callback for stages named ``PREFIX STAGE``."""
        return lambda stage, done, total: self(f"{prefix}{stage}", done, total)

    def restart(self) -> float:
        """Seconds since the start; the clock starts again."""
        now = time.perf_counter()
        elapsed, self.stamps["start"] = now - self.stamps["start"], now
        return elapsed

    def ranking_times(self, prefix: str = "") -> dict[str, float]:
        """After a ranking (its stages named ``PREFIX STAGE``): its screen's seconds and its long stage's
        (from the screen's last step)."""
        start = self.stamps["start"]
        screen = self.stamps.get(f"{prefix}screen", start)
        return {"screen_s": screen - start, "meta_tailor_s": time.perf_counter() - screen}


@dataclass(frozen=True)
class _Ranked:
    """What the ranking stages leave: the table that was ranked last (with a separate law stage, the one
    law it chose), the winner's row (``None`` when no finalist was meta-tailored), the final ranking's
    settings, those of the law stage when it was separate (else ``None``), the CV folds of ``--law-choice
    cv`` and the ``meta.json`` record of the protocol."""

    table: Any
    winner: dict | None
    cfg: Any
    law_cfg: Any
    cv_folds: int | None
    protocol: dict


def _rank_and_compare(
    table, pre: _Pretrained, data, s: RunSettings, *, plan, out, timings
) -> _Ranked:
    """The law choice, the protocol, the ranking and the comparators, under one progress display; their
    files go to ``out`` and their seconds to ``timings``."""
    from meta_tailor import rank

    with progress_bar() as bar:
        progress = _StageProgress(bar)
        oracle = None
        if plan.name == "auto":
            table, res, cfg, law_cfg, record, oracle = _auto_protocol(
                table, pre, data, s, plan=plan, out=out, progress=progress, timings=timings
            )
        else:
            cfg, law_cfg = _rank_configs(data.protocol, s, plan)
            record = protocol_record(plan, plan.name, None)
            (out / "protocol_cv.csv").unlink(missing_ok=True)
            if law_cfg is not None:
                table = choose_law_by_paper_settings(
                    table,
                    pre.model,
                    data,
                    law_cfg=law_cfg,
                    cfg=cfg,
                    adam=pre.adam,
                    out=out,
                    progress=progress.prefixed("law: "),
                )
                timings["law_stage_s"] = progress.restart()
            else:
                (out / "law_ranking.csv").unlink(missing_ok=True)
            res = rank(table, pre.model, data, config=cfg, progress=progress, outer_state=pre.adam)
            timings.update(progress.ranking_times())
        cv_folds = s.cv_folds
        if s.law_choice == "cv":
            t0 = time.perf_counter()
            res, cv_folds = choose_law_by_cv(
                res,
                data,
                mlp_cfg=pre.config,
                cfg=cfg,
                folds=s.cv_folds,
                jobs=s.jobs,
                out=out,
                progress=progress,
            )
            timings["cv_s"] = time.perf_counter() - t0
        else:
            (out / "cv.csv").unlink(missing_ok=True)
        winner = _write_ranking(res, out)
        if s.comparators:
            timings["comparators_s"] = _comparators_stage(
                pre,
                data,
                res,
                winner,
                cfg=cfg,
                hnn=s.hnn,
                out=out,
                progress=progress,
                oracle=oracle,
            )
    return _Ranked(table, winner, cfg, law_cfg, cv_folds, record)


def _auto_protocol(table, pre: _Pretrained, data, s: RunSettings, *, plan, out, progress, timings):
    """``--protocol auto``: the law by a ranking with the paper's protocol (unless ``--law-from`` gives it),
    the protocol by cross-validation of that law over the training data
    (:func:`~formula_search._protocol_choice.choose_protocol`), and, when it is not the paper's, the law
    meta-tailored again with the chosen protocol (the oracle of the comparators beside it, in another process:
    :func:`_oracle_beside`). Returns the table ranked last, the final ranking, its
    settings, the law stage's settings when separate, and the protocol's record."""
    from meta_tailor import rank
    from meta_tailor.advanced import PROTOCOLS

    candidates = {name: _named_config(data.protocol, s, name) for name in PROTOCOLS}
    paper = candidates[PAPER]
    law_res = None
    if s.law_from:
        law = table
    else:
        law_res = rank(
            table, pre.model, data, config=paper, progress=progress, outer_state=pre.adam
        )
        law_times = progress.ranking_times()
        law = one_law(law_res.table)
    choice, cv = PAPER, None
    if len(law):
        progress.restart()
        choice, cv = choose_protocol(
            law, data, candidates, mlp_cfg=pre.config, jobs=s.jobs, out=out, progress=progress
        )
        timings["protocol_cv_s"] = progress.restart()
    else:
        (out / "protocol_cv.csv").unlink(missing_ok=True)
    record = protocol_record(plan, choice, cv)
    cfg = candidates[choice]
    if law_res is not None and choice == PAPER:  # the law stage was the ranking itself
        timings.update(law_times)
        (out / "law_ranking.csv").unlink(missing_ok=True)
        return table, law_res, cfg, None, record, None
    law_cfg = None
    if law_res is not None:
        write_law_stage(law_res.table, cfg, out)
        law_cfg = paper
        timings["law_stage_s"] = sum(law_times.values())
    else:
        (out / "law_ranking.csv").unlink(missing_ok=True)
    oracle = _oracle_beside(pre, data, cfg, s)
    try:
        # one torch thread beside the oracle's process: the final ranking can round differently from
        # a run without comparators (--no-comparators) or on a GPU
        with _torch_threads(1 if oracle is not None else None):
            res = rank(
                law,
                pre.model,
                data,
                config=cfg,
                progress=progress.prefixed(f"{choice}: "),
                outer_state=pre.adam,
            )
    except BaseException:
        if oracle is not None:
            oracle.cancel()
        raise
    timings.update(progress.ranking_times(f"{choice}: "))
    return law, res, cfg, law_cfg, record, oracle


def _oracle_beside(pre: _Pretrained, data, cfg, s: RunSettings):
    """The comparators' oracle ranking (:func:`meta_tailor.advanced.oracle_ranking`) started in another
    process with one torch thread, to run beside the final ranking on a CPU of two cores or more (a torch
    thread more gains these small networks little: 21 s against 17 s); a future, or ``None`` where it
    would not help (a GPU, one core, no comparators or no oracle)."""
    from joblib import cpu_count

    if not (s.comparators and data.hamiltonian and s.device == "cpu" and cpu_count() > 1):
        return None
    from joblib.externals.loky import get_reusable_executor

    from meta_tailor.advanced import oracle_ranking

    return get_reusable_executor(max_workers=1).submit(
        oracle_ranking,
        data.hamiltonian,
        pre.model,
        data,
        rank_config=cfg,
        outer_state=pre.adam,
        threads=1,
    )


@contextmanager
def _torch_threads(n: int | None):
    """Torch's intra-op threads set to ``n`` inside the block (``None``: unchanged)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _write_ranking(res, out: Path) -> dict | None:
    """Write the ranking's tables and the winner's weights; return the winner's row (or ``None``)."""
    from formula_search.io import atomic_path, write_table

    write_table(res.table, out / "ranking.csv")
    write_table(res.screen, out / "screen.csv")
    write_table(res.curves, out / "meta_curves.csv")
    if res.winner_model is None:
        return None
    import torch

    with atomic_path(out / "winner.pt") as tmp:
        torch.save({"state_dict": res.winner_model.state_dict(), "theta": res.winner_theta}, tmp)
    return res.table.iloc[0].to_dict()


def _comparators_stage(
    pre: _Pretrained, data, res, winner, *, cfg, hnn, out, progress, oracle=None
) -> float:
    """Train and evaluate the comparators; write comparators.csv and horizons.csv (``oracle``: the future
    of the oracle's ranking when it runs beside the final one, else ``None``). Returns the seconds the
    comparators took, the wait for that future included."""
    from formula_search.io import write_table
    from meta_tailor import comparators

    t0 = time.perf_counter()
    comp = comparators(
        pre.model,
        data,
        mlp_config=pre.config,
        rank_config=cfg,
        winner=winner,
        winner_model=res.winner_model,
        oracle=data.hamiltonian,
        include_hnn=hnn,
        progress=progress,
        outer_state=pre.adam,
        oracle_ranked=oracle.result() if oracle is not None else ...,
    )
    seconds = time.perf_counter() - t0
    write_table(comp.table, out / "comparators.csv")
    write_table(comp.horizons, out / "horizons.csv")
    return seconds


def _run_meta(
    data,
    options: dict,
    s: RunSettings,
    *,
    out: Path,
    source: str,
    searched,
    ranked: _Ranked,
    mlp_cfg,
    timings: dict,
) -> dict:
    """The run's ``meta.json``: the data, the settings, the timings and the winner; ``searched`` is the
    table of formulas the run started from (the search's), whose best and count it records."""
    table, cfg, law_cfg, winner = searched, ranked.cfg, ranked.law_cfg, ranked.winner
    return {
        "run_id": uuid.uuid4().hex,
        "model_sha256": file_hash(out / "model.pt"),
        "dataset": data.name,
        "dataset_options": options,
        "noise": options.get("noise"),
        "seed": options.get("seed", 0),
        "model_seed": s.model_seed,
        "variables": [{"name": v.name, "unit": v.unit} for v in data.variables],
        "time_step": float(data.time_step),
        "hamiltonian": data.hamiltonian,
        "survivors": source,
        "measure": s.measure,
        "velocities": None if s.survivors or s.law_from else _velocities(data, s),
        "most_conserved": most_conserved(table),
        "law_from": s.law_from,
        "n_survivors": int(table["accepted"].sum()) if "accepted" in table else len(table),
        "depth": s.depth,
        "dedup": s.dedup,
        "operators": list(s.operators) if s.operators is not None else None,
        "device": s.device,
        "tailor_mode": cfg.tailor.mode,
        "inner_rule": cfg.tailor.inner_rule,
        "protocol": ranked.protocol,
        "law_choice": s.law_choice,
        "law_rank_config": asdict(law_cfg) if law_cfg is not None else None,
        "cv_folds": ranked.cv_folds,
        "rank_config": asdict(cfg),
        "mlp_config": asdict(mlp_cfg),
        "timings": timings,
        "winner": {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in (winner or {}).items()
        },
    }


def _velocities(data, s: RunSettings) -> dict | None:
    """Where the search's derivative measure took its velocities (``None`` under the paper's measure)."""
    from formula_search.advanced import FitConfig, FitData, velocity_source

    if s.measure != "derivative":
        return None
    fit = FitConfig(derivatives=s.derivatives, stride=s.stride)
    terms = bool(_card_terms(data, s))
    source, stride = velocity_source(fit, FitData.from_dataset(data, "train"), terms=terms)
    return {"source": source, "stride": stride}


def _check_options(data, s: RunSettings, plan: ProtocolPlan) -> int | None:
    """Bad input fails before any work (and before the run folder is touched); returns the CV folds
    (``None`` unless ``--law-choice cv``)."""
    cv_folds = None
    if s.law_choice not in ("train", "cv", "paper"):
        raise InputError(f"law_choice {s.law_choice!r}: choose train, cv or paper")
    if s.law_choice in ("cv", "train") and plan.name == "auto":
        raise InputError(
            f"--law-choice {s.law_choice} chooses the law under the run's own protocol: name it "
            "(--protocol paper or polyak, --inner-rule, or the card's [protocol]), or leave the law "
            "choice to the paper's protocol (--law-choice paper)"
        )
    if s.law_choice == "cv":
        from meta_tailor.advanced import cv_folds as check_folds

        cv_folds = s.cv_folds if s.cv_folds is not None else min(4, len(data.train))
        check_folds(len(data.train), cv_folds)
    if len(set(s.outer_lr)) != len(s.outer_lr):
        raise InputError(f"--outer-lr: a rate is given twice ({', '.join(map(str, s.outer_lr))})")
    if s.survivors and s.law_from:
        raise InputError(
            "--survivors and --law-from both name the formulas to rank: give one of them"
        )
    if s.law_from and s.law_choice == "cv":
        raise InputError("--law-from gives the law; --law-choice cv would choose another")
    _check_velocities(data, s)
    if s.extra_terms and not _card_terms(data, s):
        raise InputError("--extra-term adds to the term search's library: give --terms K as well")
    return cv_folds


def _check_velocities(data, s: RunSettings) -> None:
    """``--derivatives``/``--stride``: valid together, given only where a fit uses them, and differences
    only for the term search."""
    from formula_search.advanced import FitConfig, check_enumeration

    fit = FitConfig(derivatives=s.derivatives, stride=s.stride)  # their own checks
    given = s.derivatives != "auto" or s.stride is not None
    if given and (s.survivors or s.law_from):
        raise InputError(
            "--derivatives and --stride set the search; --survivors and --law-from skip it"
        )
    if given and not _card_terms(data, s):
        check_enumeration(fit)


def _rank_configs(protocol: dict, s: RunSettings, plan: ProtocolPlan):
    """The ranking's settings for a protocol that is not chosen by CV (named, or given by the command line
    or the card), and those of the ranking that chooses the law with ``--law-choice paper`` (the paper's
    protocol; ``None`` otherwise, with ``--law-from``, or when they are the ranking's own)."""
    if plan.name == "given":
        cfg = _rank_config(protocol, s, inner_rule=s.inner_rule, outer_lr=s.outer_lr)
    else:
        cfg = _named_config(protocol, s, plan.name)
    if s.law_choice != "paper" or s.law_from:
        return cfg, None
    law_cfg = _named_config(protocol, s, PAPER)
    return cfg, (None if law_cfg == cfg else law_cfg)


def _named_config(protocol: dict, s: RunSettings, name: str):
    """The ranking settings of the protocol ``name`` of :data:`meta_tailor.advanced.PROTOCOLS`."""
    from meta_tailor.advanced import PROTOCOLS

    named = PROTOCOLS[name]
    return _rank_config(protocol, s, inner_rule=named["inner_rule"], outer_lr=(named["outer_lr"],))


def _rank_config(
    protocol: dict, s: RunSettings, *, inner_rule: str | None, outer_lr: tuple[float, ...]
):
    """The ranking settings: the paper's with the data's ``protocol`` (its card) and ``inner_rule``
    (``None``: the card's), with the run's choices (``None``: the paper's) on top."""
    from meta_tailor.advanced import paper_configs

    _, cfg = paper_configs(protocol, inner_rule=inner_rule)
    cfg = replace(cfg, device=s.device)
    if s.top_k is not None:
        cfg = replace(cfg, top_k=s.top_k)
    tail = {
        "epochs": s.epochs,
        "mode": s.tailor,
        "outer_lr": outer_lr[0] if outer_lr else None,
        "inner_integrator": s.inner_integrator,
        "outer_warmup": s.outer_warmup,
        "outer_decay": s.outer_decay,
        "outer_adam": s.outer_adam,
    }
    cfg = replace(
        cfg, tailor=replace(cfg.tailor, **{k: v for k, v in tail.items() if v is not None})
    )
    if len(outer_lr) > 1:
        cfg = replace(cfg, outer_lrs=tuple(outer_lr))
    return cfg


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
        with staged_folder(folder) as out:
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
    measure: str | None = None,
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

    # every setting of a run (execute()) that discover() does not name itself
    own = {"run", "depth", "dedup", "measure", "ratio", "jobs", "device", "comparators", "hnn"}
    stage_keys = {f.name for f in fields(RunSettings)} - own
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
