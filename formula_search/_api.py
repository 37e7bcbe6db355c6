"""The public Python entry point of the symbolic search: :func:`search` and its :class:`SearchResult`.

Everything here is also what ``fsearch fit`` does; torch is imported only when the fit runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import dsl
from formula_search.errors import InputError

#: Columns of :attr:`SearchResult.laws`, in order.
LAW_COLUMNS = ("formula", "params", "param_units", "ratio", "size", "n_params")


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The formulas a search found conserved, and the whole fit table.

    Attributes:
        table: every candidate formula with its fitted constants and scores (the columns of
            ``fsearch fit``'s ``fit.parquet``: formula, size, n_params, params, param_units, true_score,
            random_score, ratio, accepted, status).
        variables: the dataset's variables (name and unit).
        dataset: the dataset's name.
        measure: the conservation measure used (``"derivative"`` or ``"paper"``).
    """

    table: pd.DataFrame
    variables: tuple[dsl.Variable, ...]
    dataset: str = ""
    measure: str = "derivative"

    @property
    def laws(self) -> pd.DataFrame:
        """The accepted formulas, best first (ties within a factor 2 of ratio: the smaller formula first),
        with the columns :data:`LAW_COLUMNS`; ``params`` holds tuples of floats."""
        from formula_search._fit import survivors

        best = survivors(self.table).reset_index(drop=True)
        out = pd.DataFrame(
            {
                "formula": best["formula"],
                "params": [_floats(p) for p in best["params"]],
                "param_units": best["param_units"] if "param_units" in best else "",
                "ratio": best["ratio"].astype(float),
                "size": best["size"] if "size" in best else [None] * len(best),
                "n_params": best["n_params"] if "n_params" in best else [None] * len(best),
            }
        )
        return out[list(LAW_COLUMNS)]

    def _law(self, i: int) -> tuple[dsl.Expr, tuple[float, ...]]:
        laws = self.laws
        if not 0 <= i < len(laws):
            raise IndexError(f"law {i}: the search found {len(laws)} law(s)")
        row = laws.iloc[i]
        return dsl.parse(row["formula"], [v.name for v in self.variables]), row["params"]

    def sympy(self, i: int = 0):
        """The ``i``-th law as a sympy expression with its fitted constants."""
        expr, params = self._law(i)
        return dsl.to_sympy(expr, list(params) if params else None)

    def latex(self, i: int = 0, digits: int = 4) -> str:
        """The ``i``-th law in LaTeX, constants to ``digits`` significant digits."""
        expr, params = self._law(i)
        return dsl.to_latex(expr, list(params) if params else None, digits=digits)

    def save(self, folder: str | Path) -> Path:
        """Write ``fit.parquet`` and ``survivors.csv`` (as ``fsearch fit`` does) into ``folder``."""
        from formula_search._fit import survivors
        from formula_search.io import write_table

        folder = Path(folder)
        write_table(self.table, folder / "fit.parquet")
        write_table(survivors(self.table), folder / "survivors.csv")
        return folder

    def __repr__(self) -> str:
        laws = self.laws
        head = f"SearchResult({self.dataset or 'data'}: {len(laws)} of {len(self.table)} conserved"
        if len(laws):
            head += f"; best {laws['formula'].iloc[0]} with {laws['params'].iloc[0]}"
        return head + ")"


def _floats(text) -> tuple[float, ...]:
    if isinstance(text, tuple | list):
        return tuple(float(v) for v in text)
    return tuple(float(v) for v in str(text).split(";") if v.strip())


def search(
    data,
    *,
    depth: int = 7,
    dedup: str = "conservation",
    operators: Sequence[str] | None = None,
    formulas: Sequence[str] | None = None,
    measure: str | None = None,
    ratio: float = 0.01,
    smoothing: str | float = "auto",
    split: str = "train",
    jobs: int = 1,
    device: str = "cpu",
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    **fit_options,
) -> SearchResult:
    """Enumerate every unit-valid formula up to ``depth`` tokens and keep those conserved along ``data``.

    Args:
        data: a :class:`formula_search.Dataset` (:func:`formula_search.load_dataset`,
            :meth:`formula_search.Dataset.from_arrays`) or the name or path of one.
        depth: largest formula size in tokens (``p^2 - c*cos(q)`` has 7).
        dedup: duplicate removal of the enumeration: ``commutative``, ``algebraic`` or ``conservation``.
        operators: the operators to build with (default the paper's ``+ - * / sin cos square``; e.g.
            ``[*dsl.DEFAULT_OPERATORS, "sqrt"]`` adds square roots).
        formulas: fit these formula texts (a list, one text, or a table with a ``formula`` column)
            instead of enumerating.
        measure: ``"derivative"`` (works on one recording) or ``"paper"`` (the Noether paper's); ``None``:
            the dataset card's ``[search] measure``, else ``"derivative"``.
        ratio: a formula is accepted when its score is at most ``ratio`` times chance.
        smoothing: ``"auto"``, ``"off"`` or a smoothing weight (derivative measure).
        split: which trajectories to fit on (``train``, ``test`` or ``all``).
        jobs, device, seed: parallel processes, ``cpu``/``cuda``/``auto``, random seed.
        progress: called with the number of formulas fitted after each chunk.
        fit_options: any other field of :class:`formula_search._fit.FitConfig` (``window``,
            ``detrend``, ``chunk_size``, ...); ``window`` and ``detrend`` default to the dataset's.

    Returns:
        A :class:`SearchResult`; ``result.laws`` is the table of conserved formulas, best first.

    Raises:
        InputError: bad options or data, or a search too large for the memory available.
    """
    from formula_search._enumerate import check_search_size, enumeration_table
    from formula_search._fit import (
        FitConfig,
        FitData,
        check_enumeration,
        fit_formulas,
        resolve_defaults,
    )
    from formula_search.data import Dataset, load_dataset

    if not isinstance(data, Dataset):
        data = load_dataset(data)
    measure = measure if measure is not None else data.search_measure()
    config = FitConfig(
        measure=measure,
        ratio=ratio,
        smoothing=smoothing,
        jobs=jobs,
        device=device,
        seed=seed,
        **fit_options,
    )
    config = resolve_defaults(config, data)  # window and detrend from the dataset's card when unset
    check_enumeration(config)
    if formulas is None:
        if depth < 1:
            raise InputError(f"depth must be >= 1, got {depth}")
        check_search_size(data.variables, max_size=depth, dedup=dedup, operators=operators)
        formulas = enumeration_table(
            data.variables, max_size=depth, dedup=dedup, operators=operators
        )
    elif isinstance(formulas, str):
        formulas = [formulas]
    elif not isinstance(formulas, pd.DataFrame):
        formulas = list(formulas)
    table = fit_formulas(
        formulas, FitData.from_dataset(data, split), config=config, progress=progress
    )
    return SearchResult(table, tuple(data.variables), data.name, measure)
