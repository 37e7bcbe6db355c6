"""The README's Python examples run as printed and find the law they say they find.

Every ```python block of README.md is executed in a fresh namespace, in a temporary working directory,
and what it leaves behind (a search result, a discovery) is checked against the law of the simulated
system, computed here from the simulation's own parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy

import formula_search as fs

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def _pendulum_constant(expr: sympy.Expr) -> float:
    """c of a law of the form a*p^2 + b*cos(q) + const, normalised as p^2 + c*cos(q) (c = b/a)."""
    symbols = {s.name: s for s in expr.free_symbols}
    assert set(symbols) == {"q", "p"}, f"{expr}: expected a law in q and p"
    q, p = symbols["q"], symbols["p"]
    expr = sympy.expand(expr)
    a = expr.coeff(p, 2)
    b = expr.coeff(sympy.cos(q))
    rest = sympy.simplify(expr - a * p**2 - b * sympy.cos(q))
    assert a.free_symbols == b.free_symbols == rest.free_symbols == set(), (
        f"{expr}: not of the form a*p^2 + b*cos(q) + const"
    )
    assert float(a) != 0 and float(b) != 0, f"{expr}: not of the form a*p^2 + b*cos(q) + const"
    return float(b) / float(a)


def _check(namespace: dict, out: str) -> None:
    """What the examples leave behind, checked against the simulations that made their data."""
    checked = 0
    result = namespace.get("result")
    if isinstance(result, fs.SearchResult):
        # q'' = -w2 sin(q) conserves p^2/2 - w2 cos(q), i.e. p^2 - 2*w2*cos(q)
        expected = -2 * namespace["w2"]
        assert _pendulum_constant(result.sympy(0)) == pytest.approx(expected, rel=0.01)
        assert result.latex(0) in out and "\\cos" in out
        assert result.laws["ratio"].iloc[0] <= 0.01
        checked += 1
    found = namespace.get("found")
    if isinstance(found, fs.Discovery):
        # the built-in dataset's card gives the Hamiltonian it was simulated from
        data = fs.load_dataset(found.meta["dataset"])
        truth = _pendulum_constant(sympy.sympify(data.hamiltonian))
        assert _pendulum_constant(found.sympy(0)) == pytest.approx(truth, rel=0.01)
        assert found.latex(0) in out
        assert (Path(found.folder) / "ranking.csv").exists()
        checked += 1
    assert checked, (
        "the example left neither a SearchResult `result` nor a Discovery `found` to check"
    )


def test_the_readme_has_a_short_python_example():
    assert BLOCKS, "README.md has no ```python block"
    code_lines = [
        line for line in BLOCKS[0].splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    assert len(code_lines) < 15


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_the_readme_example_runs_and_finds_the_law(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), namespace)
    _check(namespace, capsys.readouterr().out)
