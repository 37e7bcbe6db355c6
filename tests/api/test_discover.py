"""discover() and its run folder: written as a whole or not at all, read back by Discovery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import formula_search as fs
from formula_search import _discover

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
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_that_is_not_a_run_is_not_replaced(tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    with pytest.raises(fs.InputError, match="not a run's"):
        fs.discover("ideal_spring", folder=folder, **{**FAST, "survivors": str(_spring(tmp_path))})
    assert (folder / "chapter1.tex").read_text() == "precious"


def test_the_current_folder_is_never_a_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(fs.InputError, match="current folder"):
        _discover._check_replaceable(tmp_path)
