"""The ``products`` term library: monomials up to degree 2 times 1, sin and cos of the angles and of their
differences; with it the term search finds the double pendulum's energy, whose coupling w1*w2*cos(q1 - q2)
is 8 tokens."""

from __future__ import annotations

import pytest
import sympy

import dsl
from formula_search.advanced import FitData, TermConfig, term_search
from formula_search.data import load_dataset
from formula_search.errors import InputError


def test_the_library_by_hand_for_one_angle_and_one_rate():
    from formula_search._terms import product_terms

    got = product_terms((dsl.Variable("q", "rad"), dsl.Variable("p", "rad/s")))
    monomials = ["", "q", "p", "q^2", "q*p", "p^2"]
    trig = ["", "sin(q)", "cos(q)"]  # p has units: no trigonometry of it
    want = ["*".join(x for x in (m, t) if x) for m in monomials for t in trig if m or t]
    assert got == want and len(got) == 17
    for text in got:  # every term parses and is unit-valid
        dsl.parse(text, ["q", "p"])


def _assert_the_cards_energy(law, names, rel):
    """``law`` (a fit-table row) is the double pendulum card's energy, every coefficient within ``rel``:
    1.5 w1^2 + 0.25 w2^2 + w1 w2 cos(q1 - q2) - 29.43 cos(q1) - 9.81 cos(q2)."""
    params = [float(v) for v in str(law["params"]).split(";")]
    found = sympy.expand(dsl.to_sympy(dsl.parse(law["formula"], names), params))
    q1, q2, w1, w2 = sympy.symbols(names, real=True)
    scale = float(found.coeff(sympy.cos(q1))) / -29.43
    for term, want in ((w1**2, 1.5), (w2**2, 0.25), (w1 * w2 * sympy.cos(q1 - q2), 1.0),
                       (sympy.cos(q2), -9.81)):  # fmt: skip
        assert float(found.coeff(term)) / scale == pytest.approx(want, rel=rel)


def test_the_double_pendulums_energy_with_the_cards_constants():
    data = load_dataset("double_pendulum")
    table = term_search(
        FitData.from_dataset(data, "train"), config=TermConfig(max_terms=6, library="products")
    )
    laws = table[table["accepted"]]
    assert len(laws) == 1
    _assert_the_cards_energy(laws.iloc[0], list(data.var_names), rel=1e-6)


def test_the_double_pendulums_energy_at_one_percent_noise():
    """The card's 25 training trajectories, 1% of each variable's spread added: no exact derivatives, so the
    term search takes differences of the recorded states (with a spline's derivative of this fast motion the
    energy was not found: docs/experiments/2026-12-07-differences.md)."""
    import numpy as np

    data = load_dataset("double_pendulum")
    rng = np.random.default_rng(0)
    spread = np.concatenate([tr.x for tr in data.train]).std(0)
    noisy = tuple(tr.x + 0.01 * spread * rng.standard_normal(tr.x.shape) for tr in data.train)
    fit_data = FitData(
        tuple(data.var_names), noisy, tuple(data.variables), tuple(tr.t for tr in data.train)
    )
    table = term_search(fit_data, config=TermConfig(max_terms=6, library="products"))
    _assert_the_cards_energy(table[table["accepted"]].iloc[0], list(data.var_names), rel=0.02)


def test_an_unknown_library_is_one_line():
    from formula_search.data import parse_card

    with pytest.raises(InputError, match="library must be one of"):
        TermConfig(library="all")
    text = (
        'name = "x"\nkind = "simulated"\nhamiltonian = "p^2 + q^2"\n'
        '[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "m/s"\n'
        "[simulation]\ntrajectories = 2\nt_end = 1.0\npoints = 10\n"
        'initial = { kind = "radius", r_min = 0.5, r_max = 1.0 }\n'
        '[search]\nlibrary = "all"\n'
    )
    with pytest.raises(InputError, match="library must be one of enumerate, products"):
        parse_card(text)


def test_extra_terms_reach_past_the_library():
    """Terms of one token (q, p) cannot hold the spring's energy; the same search with q^2 and p^2 added
    finds q^2 + p^2 with coefficient 1 (the card's spring: q^2 + p^2 conserved)."""
    data = FitData.from_dataset(load_dataset("ideal_spring"), "train")
    plain = term_search(data, config=TermConfig(term_depth=1, max_terms=2))
    assert not plain["accepted"].any()
    table = term_search(data, config=TermConfig(term_depth=1, max_terms=2, extra=("q^2", "p^2")))
    top = table[table["accepted"]].iloc[0]
    assert sorted(top["formula"].replace("c*", "").split(" + ")) == ["(p^2)", "(q^2)"]
    assert float(top["params"]) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("q +", "malformed"),
        ("c*q^2", "no parameter"),
        ("q + p", "units do not agree"),
        ("z^2", "unknown name"),
    ],
)
def test_a_bad_extra_term_is_one_line(term, message):
    data = FitData.from_dataset(load_dataset("ideal_spring"), "train")
    with pytest.raises(InputError, match=message):
        term_search(data, config=TermConfig(term_depth=1, max_terms=2, extra=(term,)))


def test_the_card_names_extra_terms():
    from formula_search.data import parse_card

    text = (
        'name = "x"\nkind = "simulated"\nhamiltonian = "p^2 + q^2"\n'
        '[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "m/s"\n'
        "[simulation]\ntrajectories = 2\nt_end = 1.0\npoints = 10\n"
        'initial = { kind = "radius", r_min = 0.5, r_max = 1.0 }\n'
        '[search]\nterms = 2\nextra_terms = ["q^2"]\n'
    )
    assert parse_card(text).search["extra_terms"] == ["q^2"]
    with pytest.raises(InputError, match="extra_terms must be a list of formulas"):
        parse_card(text.replace('["q^2"]', "[1]"))


def test_extra_terms_without_the_term_search_are_refused_before_any_work(tmp_path):
    from formula_search.runs import execute

    with pytest.raises(InputError, match="give --terms K as well"):
        execute({"dataset": "ideal_spring"}, run=str(tmp_path / "run"), extra_terms=("q^2",))
    assert not (tmp_path / "run").exists()
