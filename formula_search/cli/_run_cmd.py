"""``fsearch run``: the run (:func:`formula_search.runs.execute`, with the comparators), its ``meta.json``
with the total time, then the export, the plots and the summary (:mod:`._run_summary`)."""

from __future__ import annotations

import time

import click

from formula_search.cli._common import parse_operators
from formula_search.cli._run_summary import finish
from formula_search.cli._stage_options import stage_options
from formula_search.runs import execute, write_json


@click.command("run")
@stage_options
@click.option("--hnn/--no-hnn", default=True, show_default=True, help="Include the HNN comparator.")
def run_cmd(**kwargs):
    """Run the whole pipeline end to end: search, pretrain, rank, comparators, export and plots.

    Every stage is cached by its inputs: a second run on the same data reuses the search and the
    pretrained model. The run directory gets ranking.csv, comparators.csv, law.tex, report.md and PNG plots.
    """
    from rich.console import Console

    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    kwargs["operators"] = parse_operators(kwargs["operators"])
    console = Console()
    t0 = time.perf_counter()
    out, meta = execute(options, comparators=True, **kwargs)
    meta["timings"]["total_s"] = time.perf_counter() - t0
    write_json(meta, out / "meta.json")
    finish(out, meta, console)
    console.print(f"run directory: {out} ({meta['timings']['total_s']:.0f} s)")
