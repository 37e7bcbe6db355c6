"""Every built-in dataset through every stage at small size (fit at depth 5, rank with one epoch, export,
plot): a new dataset cannot ship broken."""

from __future__ import annotations

import pandas as pd
import pytest

from formula_search.cli import main
from formula_search.data import list_datasets, load_dataset

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
    # a numeric failure rejects a formula that divides by zero somewhere on the data (x1/(x1 + x2) where
    # x1 + x2 = 0; the real pendulum's recorded angle is exactly 0 at some frames, which its card's paper
    # measure, reading every frame, meets in 12% of the depth-5 formulas: q/sin(q), p/q^2, ...), and no other
    failed = table.loc[table["status"] == "failed", "formula"]
    assert all("/" in f for f in failed), list(failed)
    assert len(failed) / len(table) < 0.15
    assert (table["status"] == "unparsable").sum() == 0
    survivors = pd.read_csv(out / "survivors.csv")
    accepted = set(survivors["formula"])
    assert KNOWN.get(name, set()) <= accepted

    # rank one law (the fit's first, else the card's reference energy) with one epoch, then export and plot
    if len(survivors):
        law = survivors.head(1)[["formula", "params", "accepted"]]
    else:
        reference = load_dataset(name).hamiltonian
        law = pd.DataFrame({"formula": [reference], "params": [""], "accepted": [True]})
    law.to_csv(tmp_path / "law.csv", index=False)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["rank", "--dataset", name, "--survivors", str(tmp_path / "law.csv"), "--run", str(run),
              "--epochs", "1", "--pretrain-steps", "20", "--no-comparators", "--device", "cpu",
              "--protocol", "paper"])  # fmt: skip
    assert exc.value.code in (0, None), capsys.readouterr().err
    ranked = pd.read_csv(run / "ranking.csv")
    assert ranked["rank"].notna().any() and ranked["test_rmse"].notna().all()
    for args in (["export", str(run), "--format", "markdown", "-o", str(run / "report.md")],
                 ["export", str(run), "--format", "latex", "-o", str(run / "law.tex")],
                 ["plot", str(run)]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code in (0, None), capsys.readouterr().err
    assert (run / "report.md").read_text().strip() and (run / "law.tex").read_text().strip()
    assert (run / "law_along_test.png").read_bytes()[:4] == b"\x89PNG"
