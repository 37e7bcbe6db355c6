"""``fsearch fit``: fit every formula's parameters and keep the conserved ones."""

from __future__ import annotations

from pathlib import Path

import click

from formula_search.advanced import TermConfig
from formula_search.cli._common import (
    MEASURE,
    OPERATORS,
    SMOOTHING,
    dedup_option,
    parse_operators,
    progress_bar,
)
from formula_search.cli._data_options import dataset_options
from formula_search.cli._stage_options import DERIVATIVES, EXTRA_TERMS, STRIDE, TERM_LIBRARY

#: The term search's defaults (the command's options read them).
_TERMS = TermConfig()


@click.command("fit")
@dataset_options
@click.option(
    "--formulas",
    "formulas_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Table written by `fsearch enumerate` (.csv/.parquet) [enumerate here up to --depth].",
)
@click.option("--depth", type=int, default=7, show_default=True, help="Largest formula size.")
@dedup_option("Deduplication level when enumerating here (commutative is the paper's).")
@OPERATORS
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: fsearch-out/fit-DATASET].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="Format of OUT/fit.<format>.",
)
@click.option(
    "--ratio", type=float, default=0.01, show_default=True, help="Accept if true/random <= this."
)
@MEASURE
@SMOOTHING
@DERIVATIVES
@STRIDE
@click.option(
    "--explain",
    "explain",
    multiple=True,
    metavar="FORMULA",
    help="Only fit this formula (repeatable) and print its fitted constants and scores; writes nothing.",
)
@click.option(
    "--window",
    type=int,
    default=None,
    help="Paper measure: measure conservation on windows of this many points [dataset card default].",
)
@click.option(
    "--terms",
    "max_terms",
    type=int,
    default=None,
    help="Term search instead of formulas: laws that are sums of up to this many parameter-free terms "
    "(each up to --term-depth tokens) with closed-form coefficients (coupled systems; docs/fitting.md).",
)
@click.option(
    "--term-depth",
    type=int,
    default=_TERMS.term_depth,
    show_default=True,
    help="Largest term size (--terms).",
)
@click.option(
    "--beam",
    type=int,
    default=_TERMS.beam,
    show_default=True,
    help="Term sets kept per size (--terms).",
)
@TERM_LIBRARY
@EXTRA_TERMS
@click.option("--starts", type=int, default=4, show_default=True, help="Random starts.")
@click.option("--steps", type=int, default=30, show_default=True, help="Newton iterations.")
@click.option("--lr", type=float, default=0.1, show_default=True, help="Gradient step scale.")
@click.option(
    "--smooth",
    type=int,
    default=1,
    show_default=True,
    help="Paper measure: moving-average width applied along sequences before scoring (noisy data).",
)
@click.option(
    "--detrend/--no-detrend",
    default=None,
    help="Paper measure: remove a slow linear drift inside each window before measuring (dissipative "
    "data) [dataset card default].",
)
@click.option(
    "--split",
    type=click.Choice(["train", "test", "all"]),
    default="train",
    show_default=True,
    help="Trajectories to fit on.",
)
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--backend",
    type=click.Choice(["loky", "dask"]),
    default="loky",
    show_default=True,
    help="loky: local processes; dask: an existing Dask cluster (--scheduler).",
)
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="Dask scheduler.")
@click.option(
    "--device", default="auto", show_default=True, help="auto, cpu or cuda (GPU when present)."
)
@click.option("--chunk-size", type=int, default=2048, show_default=True, help="Formulas per chunk.")
@click.option("--resume", is_flag=True, help="Reuse the finished chunks of an interrupted run.")
@click.option("--top", type=int, default=15, show_default=True, help="Survivors shown.")
def fit_cmd(**kwargs) -> None:
    """Fit each formula's parameters and keep the formulas conserved on the data.

    Writes OUT/fit.parquet (every formula, with fitted parameters, scores, ratio, accepted) and
    OUT/survivors.csv; finished chunks are kept in OUT/fit.chunks/ so that --resume skips them.
    """
    from rich.console import Console

    from formula_search.advanced import FitData, check_enumeration
    from formula_search.data import dataset_from_options, pop_dataset_options
    from formula_search.errors import InputError

    seed = kwargs["seed"]
    operators = parse_operators(kwargs["operators"])
    dataset = dataset_from_options(**pop_dataset_options(kwargs))
    window = kwargs["window"] if kwargs["window"] is not None else dataset.default_window
    config = _fit_config(kwargs, dataset, window, seed)
    console = Console(stderr=True)
    if kwargs["explain"]:
        _explain(kwargs["explain"], FitData.from_dataset(dataset, kwargs["split"]), config)
        return
    if kwargs["max_terms"] is not None:
        _term_search(dataset, config, kwargs, console, operators)
        return
    check_enumeration(config)
    if kwargs["extra_terms"]:
        raise InputError("--extra-term adds to the term search's library: give --terms K as well")
    formulas = _formulas(kwargs, dataset, operators, config, console)
    data = FitData.from_dataset(dataset, kwargs["split"])
    out = Path(kwargs["out_dir"] or Path("fsearch-out") / f"fit-{Path(dataset.name).stem}")
    table = _fit_with_progress(formulas, data, config, out, kwargs["resume"], console)
    _write_and_report(table, out, dataset, config, window, kwargs)


