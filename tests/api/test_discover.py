"""discover() and its run folder: written as a whole or not at all, read back by Discovery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import formula_search as fs

FAST = dict(survivors=None, top_k=1, epochs=1, pretrain_steps=20, comparators=False, device="cpu")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "fsearch-cache"))


def _spring(tmp_path):
    survivors = tmp_path / "survivors.csv"
    pd.DataFrame({"formula": ["q^2 + c_0*p^2"], "params": ["[1.0]"], "accepted": [True]}).to_csv(
        survivors, index=False
    )
    return survivors


def test_discover_on_a_builtin_and_load_it_back(tmp_path):
    run = tmp_path / "run"
    found = fs.discover("ideal_spring", folder=run, **{**FAST, "survivors": str(_spring(tmp_path))})
    assert found.folder == run and (run / "ranking.csv").exists()
    again = fs.Discovery.load(run)
    assert again.meta["run_id"] == found.meta["run_id"]
    laws = again.laws
    assert laws["formula"].iloc[0] == "q^2 + c_0*p^2"
    assert "q^{2}" in again.latex(0) and again.sympy(0).free_symbols
    assert again.comparators is None
    copy = again.save(tmp_path / "copy")
    assert copy.meta["run_id"] == found.meta["run_id"] and (tmp_path / "copy" / "model.pt").exists()
    with pytest.raises(fs.InputError, match="unknown option"):
        fs.discover("ideal_spring", folder=run, epoch=3)


def test_discover_on_arrays(tmp_path):
    t = np.linspace(0, 3, 30)
    xs = [np.c_[a * np.cos(2 * t), -2 * a * np.sin(2 * t)] for a in np.linspace(0.5, 1.5, 8)]
    data = fs.Dataset.from_arrays(xs, [t] * 8, variables="q:m, p:m/s", name="mine")
    found = fs.discover(data, folder=tmp_path / "run", depth=7, **{k: v for k, v in FAST.items()})
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["dataset"] == "mine" and found.meta["winner"]["formula"]


def test_interrupted_rerun_leaves_the_finished_run_intact(tmp_path, monkeypatch):
    # Ctrl-C during a rerun into an existing run folder left old and new files mixed, and export then
    # reported them as one run
    run = tmp_path / "run"
    survivors = str(_spring(tmp_path))
    first = fs.discover("ideal_spring", folder=run, **{**FAST, "survivors": survivors})
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import meta_tailor

    monkeypatch.setattr(meta_tailor, "rank", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fs.discover("ideal_spring", folder=run, **{**FAST, "survivors": survivors, "epochs": 2})
    after = {p.name: p.read_bytes() for p in run.iterdir()}
    assert after == before
    assert fs.Discovery.load(run).meta["run_id"] == first.meta["run_id"]
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def test_other_files_in_the_run_folder_are_left_alone(tmp_path):
    # a folder of the user's figures and notes: the run adds its files and touches none of theirs
    folder = tmp_path / "figures"
    folder.mkdir()
    mine = {"fig1_paper.pdf": b"%PDF", "photo.png": b"png", "notes.txt": b"x", ".DS_Store": b""}
    for name, data in mine.items():
        (folder / name).write_bytes(data)
    survivors = str(_spring(tmp_path))
    fs.discover("ideal_spring", folder=folder, **{**FAST, "survivors": survivors})
    fs.discover("ideal_spring", folder=folder, **{**FAST, "survivors": survivors, "epochs": 2})
    for name, data in mine.items():
        assert (folder / name).read_bytes() == data
    assert (folder / "ranking.csv").exists() and (folder / "meta.json").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith((".partial", ".old"))]


def test_a_stale_file_of_an_earlier_run_does_not_stay_beside_a_new_one(tmp_path):
    run = tmp_path / "run"
    survivors = str(_spring(tmp_path))
    fs.discover("ideal_spring", folder=run, **{**FAST, "survivors": survivors})
    (run / "cv.csv").write_text("fold\n0\n")  # as if an earlier run had chosen its law by CV
    fs.discover("ideal_spring", folder=run, **{**FAST, "survivors": survivors})
    assert not (run / "cv.csv").exists()


def test_a_model_is_not_reused_for_other_arrays_of_the_same_name_and_size(tmp_path):
    # from_arrays names every dataset "arrays": the saved model must match the numbers, not the name
    from formula_search.runs import model_fingerprint
    from meta_tailor import MLPConfig

    t = np.linspace(0, 3, 30)
    a = fs.Dataset.from_arrays([np.c_[np.cos(t), np.sin(t)]] * 4, [t] * 4, variables="q:m, p:m")
    b = fs.Dataset.from_arrays([np.c_[np.cos(t), 2 * np.sin(t)]] * 4, [t] * 4, variables="q:m, p:m")
    assert model_fingerprint(a, {}, MLPConfig()) != model_fingerprint(b, {}, MLPConfig())


def test_law_from_a_cli_run_in_discover(tmp_path, capsys):
    # the CLI records every dataset option (None when unset), discover() only those given
    from formula_search.cli import main

    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["rank", "--dataset", "ideal_spring", "--survivors", str(_spring(tmp_path)), "--run",
              str(run), "--epochs", "1", "--pretrain-steps", "20", "--no-comparators", "--device",
              "cpu"])  # fmt: skip
    assert exc.value.code in (0, None), capsys.readouterr().err
    found = fs.discover(
        "ideal_spring", folder=tmp_path / "again", law_from=str(run),
        **{k: v for k, v in FAST.items() if k != "survivors"},
    )  # fmt: skip
    assert found.meta["winner"]["formula"] == "q^2 + c_0*p^2"
