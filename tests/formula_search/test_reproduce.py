"""`fsearch reproduce`: the report beside the paper's numbers, and how a law's constant is read off."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner

import dsl
from formula_search.cli import cli
from formula_search.paper import normalised_constant
from formula_search.runs import run_claims
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
    assert normalised_constant(dsl.parse(text, NAMES), params, NAMES, unit_term) == pytest.approx(
        expected
    )


def test_claims_are_checked_for_the_papers_data_only():
    law = {"expr": dsl.parse("p^2 + c*cos(q)", NAMES), "params": [-2.447]}
    comp = pd.DataFrame(
        {"method": ["vanilla_mlp", "noether", "hnn"], "test_rmse": [0.3768, 0.3567, 0.09085]}
    )
    variables = [{"name": "q"}, {"name": "p"}]
    meta = {"dataset": "real_pendulum", "noise": None, "variables": variables,
            "dataset_options": {"dataset": "real_pendulum"}}  # fmt: skip
    checks = run_claims(meta, law, comp)
    assert [c.holds for c in checks] == [True, False, False]
    assert run_claims({**meta, "noise": 0.1}, law, comp) is None
    user_file = {**meta, "dataset_options": {"dataset": "data/real_pendulum.csv"}}
    assert run_claims(user_file, law, comp) is None
    assert run_claims({**meta, "dataset": "my_data", "dataset_options": {}}, law, comp) is None


def test_constant_is_none_for_laws_of_another_shape():
    assert normalised_constant(dsl.parse("sin(q)*p + c", NAMES), [1.0], NAMES, "p^2") is None


@pytest.mark.slow
def test_reproduce_writes_a_report_with_every_method(tmp_path, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "repro"
    result = CliRunner().invoke(
        cli,
        ["reproduce", "--out", str(out), "--datasets", "ideal_spring", "--epochs", "1", "--top-k", "1",
         "--pretrain-steps", "20", "--pretrain-keep", "best", "--device", "cpu", "--no-ours"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "lowest-loss weights (`--pretrain-keep best`)" in report
    assert load_mlp(out / "ideal_spring" / "model.pt")[1].keep == "best"
    results, claims = report.split("## The paper's claims, checked on these runs")
    rows = [line for line in results.splitlines() if line.startswith("|") and "---" not in line][1:]
    methods = [cells.split("|")[4].strip() for cells in rows]
    assert methods == [
        "Vanilla MLP",
        "MLP (more epochs)",
        "Noether Nets",
        r"True $\mathcal{H}$ [oracle]",
        "HNN",
    ]
    # the spring's law with its constant (fitted exactly, then one meta-learning epoch) beside the paper's 1
    ours, paper = re.search(r"\| ([0-9.]+) / ([0-9.]+) \|", results).groups()
    assert float(paper) == 1.0
    assert float(ours) == pytest.approx(1.0, abs=0.02)
    # the claims section, recomputed here from the run's own files
    comp = pd.read_csv(out / "ideal_spring" / "comparators.csv").set_index("method")["test_rmse"]
    c = float(ours)
    expected = [
        0.99 <= c <= 1.01,
        comp["noether"] < comp["vanilla_mlp"],
        comp["noether"] < 1.05 * comp["oracle"],
    ]
    rows = [line for line in claims.splitlines() if line.startswith("| ideal_spring |")]
    assert [row.rstrip(" |").endswith("yes") for row in rows] == expected
    assert f"c = {c:.4g}" in rows[0]
    # and the same verdicts on the terminal
    verdicts = [line.split(":")[0].strip() for line in result.output.splitlines()
                if line.startswith(("  holds:", "  does not hold:"))]  # fmt: skip
    assert verdicts == ["holds" if ok else "does not hold" for ok in expected]
    # --no-ours: the paper's rows only
    assert "ideal_spring-ours" not in report and not (out / "ideal_spring-ours").exists()


def test_reproduce_runs_each_dataset_with_the_papers_protocol_and_ours(tmp_path, monkeypatch):
    """The real pendulum is run twice: the paper's measure and protocol, and as `fsearch run` runs it by
    default (its card's measure, the protocol chosen by CV on the training data), each with its own run
    directory, row and claims; each run records what decided its protocol."""
    import json

    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "repro"
    result = CliRunner().invoke(
        cli,
        ["reproduce", "--out", str(out), "--datasets", "real_pendulum", "--epochs", "1", "--top-k", "1",
         "--pretrain-steps", "20", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    results, claims = report.split("## The paper's claims, checked on these runs")
    labels = [
        line.split("|")[1].strip() for line in results.splitlines() if line.startswith("| real")
    ]
    assert labels == ["real_pendulum", "real_pendulum-ours"]
    assert "`NAME-ours`: NAME as `fsearch run --dataset NAME` runs it" in results
    for label in labels:  # each run's three claims: law, 10x below the MLP, below HNN
        assert sum(line.startswith(f"| {label} |") for line in claims.splitlines()) == 3
    paper = json.loads((out / "real_pendulum" / "meta.json").read_text())
    ours = json.loads((out / "real_pendulum-ours" / "meta.json").read_text())
    assert paper["protocol"] == {"name": "paper", "by": "the command line (--protocol)"}
    assert (paper["inner_rule"], paper["rank_config"]["tailor"]["outer_lr"]) == ("sgd", 1e-3)
    assert (
        paper["measure"] == ours["measure"] == "paper"
    )  # the paper's; the real pendulum's card says so
    assert ours["protocol"]["name"] in ("paper", "polyak")
    assert "cross-validation" in ours["protocol"]["by"] and ours["protocol"]["cv"]["folds"] == 4
    cv = pd.read_csv(out / "real_pendulum-ours" / "protocol_cv.csv")
    assert sorted(cv["protocol"].unique()) == ["paper", "polyak"] and len(cv) == 8
    assert "Meta-tailoring protocol: " in (out / "real_pendulum-ours" / "report.md").read_text()
