"""Figures like the paper's 3, 4 (metrics per predicted step) and 6 (task loss against inner steps)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from formula_search.errors import InputError
from formula_search.io import atomic_path

_METRIC_LABELS = {"mse": "MSE", "psnr": "PSNR (dB)", "ssim": "SSIM"}


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def seed_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds per method and step.

    Args:
        results: columns ``method``, ``seed``, ``step``, ``mse``, ``psnr``, ``ssim``.

    Returns:
        Columns ``method``, ``step``, then ``<metric>_mean`` and ``<metric>_se`` (0 with one seed), ``seeds``.
    """
    need = {"method", "seed", "step", "mse", "psnr", "ssim"}
    if not need <= set(results.columns):
        raise InputError(f"results table lacks columns {sorted(need - set(results.columns))}")
    g = results.groupby(["method", "step"], sort=False)
    out = g[["mse", "psnr", "ssim"]].mean().add_suffix("_mean")
    n = g["seed"].nunique()
    se = (
        g[["mse", "psnr", "ssim"]].std(ddof=1).fillna(0.0).div(np.sqrt(n), axis=0).add_suffix("_se")
    )
    return out.join(se).assign(seeds=n).reset_index()


def plot_metrics(
    results: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    labels: dict[str, str] | None = None,
    title: str = "",
) -> Path:
    """One panel per metric against predicted step, a line per method with a band of one standard error."""
    plt = _plt()
    summ = seed_summary(results)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric in zip(axes, ("mse", "psnr", "ssim"), strict=True):
        for method, df in summ.groupby("method", sort=False):
            m, s = df[f"{metric}_mean"].to_numpy(), df[f"{metric}_se"].to_numpy()
            label = (labels or {}).get(method, method)
            ax.plot(df["step"], m, label=label)
            ax.fill_between(df["step"], m - s, m + s, alpha=0.25)
        ax.set_xlabel("predicted step")
        ax.set_ylabel(_METRIC_LABELS[metric])
        ax.grid(alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def plot_inner_steps(study: pd.DataFrame, path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Task MSE (left axis) and Noether loss (right axis) against inner steps; mean over seeds if present."""
    plt = _plt()
    df = study.groupby("inner_steps")[["mse", "noether_loss"]].mean().reset_index()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(df["inner_steps"], df["mse"], "o-", color="C0")
    ax.set_xlabel("inner steps")
    ax.set_ylabel("task MSE", color="C0")
    ax2 = ax.twinx()
    ax2.plot(df["inner_steps"], df["noether_loss"], "s--", color="C1")
    ax2.set_ylabel("Noether loss", color="C1")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)
