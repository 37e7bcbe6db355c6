"""Canonical forms used to remove duplicate formulas.

Three levels, each coarser than the one before:

``commutative``
    Formulas equal up to swapping the operands of ``+`` and ``*`` (the paper's level). Handled during
    enumeration by an ordering rule, no key needed.
``algebraic``
    Equal as rational expressions in the variables and in ``sin``/``cos`` atoms, after flattening ``+`` and
    ``*`` (associativity), cancelling ``x - x`` and ``x / x``, writing ``x*x`` as ``x^2``, collapsing every
    subexpression without inputs into one generic constant (a parameter), and taking the sign and rational
    factor out of a sum used as a factor (``(c - q)^2`` ~ ``(q + c)^2``) or as the argument of ``sin``/``cos``
    (``cos(c - q)`` ~ ``cos(q + c)``). Products of sums are not expanded.
``conservation``
    Conserve the same quantity: ``g``, ``c*g``, ``g + c``, ``-g``, ``g / c``, ``1/g``, ``g^2`` (and, for a sum,
    any rescaling: ``c*p^2 + cos(q)`` ~ ``p^2 + c*cos(q)``). Formulas without inputs conserve nothing and are dropped.

Algebraic forms are *interned*: every canonical sum gets a small integer id, and the id of an operator applied
to canonical operands is computed from the operands' ids alone (the form is compositional). This is what lets
the enumerator build larger formulas only from representatives of smaller classes.

A canonical sum is a tuple of ``(monomial, coefficient)`` pairs sorted by monomial; a monomial is a sorted tuple
of ``(atom id, exponent)``; an atom is an input, ``sin``/``cos`` of a sum, or a sum with several terms used as a
factor. A coefficient is an exact :class:`~fractions.Fraction` or :data:`P` (a free constant).
"""

from __future__ import annotations

import enum
import math
from fractions import Fraction

from dsl._primitives import PRIMITIVES

#: The coefficient "some constant to be fitted".
P = "P"
_ONE = Fraction(1)
_ZERO = Fraction(0)


class DedupLevel(enum.IntEnum):
    """How aggressively duplicates are removed (each level removes everything the previous one does)."""

    COMMUTATIVE = 1
    ALGEBRAIC = 2
    CONSERVATION = 3

    @classmethod
    def parse(cls, text: str | DedupLevel) -> DedupLevel:
        if isinstance(text, DedupLevel):
            return text
        try:
            return cls[text.strip().upper()]
        except KeyError:
            from dsl.errors import InputError

            names = ", ".join(level.name.lower() for level in cls)
            raise InputError(f"unknown dedup level {text!r}; choose one of {names}") from None


def _cmul(a, b):
    if a == 0 or b == 0:
        return _ZERO
    if a is P or b is P:
        return P
    return a * b


def _cadd(a, b):
    if a is P or b is P:
        return P
    return a + b


def _coef_key(c) -> tuple:
    return (1, 0, 1) if c is P else (0, c.numerator, c.denominator)


