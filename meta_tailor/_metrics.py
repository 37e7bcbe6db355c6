"""Errors of long-term rollouts: overall MSE/RMSE and error per prediction horizon (tidy tables)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor


def rollout_mse(rollouts: Sequence[tuple[Tensor, Tensor, Tensor]]) -> float:
    """Mean squared error over all trajectories, times (the initial state included) and state components.

    Args:
        rollouts: ``(t, x_true, x_pred)`` triples from :func:`~meta_tailor._rollout.rollout_trajectories`.

    Returns:
        The MSE (units of x squared); ``inf`` if a rollout diverged to NaN or infinity.
    """
    sq = torch.cat([((xp - xt) ** 2).reshape(-1) for _, xt, xp in rollouts])
    value = float(sq.mean())
    return value if math.isfinite(value) else math.inf


def rollout_rmse(rollouts: Sequence[tuple[Tensor, Tensor, Tensor]]) -> float:
    """Square root of :func:`rollout_mse` (units of x): the "RMSE" column of the results tables."""
    return math.sqrt(rollout_mse(rollouts))


def horizon_errors(
    rollouts: Sequence[tuple[Tensor, Tensor, Tensor]], *, method: str
) -> pd.DataFrame:
    """Error per prediction horizon, averaged over trajectories.

    Returns:
        A table with columns ``method``, ``horizon`` (steps after the initial state), ``t`` (time since
        the first state, mean over trajectories), ``mse`` (mean over trajectories and components),
        ``rmse`` (its square root) and ``n_trajectories``.
    """
    rows: dict[int, list] = {}
    for t, xt, xp in rollouts:
        err = ((xp - xt) ** 2).mean(-1)
        for k in range(len(t)):
            rows.setdefault(k, []).append((float(t[k] - t[0]), float(err[k])))
    records = []
    for k in sorted(rows):
        ts, es = zip(*rows[k])
        mse = sum(es) / len(es)
        records.append(
            {
                "method": method,
                "horizon": k,
                "t": sum(ts) / len(ts),
                "mse": mse,
                "rmse": math.sqrt(mse) if math.isfinite(mse) else math.inf,
                "n_trajectories": len(es),
            }
        )
    return pd.DataFrame.from_records(
        records, columns=["method", "horizon", "t", "mse", "rmse", "n_trajectories"]
    )
