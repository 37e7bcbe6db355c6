"""The term search (fsearch fit --terms): a law of six terms with its coefficients, on one recording."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import dsl
from formula_search._fit import FitConfig, FitData
from formula_search._terms import TermConfig, term_search, terms


def _anharmonic(noise=0.0):
    from scipy.integrate import solve_ivp

    def rhs(_t, y):
        x1, x2, v1, v2 = y
        return [v1, v2, -(x1**3) - 2 * (x1 - x2), -x2 - 2 * (x2 - x1)]

    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 30, 800))
    sol = solve_ivp(rhs, (0, 30), [1.0, -0.3, 0.2, 0.5], t_eval=t, rtol=1e-10, atol=1e-12,
                    method="DOP853")  # fmt: skip
    return t, sol.y.T + noise * sol.y.T.std(0) * rng.standard_normal(sol.y.T.shape)


def test_terms_have_no_parameters_and_no_top_level_sum():
    v = dsl.parse_variables("x:m, v:m/s")
    got = terms(v, 3)
    assert "x^2" in got and "x*v" in got and "(x^2)^2" in got
    assert all("c" not in t for t in got)
    assert not any(" + " in t or " - " in t for t in got)


def test_energy_of_coupled_anharmonic_oscillators_with_its_coefficients():
    # E = v1^2/2 + v2^2/2 + x1^4/4 + (x1 - x2)^2 + x2^2/2: six terms, 6 + 3x3 + 5 tokens
    t, x = _anharmonic()
    variables = dsl.parse_variables("x1:m, x2:m, v1:m/s, v2:m/s")
    data = FitData(("x1", "x2", "v1", "v2"), (x,), variables, (t,))
    table = term_search(data, config=TermConfig(term_depth=3, max_terms=6), fit_config=FitConfig())
    top = table.iloc[0]
    assert bool(top["accepted"]) and top["terms"] == 6
    params = [float(p) for p in top["params"].split(";")]
    found = sympy.expand(dsl.to_sympy(dsl.parse(top["formula"], list(data.var_names)), params))
    s = dict(zip(data.var_names, sympy.symbols(data.var_names, real=True)))
    truth = sympy.expand(
        s["v1"] ** 2 / 2 + s["v2"] ** 2 / 2 + s["x1"] ** 4 / 4 + (s["x1"] - s["x2"]) ** 2
        + s["x2"] ** 2 / 2
    )  # fmt: skip
    ratio = found.coeff(s["x1"] * s["x2"]) / truth.coeff(s["x1"] * s["x2"])
    for term in truth.as_ordered_terms():
        mono = term / term.as_coeff_Mul()[0]
        assert float(found.coeff(mono) / ratio) == pytest.approx(
            float(term.as_coeff_Mul()[0]), rel=1e-3
        )


def test_term_search_needs_the_derivative_measure():
    from formula_search.errors import InputError

    t, x = _anharmonic()
    variables = dsl.parse_variables("x1:m, x2:m, v1:m/s, v2:m/s")
    data = FitData(("x1", "x2", "v1", "v2"), (x,), variables, (t,))
    with pytest.raises(InputError, match="derivative"):
        term_search(data, fit_config=FitConfig(measure="paper"))