class CanonicalForms:
    """Interning table of algebraic canonical forms.

    Use :meth:`of` for a whole tree, or the operator methods (:meth:`apply`) with operand ids during
    enumeration. Ids are only meaningful within one instance.
    """

    #: id returned for undefined expressions (division by an expression that cancels to zero).
    UNDEFINED = -1

    def __init__(self) -> None:
        self._sum_ids: dict[tuple, int] = {}
        self._sums: list[tuple] = []
        self._atom_ids: dict[tuple, int] = {}
        self._atoms: list[tuple] = []
        self._apply_cache: dict[tuple, int] = {}
        self._ops = {
            "add": self._add,
            "sub": self._sub,
            "mul": self._mul,
            "div": self._div,
            "square": self._square,
            "sin": self._sin,
            "cos": self._cos,
        }

    # -- interning ----------------------------------------------------------------------------------------
    def _sum(self, terms: dict[tuple, object]) -> int:
        key = tuple(
            sorted(
                ((m, c) for m, c in terms.items() if c is P or c != 0),
                key=lambda mc: (mc[0], _coef_key(mc[1])),
            )
        )
        sid = self._sum_ids.get(key)
        if sid is None:
            sid = len(self._sums)
            self._sum_ids[key] = sid
            self._sums.append(key)
        return sid

    def _atom(self, key: tuple) -> int:
        aid = self._atom_ids.get(key)
        if aid is None:
            aid = len(self._atoms)
            self._atom_ids[key] = aid
            self._atoms.append(key)
        return aid

    def terms(self, sid: int) -> tuple:
        """The sorted ``(monomial, coefficient)`` pairs of canonical sum ``sid``."""
        return self._sums[sid]

    # -- leaves -------------------------------------------------------------------------------------------
    def input(self, name: str) -> int:
        return self._sum({((self._atom(("in", name)), 1),): _ONE})

    def param(self) -> int:
        return self._sum({(): P})

    def number(self, value: float | Fraction) -> int:
        return self._sum({(): Fraction(value).limit_denominator(10**9)})

    def is_constant(self, sid: int) -> bool:
        """True when the form has no inputs (a number or a free constant)."""
        return sid != self.UNDEFINED and all(m == () for m, _ in self._sums[sid])

    # -- operators ----------------------------------------------------------------------------------------
    def apply(self, op: str, *sids: int) -> int:
        """Canonical id of operator ``op`` applied to operands with canonical ids ``sids``."""
        key = (op, *sids)
        hit = self._apply_cache.get(key)
        if hit is not None:
            return hit
        out = self._apply_cache[key] = self.compute(op, *sids)
        return out

    def compute(self, op: str, *sids: int) -> int:
        """Like :meth:`apply` without remembering the result.

        The enumerator forms each ``(op, operands)`` combination once, so a cache would only cost memory
        (millions of entries at depth 9).
        """
        if self.UNDEFINED in sids:
            return self.UNDEFINED
        rule = self._ops.get(op)
        return rule(*sids) if rule is not None else self._function(op, *sids)

    def _add(self, a: int, b: int) -> int:
        terms = dict(self._sums[a])
        for m, c in self._sums[b]:
            terms[m] = _cadd(terms[m], c) if m in terms else c
        return self._sum(terms)

    def _neg(self, a: int) -> int:
        return self._sum({m: (c if c is P else -c) for m, c in self._sums[a]})

    def _sub(self, a: int, b: int) -> int:
        return self._add(a, self._neg(b))

    def _as_term(self, a: int) -> tuple[dict[int, int], object] | None:
        """A single term as (atom -> exponent, coefficient); a sum of several terms becomes one atom."""
        terms = self._sums[a]
        if not terms:
            return {}, _ZERO
        if len(terms) == 1:
            m, c = terms[0]
            return dict(m), c
        # (c - q)^2 and (q + c)^2, or (2q + 2p) and 2(q + p), are the same: the atom is the sum divided by the
        # first rational coefficient of a term with inputs, which moves to the coefficient
        inner, r = self._scale_out(a)
        return {self._atom(("sum", inner)): 1}, r

    def _scale_out(self, a: int) -> tuple[int, Fraction]:
        """Write sum ``a`` as ``r * inner``, ``r`` its first rational coefficient of a term with inputs."""
        terms = self._sums[a]
        r = next((c for m, c in terms if m != () and c is not P), None)
        if r is None or r == 1:
            return a, _ONE
        return self._sum({m: (c if c is P else c / r) for m, c in terms}), r

    def _mul_terms(self, a: int, b: int, sign: int) -> int:
        ma, ca = self._as_term(a)
        mb, cb = self._as_term(b)
        if sign < 0:
            if cb == 0:
                return self.UNDEFINED
            cb = P if cb is P else 1 / cb
        coef = _cmul(ca, cb)
        if coef == 0:
            return self._sum({})
        mono = dict(ma)
        for atom, e in mb.items():
            mono[atom] = mono.get(atom, 0) + sign * e
        monomial = tuple(sorted((atom, e) for atom, e in mono.items() if e != 0))
        return self._sum({monomial: coef})

    def _mul(self, a: int, b: int) -> int:
        return self._mul_terms(a, b, 1)

    def _div(self, a: int, b: int) -> int:
        return self._mul_terms(a, b, -1)

    def _square(self, a: int) -> int:
        return self._mul_terms(a, a, 1)

    def _trig(self, name: str, a: int) -> int:
        terms = self._sums[a]
        if all(m == () for m, _ in terms):
            coef = terms[0][1] if terms else _ZERO
            if coef == 0:
                return self.number(0 if name == "sin" else 1)
            return self.param()  # sin of a constant is a constant
        # sin(-x) = -sin(x), cos(-x) = cos(x): the argument's first rational coefficient is made positive
        r = next((c for m, c in terms if m != () and c is not P), None)
        coef = _ONE
        if r is not None and r < 0:
            a = self._neg(a)
            coef = -_ONE if name == "sin" else _ONE
        return self._sum({((self._atom((name, a)), 1),): coef})

    def _function(self, name: str, a: int) -> int:
        """An operator of the table without algebraic rules of its own (``sqrt``): an opaque function of
        its argument's canonical form (of a constant, a constant)."""
        if all(m == () for m, _ in self._sums[a]):
            return self.param()
        return self._sum({((self._atom((name, a)), 1),): _ONE})

    def _sin(self, a: int) -> int:
        return self._trig("sin", a)

    def _cos(self, a: int) -> int:
        return self._trig("cos", a)

    # -- whole trees --------------------------------------------------------------------------------------
    def of(self, expr) -> int:
        """Algebraic canonical id of a whole tree."""
        from dsl._expr import Const, Input, Op, Param

        if isinstance(expr, Input):
            return self.input(expr.name)
        if isinstance(expr, Param):
            return self.param()
        if isinstance(expr, Const):
            return self.number(expr.value)
        if isinstance(expr, Op):
            return self.apply(expr.name, *(self.of(a) for a in expr.args))
        raise TypeError(f"not an expression: {expr!r}")

    # -- conservation level -------------------------------------------------------------------------------
    def conservation_key(self, sid: int) -> tuple | None:
        """Key shared by formulas that conserve the same quantity; ``None`` for trivial (constant) ones."""
        if sid == self.UNDEFINED or self.is_constant(sid):
            return None
        terms = [(m, c) for m, c in self._sums[sid] if m != ()]  # g + c ~ g
        if len(terms) == 1:
            ((m, _),) = terms  # c*g ~ -g ~ g
            # g^k ~ g: along a continuous trajectory g^k is constant exactly when g is (|g| constant and g
            # continuous), so (q*p)^2 ~ q*p and (A + B)^2 ~ A + B
            k = math.gcd(*(abs(e) for _, e in m))
            if k > 1:
                m = tuple((a, e // k) for a, e in m)
            if len(m) == 1 and m[0][1] in (1, -1):
                atom = self._atoms[m[0][0]]
                if atom[0] == "sum":  # c*(A + B) and 1/(A + B) conserve what A + B does
                    return self.conservation_key(atom[1])
                if (
                    atom[0] in PRIMITIVES and PRIMITIVES[atom[0]].power is not None
                ):  # sqrt(g) ~ g, as g^2 ~ g
                    return self.conservation_key(atom[1])
            inverse = tuple((a, -e) for a, e in m)  # 1/g ~ g
            return ("term", min(m, inverse))
        first = terms[0][1]
        scaled = []
        for m, c in terms:  # divide by the first coefficient: c1*A + c2*B ~ A + (c2/c1)*B
            if first is P:
                c = _ONE if m == terms[0][0] else P
            elif c is not P:
                c = c / first
            scaled.append((m, _coef_key(c)))
        return ("sum", tuple(scaled))
