"""Every built-in dataset through ``fsearch fit --depth 5``: a new dataset cannot ship broken."""

from __future__ import annotations

import pandas as pd
import pytest

from formula_search.cli import main
from formula_search.data import list_datasets

BUILTINS = list(list_datasets()["name"])

#: Laws within 5 tokens that a dataset's fit must accept (HNN's orbits: the total momentum, here 0).
KNOWN = {"two_body": {"px1 + px2", "py1 + py2"}}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "fsearch-cache"))


@pytest.mark.parametrize("name", BUILTINS)
def test_fit_depth_5_runs_clean(name, tmp_path, capsys):
    out = tmp_path / "fit"
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--dataset", name, "--depth", "5", "--jobs", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 0, err
    table = pd.read_parquet(out / "fit.parquet")
    assert len(table) > 0
    assert set(table["status"]) <= {"ok", "trivial", "failed", "unparsable"}
    # a numeric failure rejects a formula (x1/(x1 + x2) where x1 + x2 = 0), never most of them
    assert (table["status"] == "failed").mean() < 0.05
    assert (table["status"] == "unparsable").sum() == 0
    accepted = set(pd.read_csv(out / "survivors.csv")["formula"])
    assert KNOWN.get(name, set()) <= accepted
