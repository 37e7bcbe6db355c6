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


def test_pair_coefficients_are_the_hand_computed_null_vector():
    """Two terms whose rates along the data are equal (A = [[1, 1], [1, 1]]) are conserved as t1 - t2: the
    closed form gives the eigenvalue 0 and the vector (1, -1), and agrees with the general solver on
    random positive matrices."""
    import torch

    from formula_search._terms import _pair_scores, _smallest

    a = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    b = torch.eye(2, dtype=torch.float64)
    i, j = torch.tensor([0]), torch.tensor([1])
    val, coef, ratio = _pair_scores(a, b, b, b, i, j, torch)
    assert float(val[0]) == pytest.approx(0.0, abs=1e-15) and float(ratio[0]) == pytest.approx(0.0)
    assert float(coef[0, 0] / coef[0, 1]) == pytest.approx(-1.0)
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(50, 2, 6, generator=gen, dtype=torch.float64)
    n = torch.randn(50, 2, 6, generator=gen, dtype=torch.float64)
    a_sets, b_sets = m @ m.transpose(-1, -2), n @ n.transpose(-1, -2)
    ref_val, ref_coef = _smallest(a_sets, b_sets, torch)
    for k in range(50):
        v, c, _ = _pair_scores(a_sets[k], b_sets[k], b_sets[k], b_sets[k], i, j, torch)
        assert float(v[0]) == pytest.approx(float(ref_val[k]), rel=1e-9)
        assert float(c[0, 0] / c[0, 1]) == pytest.approx(
            float(ref_coef[k, 0] / ref_coef[k, 1]), rel=1e-7
        )


def test_spring_energy_coefficient_is_the_cards_ratio():
    """q^2 + p^2 (the card's Hamiltonian) through the term search: one law, coefficient exactly 1."""
    from formula_search.data import load_dataset

    table = term_search(load_dataset("ideal_spring"), config=TermConfig(term_depth=2, max_terms=3))
    assert len(table) == 1 and bool(table["accepted"].iloc[0])
    assert float(table["params"].iloc[0]) == pytest.approx(1.0, rel=1e-6)


def test_a_function_of_an_earlier_law_is_not_new():
    """On the pendulum every conserved quantity is a function of the energy: with terms of up to 4 tokens
    (p^2*cos(q), (p^2)^2, cos(q)^2: the energy's square) one law is reported, the energy itself."""
    from formula_search._terms import _in_span
    from formula_search.data import load_dataset

    ds = load_dataset("ideal_pendulum")
    table = term_search(ds, config=TermConfig(term_depth=4, max_terms=3))
    assert len(table) == 1
    assert table["formula"].iloc[0] in ("(cos(q)) + c*(p^2)", "(p^2) + c*(cos(q))")
    import torch

    x = torch.linspace(-1, 1, 50, dtype=torch.float64)
    grad_e = torch.stack([torch.sin(x) * 3, 2 * x])  # E = p^2 - 3 cos(q) at q = p = x
    e = x**2 - 3 * torch.cos(x)
    assert _in_span(2 * e * grad_e, [grad_e], torch)  # E^2
    assert not _in_span(torch.stack([torch.ones_like(x), 0 * x]), [grad_e], torch)  # q


def test_identities_among_terms_are_not_laws():
    """sin(q)^2 + cos(q)^2 is constant everywhere: the identity test refuses it, a law it is not."""
    import torch

    from formula_search._terms import _identity

    q = torch.linspace(-2, 2, 100, dtype=torch.float64)
    grads = torch.stack([2 * torch.sin(q) * torch.cos(q), -2 * torch.cos(q) * torch.sin(q), 2 * q])
    b = grads @ grads.T
    ident = _identity(torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), b.unsqueeze(0), torch)
    law = _identity(torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64), b.unsqueeze(0), torch)
    assert bool(ident[0]) and not bool(law[0])


def test_coupled_oscillators_energy_first_with_the_cards_constants():
    """Two masses, three springs: the mode energies are conserved too; on canonical data the Hamiltonian
    (whose symplectic gradient is the velocity) is named first, its constants those of the card."""
    from formula_search.data import load_dataset

    ds = load_dataset("coupled_oscillators")
    table = term_search(ds, config=TermConfig(term_depth=3, max_terms=6))
    top = table.iloc[0]
    names = list(ds.var_names)
    params = [float(p) for p in top["params"].split(";")]
    found = sympy.expand(dsl.to_sympy(dsl.parse(top["formula"], names), params))
    s = sympy.symbols(names, real=True)
    x1, x2, p1, p2 = s
    truth = sympy.expand(p1**2 / 2 + p2**2 / 4 + x1**2 / 2 + (x1 - x2) ** 2 / 4 + 3 * x2**2 / 4)
    scale = found.coeff(x2**2) / truth.coeff(x2**2)
    for mono in (x1**2, x1 * x2, p1**2, p2**2):
        assert float(found.coeff(mono) / scale) == pytest.approx(float(truth.coeff(mono)), rel=1e-6)
    assert found.coeff(p1 * p2) == 0
    assert (
        len(table) == 2
    )  # the energy and one mode energy: their span holds every quadratic invariant


def test_two_body_momenta_and_angular_momentum_each_once():
    """HNN's orbits (centre of mass at rest at the origin): the search reports x1 + x2, y1 + y2, the two
    total momenta and the angular momentum (x1*py1 - y1*px1: the second body's half equals it), once each,
    and nothing else."""
    from formula_search.data import load_dataset

    ds = load_dataset("two_body", trajectories=60)
    table = term_search(ds, config=TermConfig(term_depth=3, max_terms=4))
    laws = {frozenset(f.replace("c*", "").replace("(", "").replace(")", "").split(" + "))
            for f in table["formula"]}  # fmt: skip
    assert {"px1", "px2"} in [set(x) for x in laws] and {"py1", "py2"} in [set(x) for x in laws]
    # the angular momentum once, as position x momentum products (px2 = -px1 on these orbits, so
    # x1*py1 - y1*px1 and x1*py1 + y1*px2 are the same law)
    angular = [law for law in laws if all("*" in t for t in law)]
    assert len(angular) == 1 and len(angular[0]) == 2
    assert all(t.split("*")[0] in ("x1", "y1", "x2", "y2") for t in angular[0])
    assert len(table) == len(laws) == 5
