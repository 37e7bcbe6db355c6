"""Choosing the law out of sample: cross-validation of the ranking over the training trajectories.

:func:`~meta_tailor._rank.rank` chooses the law whose meta-tailored model rolls out the *training*
trajectories best, the same trajectories that meta-tailoring fitted. When two laws are close on that
criterion (the real pendulum's p^2 - c cos q and q^2 + c p^2), the in-sample choice follows the MLP's
initialisation. :func:`cross_validate` runs the protocol K times, each time without one fold of the training
trajectories: it pretrains the MLP on the other folds, ranks the finalists on them (screen, meta-tailoring;
the parameters start from the fitter's values and are meta-learned again), and rolls every finalist's
tailored model out from the first state of each held-out trajectory. A law's CV score is its held-out
rollout MSE averaged over the folds; :func:`choose_by_cv` re-ranks a ranking by that score. Nothing here
looks at the test split.

Folds are independent jobs run with :mod:`joblib` (``jobs``; a Dask cluster through
``joblib.parallel_config(backend="dask")``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from meta_tailor._config import MLPConfig, RankConfig, resolve_device

#: Columns of :attr:`CVResult.folds`: one row per (fold, finalist). ``held_out`` lists the fold's training
#: trajectories (indices into ``data.train``); ``in_sample_rank`` is the law's rank in the fold's own ranking
#: (by its training rollouts); ``params`` are the law's parameters meta-learned without the fold.
CV_COLUMNS = [
    "fold",
    "held_out",
    "formula",
    "in_sample_rank",
    "params",
    "inner_lr",
    "inner_steps",
    "train_rollout_mse",
    "held_out_mse",
    "wall_s",
]


def cv_folds(n_train: int, folds: int) -> list[list[int]]:
    """Split ``n_train`` training trajectories into ``folds`` folds, trajectory ``j`` into fold ``j % folds``.

    With ``folds == n_train`` it is leave-one-out.

    Raises:
        InputError: fewer than 2 trajectories, or ``folds`` outside ``2..n_train``.
    """
    from formula_search.errors import InputError

    if n_train < 2:
        raise InputError(
            f"cross-validation needs at least 2 training trajectories; the data have {n_train}"
        )
    if not 2 <= folds <= n_train:
        raise InputError(
            f"{folds} folds: choose 2 to {n_train} (the number of training trajectories)"
        )
    return [list(range(f, n_train, folds)) for f in range(folds)]


@dataclass(frozen=True)
class _FoldData:
    """A dataset restricted to some training trajectories, with others as its test split."""

    name: str | None
    train: list
    test: list
    time_step: float
    var_names: tuple

    def stacked(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        trajs = self.train if split == "train" else self.test
        return (
            np.concatenate([np.asarray(t.x) for t in trajs]),
            np.concatenate([np.asarray(t.dxdt) for t in trajs]),
        )


def cv_fold(
    survivors: pd.DataFrame,
    data,
    held_out: Sequence[int],
    *,
    mlp_config: MLPConfig = MLPConfig(),
    config: RankConfig = RankConfig(),
    compiler: Callable | None = None,
    threads: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    """One fold: pretrain and rank without the ``held_out`` training trajectories, then score on them.

    ``rank`` evaluates every finalist on its data's test split, which here is the held-out trajectories, so
    ``held_out_mse`` is the square of the ranking's ``test_rmse``. Returns rows of :data:`CV_COLUMNS`
    (without ``fold``), one per finalist of the fold's ranking. ``progress`` is passed to ``rank``.
    """
    import torch

    from meta_tailor._rank import pretrain, rank

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    held = sorted(set(held_out))
    fold = _FoldData(
        name=getattr(data, "name", None),
        train=[tr for j, tr in enumerate(data.train) if j not in held],
        test=[data.train[j] for j in held],
        time_step=float(data.time_step),
        var_names=tuple(data.var_names),
    )
    # the pretraining Adam state is continued by config.tailor.outer_adam == "continue"
    model, _, adam = pretrain(fold, config=mlp_config, device=config.device)
    table = rank(
        survivors,
        model,
        fold,
        config=config,
        compiler=compiler,
        progress=progress,
        outer_state=adam,
    ).table
    wall = time.perf_counter() - t0
    return [
        {
            "held_out": held,
            "formula": row.formula,
            "in_sample_rank": int(row.rank),
            "params": list(row.params),
            "inner_lr": row.inner_lr,
            "inner_steps": row.inner_steps,
            "train_rollout_mse": row.train_rollout_mse,
            "held_out_mse": row.test_rmse**2,
            "wall_s": wall,
        }
        for row in table.dropna(subset=["rank"]).itertuples()
    ]


def _numbered_fold(k: int, *args, **kwargs) -> tuple[int, list[dict]]:
    return k, cv_fold(*args, **kwargs)


@dataclass(frozen=True)
class CVResult:
    """Outcome of :func:`cross_validate`: ``folds`` (:data:`CV_COLUMNS`, one row per fold and finalist)."""

    folds: pd.DataFrame

    @property
    def scores(self) -> pd.Series:
        """CV score per formula: held-out rollout MSE averaged over the folds (``inf`` if any fold lacks it
        or diverged), sorted best first."""
        n_folds = self.folds["fold"].nunique()
        by = self.folds.groupby("formula")["held_out_mse"]
        complete = by.count() == n_folds
        finite = by.apply(lambda v: bool(np.isfinite(v).all()))
        scores = by.mean().where(complete & finite, math.inf)
        return scores.sort_values(kind="stable")

    @property
    def fold_wins(self) -> pd.Series:
        """Per formula, the number of folds in which its held-out rollout MSE is the lowest (a fold whose
        lowest value is shared counts for each formula sharing it; NaN and inf never win), in the order of
        :attr:`scores`. The mean can be decided by one fold whose errors are much larger than the others'
        (a held-out swing the model extrapolates to), so the vote shows how far the folds agree."""
        mse = self.folds.pivot_table(
            index="fold", columns="formula", values="held_out_mse", aggfunc="first"
        )
        # a diverged rollout (inf) never wins, not even a tie of them
        mse = mse.where(np.isfinite(mse))
        best = mse.min(axis=1)
        wins = mse.eq(best, axis=0).sum()
        return wins.reindex(self.scores.index).fillna(0).astype(int)


def cross_validate(
    finalists: pd.DataFrame,
    data,
    *,
    mlp_config: MLPConfig = MLPConfig(),
    config: RankConfig = RankConfig(),
    folds: int = 4,
    jobs: int = 1,
    compiler: Callable | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CVResult:
    """Cross-validate the ranking's choice of law over the training trajectories of ``data``.

    Args:
        finalists: the laws to score, with columns ``formula`` and ``params`` (starting parameters; pass
            the fitter's, as :func:`~meta_tailor._rank.rank` starts from them too). Every fold meta-tailors
            all of them (``top_k`` is set to their number).
        data: the dataset (its test split is never used).
        mlp_config: the pretrained MLP's settings (architecture, steps, seed), used again in every fold.
        config: the ranking protocol.
        folds: number of folds (:func:`cv_folds`; the number of training trajectories is leave-one-out).
        jobs: folds run side by side in this many processes (one torch thread each when more than one).
        compiler: as for :func:`~meta_tailor._rank.rank`.
        progress: optional ``progress("cross-validate", folds_done, folds)`` callback.
    """
    from joblib import Parallel, delayed

    from formula_search.errors import InputError

    if finalists.empty:
        raise InputError("no finalist to cross-validate")
    parts = cv_folds(len(data.train), folds)
    survivors = finalists[["formula", "params"]].reset_index(drop=True)
    config = replace(config, top_k=len(survivors), device=resolve_device(config.device))
    common = {"mlp_config": mlp_config, "config": config, "compiler": compiler}
    rows: list[dict] = []

    def collect(k: int, fold_rows: list[dict]) -> None:
        rows.extend({"fold": k, **r} for r in fold_rows)
        if progress:
            progress("cross-validate", len({r["fold"] for r in rows}), len(parts))

    if progress:
        progress("cross-validate", 0, len(parts))
    if jobs == 1:
        for k, held in enumerate(parts):
            inner = (
                (lambda stage, d, n, k=k: progress(f"fold {k}: {stage}", d, n))
                if progress
                else None
            )
            collect(k, cv_fold(survivors, data, held, progress=inner, **common))
    else:
        run = Parallel(n_jobs=jobs, return_as="generator_unordered")
        for k, fold_rows in run(
            delayed(_numbered_fold)(k, survivors, data, held, threads=1, **common)
            for k, held in enumerate(parts)
        ):
            collect(k, fold_rows)
    table = pd.DataFrame(rows, columns=CV_COLUMNS).sort_values(["fold", "formula"], kind="stable")
    return CVResult(folds=table.reset_index(drop=True))


def choose_by_cv(result, cv: CVResult):
    """The ranking ``result`` (:class:`~meta_tailor._rank.RankResult`) re-ranked by the CV scores.

    The table's ``cv_mse`` column gets each finalist's score; the finalists are ranked by it (ties and
    unscored finalists by the training rollout MSE, unscored last), and the winner's model and parameters
    are those of the new first. Rows outside the finalists keep no rank.
    """
    scores = cv.scores
    table = result.table.copy()
    finalist = table["rank"].notna()
    table.loc[finalist, "cv_mse"] = table.loc[finalist, "formula"].map(scores).fillna(math.inf)
    order = (
        table[finalist].sort_values(["cv_mse", "train_rollout_mse"], kind="stable").index.tolist()
    )
    for r, i in enumerate(order, start=1):
        table.loc[i, "rank"] = r
    table = table.sort_values(
        ["rank", "screen_loss"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    winner = result.models.get(table["formula"].iloc[0]) if order else None
    return replace(
        result,
        table=table,
        winner_model=winner[0] if winner else result.winner_model,
        winner_theta=winner[1] if winner else result.winner_theta,
    )


# ---------------------------------------------------------------------------------------------------------
# Choosing the meta-tailoring protocol out of sample: one law, several protocols, the same folds

#: Columns of :attr:`ProtocolCV.folds`: one row per (protocol, fold), as :data:`CV_COLUMNS` with the protocol.
PROTOCOL_CV_COLUMNS = ["protocol", *CV_COLUMNS]

#: Pieces one training trajectory is cut into when the data have only one (a single recording).
RECORDING_PIECES = 4


@dataclass(frozen=True)
class ProtocolCV:
    """Outcome of :func:`compare_protocols`: ``folds`` (:data:`PROTOCOL_CV_COLUMNS`) and the meta-tailoring
    epochs every fold ran (``None``: each protocol's own)."""

    folds: pd.DataFrame
    epochs: int | None = None

    @property
    def scores(self) -> pd.Series:
        """Mean held-out rollout MSE per protocol (``inf`` if a fold is missing or diverged), in the order
        the protocols were given."""
        order = list(dict.fromkeys(self.folds["protocol"]))
        n_folds = self.folds["fold"].nunique()
        by = self.folds.groupby("protocol", sort=False)["held_out_mse"]
        complete = by.count() == n_folds
        finite = by.apply(lambda v: bool(np.isfinite(v).all()))
        return by.mean().where(complete & finite, math.inf).reindex(order)

    def lower_in(self, protocol: str, than: str) -> int:
        """In how many folds ``protocol``'s held-out MSE is lower than ``than``'s."""
        mse = self.folds.pivot_table(
            index="fold", columns="protocol", values="held_out_mse", aggfunc="first"
        )
        return int((mse[protocol] < mse[than]).sum())

    def choose(self, default: str, margin: float) -> str:
        """``default``, unless another protocol's mean held-out MSE is at least ``margin`` times lower than
        the default's and it is lower in every fold; of several such, the lowest mean."""
        scores = self.scores
        n_folds = self.folds["fold"].nunique()
        better = [
            p
            for p in scores.index
            if p != default
            and math.isfinite(scores[p])
            and scores[p] * margin <= scores[default]
            and self.lower_in(p, default) == n_folds
        ]
        return min(better, key=lambda p: scores[p]) if better else default


def compare_protocols(
    law: pd.DataFrame,
    data,
    configs: dict[str, RankConfig],
    *,
    mlp_config: MLPConfig = MLPConfig(),
    folds: int = 4,
    jobs: int = 1,
    epochs: int | None = None,
    compiler: Callable | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ProtocolCV:
    """Cross-validate one law under each protocol of ``configs`` (name -> ranking settings) on the same
    folds of the training trajectories: :func:`cross_validate` per protocol, with ``epochs`` meta-tailoring
    epochs when given (a shorter long stage than the final model's). Data with one training trajectory (a
    single recording) are cut into :data:`RECORDING_PIECES` pieces first. The test split is never read.

    ``law``: one row with ``formula`` and ``params`` (the fitter's constants). ``progress`` gets
    ``("protocol NAME: cross-validate", done, folds)``.
    """
    from meta_tailor._rank import segment_trajectories

    if len(data.train) == 1:
        data = _FoldData(
            name=getattr(data, "name", None),
            train=segment_trajectories(data.train, RECORDING_PIECES),
            test=[],
            time_step=float(data.time_step),
            var_names=tuple(data.var_names),
        )
    parts = []
    for name, config in configs.items():
        if epochs is not None:
            config = replace(config, tailor=replace(config.tailor, epochs=epochs))
        cv = cross_validate(
            law,
            data,
            mlp_config=mlp_config,
            config=config,
            folds=min(folds, len(data.train)),
            jobs=jobs,
            compiler=compiler,
            progress=(lambda _s, d, n, name=name: progress(f"protocol {name}: CV", d, n))
            if progress
            else None,
        )
        parts.append(cv.folds.assign(protocol=name))
    table = pd.concat(parts, ignore_index=True)[PROTOCOL_CV_COLUMNS]
    return ProtocolCV(folds=table, epochs=epochs)
