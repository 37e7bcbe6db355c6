"""``fsearch enumerate``: defaults, files, summary and one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

import dsl
from formula_search._enumerate import COLUMNS, count_formulas
from formula_search.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_depth_7_alone_uses_the_default_dataset_and_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["enumerate", "--depth", "7"], capsys)
    assert code == 0, err
    assert "default dataset ideal_pendulum" in out
    path = tmp_path / "fsearch-out" / "enumerate-ideal_pendulum-d7-conservation.parquet"
    assert str(path.relative_to(tmp_path)) in out
    df = pd.read_parquet(path)
    assert tuple(df.columns) == COLUMNS
    pendulum = dsl.parse_variables("q:rad,p:kg*m^2/s")
    counts = count_formulas(pendulum, max_size=7, dedup="conservation")
    assert len(df) == sum(counts.values())
    assert df.groupby("size").size().to_dict() == counts
    assert "p^2 + c_0*cos(q)" in set(df.formula)
    # the summary counts every level at depth 7
    commutative = sum(count_formulas(pendulum, max_size=7, dedup="commutative").values())
    assert f"{commutative:,}" in out
    assert not list((tmp_path / "fsearch-out").glob("*.part"))


def test_variables_option_and_csv(tmp_path, capsys):
    out_file = tmp_path / "spring.csv"
    code, out, err = _run(
        [
            "enumerate",
            "--variables",
            "q:m,p:kg*m/s",
            "--depth",
            "4",
            "--dedup",
            "algebraic",
            "--out",
            str(out_file),
        ],
        capsys,
    )
    assert code == 0, err
    df = pd.read_csv(out_file, keep_default_na=False)
    spring = dsl.parse_variables("q:m,p:kg*m/s")
    assert df.groupby("size").size().to_dict() == count_formulas(
        spring, max_size=4, dedup="algebraic"
    )
    assert df.loc[df.formula == "q*c_0", "param_units"].item() == "1"
    assert df.loc[df.formula == "q + c_0", "param_units"].item() == "m"


def test_dataset_card_gives_its_units(tmp_path, capsys):
    out_file = tmp_path / "s.parquet"
    code, _, err = _run(
        ["enumerate", "--dataset", "ideal_spring", "--depth", "3", "--out", str(out_file)], capsys
    )
    assert code == 0, err
    df = pd.read_parquet(out_file)
    assert df.loc[df.formula == "q", "dimension"].item() == "m"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enumerate", "--depth", "0"], "--depth"),
        (["enumerate", "--depth", "seven"], "--depth"),
        (["enumerate", "--dataset", "no_such_dataset"], "unknown dataset"),
        (["enumerate", "--variables", "q:furlongs_per_blorp"], "unit"),
        (["enumerate", "--variables", "q"], "name:unit"),
        (["enumerate", "--dedup", "sideways"], "dedup"),
        (["enumerate", "--out", "table.xlsx"], "format"),
        (["enumerate", "--dataset", "ideal_spring", "--variables", "q:m"], "not both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], err
    assert "Traceback" not in out + err
    assert not (tmp_path / "fsearch-out").exists() or not any((tmp_path / "fsearch-out").iterdir())


def test_help_says_depth_counts_tokens(capsys):
    code, out, _ = _run(["enumerate", "--help"], capsys)
    assert code == 0
    assert "tokens" in out and "--variables" in out
