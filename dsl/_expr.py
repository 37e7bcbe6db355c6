"""Expression trees: immutable, hashable, structurally compared.

A formula is a tree of :class:`Input` (a dataset variable), :class:`Param` (a trainable scalar whose unit is
inferred), :class:`Const` (a number; used to write reference Hamiltonians, never produced by enumeration) and
:class:`Op` (an operator of :data:`~dsl._primitives.PRIMITIVES`). Parameters are anonymous: they are numbered
``c_0, c_1, ...`` in the order they appear when the tree is read left to right.

Size ("depth" on the command line) is the number of tokens, i.e. tree nodes: ``p^2 - c*cos(q)`` is
``-``, ``^2``, ``p``, ``*``, ``c``, ``cos``, ``q``: 7 tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from dsl._dims import DIMENSIONLESS, Dim, UnitError
from dsl._primitives import FREE, FUNCTION_BY_SYMBOL, PRIMITIVES, _Invalid

#: How a parameter is written in formula text: ``c``, ``c0``, ``c_0``, ``c_1``, ...
PARAM_NAME = re.compile(r"c(_?\d+)?\Z")

#: What the formula reader takes as a name.
NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")


def check_variable_name(name: str) -> None:
    """Refuse a variable name that formula text could not read as that variable.

    Raises:
        UnitError: not a plain ASCII name, or the name of a parameter (``c``, ``c_0``, ...) or of a function
            of the language (``sin``, ``cos``, ``square``): a formula would read it as that instead.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise UnitError(
            f"variable name {name!r} cannot be used: a name is ASCII letters, digits and _, "
            "not starting with a digit"
        )
    if PARAM_NAME.match(name):
        raise UnitError(
            f"variable name {name!r} cannot be used: c, c0, c_0, c_1, ... name the formulas' parameters; "
            f"rename the column (e.g. --names) to something else, such as {name.replace('c', 'conc', 1)!r}"
        )
    if name in FUNCTION_BY_SYMBOL or name in PRIMITIVES:
        raise UnitError(
            f"variable name {name!r} cannot be used: it is a function of the formula language; "
            f"rename the column (e.g. --names), e.g. to {name + '_'!r}"
        )


@dataclass(frozen=True, slots=True)
class Input:
    """The value of the dataset variable ``name``."""

    name: str

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"variable name {self.name!r} is not an identifier")


@dataclass(frozen=True, slots=True)
class Param:
    """A trainable scalar. Its unit is whatever makes the formula valid (see :func:`param_units`)."""


@dataclass(frozen=True, slots=True)
class Const:
    """A dimensionless number."""

    value: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ValueError(f"constant {self.value!r} is not finite")


@dataclass(frozen=True, slots=True)
class Op:
    """An operator applied to operands; ``name`` is a key of :data:`PRIMITIVES`."""

    name: str
    args: tuple[Expr, ...] = field(default=())

    def __post_init__(self) -> None:
        prim = PRIMITIVES.get(self.name)
        if prim is None:
            raise ValueError(f"unknown operator {self.name!r}; known: {', '.join(PRIMITIVES)}")
        if len(self.args) != prim.arity:
            raise ValueError(f"{self.name} takes {prim.arity} operand(s), got {len(self.args)}")


Expr = Input | Param | Const | Op


def size(expr: Expr) -> int:
    """Number of tokens (tree nodes) of ``expr``."""
    if isinstance(expr, Op):
        return 1 + sum(size(a) for a in expr.args)
    return 1


def n_params(expr: Expr) -> int:
    """Number of :class:`Param` leaves."""
    if isinstance(expr, Op):
        return sum(n_params(a) for a in expr.args)
    return 1 if isinstance(expr, Param) else 0


def inputs(expr: Expr) -> frozenset[str]:
    """Names of the variables ``expr`` reads."""
    return frozenset(n.name for n in walk(expr) if isinstance(n, Input))


