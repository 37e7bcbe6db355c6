"""Click options shared by several commands, defined once."""

from __future__ import annotations

import click

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
