"""Unit checking and parameter-unit inference, checked against pint."""

from __future__ import annotations

import itertools

import pytest
from _trees import PENDULUM, SPRING, UREG, pint_valid, pint_value, trees
from hypothesis import HealthCheck, given, settings

import dsl


@pytest.mark.parametrize("variables", [PENDULUM, SPRING], ids=["pendulum", "spring"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=trees(with_params=False, with_consts=True))
def test_validity_of_parameter_free_trees_agrees_with_pint(variables, expr):
    ours = dsl.is_valid(expr, variables)
    assert ours == pint_valid(expr, variables), dsl.to_text(expr)
    if ours:
        value = pint_value(expr, variables)
        expected = dsl.dimension(expr, variables)
        assert value.dimensionality == expected.to_pint().dimensionality, dsl.to_text(expr)


@pytest.mark.parametrize("variables", [PENDULUM, SPRING], ids=["pendulum", "spring"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=trees())
def test_inferred_parameter_units_make_the_formula_valid_in_pint(variables, expr):
    if not dsl.is_valid(expr, variables):
        # then no choice of parameter units helps; try every combination of a few plausible units
        k = dsl.n_params(expr)
        if k <= 2:
            candidates = ["", *(v.unit for v in variables), f"({variables[1].unit})^2", "1/s", "kg"]
            for combo in itertools.product(candidates, repeat=k):
                assert not pint_valid(expr, variables, combo), (dsl.to_text(expr), combo)
        return
    units = [d.to_units() for d in dsl.param_units(expr, variables)]
    assert len(units) == dsl.n_params(expr)
    value = pint_value(expr, variables, units)  # raises if the inferred units do not agree
    dim = dsl.dimension(expr, variables)
    if dim is not None:
        assert value.dimensionality == dim.to_pint().dimensionality


def test_paper_laws_units():
    law = dsl.parse("p^2 - c*cos(q)", ["q", "p"])
    assert dsl.size(law) == 7
    (unit,) = dsl.param_units(law, PENDULUM)
    assert UREG.Unit(unit.to_units().replace("**", "^")) == UREG.Unit("kg^2*m^4/s^2")
    spring = dsl.parse("q^2 + c*p^2", ["q", "p"])
    assert dsl.size(spring) == 7
    (unit,) = dsl.param_units(spring, SPRING)
    assert dsl.Dim.from_units(unit.to_units().replace("**", "^")) == dsl.Dim.from_units("s^2/kg^2")


def test_square_root_units_are_exact():
    # c^2 must have the unit of p: c has the unit kg^(1/2) m s^(-1/2)
    expr = dsl.parse("c^2 - p", ["q", "p"])
    (unit,) = dsl.param_units(expr, PENDULUM)
    assert unit**2 == dsl.Dim.from_units("kg*m^2/s")


@pytest.mark.parametrize("bad", ["foo", "kg*", "3 kelvin + 2", ""])
def test_unknown_unit_is_a_one_line_error(bad):
    with pytest.raises(dsl.UnitError) as info:
        dsl.parse_variables(f"q:{bad}") if bad else dsl.Dim.from_units(bad)
    assert "\n" not in str(info.value)


def test_invalid_formula_reports_where():
    with pytest.raises(dsl.UnitError, match="units do not agree"):
        dsl.dimension(dsl.parse("q + p", ["q", "p"]), PENDULUM)
    with pytest.raises(dsl.UnitError):
        dsl.dimension(dsl.parse("sin(p)", ["q", "p"]), PENDULUM)