def walk(expr: Expr) -> Iterator[Expr]:
    """Nodes in pre-order (the order in which parameters are numbered)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Op):
            stack.extend(reversed(node.args))


# Convenience constructors -----------------------------------------------------------------------------


def add(a: Expr, b: Expr) -> Op:
    return Op("add", (a, b))


def sub(a: Expr, b: Expr) -> Op:
    return Op("sub", (a, b))


def mul(a: Expr, b: Expr) -> Op:
    return Op("mul", (a, b))


def div(a: Expr, b: Expr) -> Op:
    return Op("div", (a, b))


def sin(a: Expr) -> Op:
    return Op("sin", (a,))


def cos(a: Expr) -> Op:
    return Op("cos", (a,))


def square(a: Expr) -> Op:
    return Op("square", (a,))


# Variables and units ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variable:
    """A named dataset variable with a physical unit (any unit pint understands).

    Raises:
        UnitError: the unit is unknown.
    """

    name: str
    unit: str

    def __post_init__(self) -> None:
        check_variable_name(self.name)
        Dim.from_units(self.unit)  # validate early

    @property
    def dim(self) -> Dim:
        return Dim.from_units(self.unit)


def parse_variables(spec: str) -> tuple[Variable, ...]:
    """Parse ``"q:rad, p:kg*m^2/s"`` into variables.

    Raises:
        UnitError: a malformed entry, a repeated name or an unknown unit.
    """
    out: list[Variable] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, unit = item.partition(":")
        if not sep or not name.strip() or not unit.strip():
            raise UnitError(f"variable {item!r} must be written name:unit, e.g. q:rad")
        out.append(Variable(name.strip(), unit.strip()))
    names = [v.name for v in out]
    if not out:
        raise UnitError("no variables given; write e.g. 'q:rad,p:kg*m^2/s'")
    if len(set(names)) != len(names):
        raise UnitError(f"repeated variable name in {spec!r}")
    return tuple(out)


def _dims_table(dims: Mapping[str, Dim] | Sequence[Variable]) -> dict[str, tuple]:
    if isinstance(dims, Mapping):
        return {k: v.exps for k, v in dims.items()}
    return {v.name: v.dim.exps for v in dims}


def _dim_of(expr: Expr, table: Mapping[str, tuple]):
    if isinstance(expr, Input):
        try:
            return table[expr.name]
        except KeyError:
            raise UnitError(f"unknown variable {expr.name!r}; known: {', '.join(table)}") from None
    if isinstance(expr, Param):
        return FREE
    if isinstance(expr, Const):
        return DIMENSIONLESS.exps
    prim = PRIMITIVES[expr.name]
    operands = [_dim_of(a, table) for a in expr.args]
    try:
        if prim.dimensionless_function:
            return prim.dim_rule(operands[0], DIMENSIONLESS.exps)
        return prim.dim_rule(*operands)
    except _Invalid:
        raise UnitError(_unit_message(expr, operands)) from None


def _unit_message(expr: Op, operands: list) -> str:
    from dsl._printing import to_text

    shown = ", ".join("free" if d is FREE else Dim(d).to_units() for d in operands)
    return f"units do not agree in {to_text(expr)!r}: {expr.name} of [{shown}]"


def dimension(expr: Expr, dims: Mapping[str, Dim] | Sequence[Variable]) -> Dim | None:
    """Dimension of ``expr`` given the variables' dimensions.

    Returns:
        The dimension, or ``None`` when a parameter leaves it free (e.g. ``c*q`` can have any unit).

    Raises:
        UnitError: the formula is not unit-valid, or reads an unknown variable.
    """
    d = _dim_of(expr, _dims_table(dims))
    return None if d is FREE else Dim(d)


def is_valid(expr: Expr, dims: Mapping[str, Dim] | Sequence[Variable]) -> bool:
    """Whether ``expr`` is unit-valid."""
    try:
        dimension(expr, dims)
    except UnitError:
        return False
    return True


def param_units(expr: Expr, dims: Mapping[str, Dim] | Sequence[Variable]) -> list[Dim]:
    """Infer the unit of each parameter (in ``c_0, c_1, ...`` order) that makes ``expr`` valid.

    A parameter whose unit is not constrained (``c*q`` alone) is reported dimensionless; where several free
    parts must agree (``c + p*c``) they are made dimensionless, and in a product of two free factors that must
    have dimension ``T`` the left one is dimensionless and the right one has ``T``.

    Raises:
        UnitError: the formula is not unit-valid.
    """
    table = _dims_table(dims)
    _dim_of(expr, table)  # validate first
    out: list[Dim] = []

    def pin(node: Expr, target: tuple | None) -> None:
        # target: the dimension this subtree must have (None: unconstrained, choose dimensionless).
        if isinstance(node, Param):
            out.append(Dim(target) if target is not None else DIMENSIONLESS)
            return
        if not isinstance(node, Op):
            return
        prim = PRIMITIVES[node.name]
        kids = [_dim_of(a, table) for a in node.args]
        if prim.dimensionless_function:
            pin(node.args[0], DIMENSIONLESS.exps)
        elif prim.power is not None:  # x^k has dimension k*[x]: the argument needs target / k
            root = None if target is None else tuple(Fraction(x) / prim.power for x in target)
            pin(node.args[0], root)
        elif node.name in ("add", "sub"):
            known = next((k for k in kids if k is not FREE), None)
            t = known if known is not None else target
            if (
                t is None
            ):  # both sides free and unconstrained: they must still agree, choose dimensionless
                t = DIMENSIONLESS.exps
            for a in node.args:
                pin(a, t)
        else:  # mul, div: give the whole remaining dimension to the first free operand
            a, b = node.args
            da, db = kids
            if target is None:
                target_t = None
            else:
                target_t = target
            if da is not FREE and db is not FREE:
                pin(a, da)
                pin(b, db)
            elif da is FREE and db is not FREE:
                want = (
                    None if target_t is None else _combine(node.name, target_t, db, solve_left=True)
                )
                pin(a, want)
                pin(b, db)
            elif db is FREE and da is not FREE:
                want = (
                    None
                    if target_t is None
                    else _combine(node.name, target_t, da, solve_left=False)
                )
                pin(a, da)
                pin(b, want)
            elif target_t is None:  # both free, product unconstrained: each side chooses freely
                pin(a, None)
                pin(b, None)
            else:  # both free: the left one dimensionless, the right one takes the rest
                pin(a, DIMENSIONLESS.exps)
                pin(b, _combine(node.name, target_t, DIMENSIONLESS.exps, False))

    top = _dim_of(expr, table)
    pin(expr, None if top is FREE else top)
    return out


def _combine(op: str, target: tuple, known: tuple, solve_left: bool) -> tuple:
    # mul: L*R = T. div: L/R = T.
    if op == "mul":
        return tuple(t - k for t, k in zip(target, known))
    if solve_left:  # L = T * R
        return tuple(t + k for t, k in zip(target, known))
    return tuple(k - t for t, k in zip(target, known))  # R = L / T
