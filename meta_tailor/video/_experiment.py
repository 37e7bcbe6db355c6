"""The acceptance protocol in one call: train the three methods per seed, evaluate, tabulate and plot."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from formula_search.io import write_table
from meta_tailor.video._data import VideoData
from meta_tailor.video._plots import plot_inner_steps, plot_metrics, seed_summary
from meta_tailor.video._train import (
    METHOD_LABELS,
    METHODS,
    VideoConfig,
    evaluate,
    inner_steps_study,
    load_models,
    train_all,
)


def overall_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per method: metrics averaged over predicted steps, then mean and standard error over seeds.

    Returns:
        Columns ``method``, ``mse``, ``mse_se``, ``psnr``, ``psnr_se``, ``ssim``, ``ssim_se``, ``seeds``.
    """
    per_seed = (
        results.groupby(["method", "seed"], sort=False)[["mse", "psnr", "ssim"]]
        .mean()
        .reset_index()
    )
    g = per_seed.groupby("method", sort=False)
    mean = g[["mse", "psnr", "ssim"]].mean()
    n = g["seed"].nunique()
    se = (
        g[["mse", "psnr", "ssim"]].std(ddof=1).fillna(0.0).div(n.pow(0.5), axis=0).add_suffix("_se")
    )
    out = mean.join(se).assign(seeds=n).reset_index()
    return out[["method", "mse", "mse_se", "psnr", "psnr_se", "ssim", "ssim_se", "seeds"]]


def run_experiment(
    data: VideoData,
    *,
    config: VideoConfig,
    seeds: tuple[int, ...],
    out_dir: str | os.PathLike[str],
    max_windows_per_episode: int | None = None,
    inner_steps: tuple[int, ...] = (0, 1, 2, 5, 10),
    study_optimizer: str = "sgd",
    study_lr: float | None = None,
    progress: Callable[[str], None] | None = None,
    train_progress: Callable[[str, int, int, float], None] | None = None,
) -> pd.DataFrame:
    """Train SVG, SVG (more steps) and the Noether Network for each seed; evaluate all on the test split.

    Writes into ``out_dir``: ``seed<k>/`` (checkpoints, resumable), ``results.csv`` (columns ``method``,
    ``seed``, ``step``, ``mse``, ``psnr``, ``ssim``, their ``_se`` over test sequences, ``n``),
    ``summary.csv`` (per method and step: mean and standard error over seeds), ``overall.csv`` (per method,
    averaged over steps), ``inner_steps.csv`` (per seed), ``metrics.png`` and ``inner_steps.png``.

    Returns:
        The results table.
    """
    out = Path(out_dir)
    tables, studies = [], []
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=seed)
        if progress is not None:
            progress(f"seed {seed}: training")
        paths = train_all(
            data.train, config=cfg, out_dir=out / f"seed{seed}", progress=train_progress
        )
        for method in METHODS:
            if progress is not None:
                progress(f"seed {seed}: evaluating {METHOD_LABELS[method]}")
            model, emb = load_models(paths[method], cfg)
            df = evaluate(
                model, emb, data.test, config=cfg, max_windows_per_episode=max_windows_per_episode
            )
            tables.append(df.assign(method=method, seed=seed))
            if method == "noether" and inner_steps:
                st = inner_steps_study(
                    model,
                    emb,
                    data.test,
                    config=cfg,
                    steps=inner_steps,
                    optimizer=study_optimizer,
                    lr=study_lr,
                    max_windows_per_episode=max_windows_per_episode,
                )
                studies.append(st.assign(seed=seed))
    cols = ["method", "seed", "step", "mse", "psnr", "ssim", "mse_se", "psnr_se", "ssim_se", "n"]
    results = pd.concat(tables, ignore_index=True)[cols + ["noether_before", "noether_after"]]
    write_table(results, out / "results.csv")
    write_table(seed_summary(results), out / "summary.csv")
    write_table(overall_table(results), out / "overall.csv")
    plot_metrics(
        results,
        out / "metrics.png",
        labels=METHOD_LABELS,
        title=f"{data.name}, {len(seeds)} seed(s)",
    )
    if studies:
        study = pd.concat(studies, ignore_index=True)
        write_table(study, out / "inner_steps.csv")
        plot_inner_steps(
            study, out / "inner_steps.png", title="Noether Network: inner steps at test time"
        )
    return results
