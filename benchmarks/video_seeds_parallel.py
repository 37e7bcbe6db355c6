"""Run the video acceptance experiment with one process per seed, then merge the seeds' results.

On a GPU the models are small enough that several seeds share the card with little slow-down, so running
them side by side divides the wall time by about the number of seeds.

    python benchmarks/video_seeds_parallel.py --seeds 3 --out runs/video -- --device cuda --steps-per-epoch 100

Everything after ``--`` is passed to ``fsearch video experiment``. Writes OUT/seed-K/ (one experiment per
seed), OUT/results.csv (all seeds), OUT/overall.csv (mean and standard error over seeds) and OUT/metrics.png.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs/video", show_default=True)
@click.argument("experiment_args", nargs=-1, type=click.UNPROCESSED)
def main(seeds: int, out: str, experiment_args: tuple[str, ...]) -> None:
    import pandas as pd

    from formula_search.io import write_table
    from meta_tailor.video import METHOD_LABELS, overall_table, plot_metrics

    root = Path(out)
    procs = []
    for seed in range(seeds):
        cmd = [
            sys.executable, "-m", "formula_search.cli", "video", "experiment",
            "--seeds", "1", "--first-seed", str(seed), "--out", str(root / f"seed-{seed}"),
            *experiment_args,
        ]  # fmt: skip
        root.mkdir(parents=True, exist_ok=True)
        log = open(root / f"seed-{seed}.log", "w")  # noqa: SIM115 (closed after the process ends)
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
    failed = []
    for seed, (proc, log) in enumerate(procs):
        if proc.wait() != 0:
            failed.append(seed)
        log.close()
    if failed:
        raise SystemExit(f"seed(s) {failed} failed; see {root}/seed-K.log")
    results = pd.concat(
        [pd.read_csv(root / f"seed-{s}" / "results.csv") for s in range(seeds)], ignore_index=True
    )
    write_table(results, root / "results.csv")
    overall = overall_table(results)
    write_table(overall, root / "overall.csv")
    plot_metrics(results, root / "metrics.png", labels=METHOD_LABELS, title=f"{seeds} seed(s)")
    print(overall.to_string(index=False))


if __name__ == "__main__":
    main()
