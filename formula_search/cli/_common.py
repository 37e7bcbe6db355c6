"""Click options and terminal widgets shared by several commands, defined once."""

from __future__ import annotations

import click

import dsl
from formula_search.progress import progress_bar  # noqa: F401  (the commands' bar)

#: Deduplication levels, weakest first (see docs/enumerate.md).
DEDUP_LEVELS = ("commutative", "algebraic", "conservation")


def dedup_option(
    help: str = "Duplicate removal of the search (commutative is the paper's).",
) -> click.Option:
    """``--dedup LEVEL``, default ``conservation``."""
    return click.option(
        "--dedup",
        type=click.Choice(DEDUP_LEVELS),
        default="conservation",
        show_default=True,
        help=help,
    )


def parse_operators(text: str | None) -> tuple[str, ...] | None:
    """``--operators default,sqrt`` -> the operator names (``default``: the paper's); ``None`` unset."""
    import dsl

    if text is None:
        return None
    names: list[str] = []
    for name in (n.strip() for n in text.split(",")):
        if name == "default":
            names += dsl.DEFAULT_OPERATORS
        elif name:
            names.append(name)
    return dsl.check_operators(names)


#: ``--operators``: the operators formulas are built with (rows of dsl.PRIMITIVES).
OPERATORS = click.option(
    "--operators",
    default=None,
    metavar="LIST",
    help=f"Operators to build formulas with, separated by commas, from {', '.join(dsl.PRIMITIVES)}; "
    "'default' is the paper's + - * / sin cos square [default: default]. E.g. default,sqrt.",
)


#: ``--measure``: the conservation measure of the fit (see formula_search._measure and docs/fitting.md).
MEASURE = click.option(
    "--measure",
    type=click.Choice(["derivative", "paper"]),
    default=None,
    help="Conservation measure: derivative (dg/dt along the data against velocities paired at random; "
    "works on one recording) or paper (the Noether paper's variance share against shuffled sequences; "
    "needs sequences at different energies) [the dataset card's [search] measure, else derivative].",
)

#: ``--smoothing``: how the derivative measure smooths states and velocities.
SMOOTHING = click.option(
    "--smoothing",
    default="auto",
    show_default=True,
    metavar="auto|off|LAMBDA",
    help="Derivative measure: a smoothing spline per variable whose weight is chosen by "
    "cross-validation (auto), the interpolating spline (off), or that weight.",
)


def parse_study_steps(text: str) -> tuple[int, ...]:
    """``--study 0,1,5,20`` -> (0, 1, 5, 20): inner-step counts of the figure-6 study ("" -> ())."""
    from formula_search.errors import InputError

    try:
        steps = tuple(int(s) for s in text.split(",")) if text else ()
    except ValueError:
        raise InputError(f"--study: expected integers separated by commas, got {text!r}") from None
    if any(k < 0 for k in steps):
        raise InputError(f"--study: inner-step counts must be >= 0, got {text!r}")
    return steps
