"""Parse formula text into trees with a small recursive-descent parser.

Never ``eval`` and never ``sympify``: formula text may come from anyone. Grammar (usual precedence, binary
operators associate to the left)::

    sum     := product (("+" | "-") product)*
    product := power (("*" | "/") power)*
    power   := unary ("^2" | "**2")*
    unary   := "-" unary | atom
    atom    := NUMBER | NAME | NAME "(" sum ")" | "(" sum ")"

Names: a variable of the dataset is an :class:`Input`; ``c``, ``c0``, ``c_0``, ``c_1``, ... are parameters
(numbered by position, whatever their written index); ``sin``, ``cos`` and ``square`` are functions.
``-x`` is read as ``(-1)*x`` (a :class:`Const`), and ``-3`` as the constant ``-3``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from dsl._expr import PARAM_NAME as _PARAM_NAME
from dsl._expr import Const, Expr, Input, Op, Param
from dsl._primitives import FUNCTION_BY_SYMBOL, INFIX_BY_SYMBOL
from dsl.errors import InputError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/^()]))"
)


class ParseError(InputError):
    """Formula text that is not a well-formed formula."""


def parse(text: str, variables: Sequence[str] | None = None) -> Expr:
    """Parse ``text`` into an expression tree.

    Args:
        text: e.g. ``"p^2 - c*cos(q)"``.
        variables: names that are inputs; ``None`` accepts any name that is not a parameter or function.

    Raises:
        ParseError: malformed text or an unknown name, with the column where reading stopped.
    """
    if not isinstance(text, str):
        raise ParseError(f"a formula must be text, got {type(text).__name__}")
    try:
        expr = _Parser(text, None if variables is None else tuple(variables)).parse()
    except RecursionError:
        raise ParseError(f"formula {text[:40]!r}...: nested too deeply") from None
    if _depth(expr) > MAX_DEPTH:
        raise ParseError(
            f"formula {text[:40]!r}...: its tree is more than {MAX_DEPTH} levels deep (a sum of that many "
            "terms, or as many nested brackets); the language's tools walk trees recursively"
        )
    return expr


#: Deepest tree a formula may have (an enumerated formula of 9 tokens is at most 9 deep; every tree walk of
#: the language is recursive, and Python allows about 1,000 frames).
MAX_DEPTH = 100


def _depth(expr: Expr) -> int:
    """Depth of a tree, without recursion."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(node, Op):
            stack.extend((a, d + 1) for a in node.args)
    return deepest


class _Parser:
    def __init__(self, text: str, variables: tuple[str, ...] | None) -> None:
        self.text = text
        self.variables = variables
        self.tokens: list[tuple[str, str, int]] = []  # (kind, value, column)
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if m is None or m.end() == pos:
                col = pos + len(stripped[pos:]) - len(stripped[pos:].lstrip()) + 1
                raise self._error(f"unexpected character {stripped[col - 1]!r}", col)
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), m.start(kind) + 1))
            pos = m.end()
        self.i = 0

    def _error(self, message: str, column: int | None = None) -> ParseError:
        if column is None:
            column = (
                self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text.rstrip()) + 1
            )
        return ParseError(f"malformed formula {self.text!r}: {message} at column {column}")

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, value: str) -> bool:
        tok = self._peek()
        if tok is not None and tok[0] == "op" and tok[1] == value:
            self.i += 1
            return True
        return False

    def parse(self) -> Expr:
        if not self.tokens:
            raise ParseError("empty formula")
        expr = self._sum()
        if self.i != len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self.i][1]!r}")
        return expr

    def _sum(self) -> Expr:
        left = self._product()
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in "+-":
            self.i += 1
            left = Op(INFIX_BY_SYMBOL[tok[1]].name, (left, self._product()))
        return left

    def _product(self) -> Expr:
        left = self._power()
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in ("*", "/"):
            self.i += 1
            left = Op(INFIX_BY_SYMBOL[tok[1]].name, (left, self._power()))
        return left

    def _power(self) -> Expr:
        base = self._unary()
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in ("^", "**"):
            self.i += 1
            exponent = self._peek()
            if exponent is None or exponent[0] != "num" or float(exponent[1]) != 2.0:
                raise self._error("only the power 2 exists in the language (write x^2)")
            self.i += 1
            base = Op("square", (base,))
        return base

    def _unary(self) -> Expr:
        if self._take("-"):
            tok = self._peek()
            if tok is not None and tok[0] == "num":
                self.i += 1
                return self._number("-" + tok[1], tok[2])
            return Op("mul", (Const(-1.0), self._unary()))
        return self._atom()

    def _number(self, text: str, column: int) -> Const:
        value = float(text)
        if not math.isfinite(value):
            raise self._error(f"the number {text} is too large", column)
        return Const(value)

    def _atom(self) -> Expr:
        tok = self._peek()
        if tok is None:
            raise self._error("expected an operand")
        kind, value, column = tok
        if kind == "num":
            self.i += 1
            return self._number(value, column)
        if kind == "name":
            self.i += 1
            if value in FUNCTION_BY_SYMBOL or value == "square":
                if not self._take("("):
                    raise self._error(f"expected '(' after {value}")
                arg = self._sum()
                if not self._take(")"):
                    raise self._error("expected ')'")
                name = "square" if value == "square" else FUNCTION_BY_SYMBOL[value].name
                return Op(name, (arg,))
            if self.variables is not None and value in self.variables:
                return Input(value)
            if _PARAM_NAME.match(value):
                return Param()
            if self.variables is None:
                return Input(value)
            known = ", ".join(self.variables) or "(none)"
            raise self._error(
                f"unknown name {value!r} (variables: {known}; parameters are written c, c_0, c_1, ...)",
                column,
            )
        if value == "(":
            self.i += 1
            inner = self._sum()
            if not self._take(")"):
                raise self._error("expected ')'")
            return inner
        raise self._error(f"unexpected {value!r}")
