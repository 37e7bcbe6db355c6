"""Printing trees: text that parses back to the same tree, sympy expressions, and LaTeX."""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from dsl._expr import Const, Expr, Input, Param, n_params
from dsl._primitives import PRIMITIVES

_ATOM = 10  # precedence of leaves and function calls


def _check_params(expr: Expr, params: Sequence[float] | None) -> list[float] | None:
    if params is None:
        return None
    values = [float(v) for v in params]
    if len(values) != n_params(expr):
        raise ValueError(f"formula has {n_params(expr)} parameters, got {len(values)} values")
    return values


def _fmt_number(value: float, digits: int | None) -> str:
    text = repr(float(value)) if digits is None else f"{value:.{digits}g}"
    if text.endswith(".0") and digits is None:
        text = text[:-2]
    return text


def to_text(expr: Expr, params: Sequence[float] | None = None, *, digits: int | None = None) -> str:
    """Write ``expr`` as text that :func:`~dsl.parse` reads back to the same tree.

    Args:
        expr: the formula.
        params: fitted values to write in place of ``c_0, c_1, ...`` (then the text parses to constants).
        digits: significant digits for numbers (``None``: exact round trip).

    Examples:
        >>> from dsl import parse
        >>> to_text(parse("p^2 - c*cos(q)", ["q", "p"]))
        'p^2 - c_0*cos(q)'
    """
    values = _check_params(expr, params)
    counter = iter(range(n_params(expr)))

    def go(node: Expr) -> tuple[str, int]:
        # returns (text, precedence of its top operator)
        if isinstance(node, Input):
            return node.name, _ATOM
        if isinstance(node, Param):
            k = next(counter)
            if values is None:
                return f"c_{k}", _ATOM
            return _number(values[k])
        if isinstance(node, Const):
            return _number(node.value)
        prim = PRIMITIVES[node.name]
        if prim.style == "function":
            inner, _ = go(node.args[0])
            return f"{prim.symbol}({inner})", _ATOM
        if prim.style == "postfix":
            inner, prec = go(node.args[0])
            if prec <= prim.precedence:
                inner = f"({inner})"
            return f"{inner}{prim.symbol}", prim.precedence
        left, lp = go(node.args[0])
        right, rp = go(node.args[1])
        if lp < prim.precedence:
            left = f"({left})"
        if (
            rp <= prim.precedence
        ):  # left-associative: an equal-precedence right operand keeps its parens
            right = f"({right})"
        spaced = prim.precedence == 1
        sep = f" {prim.symbol} " if spaced else prim.symbol
        return f"{left}{sep}{right}", prim.precedence

    def _number(value: float) -> tuple[str, int]:
        text = _fmt_number(value, digits)
        # negative numbers print in parentheses so that "a - (-3)" and "(-3)^2" read back unchanged
        return (f"({text})", _ATOM) if value < 0 else (text, _ATOM)

    return go(expr)[0]


def to_sympy(expr: Expr, params: Sequence[float] | None = None) -> sympy.Expr:
    """Convert to sympy; inputs become real symbols, parameters ``c_0, c_1, ...`` (or their values)."""
    values = _check_params(expr, params)
    counter = iter(range(n_params(expr)))

    def go(node: Expr) -> sympy.Expr:
        if isinstance(node, Input):
            return sympy.Symbol(node.name, real=True)
        if isinstance(node, Param):
            k = next(counter)
            return sympy.Symbol(f"c_{k}", real=True) if values is None else sympy.Float(values[k])
        if isinstance(node, Const):
            value = node.value
            return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value)
        return PRIMITIVES[node.name].sympy_fn(*(go(a) for a in node.args))

    return go(expr)


def to_latex(expr: Expr, params: Sequence[float] | None = None, *, digits: int = 3) -> str:
    """LaTeX of the formula, e.g. ``p^{2} - 2.39 \\cos{\\left(q \\right)}``.

    Args:
        expr: the formula.
        params: fitted values; numbers are rounded to ``digits`` significant digits. Without values the
            parameters print as ``c_{0}, c_{1}, ...``.
        digits: significant digits of fitted values.
    """
    return sympy.latex(_rounded_sympy(expr, params, digits), full_prec=False)


def to_display(expr: Expr, params: Sequence[float] | None = None, *, digits: int = 4) -> str:
    """Human-readable text with fitted values folded in by sympy, e.g. ``p^2 - 3.005*cos(q)``.

    Unlike :func:`to_text` it is not meant to be parsed back (sympy may reorder terms).
    """
    return sympy.sstr(_rounded_sympy(expr, params, digits), full_prec=False).replace("**", "^")


def _rounded_sympy(expr: Expr, params: Sequence[float] | None, digits: int) -> sympy.Expr:
    """:func:`to_sympy` with fitted values rounded to ``digits`` significant digits."""
    sym = to_sympy(expr, params)
    if params is None:
        return sym
    return sym.xreplace({f: sympy.Float(f, digits) for f in sym.atoms(sympy.Float)})
