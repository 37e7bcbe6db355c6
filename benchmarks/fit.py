"""Benchmark of the fitting stage: wall time, candidates per second and peak memory at depth 7.

    python benchmarks/fit.py                    # full: commutative and conservation levels, 1 and 2 jobs
    python benchmarks/fit.py --quick            # the first 2000 candidates of each level
    python benchmarks/fit.py --device cuda      # GPU (the lead's machine)
    python benchmarks/fit.py --measure paper    # the Noether paper's measure

Enumeration time is not included (it is printed separately). Peak memory is the largest resident set of this
process and of its worker processes (``ru_maxrss``).
"""

from __future__ import annotations

import resource
import time

import click


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


@click.command()
@click.option("--dataset", default="ideal_pendulum", show_default=True)
@click.option("--depth", type=int, default=7, show_default=True)
@click.option("--dedup", "levels", multiple=True, default=("commutative", "conservation"))
@click.option("--jobs", "jobs_list", multiple=True, type=int, default=(1, 2))
@click.option("--device", default="cpu", show_default=True)
@click.option("--quick", is_flag=True, help="Only the first 2000 candidates of each level.")
@click.option("--measure", default="derivative", show_default=True, help="derivative or paper.")
def main(dataset, depth, levels, jobs_list, device, quick, measure):
    import torch
    from rich.console import Console
    from rich.table import Table

    from formula_search.advanced import FitConfig, enumeration_table, fit_formulas
    from formula_search.data import load_dataset

    torch.set_num_threads(1)
    data = load_dataset(dataset)
    table = Table(
        title=f"fsearch fit on {dataset}, depth {depth}, device {device}, {measure} measure"
    )
    for col in ("dedup", "candidates", "jobs", "wall s", "cand/s", "accepted", "peak MB"):
        table.add_column(col, justify="left" if col == "dedup" else "right")
    for level in levels:
        t0 = time.perf_counter()
        formulas = enumeration_table(data.variables, max_size=depth, dedup=level)
        t_enum = time.perf_counter() - t0
        if quick:
            formulas = formulas.iloc[:2000]
        print(f"{level}: {len(formulas)} candidates, enumerated in {t_enum:.1f} s", flush=True)
        for jobs in jobs_list:
            config = FitConfig(
                jobs=jobs, device=device, window=data.default_window, measure=measure
            )
            t0 = time.perf_counter()
            out = fit_formulas(formulas, data, config=config)
            wall = time.perf_counter() - t0
            table.add_row(
                level,
                str(len(formulas)),
                str(jobs),
                f"{wall:.1f}",
                f"{len(formulas) / wall:,.0f}",
                str(int(out["accepted"].sum())),
                f"{_peak_mb():,.0f}",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
