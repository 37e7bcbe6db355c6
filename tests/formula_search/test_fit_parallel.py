"""Parallel back-ends, checkpoints and resume of the fitting stage, and the ``fsearch fit`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dsl
from formula_search._fit import FitConfig, FitData, fit_formulas

TEXTS = [
    "p^2 - c*cos(q)",
    "p^2 + c*q^2",
    "q",
    "c*p^2 - cos(q)",
    "sin(q) + c*p",
    "p/(q - q)",
    "q/q",
    "cos(c*q) + p",
]


@pytest.fixture(scope="module")
def data() -> FitData:
    # exact pendulum sequences from a fine RK4 integration (independent of the fitter)
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(6):
        r, a = rng.uniform(1.3, 2.3), rng.uniform(0, 2 * np.pi)
        y = np.array([r * np.cos(a), r * np.sin(a)])
        out, h = [], 3 / 44 / 50

        def f(y):
            return np.array([2 * y[1], -3 * np.sin(y[0])])

        for i in range(45 * 50):
            if i % 50 == 0:
                out.append(y.copy())
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        seqs.append(np.array(out))
    return FitData(
        ("q", "p"), tuple(seqs), (dsl.Variable("q", "rad"), dsl.Variable("p", "kg*m^2/s"))
    )


@pytest.fixture(scope="module")
def local(data) -> pd.DataFrame:
    return fit_formulas(TEXTS, data, config=FitConfig(chunk_size=3))


def test_local_result_is_the_known_law(local):
    # the law's two forms are accepted and score best; the small-angle form is a near-law at these
    # amplitudes (ratio about 0.01), the others are not conserved
    law = {"p^2 - c*cos(q)", "c*p^2 - cos(q)"}
    assert law <= set(local.loc[local.accepted, "formula"])
    assert set(local.sort_values("ratio")["formula"].iloc[:2]) == law
    assert (
        not local.set_index("formula").loc[["q", "sin(q) + c*p", "cos(c*q) + p"], "accepted"].any()
    )


@pytest.mark.slow
def test_two_jobs_match_one(data, local):
    par = fit_formulas(TEXTS, data, config=FitConfig(chunk_size=3, jobs=2))
    pd.testing.assert_frame_equal(par, local)


@pytest.mark.slow
def test_dask_cluster_accepts_the_same_formulas(data, local):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        host="127.0.0.1", n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        cfg = FitConfig(chunk_size=3, backend="dask", scheduler=cluster.scheduler_address)
        remote = fit_formulas(TEXTS, data, config=cfg)
    assert (
        remote.loc[remote.accepted, "formula"].tolist()
        == local.loc[local.accepted, "formula"].tolist()
    )
    np.testing.assert_allclose(remote["ratio"], local["ratio"], rtol=1e-6)


def test_resume_reuses_finished_chunks(data, local, tmp_path):
    ckpt = tmp_path / "chunks"
    fit_formulas(TEXTS, data, config=FitConfig(chunk_size=3), checkpoint_dir=ckpt)
    files = sorted(ckpt.glob("chunk-*.parquet"))
    assert len(files) == 3
    # mark a finished chunk: if resume refits it, the mark disappears
    marked = pd.read_parquet(files[0])
    marked.loc[0, "params"] = "MARK"
    marked.to_parquet(files[0], index=False)
    files[2].unlink()  # an unfinished chunk
    seen = []
    out = fit_formulas(
        TEXTS,
        data,
        config=FitConfig(chunk_size=3),
        checkpoint_dir=ckpt,
        resume=True,
        progress=seen.append,
    )
    assert out.loc[0, "params"] == "MARK"
    pd.testing.assert_frame_equal(out.iloc[6:], local.iloc[6:])
    # other options: the old chunks are not reused
    out2 = fit_formulas(
        TEXTS, data, config=FitConfig(chunk_size=3, ratio=0.02), checkpoint_dir=ckpt, resume=True
    )
    assert out2.loc[0, "params"] != "MARK"


def test_cli_writes_table_and_rejects_bad_input(tmp_path):
    from click.testing import CliRunner

    from formula_search.cli.fit_cmd import fit_cmd

    formulas = tmp_path / "f.csv"
    pd.DataFrame({"formula": ["p^2 - c*cos(q)", "p^2 + c*q^2", "q"]}).to_csv(formulas, index=False)
    runner = CliRunner()
    res = runner.invoke(
        fit_cmd,
        ["--dataset", "ideal_pendulum", "--formulas", str(formulas), "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(tmp_path / "o" / "fit.parquet")
    assert table["accepted"].tolist() == [True, False, False]
    assert abs(float(table.loc[0, "params"]) - 3) < 0.015
    assert "1 of 3 formulas accepted" in res.output
    bad = runner.invoke(
        fit_cmd, ["--formulas", str(formulas), "--out", str(tmp_path / "b"), "--ratio", "-1"]
    )
    assert bad.exit_code != 0 and isinstance(bad.exception, Exception)
