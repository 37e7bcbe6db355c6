"""The search's building blocks, for research scripts, benchmarks and the command line.

Most users need only :func:`formula_search.search` and :func:`formula_search.discover`. Here are the stages
they are made of: the enumeration of formulas (:class:`Enumerator`, :func:`enumeration_table`), the fitter
(:class:`FitConfig`, :class:`FitData`, :func:`fit_formulas`, :func:`survivors`; where the velocities
come from: :func:`velocity_source`, :func:`check_enumeration`), and the search for sums of terms
(:class:`TermConfig`, :func:`term_search`). These may change between versions.
"""

from formula_search._enumerate import COLUMNS as ENUMERATION_COLUMNS
from formula_search._enumerate import (
    Enumerator,
    check_search_size,
    count_formulas,
    enumerate_formulas,
    enumeration_table,
    estimate_count,
)
from formula_search._fit import (
    DERIVATIVES,
    FitConfig,
    FitData,
    check_enumeration,
    describe_velocities,
    explain_empty,
    fit_formulas,
    resolve_defaults,
    survivors,
    velocity_source,
)
from formula_search._terms import TermConfig, term_search

__all__ = [
    "DERIVATIVES",
    "ENUMERATION_COLUMNS",
    "Enumerator",
    "FitConfig",
    "FitData",
    "TermConfig",
    "check_enumeration",
    "check_search_size",
    "describe_velocities",
    "count_formulas",
    "enumerate_formulas",
    "enumeration_table",
    "estimate_count",
    "explain_empty",
    "fit_formulas",
    "resolve_defaults",
    "survivors",
    "term_search",
    "velocity_source",
]