def _fit_config(kwargs, dataset, window, seed):
    """The :class:`FitConfig` of the command's options (the dataset card's defaults where unset)."""
    from formula_search.advanced import FitConfig

    return FitConfig(
        ratio=kwargs["ratio"],
        window=window,
        n_starts=kwargs["starts"],
        steps=kwargs["steps"],
        lr=kwargs["lr"],
        jobs=kwargs["jobs"],
        backend=kwargs["backend"],
        scheduler=kwargs["scheduler"],
        device=kwargs["device"],
        seed=seed,
        chunk_size=kwargs["chunk_size"],
        smooth=kwargs["smooth"],
        detrend=kwargs["detrend"] if kwargs["detrend"] is not None else dataset.default_detrend,
        measure=kwargs["measure"] or dataset.search_measure(terms=kwargs["max_terms"] is not None),
        smoothing=kwargs["smoothing"],
        derivatives=kwargs["derivatives"],
        stride=kwargs["stride"],
    )


def _formulas(kwargs, dataset, operators, config, console):
    """The formulas to fit: the table given with --formulas, or those enumerated here up to --depth."""
    from formula_search.errors import InputError
    from formula_search.io import read_table

    if kwargs["formulas_path"]:
        formulas = read_table(kwargs["formulas_path"])
        if "formula" not in formulas.columns:
            raise InputError(f"{kwargs['formulas_path']}: no 'formula' column")
        return formulas
    from formula_search.advanced import check_search_size, enumeration_table

    if kwargs["depth"] < 1:
        raise InputError(f"--depth must be >= 1, got {kwargs['depth']}")
    estimate = check_search_size(
        dataset.variables, max_size=kwargs["depth"], dedup=kwargs["dedup"], operators=operators
    )
    if estimate > 1e6:
        per_s = 2000 * max(1, config.jobs)
        console.print(
            f"about {estimate:,.0f} formulas to fit: about {estimate / per_s / 60:,.0f} min at "
            f"{per_s:,} formulas/s"
        )
    with console.status(f"enumerating formulas up to size {kwargs['depth']}..."):
        return enumeration_table(
            dataset.variables,
            max_size=kwargs["depth"],
            dedup=kwargs["dedup"],
            operators=operators,
        )


