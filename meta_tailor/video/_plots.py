"""Figures like the paper's 3, 4 (metrics per predicted step) and 6 (task loss against inner steps)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from formula_search.errors import InputError
from meta_tailor.plots import agg_pyplot, save_png

_METRIC_LABELS = {"mse": "MSE", "psnr": "PSNR (dB)", "ssim": "SSIM"}


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
    plt = agg_pyplot()
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
    return save_png(fig, path)


def inner_steps_summary(study: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds of a figure-6 study, per method and inner-step count.

    Args:
        study: columns ``inner_steps``, ``mse``, ``noether_loss``; optionally ``method`` and ``seed``.

    Returns:
        Columns ``method``, ``inner_steps``, ``noether_loss``, ``noether_loss_se``, ``mse``, ``mse_se`` and,
        when 0 steps are in the study, ``mse_change`` and ``mse_change_se``: each seed's change of MSE from
        its own value at 0 steps, in percent (paired, so the spread between seeds does not hide the effect).
    """
    df = study if "method" in study.columns else study.assign(method="noether")
    if "seed" not in df.columns:
        df = df.assign(seed=0)
    cols = ["noether_loss", "mse"]
    if (df["inner_steps"] == 0).any():
        base = df[df["inner_steps"] == 0].set_index(["method", "seed"])["mse"]
        ref = base.reindex(pd.MultiIndex.from_frame(df[["method", "seed"]])).to_numpy()
        df = df.assign(mse_change=100.0 * (df["mse"].to_numpy() / ref - 1.0))
        cols.append("mse_change")
    # methods in the order first seen, inner steps ascending
    df = df.assign(method=pd.Categorical(df["method"], categories=pd.unique(df["method"])))
    g = df.groupby(["method", "inner_steps"], observed=True)
    n = g["seed"].nunique()
    se = g[cols].std(ddof=1).fillna(0.0).div(np.sqrt(n), axis=0).add_suffix("_se")
    out = g[cols].mean().join(se).reset_index()
    return out.assign(method=out["method"].astype(str))


def plot_inner_steps(
    study: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    labels: dict[str, str] | None = None,
) -> Path:
    """The paper's figure 6: Noether loss (top) and task MSE (bottom) against inner steps at test time.

    Means over seeds with error bars of one standard error, a line per method (see
    :func:`inner_steps_summary`). When 0 steps are in the study, the bottom panel shows each seed's change
    of MSE from 0 steps, in percent.
    """
    plt = agg_pyplot()
    summ = inner_steps_summary(study)
    bottom = "mse_change" if "mse_change" in summ.columns else "mse"
    fig, axes = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    for method, d in summ.groupby("method", sort=False):
        label = (labels or {}).get(method, method)
        for ax, col in zip(axes, ("noether_loss", bottom), strict=True):
            ax.errorbar(
                d["inner_steps"], d[col], yerr=d[f"{col}_se"], marker="o", ms=3, label=label
            )
    axes[0].set_ylabel("Noether loss")
    axes[1].set_ylabel("task MSE change from 0 steps (%)" if bottom == "mse_change" else "task MSE")
    axes[1].set_xlabel("inner steps at test time")
    if (summ["noether_loss"] > 0).all():
        axes[0].set_yscale("log")  # variants' losses differ by orders of magnitude
    top = float(summ["inner_steps"].max())
    if top > 20:
        axes[1].set_xscale("symlog", linthresh=1)
        axes[1].set_xlim(-0.1, top * 1.3)
    for ax in axes:
        ax.grid(alpha=0.3)
    if summ["method"].nunique() > 1:
        axes[0].legend()
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return save_png(fig, path)
