"""Helpers for the DSL tests: random trees (hypothesis) and an independent unit check through pint."""

from __future__ import annotations

import math

import pint
from hypothesis import strategies as st

import dsl

UREG = pint.UnitRegistry()

PENDULUM = dsl.parse_variables("q:rad, p:kg*m^2/s")
SPRING = dsl.parse_variables("q:m, p:kg*m/s")


def trees(names=("q", "p"), *, with_params: bool = True, with_consts: bool = False, max_leaves=8):
    """Random expression trees over ``names``."""
    leaves = [st.sampled_from([dsl.Input(n) for n in names])]
    if with_params:
        leaves.append(st.just(dsl.Param()))
    if with_consts:
        leaves.append(
            st.floats(-5, 5, allow_nan=False, allow_infinity=False).map(
                lambda v: dsl.Const(round(v, 3))
            )
        )
    leaf = st.one_of(*leaves)

    def extend(children):
        unary = st.tuples(st.sampled_from(["sin", "cos", "square"]), children).map(
            lambda t: dsl.Op(t[0], (t[1],))
        )
        binary = st.tuples(st.sampled_from(["add", "sub", "mul", "div"]), children, children).map(
            lambda t: dsl.Op(t[0], (t[1], t[2]))
        )
        return st.one_of(unary, binary)

    return st.recursive(leaf, extend, max_leaves=max_leaves)


def pint_value(expr, variables, param_units=()):
    """Evaluate ``expr`` on pint quantities (value 0.7 in each variable's unit, parameters 1.3 in the units
    given), with pint's own unit rules; ``sin``/``cos`` demand a dimensionless argument.

    Raises:
        pint.DimensionalityError: the units do not agree.
    """
    units = {v.name: v.unit for v in variables}
    params = iter(param_units)

    def go(node):
        if isinstance(node, dsl.Input):
            return UREG.Quantity(0.7, units[node.name])
        if isinstance(node, dsl.Param):
            return UREG.Quantity(1.3, next(params))
        if isinstance(node, dsl.Const):
            return UREG.Quantity(node.value, "")
        args = [go(a) for a in node.args]
        if node.name == "add":
            return args[0] + args[1]
        if node.name == "sub":
            return args[0] - args[1]
        if node.name == "mul":
            return args[0] * args[1]
        if node.name == "div":
            return args[0] / args[1] if args[1].magnitude != 0 else args[0] * (1 / args[1].units)
        if node.name == "square":
            return args[0] ** 2
        x = args[0].to("dimensionless")  # raises DimensionalityError unless dimensionless
        return UREG.Quantity(math.sin(x.magnitude) if node.name == "sin" else math.cos(x.magnitude))

    return go(expr)


def pint_valid(expr, variables, param_units=()) -> bool:
    try:
        pint_value(expr, variables, param_units)
    except pint.DimensionalityError:
        return False
    return True


def units_text(dim: dsl.Dim) -> str:
    """A :class:`dsl.Dim` as a unit string pint reads (fractional exponents included)."""
    return dim.to_units()
