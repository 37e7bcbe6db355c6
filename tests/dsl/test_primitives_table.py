"""The table of primitives is the one place operators live: every row is consistent with itself (torch, floats,
sympy, derivative, inverse), and ``sqrt``, a row added to it, reaches the parser, printers, units, the
enumerator and the fitter."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import dsl
from dsl import PRIMITIVES

UNARY_POINTS = {"sqrt": [0.04, 0.5, 2.0, 9.0], "square": [-1.5, -0.2, 0.3, 2.0]}


@pytest.mark.parametrize("name", [n for n, p in PRIMITIVES.items() if p.arity == 1])
def test_a_unary_row_agrees_with_itself(name):
    """Value on tensors = on floats = sympy's; the slope is autograd's; the inverse undoes the value."""
    prim = PRIMITIVES[name]
    points = UNARY_POINTS.get(name, [-1.2, -0.3, 0.4, 1.1])
    u = torch.tensor(points, dtype=torch.float64, requires_grad=True)
    value, slope = prim.value_slope(u)
    (grad,) = torch.autograd.grad(prim.torch_fn(u).sum(), u)
    np.testing.assert_allclose(slope.detach(), grad, rtol=1e-12)
    np.testing.assert_allclose(value.detach(), prim.torch_fn(u).detach(), rtol=1e-15)
    x = sympy.Symbol("x", real=True)
    for p in points:
        expected = float(prim.sympy_fn(x).subs(x, p))
        assert prim.float_fn(p) == pytest.approx(expected, rel=1e-12)
        assert float(prim.torch_fn(torch.tensor(p, dtype=torch.float64))) == pytest.approx(expected)
        back = prim.inverse(prim.float_fn(p))
        assert back is not None and prim.float_fn(back) == pytest.approx(
            prim.float_fn(p), rel=1e-12
        )


@pytest.mark.parametrize("name", [n for n, p in PRIMITIVES.items() if p.arity == 2])
def test_a_binary_row_agrees_with_itself(name):
    prim = PRIMITIVES[name]
    a, b = sympy.symbols("a b", real=True)
    for x, y in [(1.5, -0.25), (-2.0, 3.0)]:
        expected = float(prim.sympy_fn(a, b).subs({a: x, b: y}))
        assert prim.float_fn(x, y) == pytest.approx(expected, rel=1e-15)
        tx, ty = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
        assert float(prim.torch_fn(tx, ty)) == pytest.approx(expected, rel=1e-15)


def test_sqrt_round_trips_through_parse_print_latex_sympy_and_torch():
    names = ["x1", "x2", "y1", "y2"]
    text = "c_0/sqrt((x1 - x2)^2 + (y1 - y2)^2)"
    expr = dsl.parse(text, names)
    assert dsl.to_text(expr) == text
    assert dsl.parse(dsl.to_text(expr), names) == expr
    assert dsl.size(expr) == 12  # /, c_0, sqrt, +, ^2, -, x1, x2, ^2, -, y1, y2
    assert r"\sqrt{" in dsl.to_latex(expr, [2.0])
    x1, x2, y1, y2 = sympy.symbols(names, real=True)
    assert (
        sympy.simplify(dsl.to_sympy(expr, [2.0]) - 2 / sympy.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2))
        == 0
    )
    fn = dsl.compile_torch(expr, names)
    pts = torch.tensor(
        [[0.0, 3.0, 1.0], [0.0, 0.0, -1.0], [0.0, 4.0, 2.0], [1.0, 0.0, 0.0]], dtype=torch.float64
    )
    got = fn(pts.T, torch.tensor([2.0], dtype=torch.float64))  # (points, variables)
    p = pts.numpy()
    dist = np.hypot(p[0] - p[1], p[2] - p[3])
    np.testing.assert_allclose(got.detach().numpy(), 2.0 / dist, rtol=1e-14)


def test_sqrt_units():
    variables = dsl.parse_variables("q:m, p:kg*m/s")
    names = ["q", "p"]
    assert dsl.dimension(dsl.parse("sqrt(q)", names), variables).to_units() == "m ** (1/2)"
    # c*sqrt(q) + p: c carries p's unit over sqrt(m)
    (unit,) = dsl.param_units(dsl.parse("c*sqrt(q) + p", names), variables)
    assert unit.to_units() == "kg * m ** (1/2) / s"
    # sqrt(c*q) + p: c*q must have p's unit squared
    (unit,) = dsl.param_units(dsl.parse("sqrt(c*q) + p", names), variables)
    assert unit.to_units() == "kg ** 2 * m / s ** 2"
    with pytest.raises(dsl.UnitError):
        dsl.dimension(dsl.parse("sin(sqrt(q))", names), variables)  # sqrt(m) is not dimensionless
    with pytest.raises(dsl.UnitError, match="function of the formula language"):
        dsl.parse_variables("sqrt:m")


def test_sqrt_is_opt_in_in_the_enumeration_and_deduplicated_as_a_function_of_its_argument():
    from formula_search.advanced import count_formulas, enumeration_table

    variables = dsl.parse_variables("q:m, p:kg*m/s")
    default = enumeration_table(variables, max_size=5, dedup="algebraic")
    explicit = enumeration_table(
        variables, max_size=5, dedup="algebraic", operators=dsl.DEFAULT_OPERATORS
    )
    assert default.equals(explicit) and not default["formula"].str.contains("sqrt").any()
    with_sqrt = enumeration_table(
        variables, max_size=5, dedup="algebraic", operators=[*dsl.DEFAULT_OPERATORS, "sqrt"]
    )
    assert set(default["formula"]) <= set(with_sqrt["formula"])
    roots = with_sqrt[with_sqrt["formula"].str.contains("sqrt")]
    assert "sqrt(q)" in set(roots["formula"]) and "sqrt(q*p)" in set(roots["formula"])
    # sqrt(m) never enters sin: only with a parameter that makes it dimensionless (sin(sqrt(q*c_0)))
    in_sin = roots[roots["formula"].str.startswith("sin(sqrt(")]
    assert (
        len(in_sin)
        and (in_sin["n_params"] > 0).all()
        and "sin(sqrt(q))" not in set(roots["formula"])
    )
    for row in roots.itertuples():
        expr = dsl.parse(row.formula, ["q", "p"])
        dim = dsl.dimension(expr, variables)  # None: a parameter leaves it free
        assert (dim is None and row.dimension == "free") or dim.to_units() == row.dimension
    # at the conservation level sqrt(g) conserves what g does: only one of them is kept
    conserved = enumeration_table(
        variables, max_size=5, dedup="conservation", operators=[*dsl.DEFAULT_OPERATORS, "sqrt"]
    )
    assert "q*p" in set(conserved["formula"]) and "sqrt(q*p)" not in set(conserved["formula"])
    counts = count_formulas(variables, max_size=4, dedup="commutative", operators=["sqrt"])
    # sizes 1 and 2 by hand: q, p, c; sqrt(q), sqrt(p), sqrt(c)
    assert counts[1] == 3 and counts[2] == 3
    with pytest.raises(dsl.errors.InputError, match="unknown operator"):
        enumeration_table(variables, max_size=3, operators=["exp"])


def test_the_fitter_fits_through_sqrt():
    """On a harmonic oscillator q^2 + p^2 (m = k = 1, energy 1) sqrt(q^2 + c*p^2) is conserved with c = 1,
    as q^2 + c*p^2 is (the forward gradient through sqrt: tests/formula_search/test_measure.py)."""
    from formula_search.advanced import fit_formulas

    t = np.linspace(0, 20, 2000)
    data = dsl_dataset(np.stack([np.cos(t), -np.sin(t)], axis=1), t)
    df = fit_formulas(
        ["sqrt(q^2 + c_0*p^2)", "q^2 + c_0*p^2", "sqrt(q^2 + c_0*p)"], data
    ).set_index("formula")
    assert df.loc["sqrt(q^2 + c_0*p^2)", "accepted"] and df.loc["q^2 + c_0*p^2", "accepted"]
    assert float(df.loc["sqrt(q^2 + c_0*p^2)", "params"]) == pytest.approx(1.0, rel=1e-3)
    assert not df.loc["sqrt(q^2 + c_0*p)", "accepted"]


def dsl_dataset(x, t):
    from formula_search import Dataset

    return Dataset.from_arrays(x, t, variables="q:m, p:m/s")
