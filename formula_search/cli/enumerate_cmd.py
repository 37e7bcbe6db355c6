"""``fsearch enumerate``: write every unit-valid formula up to a number of tokens to a table."""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

import dsl
from formula_search.cli._common import OPERATORS, parse_operators

#: Used when the data package cannot be imported (the paper's units for its two ideal systems).
_FALLBACK_VARIABLES = {"ideal_pendulum": "q:rad,p:kg*m^2/s", "ideal_spring": "q:m,p:kg*m/s"}
_LEVELS = ("commutative", "algebraic", "conservation")
_DEFAULT_LEVEL = "conservation"
_BATCH = 65_536
#: Below this depth the summary also counts the two levels not written (well under a second each).
_CHEAP_DEPTH = 7


def _parse_depth(text: str) -> int:
    from formula_search.errors import InputError

    try:
        depth = int(text)
    except ValueError:
        raise InputError(f"--depth must be a whole number of tokens, got {text!r}") from None
    if depth < 1:
        raise InputError(f"--depth must be at least 1 token, got {depth}")
    return depth


def _resolve_variables(dataset: str | None, variables: str | None):
    """``(name, variables, note)``: the variables to enumerate over and where they came from."""
    import dsl
    from formula_search.errors import InputError

    if variables is not None:
        if dataset is not None:
            raise InputError("give --dataset or --variables, not both")
        return "variables", dsl.parse_variables(variables), None
    try:
        from formula_search.data import DEFAULT_DATASET, resolve_card
    except ImportError:  # data package unavailable: the paper's two systems only
        DEFAULT_DATASET, resolve_card = "ideal_pendulum", None
    note = None
    if dataset is None:
        dataset = DEFAULT_DATASET
        note = f"no --dataset given: using the default dataset {dataset}"
    if resolve_card is None:
        if dataset not in _FALLBACK_VARIABLES:
            known = ", ".join(_FALLBACK_VARIABLES)
            raise InputError(f"unknown dataset {dataset!r}; known: {known}")
        return dataset, dsl.parse_variables(_FALLBACK_VARIABLES[dataset]), note
    card, _ = resolve_card(dataset)  # reads the card only: no simulation, no data file
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", card.name or Path(dataset).stem)
    return name, tuple(card.variables), note


def _writer(path: Path, fmt: str):
    """``(write(batch_of_rows), close())`` streaming rows to ``path`` as CSV or Parquet."""
    from formula_search.advanced import ENUMERATION_COLUMNS as COLUMNS

    if fmt == "csv":
        import csv

        handle = open(path, "w", newline="", encoding="utf-8")
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        return out.writerows, handle.close
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("formula", pa.string()),
            ("size", pa.int64()),
            ("dimension", pa.string()),
            ("n_params", pa.int64()),
            ("param_units", pa.string()),
        ]
    )
    writer = pq.ParquetWriter(path, schema)

    def write(rows: list[tuple]) -> None:
        columns = list(zip(*rows)) if rows else [[] for _ in COLUMNS]
        writer.write_table(pa.Table.from_arrays([list(c) for c in columns], schema=schema))

    return write, writer.close


