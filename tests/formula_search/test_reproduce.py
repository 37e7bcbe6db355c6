"""`fsearch reproduce`: the report beside the paper's numbers, and how a law's constant is read off."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import dsl
from formula_search.cli import cli
from formula_search.cli.rank_cmd import _normalised_constant
from meta_tailor import load_mlp

NAMES = ["q", "p"]


@pytest.mark.parametrize(
    ("text", "params", "unit_term", "expected"),
    [
        ("p^2 + c*cos(q)", [-2.99], "p^2", 2.99),  # the paper's p^2 - 2.99 cos q
        ("c*p^2 - cos(q)", [0.25], "p^2", 4.0),  # divide by the p^2 coefficient: p^2 - 4 cos q
        ("q^2 + c*p^2", [1.002], "q^2", 1.002),  # the paper's spring form
        ("(c*p)^2 + q^2", [2.0], "q^2", 4.0),
    ],
)
def test_constant_is_read_in_the_papers_normalisation(text, params, unit_term, expected):
    law = {"expr": dsl.parse(text, NAMES), "params": params}
    assert _normalised_constant(law, NAMES, unit_term) == pytest.approx(expected)


def test_constant_is_none_for_laws_of_another_shape():
    law = {"expr": dsl.parse("sin(q)*p + c", NAMES), "params": [1.0]}
    assert _normalised_constant(law, NAMES, "p^2") is None


@pytest.mark.slow
def test_reproduce_writes_a_report_with_every_method(tmp_path, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "repro"
    result = CliRunner().invoke(
        cli,
        ["reproduce", "--out", str(out), "--datasets", "ideal_spring", "--epochs", "1", "--top-k", "1",
         "--pretrain-steps", "20", "--pretrain-keep", "best", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "lowest-loss weights (`--pretrain-keep best`)" in report
    assert load_mlp(out / "ideal_spring" / "model.pt")[1].keep == "best"
    rows = [line for line in report.splitlines() if line.startswith("|") and "---" not in line][1:]
    methods = [cells.split("|")[4].strip() for cells in rows]
    assert methods == [
        "Vanilla MLP",
        "MLP (more epochs)",
        "Noether Nets",
        r"True $\mathcal{H}$ [oracle]",
        "HNN",
    ]
    # the spring's law with its constant (fitted exactly, then one meta-learning epoch) beside the paper's 1
    ours, paper = re.search(r"\| ([0-9.]+) / ([0-9.]+) \|", report).groups()
    assert float(paper) == 1.0
    assert float(ours) == pytest.approx(1.0, abs=0.02)
    assert (out / "ideal_spring" / "comparators.csv").exists()
