"""Regression tests of the reliability issue's fit and rank cases: one line and exit 2, or correct work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dsl
from formula_search._fit import FitConfig, fit_formulas
from formula_search.cli import main
from formula_search.data import load_dataset


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.mark.parametrize("seed", ["-5", str(2**40)])
def test_seed_out_of_range_is_one_line(seed, capsys, tmp_path):
    code, _, err = run_cli(
        [
            "fit",
            "--dataset",
            "ideal_pendulum",
            "--depth",
            "3",
            "--seed",
            seed,
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 2 and "--seed" in err and "Traceback" not in err


def test_formula_nested_200_deep_or_500_terms_is_unparsable_not_fatal(tmp_path, capsys):
    table = tmp_path / "f.csv"
    deep = "(" * 200 + "q" + ")" * 200
    long = " + ".join(["q"] * 500)
    pd.DataFrame({"formula": [deep, long, "p^2 + c*cos(q)"]}).to_csv(table, index=False)
    code, _, err = run_cli(
        [
            "fit",
            "--dataset",
            "ideal_pendulum",
            "--formulas",
            str(table),
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 0, err
    out = pd.read_parquet(tmp_path / "o" / "fit.parquet")
    assert list(out["status"]) == ["unparsable", "unparsable", "ok"]
    with pytest.raises(dsl.ParseError, match="deep"):
        dsl.parse(long, ["q", "p"])


def test_survivors_params_cell_abc_is_one_line(tmp_path, capsys):
    table = tmp_path / "s.csv"
    table.write_text("formula,params,accepted\nq^2 + c*p^2,abc,True\n")
    code, _, err = run_cli(
        ["rank", "--dataset", "ideal_spring", "--survivors", str(table), "--run", str(tmp_path / "r"),
         "--epochs", "1", "--pretrain-steps", "5", "--no-comparators", "--device", "cpu"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "abc" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_resume_with_other_jobs_reuses_and_says_so(tmp_path, capsys):
    # --resume with another --jobs deleted and refitted the finished chunks, silently
    args = ["fit", "--dataset", "ideal_pendulum", "--depth", "5", "--chunk-size", "60", "--out",
            str(tmp_path)]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    first = pd.read_parquet(tmp_path / "fit.parquet")
    code, _, err = run_cli(args + ["--resume", "--jobs", "2"], capsys)
    assert code == 0 and "reusing" in err
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "fit.parquet"), first)
    code, _, err = run_cli(
        args[:5] + ["--chunk-size", "50", "--out", str(tmp_path), "--resume"], capsys
    )
    assert code == 0 and "nothing reused" in err and "--chunk-size" in " ".join(err.split())


@pytest.mark.parametrize("measure", ["paper", "derivative"])
def test_chunk_size_never_changes_a_result(measure):
    # the same seed with another --chunk-size gave other ratios for 3,783 of 10,626 formulas (paper measure)
    data = load_dataset("ideal_pendulum")
    formulas = [
        "q^2/(p + c)",
        "p^2 + c*cos(q)",
        "sin(c*q) + p",
        "q*p + c",
        "cos(c*p)*q",
        "p/(q + c)",
    ]
    small = fit_formulas(formulas, data, config=FitConfig(measure=measure, chunk_size=2))
    large = fit_formulas(formulas, data, config=FitConfig(measure=measure, chunk_size=100))
    np.testing.assert_allclose(small["ratio"], large["ratio"], rtol=1e-9, equal_nan=True)
    assert list(small["params"]) == list(large["params"])


def test_out_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    # --out in a read-only folder gave a traceback; a path under a file fails the same way for anyone
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = run_cli(
        ["fit", "--dataset", "ideal_spring", "--depth", "3", "--out", str(blocker / "out")], capsys
    )
    assert code == 2 and len(err.strip().splitlines()[-1:]) == 1 and "file.txt" in err
    assert "Traceback" not in err


def test_unwritable_search_cache_falls_back_to_a_temporary_one(tmp_path, monkeypatch):
    # a read-only HOME (search cache) stopped rank and run
    from formula_search.pipeline import SearchConfig, search

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    data = load_dataset("ideal_spring")
    table, path = search(
        data, config=SearchConfig(depth=3, fit=FitConfig()), cache_dir=blocker / "cache"
    )
    assert len(table) and path.exists() and blocker not in path.parents


def test_model_replaced_after_the_run_is_refused_by_export_and_plot(tmp_path, capsys):
    # a folder whose model.pt changed after the ranking (fsearch pretrain into it again) was reported as
    # one run
    table = tmp_path / "s.csv"
    table.write_text("formula,params,accepted\nq^2 + c*p^2,1,True\n")
    run = tmp_path / "run"
    code, _, err = run_cli(
        ["rank", "--dataset", "ideal_spring", "--survivors", str(table), "--run", str(run),
         "--epochs", "1", "--pretrain-steps", "5", "--no-comparators", "--device", "cpu",
         "--protocol", "paper"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    code, _, err = run_cli(["export", str(run), "--format", "markdown"], capsys)
    assert code in (0, None), err
    code, _, err = run_cli(
        [
            "pretrain",
            "--dataset",
            "ideal_spring",
            "--run",
            str(run),
            "--steps",
            "6",
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code in (0, None), err
    for args in (["export", str(run), "--format", "markdown"], ["plot", str(run)]):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "model.pt" in err


def test_pretrain_into_a_folder_that_cannot_be_written_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = run_cli(
        ["pretrain", "--dataset", "ideal_spring", "--run", str(blocker / "run"), "--device", "cpu"],
        capsys,
    )
    assert code == 2 and "file.txt" in err and "pretrain MLP" not in err
