"""The table of operators: the one place to add an operator to the language.

Each row says how an operator is written, how it combines dimensions, how it evaluates in torch and how it
reads in sympy. Everything else (parsing, printing, unit checking, compiling, enumeration) reads this table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy

from dsl.errors import InputError

#: Dimension of a subexpression during checking: an exponent tuple, or FREE when the subexpression contains a
#: parameter whose unit is not yet pinned down, so that it can take any dimension.
FREE = None

DimT = tuple | None  # exponent tuple or FREE


class _Invalid(Exception):
    """Raised by a dimension rule when the operands' units do not agree."""


def _same(a: DimT, b: DimT) -> DimT:
    # + and -: equal dimensions. A FREE side adopts the other side's dimension.
    if a is FREE:
        return b
    if b is FREE or a == b:
        return a
    raise _Invalid


def _times(a: DimT, b: DimT) -> DimT:
    if a is FREE or b is FREE:
        return FREE
    return tuple(x + y for x, y in zip(a, b))


def _over(a: DimT, b: DimT) -> DimT:
    if a is FREE or b is FREE:
        return FREE
    return tuple(x - y for x, y in zip(a, b))


def _dimensionless_arg(a: DimT, zero: tuple) -> DimT:
    if a is FREE or not any(a):
        return zero
    raise _Invalid


def _power(k: Fraction) -> Callable[[DimT], DimT]:
    """The dimension rule of ``x^k``: exponents times ``k`` (kept integers where they are)."""

    def rule(a: DimT) -> DimT:
        if a is FREE:
            return FREE
        return tuple(_int_if_whole(Fraction(x) * k) for x in a)

    return rule


def _int_if_whole(x: Fraction) -> int | Fraction:
    return int(x) if x.denominator == 1 else x


def _sqrt_or_nan(a: float) -> float:
    return math.sqrt(a) if a >= 0 else math.nan


def _safe_div(a: float, b: float) -> float:
    return a / b if b != 0 else math.nan


def _asin(t: float) -> float | None:
    return math.asin(t) if abs(t) <= 1 else None


def _acos(t: float) -> float | None:
    return math.acos(t) if abs(t) <= 1 else None


def _sqrt_or_none(t: float) -> float | None:
    return math.sqrt(t) if t >= 0 else None


def _square_or_none(t: float) -> float | None:
    return t * t if t >= 0 else None


@dataclass(frozen=True, slots=True)
class Primitive:
    """One operator of the language.

    Attributes:
        name: identifier used in trees (``Op.name``).
        arity: number of operands (1 or 2).
        symbol: infix symbol (``+``), function name (``sin``) or postfix (``^2``) as written in text.
        style: ``"infix"``, ``"function"`` or ``"postfix"``.
        precedence: binding strength for printing and parsing (higher binds tighter).
        commutative: operands may be swapped without changing the value (used for deduplication).
        dim_rule: combines operand dimensions (exponent tuples or FREE); raises on invalid units. Unary rules
            of dimensionless functions receive the dimensionless tuple as a second argument.
        torch_fn: evaluates the operator on tensors.
        sympy_fn: builds the sympy expression.
        float_fn: evaluates the operator on Python floats (``nan`` outside its domain).
        power: for a unary operator that raises to a power (``square`` 2, ``sqrt`` 1/2), the power: its
            argument may have any unit and the units follow. ``None`` for a function of a dimensionless
            argument (``sin``) and for binary operators.
        value_slope: unary only: ``u -> (f(u), f'(u))`` on tensors (the fitter's forward-mode gradient).
        inverse: unary only: ``t -> u`` with ``f(u) = t`` on floats, or ``None`` where ``t`` is out of reach.
        default: enumerated unless the operators are chosen explicitly (``sqrt`` is opt-in, so that the
            paper's language and counts stay the default).
    """

    name: str
    arity: int
    symbol: str
    style: str
    precedence: int
    commutative: bool
    dim_rule: Callable[..., DimT]
    torch_fn: Callable[..., Any]
    sympy_fn: Callable[..., Any]
    float_fn: Callable[..., float]
    power: Fraction | None = None
    value_slope: Callable[[Any], tuple[Any, Any]] | None = None
    inverse: Callable[[float], float | None] | None = None
    default: bool = True

    @property
    def dimensionless_function(self) -> bool:
        """A unary function whose argument and value are dimensionless (``sin``, ``cos``)."""
        return self.arity == 1 and self.power is None


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        Primitive("add", 2, "+", "infix", 1, True, _same, lambda a, b: a + b, lambda a, b: a + b,
                  float_fn=lambda a, b: a + b),
        Primitive("sub", 2, "-", "infix", 1, False, _same, lambda a, b: a - b, lambda a, b: a - b,
                  float_fn=lambda a, b: a - b),
        Primitive("mul", 2, "*", "infix", 2, True, _times, lambda a, b: a * b, lambda a, b: a * b,
                  float_fn=lambda a, b: a * b),
        Primitive("div", 2, "/", "infix", 2, False, _over, lambda a, b: a / b, lambda a, b: a / b,
                  float_fn=_safe_div),
        Primitive(
            "square", 1, "^2", "postfix", 3, False, _power(Fraction(2)),
            lambda a: a * a, lambda a: a**2, float_fn=lambda a: a * a, power=Fraction(2),
            value_slope=lambda u: (u * u, 2 * u), inverse=_sqrt_or_none,
        ),
        Primitive(
            "sin", 1, "sin", "function", 9, False, _dimensionless_arg,
            lambda a: a.sin(), sympy.sin, float_fn=math.sin,
            value_slope=lambda u: (u.sin(), u.cos()), inverse=_asin,
        ),
        Primitive(
            "cos", 1, "cos", "function", 9, False, _dimensionless_arg,
            lambda a: a.cos(), sympy.cos, float_fn=math.cos,
            value_slope=lambda u: (u.cos(), -u.sin()), inverse=_acos,
        ),
        Primitive(
            "sqrt", 1, "sqrt", "function", 9, False, _power(Fraction(1, 2)),
            lambda a: a.sqrt(), sympy.sqrt, float_fn=_sqrt_or_nan, power=Fraction(1, 2),
            value_slope=lambda u: (u.sqrt(), 0.5 / u.sqrt()), inverse=_square_or_none, default=False,
        ),
    )
}  # fmt: skip

INFIX_BY_SYMBOL: dict[str, Primitive] = {
    p.symbol: p for p in PRIMITIVES.values() if p.style == "infix"
}
FUNCTION_BY_SYMBOL: dict[str, Primitive] = {
    p.symbol: p for p in PRIMITIVES.values() if p.style == "function"
}

#: Unary and binary operators, in table order (the enumeration's order, the fitter's operator codes).
UNARY: tuple[str, ...] = tuple(p.name for p in PRIMITIVES.values() if p.arity == 1)
BINARY: tuple[str, ...] = tuple(p.name for p in PRIMITIVES.values() if p.arity == 2)
#: The operators enumerated unless chosen explicitly: the paper's ``+ - * / sin cos square``.
DEFAULT_OPERATORS: tuple[str, ...] = tuple(p.name for p in PRIMITIVES.values() if p.default)


def check_operators(names) -> tuple[str, ...]:
    """The operator names, checked against the table, in table order."""
    names = set(names)
    unknown = sorted(names - set(PRIMITIVES))
    if unknown:
        raise InputError(
            f"unknown operator(s) {', '.join(unknown)}; the language has {', '.join(PRIMITIVES)}"
        )
    if not names:
        raise InputError("no operators: name at least one (e.g. add, mul)")
    return tuple(n for n in PRIMITIVES if n in names)