def _fit_with_progress(formulas, data, config, out: Path, resume: bool, console):
    """:func:`fit_formulas` with a progress bar, its finished chunks kept in OUT/fit.chunks."""
    from formula_search.advanced import fit_formulas

    with progress_bar("{task.fields[rate]}", console=console) as progress:
        task = progress.add_task("fitting", total=len(formulas), rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[0]
            if t.speed:
                progress.update(task, rate=f"{t.speed:,.0f} formulas/s")

        return fit_formulas(
            formulas,
            data,
            config=config,
            checkpoint_dir=out / "fit.chunks",
            resume=resume,
            progress=advance,
            report=console.print,
        )


def _write_and_report(table, out: Path, dataset, config, window, kwargs) -> None:
    """Write OUT/fit.<format> and OUT/survivors.csv, show the best survivors and a summary line."""
    from rich.console import Console
    from rich.table import Table

    from formula_search.advanced import survivors
    from formula_search.io import write_table

    path = write_table(table, out / f"fit.{kwargs['fmt']}")
    best = survivors(table)
    write_table(best, out / "survivors.csv")
    shown = Table(title=f"best survivors on {dataset.name} ({kwargs['split']} split)")
    for col in ("formula", "params", "param_units", "ratio"):
        shown.add_column(col, justify="right" if col == "ratio" else "left")
    for row in best.head(kwargs["top"]).itertuples(index=False):
        shown.add_row(row.formula, str(row.params), str(row.param_units), f"{row.ratio:.3g}")
    Console().print(shown)
    counts = table["status"].value_counts()
    if best.empty:
        from formula_search.advanced import explain_empty

        click.echo(f"why: {explain_empty(table, config.ratio)}")
    click.echo(
        f"{len(best)} of {len(table)} formulas accepted (ratio <= {config.ratio:g}"
        + (f", window {window}" if window else "")
        + f"); trivial {int(counts.get('trivial', 0))}, failed {int(counts.get('failed', 0))}."
    )
    click.echo(f"wrote {path} and {out / 'survivors.csv'}")


def _explain(texts, data, config) -> None:
    """``--explain``: each formula's constants, units, scores and verdict, one ``key: value`` per line."""
    from formula_search.advanced import fit_formulas
    from formula_search.errors import InputError

    table = fit_formulas(list(texts), data, config=config)
    for row in table.itertuples(index=False):
        verdict = "accepted" if row.accepted else row.status
        if row.status == "ok" and not row.accepted:
            verdict = f"rejected (ratio > {config.ratio:g})"
        click.echo(
            f"{row.formula}\n"
            f"  constants:   {row.params or '(none)'}\n"
            f"  units:       {row.param_units or '(none)'}\n"
            f"  score:       {row.true_score:.4g} ({config.measure} measure; 0 = conserved)\n"
            f"  null score:  {row.random_score:.4g}\n"
            f"  ratio:       {row.ratio:.4g}\n"
            f"  verdict:     {verdict}"
        )
    bad = table[table["status"] == "unparsable"]
    if len(bad) == len(table):
        raise InputError(f"--explain: cannot read {', '.join(map(repr, bad['formula']))}")


def _term_search(dataset, config, kwargs, console, operators) -> None:
    """``fsearch fit --terms K``: sparse sums of terms (formula_search._terms), same output files."""
    from rich.table import Table

    from formula_search.advanced import (
        FitData,
        TermConfig,
        describe_velocities,
        survivors,
        term_search,
        velocity_source,
    )
    from formula_search.errors import InputError
    from formula_search.io import write_table

    if kwargs["formulas_path"]:
        raise InputError("--terms searches its own terms: give --formulas or --terms, not both")
    tcfg = TermConfig(
        term_depth=kwargs["term_depth"],
        max_terms=kwargs["max_terms"],
        beam=kwargs["beam"],
        operators=operators,
        library=kwargs["term_library"] or dataset.search.get("library", "enumerate"),
        extra=tuple(kwargs["extra_terms"]) or tuple(dataset.search.get("extra_terms", ())),
    )
    data = FitData.from_dataset(dataset, kwargs["split"])
    with console.status("term search...") as status:
        table = term_search(
            data,
            config=tcfg,
            fit_config=config,
            progress=lambda line: status.update(f"term search: {line}"),
        )
    out = Path(kwargs["out_dir"] or Path("fsearch-out") / f"fit-{Path(dataset.name).stem}")
    path = write_table(table, out / f"fit.{kwargs['fmt']}")
    best = survivors(table)
    write_table(best, out / "survivors.csv")
    shown = Table(title=f"laws of up to {tcfg.max_terms} terms on {dataset.name}")
    for col in ("formula", "params", "ratio"):
        shown.add_column(col, justify="right" if col == "ratio" else "left")
    for row in best.itertuples(index=False):
        shown.add_row(row.formula, str(row.params), f"{row.ratio:.3g}")
    from rich.console import Console

    Console().print(shown)
    print(
        f"{len(best)} independent law(s) of up to {tcfg.max_terms} terms ("
        + (
            f"terms up to {tcfg.term_depth} tokens"
            if tcfg.library == "enumerate"
            else f"the {tcfg.library} library"
        )
        + f", beam {tcfg.beam}); wrote {path} and {out / 'survivors.csv'}"
    )
    print(describe_velocities(*velocity_source(config, data, terms=True)))
