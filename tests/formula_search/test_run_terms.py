"""Runs that search laws of several terms: the card's [search] chooses the term search, the command line's
--terms overrides it, and a bad [search] table is one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sympy

import dsl
from formula_search.cli import main
from formula_search.io import parse_params

TINY = [
    "--epochs",
    "2",
    "--pretrain-steps",
    "50",
    "--top-k",
    "1",
    "--device",
    "cpu",
    "--no-comparators",
    "--protocol",
    "paper",
]


def _rank(args, tmp_path, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["rank", *args, "--run", str(run), *TINY])
    assert exc.value.code in (0, None)
    return pd.read_csv(run / "ranking.csv"), json.loads((run / "meta.json").read_text())


def test_the_cards_search_ranks_the_coupled_oscillators_energy(tmp_path, monkeypatch):
    """coupled_oscillators' card asks for up to 6 terms of up to 3 tokens: the ranked laws are the energy
    and a normal-mode energy, the energy's constants those of the card (up to a common factor)."""
    ranking, meta = _rank(["--dataset", "coupled_oscillators"], tmp_path, monkeypatch)
    assert meta["survivors"].startswith("term search: up to 6 terms of up to 3 tokens")
    assert meta["n_survivors"] == 2
    energy = ranking[~ranking["formula"].str.contains(r"p1\*p2", regex=True)].iloc[0]
    names = ["x1", "x2", "p1", "p2"]
    found = sympy.expand(
        dsl.to_sympy(dsl.parse(energy["formula"], names), parse_params(energy["params"]))
    )
    x1, x2, p1, p2 = sympy.symbols(names, real=True)
    scale = float(found.coeff(x2**2))
    for mono, want in ((x1**2, 0.75), (x1 * x2, -0.5), (p1**2, 0.5), (p2**2, 0.25)):
        assert float(found.coeff(mono)) / scale == pytest.approx(want, rel=1e-4)


def test_terms_on_the_command_line_override_the_enumeration(tmp_path, monkeypatch):
    ranking, meta = _rank(
        ["--dataset", "ideal_spring", "--terms", "2", "--term-depth", "2"], tmp_path, monkeypatch
    )
    assert meta["survivors"].startswith("term search: up to 2 terms of up to 2 tokens")
    assert len(ranking) == 1 and {"q^2", "p^2"} <= set(
        ranking["formula"].iloc[0].replace("c*", "").replace("(", "").replace(")", "").split(" + ")
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [("terms = 1", "terms must be at least 2"), ('operators = ["exp"]', "unknown operator"),
     ("term_dept = 3", "did you mean 'term_depth'")],
)  # fmt: skip
def test_bad_search_tables_are_one_line(tmp_path, table, message):
    from formula_search.data import parse_card
    from formula_search.errors import InputError

    text = (
        'name = "x"\nkind = "simulated"\nhamiltonian = "p^2 + q^2"\n'
        '[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "m/s"\n'
        "[simulation]\ntrajectories = 2\nt_end = 1.0\npoints = 10\n"
        'initial = { kind = "radius", r_min = 0.5, r_max = 1.0 }\n'
        f"[search]\n{table}\n"
    )
    with pytest.raises(InputError, match=message):
        parse_card(text)