@click.command("enumerate")
@click.option(
    "--dataset",
    default=None,
    metavar="NAME|CARD",
    help="Built-in dataset (fsearch datasets list) or a card (.toml) whose variables and units are used "
    "[default: ideal_pendulum]. Only the card is read; no data are simulated.",
)
@click.option(
    "--variables",
    default=None,
    metavar="SPEC",
    help="Enumerate for these variables instead of a dataset's, e.g. 'q:rad,p:kg*m^2/s' (any pint unit).",
)
@click.option(
    "--depth",
    default="7",
    show_default=True,
    metavar="N",
    help="Largest formula size, counted in DSL tokens (tree nodes: variables, parameters, operators); "
    "p^2 - c*cos(q) is 7 tokens: -, ^2, p, *, c, cos, q.",
)
@click.option(
    "--dedup",
    default=_DEFAULT_LEVEL,
    show_default=True,
    metavar="LEVEL",
    help="Duplicates removed: commutative (a+b = b+a, a*b = b*a: the paper's level), algebraic (also "
    "associativity, x-x, x/x, constant subtrees as one parameter) or conservation (also g ~ c*g ~ g+c "
    "~ -g ~ 1/g: formulas that conserve the same quantity).",
)
@OPERATORS
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Output table, .parquet or .csv [default: fsearch-out/enumerate-DATASET-dDEPTH-LEVEL.parquet].",
)
@click.option(
    "--all-levels/--one-level",
    default=None,
    help="Also count the two levels not written, for the summary [default: only when --depth <= 7].",
)
def enumerate_cmd(
    dataset: str | None,
    variables: str | None,
    depth: str,
    dedup: str,
    operators: str | None,
    out: str | None,
    all_levels: bool | None,
) -> None:
    """Enumerate every unit-valid formula up to --depth tokens and write them to a table.

    Depth counts DSL tokens (tree nodes), so the paper's laws p^2 - c*cos(q) and q^2 + c*p^2 are reached at
    --depth 7. Columns: formula, size, dimension (SI unit of the value or "free"), n_params, param_units
    (inferred SI unit of each parameter, "; "-separated). Rows stream to the file: depth 9 fits in little
    memory.
    """
    from rich.console import Console

    from dsl import DedupLevel
    from formula_search.io import atomic_path, check_table_suffix

    max_size = _parse_depth(depth)
    level = DedupLevel.parse(dedup)
    ops = parse_operators(operators)
    name, vars_, note = _resolve_variables(dataset, variables)
    level_name = level.name.lower()
    if out is None:
        extra = "" if ops is None or ops == dsl.DEFAULT_OPERATORS else "-" + "-".join(ops[4:])
        out = f"fsearch-out/enumerate-{name}-d{max_size}-{level_name}{extra}.parquet"
    fmt = check_table_suffix(out)
    console = Console()
    _print_plan(console, note, vars_, max_size, level_name)

    start = time.perf_counter()
    with atomic_path(out) as tmp:
        written, counts = _stream_rows(tmp, fmt, vars_, level, ops, max_size, console)
    seconds = time.perf_counter() - start

    if all_levels is None:
        all_levels = max_size <= _CHEAP_DEPTH
    console.print(_counts_table(name, vars_, ops, max_size, level_name, counts, all_levels))
    console.print(
        f"Wrote {written:,} formulas to {out} in {seconds:.1f} s", highlight=False, soft_wrap=True
    )


def _print_plan(console, note: str | None, vars_, max_size: int, level_name: str) -> None:
    """Say what is enumerated (and where the variables came from, and when the depth is large)."""
    if note:
        console.print(note, highlight=False, soft_wrap=True)
    shown = ", ".join(f"{v.name}: {v.unit}" for v in vars_)
    console.print(
        f"Enumerating formulas of 1 to {max_size} tokens over {shown}, dedup level {level_name}",
        highlight=False,
        soft_wrap=True,
    )
    if max_size > 9:
        console.print(
            f"[yellow]depth {max_size} is large: expect many millions of rows and minutes of work[/]"
        )


def _stream_rows(path: Path, fmt: str, vars_, level, ops, max_size: int, console):
    """Write the formulas to ``path`` in batches with a progress bar: ``(rows written, count per size)``."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from formula_search.advanced import Enumerator

    counts: dict[int, int] = {}
    write, close = _writer(path, fmt)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("size {task.fields[size]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} sizes"),
            TextColumn("{task.fields[rows]:,} formulas"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("enumerate", total=max_size, size=1, rows=0)
            written = 0

            def on_size(n: int, count: int) -> None:
                counts[n] = count
                progress.update(
                    task, advance=1, size=min(n + 1, max_size), rows=written + len(batch)
                )

            batch: list[tuple] = []
            for row in Enumerator(vars_, dedup=level, operators=ops).rows(
                max_size, on_size=on_size
            ):
                batch.append(row)
                if len(batch) >= _BATCH:
                    write(batch)
                    written += len(batch)
                    batch = []
                    progress.update(task, rows=written)
            if batch or fmt == "parquet" and written == 0:
                write(batch)
                written += len(batch)
    finally:
        close()
    return written, counts


def _counts_table(name: str, vars_, ops, max_size: int, level_name: str, counts, all_levels: bool):
    """The summary table: formulas per size at the level written (and the other levels when counted)."""
    from rich.table import Table

    from formula_search.advanced import count_formulas

    by_level = {level_name: counts}
    if all_levels:
        for other in _LEVELS:
            if other != level_name:
                by_level[other] = count_formulas(
                    vars_, max_size=max_size, dedup=other, operators=ops
                )
    table = Table(title=f"formulas by size ({name}, depth {max_size})")
    table.add_column("size", justify="right")
    ordered = [lv for lv in _LEVELS if lv in by_level]
    for lv in ordered:
        table.add_column(lv + (" (written)" if lv == level_name else ""), justify="right")
    for n in range(1, max_size + 1):
        table.add_row(str(n), *(f"{by_level[lv][n]:,}" for lv in ordered))
    table.add_row("total", *(f"{sum(by_level[lv].values()):,}" for lv in ordered), style="bold")
    return table
