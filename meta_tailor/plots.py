"""Figures of a run: test error against prediction horizon per method, and the discovered law along the
test trajectories (how well the true data conserve it). Written as PNG with the Agg backend."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def agg_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike[str]) -> Path:  # noqa: ANN001
    """Write ``fig`` to ``path`` as PNG (atomically: a reader never sees half a file) and close it."""
    from formula_search.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    agg_pyplot().close(fig)
    return Path(path)


def plot_horizons(
    horizons: str | os.PathLike[str] | pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Mean squared test error against time since the first state, one line per method (log scale).

    ``labels`` maps a method's key (``noether``) to its legend text; the oracle is dashed, so that a Noether
    Network equal to it (as on the real pendulum) shows as a solid line under a dashed one.
    """
    from formula_search.io import read_table

    table = horizons if isinstance(horizons, pd.DataFrame) else read_table(horizons)
    labels = labels or {}
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, part in table.groupby("method", sort=False):
        part = part[part["horizon"] > 0]
        style = {"linestyle": "--", "zorder": 3} if method == "oracle" else {}
        ax.plot(part["t"], part["mse"], label=labels.get(str(method), str(method)), **style)
    ax.set_yscale("log")
    ax.set_xlabel("time since the initial state")
    ax.set_ylabel("test MSE of the rollout")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path)


def plot_law(meta: dict, law: dict, path: str | os.PathLike[str]) -> Path:
    """The discovered quantity g(x) - g(x_0) along each test trajectory of the run's dataset.

    Args:
        meta: the run's ``meta.json`` content (dataset, noise, seed).
        law: a row with ``expr`` (a :mod:`dsl` tree), ``params`` and ``formula``.
        path: PNG file to write.
    """
    import torch

    import dsl
    from formula_search.data import dataset_from_options, load_dataset

    if meta.get("dataset_options"):
        data = dataset_from_options(**meta["dataset_options"])
    else:
        data = load_dataset(meta["dataset"], noise=meta.get("noise"), seed=meta.get("seed", 0))
    g = dsl.compile_torch(law["expr"], list(data.var_names))
    theta = torch.tensor(law["params"], dtype=torch.float64)
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for tr in data.test:
        x = torch.as_tensor(np.array(tr.x), dtype=torch.float64)
        vals = g(x, theta).numpy()
        ax.plot(np.asarray(tr.t) - tr.t[0], vals - vals[0], lw=0.8, alpha=0.7)
    ax.set_xlabel("time")
    ax.set_ylabel("g(x_t) - g(x_0)")
    ax.set_title(dsl.to_display(law["expr"], law["params"]) + " along the test trajectories")
    fig.tight_layout()
    return save_png(fig, path)


def plot_meta_curves(
    curves: str | os.PathLike[str] | pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    top: int = 8,
) -> Path:
    """The long stage epoch by epoch: each finalist's training rollout MSE (the selection score) and outer
    loss, one line per finalist and outer rate (the ``top`` finalists with the lowest best score), with the
    chosen epoch marked."""
    from formula_search.io import read_table

    table = curves if isinstance(curves, pd.DataFrame) else read_table(curves)
    if table["score"].isna().all():
        raise ValueError("no long-stage scores (no finalist, or state mode, which scores no epoch)")
    best = table.groupby(["formula", "outer_lr"], sort=False)["score"].min().sort_values()
    plt = agg_pyplot()
    fig, (ax_s, ax_o) = plt.subplots(1, 2, figsize=(11, 4))
    several_rates = table["outer_lr"].nunique() > 1
    for (formula, rate), low in best.head(top).items():
        part = table[(table["formula"] == formula) & (table["outer_lr"] == rate)]
        label = f"{formula}, outer {rate:g}" if several_rates else str(formula)
        scored = part.dropna(subset=["score"])
        (line,) = ax_s.plot(scored["epoch"], scored["score"], lw=1, label=label)
        chosen = scored.loc[scored["score"].idxmin()]
        ax_s.plot([chosen["epoch"]], [low], "o", color=line.get_color())
        ax_o.plot(part["epoch"], part["outer_loss"], lw=1, color=line.get_color())
    ax_s.set_yscale("log")
    ax_s.set_xlabel("outer epoch (0: tailored pretrained MLP)")
    ax_s.set_ylabel("training rollout MSE (dot: returned epoch)")
    ax_o.set_yscale("log")
    ax_o.set_xlabel("outer epoch")
    ax_o.set_ylabel("outer loss")
    ax_s.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path)


def plot_pretrain_curve(
    curve: str | os.PathLike[str] | pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    keep: str = "last",
    title: str = "",
) -> Path:
    """The MLP's full-batch training loss per Adam step (log scale), with the lowest loss of the run and the
    weights kept (``keep``: the last step's, or the lowest-loss ones) marked."""
    from formula_search.io import read_table

    table = curve if isinstance(curve, pd.DataFrame) else read_table(curve)
    if table.empty:
        raise ValueError("empty pretraining curve")
    low = table.loc[table["loss"].idxmin()]
    last = table.iloc[-1]
    kept = low if keep == "best" else last
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(table["step"], table["loss"], lw=0.8, color="0.3")
    ax.plot(
        [low["step"]], [low["loss"]], "o", color="tab:green", label=f"lowest: {low['loss']:.3g}"
    )
    ax.plot([last["step"]], [last["loss"]], "s", mfc="none", color="tab:red",
            label=f"last step: {last['loss']:.3g}")  # fmt: skip
    ax.plot([kept["step"]], [kept["loss"]], "x", color="k", ms=10, label=f"kept ({keep})")
    ax.set_yscale("log")
    ax.set_xlabel("Adam steps taken")
    ax.set_ylabel("full-batch training MSE of dx/dt")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return save_png(fig, path)


def plot_cv(
    folds: str | os.PathLike[str] | pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """The law choice by cross-validation: each finalist's held-out rollout MSE per fold (log scale), with its
    mean over the folds (the CV score) as a dashed line; the legend lists the laws best first."""
    from formula_search.io import read_table

    table = folds if isinstance(folds, pd.DataFrame) else read_table(folds)
    if table.empty:
        raise ValueError("no cross-validation folds to plot")
    means = table.groupby("formula")["held_out_mse"].mean().sort_values()
    plt = agg_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    n_folds = table["fold"].nunique()
    for i, formula in enumerate(means.index):
        part = table[table["formula"] == formula].sort_values("fold")
        offset = (i - (len(means) - 1) / 2) * 0.08  # side by side within a fold
        (line,) = ax.plot(
            part["fold"] + offset,
            part["held_out_mse"],
            "o",
            label=f"{formula}: mean {means[formula]:.3g}",
        )
        ax.axhline(means[formula], ls="--", lw=1, color=line.get_color())
    ax.set_yscale("log")
    ax.set_xticks(range(n_folds))
    ax.set_xlabel("fold (held-out training trajectories)")
    ax.set_ylabel("held-out rollout MSE")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
