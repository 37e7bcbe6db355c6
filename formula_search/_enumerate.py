"""Exhaustive enumeration of unit-valid formulas, size by size, without duplicates.

Formulas of size ``n`` are built from the stored formulas of smaller sizes: a binary operator on sizes
``i + j = n - 1``, or a unary operator on a formula of size ``n - 1``. Stored formulas are grouped by
dimension, so ``+`` and ``-`` only ever pair operands of equal dimension and no invalid combination is even
formed. Only sizes below the largest are stored: the largest size streams out, which bounds memory.

Deduplication (see :mod:`dsl._canonical`): at the commutative level ``a + b`` and ``a * b`` are only formed
with ``a`` before ``b`` in enumeration order, which, since operands are themselves unique, leaves exactly one
tree per commutativity class. At the algebraic level every formula gets an interned canonical id; a formula is
kept only if its id is new, and larger formulas are built only from kept ones (sound because the canonical id
of a tree is a function of its operands' ids). The conservation level filters the algebraic output.

Order: sizes ascending; within a size binary operators (``+ - * /``) come before unary ones
(``^2 sin cos``), each over operands in enumeration order. Binary first makes the representative of an
algebraic class the general form ``c*p^2`` rather than ``(c*p)^2``, whose squared parameter cannot be
negative; the paper's laws are kept as ``p^2 + c_0*cos(q)`` and ``q^2 + c_0*p^2``.

Hot-loop representation: dimensions are small integer ids into an interning table (``-1`` for a dimension a
parameter leaves free), parameters are written ``c_%d`` and numbered once per output row with ``%``, and the
inferred parameter units of each stored formula are computed once, from its operands', and cached.
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import dsl
from dsl import PRIMITIVES, CanonicalForms, DedupLevel
from formula_search.errors import InputError

#: Columns of the enumeration table, in order.
COLUMNS = ("formula", "size", "dimension", "n_params", "param_units")

_ADDITIVE = ("add", "sub")
_FREE = -1  # dimension id of a subformula whose dimension a parameter leaves free
_ATOM = 10  # precedence of leaves and function calls


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


class _Rec:
    """A stored formula: what building larger formulas and printing rows needs."""

    __slots__ = ("dim", "text", "prec", "np", "sid", "op", "a", "b", "units")

    def __init__(self, dim, text, prec, np, sid, op, a, b) -> None:
        self.dim = dim  # dimension id, or _FREE
        self.text = text  # parameters written "c_%d"
        self.prec = prec  # precedence of the top operator (for parentheses)
        self.np = np  # number of parameters
        self.sid = sid  # algebraic canonical id (-2 when not computed)
        self.op = op  # operator name; None for a leaf
        self.a = a  # operands (records) or None
        self.b = b
        self.units = None  # cached parameter units: str (fixed dimension) or {target: str} (free)


class _Dims:
    """Interning table of dimensions with memoised arithmetic on ids."""

    def __init__(self) -> None:
        zero = dsl.DIMENSIONLESS.exps
        self.exps: list[tuple] = []
        self._ids: dict[tuple, int] = {}
        self._text: dict[int, str] = {_FREE: "free"}
        self._memo: dict[tuple, int] = {}
        self.zero = self.intern(zero)

    def intern(self, exps: tuple) -> int:
        i = self._ids.get(exps)
        if i is None:
            i = len(self.exps)
            self._ids[exps] = i
            self.exps.append(exps)
        return i

    def text(self, i: int) -> str:
        out = self._text.get(i)
        if out is None:
            out = self._text[i] = dsl.Dim(self.exps[i]).to_units()
        return out

    def combine(self, op: str, x: int, y: int = 0) -> int:
        """``mul``/``div`` of ids x, y; ``inv`` of x; ``("pow", k)`` raises x to the power k (a Fraction);
        _FREE in gives _FREE out."""
        if x == _FREE or y == _FREE:
            return _FREE
        key = (op, x, y)
        out = self._memo.get(key)
        if out is None:
            a, b = self.exps[x], self.exps[y]
            if op == "mul":
                e = tuple(u + v for u, v in zip(a, b))
            elif op == "div":
                e = tuple(u - v for u, v in zip(a, b))
            elif isinstance(op, tuple):  # ("pow", k)
                e = tuple(_whole(Fraction(u) * op[1]) for u in a)
            else:  # inv
                e = tuple(-u for u in a)
            out = self._memo[key] = self.intern(e)
        return out


class Enumerator:
    """Enumerates formulas over fixed variables; reusable across sizes and levels.

    Args:
        variables: the dataset's variables (names and units).
        dedup: deduplication level.
        operators: the operators of :data:`dsl.PRIMITIVES` to build with; default the
            paper's ``+ - * / sin cos square`` (:data:`dsl.DEFAULT_OPERATORS`), e.g. ``(*DEFAULT_OPERATORS,
            "sqrt")`` to add square roots.
    """

    def __init__(
        self,
        variables: Sequence[dsl.Variable],
        *,
        dedup: DedupLevel | str = "commutative",
        operators: Sequence[str] | None = None,
    ) -> None:
        if not variables:
            raise InputError("no variables to build formulas from")
        self.variables = tuple(variables)
        self.dedup = DedupLevel.parse(dedup)
        ops = dsl.check_operators(dsl.DEFAULT_OPERATORS if operators is None else operators)
        self.operators = ops
        self._binary = tuple(op for op in ops if PRIMITIVES[op].arity == 2)
        self._unary = tuple(PRIMITIVES[op] for op in ops if PRIMITIVES[op].arity == 1)
        self._forms = CanonicalForms()
        self._dims = _Dims()

    # -- public -------------------------------------------------------------------------------------------
    def formulas(
        self, max_size: int, *, on_size: Callable[[int, int], None] | None = None
    ) -> Iterator[Formula]:
        """Yield every formula of size 1 to ``max_size``, smallest first, in a deterministic order.

        Args:
            max_size: the largest number of tokens (``--depth``).
            on_size: called as ``on_size(size, count)`` when a size is finished (for progress display).
        """
        for row in self.rows(max_size, on_size=on_size):
            yield Formula(*row)

    def rows(
        self, max_size: int, *, on_size: Callable[[int, int], None] | None = None
    ) -> Iterator[tuple[str, int, str, int, str]]:
        """Like :meth:`formulas`, as plain tuples in :data:`COLUMNS` order (faster for writing tables)."""
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise InputError(f"depth must be a whole number of tokens >= 1, got {max_size!r}")
        level = self.dedup
        algebraic = level >= DedupLevel.ALGEBRAIC
        conservation = level == DedupLevel.CONSERVATION
        forms = self._forms
        compute = forms.compute
        undefined = CanonicalForms.UNDEFINED
        dim_text = self._dims.text
        units_of = self._units_node
        numbering = [tuple(range(k)) for k in range(max_size + 1)]
        seen_sids: set[int] = set()
        seen_keys: set = set()
        store: dict[int, list[_Rec]] = {}
        for n in range(1, max_size + 1):
            keep = n < max_size
            bucket: list[_Rec] = []
            count = 0
            for op, a, b, dim in self._candidates(n, store):
                if algebraic:
                    if op is None:
                        sid = a.sid
                    else:
                        sid = compute(op, a.sid) if b is None else compute(op, a.sid, b.sid)
                    if sid == undefined or sid in seen_sids:
                        continue
                    seen_sids.add(sid)
                else:
                    sid = -2
                if op is None:  # leaf
                    rec = a
                    text, np = a.text, a.np
                else:
                    text, prec, np = self._text(op, a, b)
                    rec = _Rec(dim, text, prec, np, sid, op, a, b) if keep else None
                if keep:
                    bucket.append(rec)
                if conservation:
                    key = forms.conservation_key(sid)
                    if key is None or key in seen_keys:
                        continue
                    seen_keys.add(key)
                count += 1
                if np:
                    units = units_of(op, a, b, dim) if rec is None else self._units(rec, dim)
                    yield text % numbering[np], n, dim_text(dim), np, units
                else:
                    yield text, n, dim_text(dim), 0, ""
            if keep:
                store[n] = bucket
            if on_size is not None:
                on_size(n, count)

    def expr(self, formula: Formula | str) -> dsl.Expr:
        """The tree of an enumerated formula."""
        text = formula.formula if isinstance(formula, Formula) else formula
        return dsl.parse(text, [v.name for v in self.variables])

    # -- generation ---------------------------------------------------------------------------------------
    def _leaves(self) -> list[_Rec]:
        forms, dims = self._forms, self._dims
        out = [
            _Rec(
                dims.intern(tuple(v.dim.exps)),
                v.name,
                _ATOM,
                0,
                forms.input(v.name),
                None,
                None,
                None,
            )
            for v in self.variables
        ]
        out.append(_Rec(_FREE, "c_%d", _ATOM, 1, forms.param(), None, None, None))
        return out

    def _candidates(self, n: int, store: dict[int, list[_Rec]]) -> Iterator[tuple]:
        """``(op, a, b, dim)`` for every well-formed formula of size ``n`` (``b`` is None for unary)."""
        if n == 1:
            for leaf in self._leaves():
                yield None, leaf, None, leaf.dim
            return
        dims = self._dims
        zero = dims.zero
        combine = dims.combine
        for op in self._binary:
            commutative = PRIMITIVES[op].commutative
            additive = op in _ADDITIVE
            for i in range(1, n - 1):
                j = n - 1 - i
                if commutative and i > j:
                    continue
                left, right = store[i], store[j]
                ordered = commutative and i == j
                if additive:
                    groups: dict[int, list[int]] = {}
                    for k, r in enumerate(right):
                        groups.setdefault(r.dim, []).append(k)
                    free = groups.get(_FREE, [])
                    everything = list(range(len(right)))
                    compatible = {
                        d: (everything if d == _FREE else sorted([*idx, *free]))
                        for d, idx in groups.items()
                    }
                    for li, a in enumerate(left):
                        da = a.dim
                        # a free left operand matches everything; a fixed one its own dimension or free
                        rs = everything if da == _FREE else compatible.get(da, free)
                        if ordered:
                            rs = rs[bisect.bisect_left(rs, li) :]
                        if da == _FREE:
                            for k in rs:
                                b = right[k]
                                yield op, a, b, b.dim
                        else:
                            for k in rs:
                                yield op, a, right[k], da
                else:
                    for li, a in enumerate(left):
                        da = a.dim
                        for b in right[li:] if ordered else right:
                            yield op, a, b, combine(op, da, b.dim)
        for prim in self._unary:
            if prim.power is not None:  # any unit in, the unit to that power out
                power = ("pow", prim.power)
                for a in store[n - 1]:
                    yield prim.name, a, None, combine(power, a.dim)
            else:  # a dimensionless function
                for a in store[n - 1]:
                    if a.dim == _FREE or a.dim == zero:
                        yield prim.name, a, None, zero

    @staticmethod
    def _text(op: str, a: _Rec, b: _Rec | None) -> tuple[str, int, int]:
        """Text, precedence and parameter count of ``op`` applied to ``a`` (and ``b``)."""
        prim = PRIMITIVES[op]
        if b is None:
            if prim.style == "postfix":
                at = f"({a.text})" if a.prec <= prim.precedence else a.text
                return at + prim.symbol, prim.precedence, a.np
            return f"{prim.symbol}({a.text})", _ATOM, a.np
        p = prim.precedence
        lt = f"({a.text})" if a.prec < p else a.text
        rt = (
            f"({b.text})" if b.prec <= p else b.text
        )  # left-associative: equal precedence on the right
        sep = f" {prim.symbol} " if p == 1 else prim.symbol
        return lt + sep + rt, p, a.np + b.np

    # -- parameter units ----------------------------------------------------------------------------------
    def _units(self, rec: _Rec, target: int) -> str:
        """Units of ``rec``'s parameters (``"; "``-joined) when ``rec`` must have dimension ``target``.

        Same rules as :func:`dsl.param_units`: a free subformula takes the dimension its context asks for
        (``_FREE``: unconstrained, parameters dimensionless); a subformula of fixed dimension ignores it.
        """
        if not rec.np:
            return ""
        if rec.dim != _FREE:
            out = rec.units
            if out is None:
                out = rec.units = self._units_node(rec.op, rec.a, rec.b, rec.dim)
            return out
        cache = rec.units
        if cache is None:
            cache = rec.units = {}
        out = cache.get(target)
        if out is None:
            out = cache[target] = self._units_node(rec.op, rec.a, rec.b, target)
        return out

    def _units_node(self, op: str | None, a: _Rec, b: _Rec | None, target: int) -> str:
        dims = self._dims
        if op is None:  # the parameter leaf
            return dims.text(dims.zero if target == _FREE else target)
        units = self._units
        prim = PRIMITIVES[op]
        if prim.dimensionless_function:
            return units(a, dims.zero)
        if prim.power is not None:  # x^k must have the target's unit: x has target^(1/k)
            return units(a, dims.combine(("pow", 1 / prim.power), target))
        if op == "add" or op == "sub":
            t = a.dim if a.dim != _FREE else (b.dim if b.dim != _FREE else target)
            if t == _FREE:  # both sides free and unconstrained: they must still agree
                t = dims.zero
            return _join(units(a, t), units(b, t))
        da, db = a.dim, b.dim
        if da != _FREE and db != _FREE:
            return _join(units(a, da), units(b, db))
        if da == _FREE and db != _FREE:  # mul: a = T / b;  div: a = T * b
            want = dims.combine("div" if op == "mul" else "mul", target, db)
            return _join(units(a, want), units(b, db))
        if db == _FREE and da != _FREE:  # mul: b = T / a;  div: b = a / T
            want = (
                dims.combine("div", target, da) if op == "mul" else dims.combine("div", da, target)
            )
            return _join(units(a, da), units(b, want))
        if target == _FREE:  # both free, unconstrained: each side chooses freely
            return _join(units(a, _FREE), units(b, _FREE))
        # both free: the left one dimensionless, the right one takes the rest
        want = target if op == "mul" else dims.combine("inv", target)
        return _join(units(a, dims.zero), units(b, want))


def _whole(x: Fraction) -> int | Fraction:
    return int(x) if x.denominator == 1 else x


def _join(x: str, y: str) -> str:
    if not x:
        return y
    if not y:
        return x
    return f"{x}; {y}"


def enumerate_formulas(
    variables: Sequence[dsl.Variable],
    *,
    max_size: int,
    dedup: DedupLevel | str = "commutative",
    on_size: Callable[[int, int], None] | None = None,
    operators: Sequence[str] | None = None,
) -> Iterator[Formula]:
    """Yield every unit-valid formula over ``variables`` with at most ``max_size`` tokens.

    Args:
        variables: the dataset's variables with units.
        max_size: largest size in tokens (the command line's ``--depth``).
        dedup: ``"commutative"`` (the paper's level), ``"algebraic"`` or ``"conservation"``.
        on_size: progress callback ``on_size(size, count)``.
        operators: operators to build with (default :data:`dsl.DEFAULT_OPERATORS`; see :class:`Enumerator`).

    Yields:
        :class:`Formula` rows, smallest size first, in a deterministic order.
    """
    enumerator = Enumerator(variables, dedup=dedup, operators=operators)
    yield from enumerator.formulas(max_size, on_size=on_size)


def enumeration_table(
    variables: Sequence[dsl.Variable],
    *,
    max_size: int,
    dedup: DedupLevel | str = "commutative",
    operators: Sequence[str] | None = None,
):
    """The enumeration as a pandas DataFrame with columns :data:`COLUMNS`.

    Columns: ``formula`` (str, parameters ``c_0, c_1, ...``), ``size`` (int, tokens), ``dimension`` (str, SI
    unit or ``"free"``), ``n_params`` (int), ``param_units`` (str, SI units joined by ``"; "``).
    """
    import pandas as pd

    rows = list(Enumerator(variables, dedup=dedup, operators=operators).rows(max_size))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def count_formulas(
    variables: Sequence[dsl.Variable],
    *,
    max_size: int,
    dedup: DedupLevel | str = "commutative",
    operators: Sequence[str] | None = None,
) -> dict[int, int]:
    """Number of formulas of each size (1 to ``max_size``) at a deduplication level."""
    counts: dict[int, int] = {}
    for _ in Enumerator(variables, dedup=dedup, operators=operators).rows(
        max_size, on_size=lambda n, c: counts.__setitem__(n, c)
    ):
        pass
    return counts


#: Largest size counted exactly by :func:`estimate_count` (0.1 s at 2 variables); beyond, extrapolated.
EXACT_UP_TO = 7


def estimate_count(
    variables: Sequence[dsl.Variable],
    *,
    max_size: int,
    dedup: DedupLevel | str = "commutative",
    operators: Sequence[str] | None = None,
) -> tuple[float, bool]:
    """Number of formulas up to ``max_size`` before enumerating them: ``(count, exact)``.

    Sizes up to :data:`EXACT_UP_TO` are counted; each larger size is the size two below times the growth
    from size ``EXACT_UP_TO - 2`` to ``EXACT_UP_TO`` (about 10 per two tokens for two variables; depth 9
    of the pendulum: 3.3 million counted, 2.9 million estimated).
    """
    top = min(max_size, EXACT_UP_TO)
    counts = {
        n: float(c)
        for n, c in count_formulas(
            variables, max_size=top, dedup=dedup, operators=operators
        ).items()
    }
    if max_size <= EXACT_UP_TO:
        return sum(counts.values()), True
    growth = counts.get(top, 0.0) / max(counts.get(top - 2, 0.0), 1.0)
    for n in range(top + 1, max_size + 1):
        counts[n] = counts.get(n - 2, 0.0) * growth
        if counts[n] > 1e300:
            return math.inf, False
    return sum(counts.values()), False


#: Bytes a formula holds during a fit (its text, the fit table's row and the parse; measured about 300).
BYTES_PER_FORMULA = 500


def available_memory() -> float:
    """Bytes of memory available to a new job (Linux ``MemAvailable``; else free pages; ``inf`` unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def check_search_size(
    variables: Sequence[dsl.Variable],
    *,
    max_size: int,
    dedup: DedupLevel | str = "commutative",
    operators: Sequence[str] | None = None,
) -> float:
    """The estimated number of formulas of a search (:func:`estimate_count`), refusing one whose formulas
    would not fit in the memory available.

    Raises:
        InputError: the estimate, its memory and the memory available, in one line.
    """
    count, exact = estimate_count(variables, max_size=max_size, dedup=dedup, operators=operators)
    need = count * BYTES_PER_FORMULA
    have = available_memory()
    if need > 0.5 * have:
        how = "" if exact else " (extrapolated from smaller depths)"
        raise InputError(
            f"--depth {max_size}: about {count:.2g} formulas{how}, about {need / 2**30:.3g} GiB to fit them, "
            f"and {have / 2**30:.3g} GiB of memory is available; use a smaller --depth (each 2 tokens "
            "multiply the count about tenfold)"
        )
    return count
