"""Regression tests of the reliability issue's input cases: each gives one line and exit 2, or works."""

from __future__ import annotations

import numpy as np
import pytest

import dsl
from formula_search.cli import main
from formula_search.data import load_dataset
from formula_search.errors import InputError


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _circle_csv(path, header="t,a,b", bom=False):
    t = np.linspace(0.0, 6.0, 120)
    rows = np.column_stack([t, np.cos(t), np.sin(t)])
    text = header + "\n" + "\n".join(",".join(f"{v:.12g}" for v in r) for r in rows) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


@pytest.mark.parametrize("name", ["c", "c0", "c_0", "c_12"])
def test_column_named_like_a_parameter_is_refused(tmp_path, capsys, name):
    # c_0 was read as the data column inside formulas: sin(c_0*c_0) lost its parameter, exit 0
    path = _circle_csv(tmp_path / "rec.csv", header=f"t,{name},b")
    code, out, err = run_cli(
        ["fit", "--dataset", str(path), "--columns", f"{name}:m,b:m", "--depth", "3"], capsys
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert name in err and "parameters" in err


@pytest.mark.parametrize("name", ["sin", "cos", "square"])
def test_column_named_like_a_function_is_refused(tmp_path, capsys, name):
    # a column named sin made 259 of 279 formulas unparsable, exit 0
    path = _circle_csv(tmp_path / "rec.csv", header=f"t,{name},b")
    code, _, err = run_cli(
        ["fit", "--dataset", str(path), "--columns", f"{name}:m,b:m", "--depth", "3"], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "function" in err


def test_column_renamed_with_names_is_fitted(tmp_path, capsys):
    # the way out the message names: --names renames the file's columns
    path = _circle_csv(tmp_path / "rec.csv", header="t,c,b")
    code, out, err = run_cli(
        [
            "fit",
            "--dataset",
            str(path),
            "--names",
            "t,conc,b",
            "--skip-rows",
            "1",
            "--columns",
            "conc:m,b:m",
            "--depth",
            "5",
            "--out",
            str(tmp_path / "fit"),
        ],
        capsys,
    )
    assert code == 0, err
    import pandas as pd

    best = pd.read_csv(tmp_path / "fit" / "survivors.csv")
    assert best["formula"].iloc[0] in ("conc^2 + b^2", "b^2 + conc^2")


def test_variable_names_checked_in_the_language():
    for bad in ("c", "c_3", "cos", "x y", "1x", "\u03b1"):
        with pytest.raises(dsl.UnitError):
            dsl.Variable(bad, "m")
    assert dsl.Variable("conc", "m").name == "conc"
    assert dsl.parse("c*conc", ["conc"]) == dsl.parse("c_0*conc", ["conc"])


def test_unknown_card_key_says_did_you_mean(tmp_path, capsys):
    # a typo "trajectroy" was ignored and surfaced as "time does not increase"
    data = _circle_csv(tmp_path / "rec.csv")
    card = tmp_path / "rec.toml"
    card.write_text(
        '[[variables]]\nname = "a"\nunit = "m"\n[[variables]]\nname = "b"\nunit = "m"\n'
        '[file]\ntrajectroy = "trial"\n'
    )
    code, _, err = run_cli(["fit", "--dataset", str(data), "--depth", "3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "trajectroy" in err and "did you mean 'trajectory'" in err and "line 8" in err


@pytest.mark.parametrize(
    "extra, key",
    [('nam = "x"\n', "nam"), ('[[variables]]\nname = "c2"\nunits = "m"\n', "units")],
)
def test_unknown_card_key_in_any_table(tmp_path, extra, key):
    data = _circle_csv(tmp_path / "rec.csv")
    card = tmp_path / "rec.toml"
    card.write_text(
        extra + '[[variables]]\nname = "a"\nunit = "m"\n[[variables]]\nname = "b"\nunit = "m"\n'
    )
    with pytest.raises(InputError, match=f"unknown key.*{key}"):
        load_dataset(data)


def test_bom_header_reads(tmp_path):
    # a spreadsheet's UTF-8 BOM gave "missing ... column (columns: \ufefftrial, ...)"
    path = _circle_csv(tmp_path / "rec.csv", header="t,a,b", bom=True)
    ds = load_dataset(path, columns="a:m,b:m")
    assert ds.var_names == ("a", "b") and ds.n_rows == 120


def test_sidecar_card_with_non_utf8_byte(tmp_path, capsys):
    # the card beside a file raised UnicodeDecodeError, the same card given directly exit 2
    data = _circle_csv(tmp_path / "rec.csv")
    (tmp_path / "rec.toml").write_bytes(b'description = "caf\xe9"\n')
    code, _, err = run_cli(["fit", "--dataset", str(data), "--depth", "3"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "rec.toml" in err
