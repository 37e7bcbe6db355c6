"""Exhaustive enumeration of unit-valid formulas, size by size, without duplicates.

Formulas of size ``n`` are built from the stored formulas of smaller sizes: a unary operator on a formula of
size ``n - 1``, or a binary operator on sizes ``i + j = n - 1``. Stored formulas are grouped by dimension, so
``+`` and ``-`` only ever pair operands of equal dimension and no invalid combination is even formed. Only
the largest size is not stored: it streams out, which bounds memory.

Deduplication (see :mod:`dsl._canonical`): at the commutative level ``a + b`` and ``a * b`` are only formed
with ``a`` before ``b`` in enumeration order, which, since operands are themselves unique, leaves exactly one
tree per commutativity class. At the algebraic level every formula gets an interned canonical id; a formula is
kept only if its id is new, and larger formulas are built only from kept ones (sound because the canonical id
of a tree is a function of its operands' ids). The conservation level filters the algebraic output.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import dsl
from dsl._canonical import CanonicalForms, DedupLevel
from dsl._primitives import FREE, PRIMITIVES
from formula_search.errors import InputError

#: Columns of the enumeration table, in order.
COLUMNS = ("formula", "size", "dimension", "n_params", "param_units")

# Generation order: square before the trigonometric functions, so that among formulas of equal size that are
# the same law the one written with squares of inputs tends to come first (e.g. ``p^2 + c*cos(q)``).
_UNARY = ("square", "sin", "cos")
_BINARY = ("add", "sub", "mul", "div")
_PARAM_TOKEN = re.compile(r"\bc\b")


@dataclass(frozen=True, slots=True)
class Formula:
    """One enumerated formula (a row of the enumeration table).

    Attributes:
        formula: text that :func:`dsl.parse` reads back; parameters are ``c_0, c_1, ...``.
        size: number of tokens.
        dimension: SI unit of the formula's value, or ``"free"`` when a parameter can give it any unit.
        n_params: number of parameters.
        param_units: inferred SI unit of each parameter, in order, joined by ``"; "``.
    """

    formula: str
    size: int
    dimension: str
    n_params: int
    param_units: str


@dataclass(slots=True)
class _Rec:
    dim: tuple | None  # exponent tuple, or FREE
    text: str  # parameters written "c"
    prec: int
    n_params: int
    sid: int  # algebraic canonical id (-2 when not computed)
    op: str | None  # None for leaves
    kids: tuple  # (size, index) of operands, or the leaf name


def _number_params(text: str) -> str:
    counter = iter(range(1_000_000))
    return _PARAM_TOKEN.sub(lambda _: f"c_{next(counter)}", text)


class Enumerator:
    """Enumerates formulas over fixed variables; reusable across sizes and levels.

    Args:
        variables: the dataset's variables (names and units).
        dedup: deduplication level.
    """

    def __init__(
        self, variables: Sequence[dsl.Variable], *, dedup: DedupLevel | str = "commutative"
    ) -> None:
        if not variables:
            raise InputError("no variables to build formulas from")
        self.variables = tuple(variables)
        self.dedup = DedupLevel.parse(dedup)
        self._zero = (0,) * len(dsl.BASE_DIMENSIONS)
        self._forms = CanonicalForms()
        self._dim_text: dict = {}

    # -- public -------------------------------------------------------------------------------------------
    def formulas(
        self, max_size: int, *, on_size: Callable[[int, int], None] | None = None
    ) -> Iterator[Formula]:
        """Yield every formula of size 1 to ``max_size``, smallest first, in a deterministic order.

        Args:
            max_size: the largest number of tokens (``--depth``).
            on_size: called as ``on_size(size, count)`` when a size is finished (for progress display).
        """
        if not isinstance(max_size, int) or max_size < 1:
            raise InputError(f"depth must be a whole number of tokens >= 1, got {max_size!r}")
        level = self.dedup
        seen_sids: set[int] = set()
        seen_keys: set = set()
        store: dict[int, list[_Rec]] = {}
        groups: dict[int, dict] = {}
        for n in range(1, max_size + 1):
            keep = n < max_size
            bucket: list[_Rec] = []
            count = 0
            for rec in self._candidates(n, store, groups):
                if level >= DedupLevel.ALGEBRAIC:
                    if rec.sid == CanonicalForms.UNDEFINED or rec.sid in seen_sids:
                        continue
                    seen_sids.add(rec.sid)
                if keep:
                    bucket.append(rec)
                if level == DedupLevel.CONSERVATION:
                    key = self._forms.conservation_key(rec.sid)
                    if key is None or key in seen_keys:
                        continue
                    seen_keys.add(key)
                count += 1
                yield self._row(rec, n, store)
            if keep:
                store[n] = bucket
                by_dim = defaultdict(list)
                for i, rec in enumerate(bucket):
                    by_dim[rec.dim].append(i)
                groups[n] = dict(by_dim)
            if on_size is not None:
                on_size(n, count)

    def expr(self, formula: Formula | str) -> dsl.Expr:
        """The tree of an enumerated formula."""
        text = formula.formula if isinstance(formula, Formula) else formula
        return dsl.parse(text, [v.name for v in self.variables])

    # -- generation ---------------------------------------------------------------------------------------
    def _leaves(self) -> Iterator[_Rec]:
        forms = self._forms
        for v in self.variables:
            dim = tuple(v.dim.exps)
            yield _Rec(dim, v.name, 10, 0, forms.input(v.name), None, (v.name,))
        yield _Rec(FREE, "c", 10, 1, forms.param(), None, ("c",))

    def _candidates(self, n: int, store, groups) -> Iterator[_Rec]:
        if n == 1:
            yield from self._leaves()
            return
        forms = self._forms
        algebraic = self.dedup >= DedupLevel.ALGEBRAIC
        zero = self._zero
        apply = forms.apply
        # unary operators on size n - 1
        for op in _UNARY:
            prim = PRIMITIVES[op]
            for i, a in enumerate(store[n - 1]):
                if op == "square":
                    dim = FREE if a.dim is FREE else tuple(2 * x for x in a.dim)
                    text = f"({a.text})^2" if a.prec <= prim.precedence else f"{a.text}^2"
                    prec = prim.precedence
                else:
                    if a.dim is not FREE and a.dim != zero:
                        continue
                    dim = zero
                    text = f"{op}({a.text})"
                    prec = 10
                sid = apply(op, a.sid) if algebraic else -2
                yield _Rec(dim, text, prec, a.n_params, sid, op, ((n - 1, i),))
        # binary operators on sizes (i, j), i + j = n - 1
        for op in _BINARY:
            prim = PRIMITIVES[op]
            p = prim.precedence
            sym = f" {prim.symbol} " if p == 1 else prim.symbol
            for i in range(1, n - 1):
                j = n - 1 - i
                if prim.commutative and i > j:
                    continue
                left_all, right_all = store[i], store[j]
                for li, ri in self._pairs(op, groups[i], groups[j], prim.commutative and i == j):
                    a, b = left_all[li], right_all[ri]
                    if op in ("add", "sub"):
                        dim = b.dim if a.dim is FREE else a.dim
                    elif a.dim is FREE or b.dim is FREE:
                        dim = FREE
                    elif op == "mul":
                        dim = tuple(x + y for x, y in zip(a.dim, b.dim))
                    else:
                        dim = tuple(x - y for x, y in zip(a.dim, b.dim))
                    lt = f"({a.text})" if a.prec < p else a.text
                    rt = f"({b.text})" if b.prec <= p else b.text
                    sid = apply(op, a.sid, b.sid) if algebraic else -2
                    yield _Rec(
                        dim, lt + sym + rt, p, a.n_params + b.n_params, sid, op, ((i, li), (j, ri))
                    )

    @staticmethod
    def _pairs(op: str, left: dict, right: dict, ordered: bool) -> Iterator[tuple[int, int]]:
        """Index pairs ``(li, ri)`` of operands whose dimensions agree for ``op``, in lexicographic order.

        ``left``/``right`` map a dimension to the indices of the stored formulas of that dimension;
        ``ordered`` keeps only ``li <= ri`` (commutative operator on two operands of the same size).
        """
        all_r = sorted(i for idx in right.values() for i in idx)
        if op in ("add", "sub"):
            free_r = right.get(FREE, [])
            compatible = {
                dim: all_r if dim is FREE else sorted([*right.get(dim, ()), *free_r])
                for dim in left
            }
        else:
            compatible = dict.fromkeys(left, all_r)
        dim_of = {i: dim for dim, idx in left.items() for i in idx}
        for li in sorted(dim_of):
            rs = compatible[dim_of[li]]
            start = bisect.bisect_left(rs, li) if ordered else 0
            for k in range(start, len(rs)):
                yield li, rs[k]

    # -- output -------------------------------------------------------------------------------------------
    def _dim_str(self, dim) -> str:
        out = self._dim_text.get(dim)
        if out is None:
            out = "free" if dim is FREE else dsl.Dim(dim).to_units()
            self._dim_text[dim] = out
        return out

    def _row(self, rec: _Rec, n: int, store) -> Formula:
        text = _number_params(rec.text) if rec.n_params else rec.text
        units = ""
        if rec.n_params:
            target = None if rec.dim is FREE else rec.dim
            found: list = []
            self._pin(rec, target, store, found)
            units = "; ".join(self._dim_str(tuple(d)) for d in found)
        return Formula(text, n, self._dim_str(rec.dim), rec.n_params, units)

    def _pin(self, rec: _Rec, target, store, out: list) -> None:
        # Same rules as dsl.param_units, on the enumeration's records (no tree is built).
        if rec.op is None:
            if rec.n_params:
                out.append(target if target is not None else self._zero)
            return
        kids = [store[s][i] for s, i in rec.kids]
        if not rec.n_params:
            return
        op = rec.op
        if op in ("sin", "cos"):
            self._pin(kids[0], self._zero, store, out)
        elif op == "square":
            self._pin(
                kids[0],
                None if target is None else tuple(Fraction(x) / 2 for x in target),
                store,
                out,
            )
        elif op in ("add", "sub"):
            known = next((k.dim for k in kids if k.dim is not FREE), None)
            t = known if known is not None else target
            for k in kids:
                self._pin(k, t, store, out)
        else:
            a, b = kids
            if a.dim is not FREE and b.dim is not FREE:
                self._pin(a, a.dim, store, out)
                self._pin(b, b.dim, store, out)
            elif a.dim is FREE and b.dim is not FREE:
                want = None
                if target is not None:
                    sign = -1 if op == "mul" else 1
                    want = tuple(t + sign * k for t, k in zip(target, b.dim))
                self._pin(a, want, store, out)
                self._pin(b, b.dim, store, out)
            elif b.dim is FREE and a.dim is not FREE:
                want = None
                if target is not None:
                    want = tuple(t - k if op == "mul" else k - t for t, k in zip(target, a.dim))
                self._pin(a, a.dim, store, out)
                self._pin(b, want, store, out)
            else:
                self._pin(a, None, store, out)
                want = (
                    None
                    if target is None
                    else (target if op == "mul" else tuple(-t for t in target))
                )
                self._pin(b, want, store, out)


def enumerate_formulas(
    variables: Sequence[dsl.Variable],
    *,
    max_size: int,
    dedup: DedupLevel | str = "commutative",
    on_size: Callable[[int, int], None] | None = None,
) -> Iterator[Formula]:
    """Yield every unit-valid formula over ``variables`` with at most ``max_size`` tokens.

    Args:
        variables: the dataset's variables with units.
        max_size: largest size in tokens (the command line's ``--depth``).
        dedup: ``"commutative"`` (the paper's level), ``"algebraic"`` or ``"conservation"``.
        on_size: progress callback ``on_size(size, count)``.

    Yields:
        :class:`Formula` rows, smallest size first, in a deterministic order.
    """
    yield from Enumerator(variables, dedup=dedup).formulas(max_size, on_size=on_size)


def enumeration_table(
    variables: Sequence[dsl.Variable], *, max_size: int, dedup: DedupLevel | str = "commutative"
):
    """The enumeration as a pandas DataFrame with columns :data:`COLUMNS`."""
    import pandas as pd

    rows = list(enumerate_formulas(variables, max_size=max_size, dedup=dedup))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def count_formulas(
    variables: Sequence[dsl.Variable], *, max_size: int, dedup: DedupLevel | str = "commutative"
) -> dict[int, int]:
    """Number of formulas of each size (1 to ``max_size``) at a deduplication level."""
    counts: dict[int, int] = {}
    for _ in enumerate_formulas(
        variables, max_size=max_size, dedup=dedup, on_size=lambda n, c: counts.__setitem__(n, c)
    ):
        pass
    return counts
