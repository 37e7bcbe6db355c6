"""The table of operators: the one place to add an operator to the language.

Each row says how an operator is written, how it combines dimensions, how it evaluates in torch and how it
reads in sympy. Everything else (parsing, printing, unit checking, compiling, enumeration) reads this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy

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


def _double(a: DimT) -> DimT:
    return FREE if a is FREE else tuple(2 * x for x in a)


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


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        Primitive("add", 2, "+", "infix", 1, True, _same, lambda a, b: a + b, lambda a, b: a + b),
        Primitive("sub", 2, "-", "infix", 1, False, _same, lambda a, b: a - b, lambda a, b: a - b),
        Primitive("mul", 2, "*", "infix", 2, True, _times, lambda a, b: a * b, lambda a, b: a * b),
        Primitive("div", 2, "/", "infix", 2, False, _over, lambda a, b: a / b, lambda a, b: a / b),
        Primitive(
            "sin", 1, "sin", "function", 9, False, _dimensionless_arg,
            lambda a: a.sin(), sympy.sin,
        ),
        Primitive(
            "cos", 1, "cos", "function", 9, False, _dimensionless_arg,
            lambda a: a.cos(), sympy.cos,
        ),
        Primitive("square", 1, "^2", "postfix", 3, False, _double, lambda a: a * a, lambda a: a**2),
    )
}  # fmt: skip

INFIX_BY_SYMBOL: dict[str, Primitive] = {
    p.symbol: p for p in PRIMITIVES.values() if p.style == "infix"
}
FUNCTION_BY_SYMBOL: dict[str, Primitive] = {
    p.symbol: p for p in PRIMITIVES.values() if p.style == "function"
}
