"""How a run chooses its law besides the paper's ranking: ``--law-from`` (an earlier run's law),
``--law-choice paper`` (a ranking with the paper's inner rule and outer rate) and ``--law-choice cv``
(cross-validation over the training trajectories)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from formula_search._run_folder import read_meta
from formula_search.errors import InputError


def law_from_run(run: Path, dataset: str, options: dict):
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
    return one_law(pd.DataFrame([winner])), f"{run} (its law: {winner['formula']})"


def one_law(ranking):
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


def choose_law_by_paper_settings(table, model, data, *, law_cfg, cfg, adam, out: Path, progress):
    """``--law-choice paper``: rank ``table`` with the paper's inner rule and outer rate (``law_cfg``), write
    RUN/law_ranking.csv, say what chose the law, and return the winner as a one-row survivors table."""
    from meta_tailor import rank

    law_stage = rank(table, model, data, config=law_cfg, progress=progress, outer_state=adam)
    write_law_stage(law_stage.table, cfg, out)
    return one_law(law_stage.table)


def write_law_stage(ranking, cfg, out: Path) -> None:
    """Write the law stage's ranking to RUN/law_ranking.csv and say what chose the law and what follows."""
    from rich.console import Console

    from formula_search.io import write_table

    write_table(ranking, out / "law_ranking.csv")
    Console(stderr=True).print(law_stage_summary(ranking, cfg))


def law_stage_summary(ranking, cfg) -> str:
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


def choose_law_by_cv(res, data, *, mlp_cfg, cfg, folds, jobs, out: Path, progress):
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
