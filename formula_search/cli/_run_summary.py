"""What ``fsearch run`` and ``reproduce`` do after a run: export the law (LaTeX, Markdown), plot, and print a
summary: the comparators' test errors, the law, and the paper's claims checked on the run."""

from __future__ import annotations

from pathlib import Path

from formula_search.cli.export_cmd import (
    METHOD_NAMES,
    export_cmd,
    law_rows,
    method_description,
    plot_cmd,
)
from formula_search.runs import describe_protocol, run_claims


def finish(out: Path, meta: dict, console) -> list | None:
    """After ranking with comparators: LaTeX and Markdown export, plots, and a summary on the terminal.
    Returns the paper's claims checked on the run (:func:`formula_search.runs.run_claims`), which the summary prints."""
    from formula_search.io import read_table

    laws = law_rows(out, meta, 1)
    _export_and_plot(out)
    comp_path = out / "comparators.csv"
    comp = read_table(comp_path) if comp_path.exists() else None
    console.print(_comparators_table(meta, comp))
    if laws:
        _print_law(laws[0], meta, console)
    protocol = describe_protocol(meta)
    if protocol:
        console.print(protocol)
    checks = run_claims(meta, laws[0] if laws else None, comp) if comp is not None else None
    if checks:
        print_claims(checks, console)
    return checks


def _export_and_plot(out: Path) -> None:
    """``fsearch export`` as law.tex and report.md, and ``fsearch plot``, into the run directory."""
    for fmt, name in (("latex", "law.tex"), ("markdown", "report.md")):
        ctx = export_cmd.make_context("export", [str(out), "--format", fmt, "-o", str(out / name)])
        with ctx:
            export_cmd.invoke(ctx)
    ctx = plot_cmd.make_context("plot", [str(out)])
    with ctx:
        plot_cmd.invoke(ctx)


def _comparators_table(meta: dict, comp):
    """The comparators' test errors (``comparators.csv``, or ``None``: an empty table) as a rich table."""
    from rich.table import Table

    table = Table(title=f"{meta['dataset']}: long-term prediction on the test trajectories")
    for col in ("method", "description", "test RMSE"):
        table.add_column(col, justify="right" if col == "test RMSE" else "left")
    rows = comp.iterrows() if comp is not None else ()
    for _, c in rows:
        table.add_row(
            METHOD_NAMES.get(c["method"], c["method"]).replace("$\\mathcal{H}$", "H"),
            method_description(c["description"]),
            f"{c['test_rmse']:.4g}",
        )
    return table


def _print_law(law: dict, meta: dict, console) -> None:
    """The discovered law (as text and LaTeX), and the fit's most conserved formula when it is another."""
    import dsl

    console.print(f"discovered law: [bold]{dsl.to_display(law['expr'], law['params'])}[/bold]")
    console.print(f"LaTeX: {dsl.to_latex(law['expr'], law['params'])}")
    best = meta.get("most_conserved")
    if best and dsl.to_text(law["expr"]) != best["formula"]:
        expr = dsl.parse(best["formula"], [v["name"] for v in meta["variables"]])
        values = [float(v) for v in best["params"].split(";") if v.strip()]  # the fit table's form
        shown = dsl.to_display(expr, values or None)
        console.print(
            f"most conserved by the fit: {shown} (ratio {best['ratio']:.2g}); the law above is the "
            "one that most improved the meta-tailored predictions"
        )


def print_claims(checks: list, console) -> None:
    """One line per claim: whether it holds, what it says, and our numbers."""
    from rich.markup import escape

    console.print("the paper's claims, as the acceptance checks them (one MLP seed):")
    for c in checks:
        verdict = "[green]holds[/green]" if c.holds else "[red]does not hold[/red]"
        console.print(f"  {verdict}: {escape(c.claim)}: {escape(c.ours)}")
