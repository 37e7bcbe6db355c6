"""One recording as a lab writes it, through the commands: fit, --explain, the empty diagnostic, run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from formula_search.cli import main


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _pendulum_rows(n: int = 400, seed: int = 0) -> np.ndarray:
    """(t, angle, angular velocity) of a pendulum released at 90 degrees, uneven steps, 0.5% noise."""
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 9.5, n))
    sol = solve_ivp(
        lambda _t, y: [y[1], -9.8 * np.sin(y[0])],
        (0, 9.5),
        [np.pi / 2, 0.0],
        t_eval=t,
        rtol=1e-10,
        atol=1e-12,
        method="DOP853",
    )
    x = sol.y.T + 0.005 * sol.y.T.std(0) * rng.standard_normal((n, 2))
    return np.column_stack([t, x])


@pytest.fixture
def lab_file(tmp_path):
    """A whitespace file whose '% o v' header does not name its four columns (trial, t, o, v)."""
    rows = _pendulum_rows()
    path = tmp_path / "lab.txt"
    body = "\n".join(f"0 {t:.9e} {o:.9e} {v:.9e}" for t, o, v in rows)
    path.write_text("% o v\n" + body + "\n")
    return path


LAB = [
    "--names",
    "trial,t,o,v",
    "--skip-rows",
    "1",
    "--columns",
    "o:rad,v:rad/s",
    "--time-col",
    "t",
]


def test_header_that_does_not_name_every_column_needs_names(lab_file, tmp_path, capsys):
    code, _, err = run_cli(
        ["fit", "--dataset", str(lab_file), "--columns", "o:rad,v:rad/s", "--depth", "3",
         "--out", str(tmp_path / "f")],
        capsys,
    )  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err


def test_one_recording_fit_finds_the_energy(lab_file, tmp_path, capsys):
    out = tmp_path / "fit"
    code, stdout, err = run_cli(
        ["fit", "--dataset", str(lab_file), *LAB, "--split", "all", "--depth", "7",
         "--out", str(out), "--format", "csv", "--device", "cpu"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    best = pd.read_csv(out / "survivors.csv")
    assert best["formula"].iloc[0] == "v^2 + c_0*cos(o)", best.head()
    assert float(best["params"].iloc[0]) == pytest.approx(-19.6, rel=0.01)


def test_explain_prints_one_formulas_constants_and_scores(lab_file, tmp_path, capsys):
    code, stdout, err = run_cli(
        ["fit", "--dataset", str(lab_file), *LAB, "--explain", "v^2 + c*cos(o)",
         "--explain", "v + c*o", "--out", str(tmp_path / "nothing")],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    assert "v^2 + c*cos(o)" in stdout and "accepted" in stdout and "-19.5" in stdout
    assert "rejected (ratio > 0.01)" in stdout
    assert not (tmp_path / "nothing").exists()


def test_nothing_accepted_says_why(lab_file, tmp_path, capsys):
    """The paper's measure cannot read one recording at one energy, and says so."""
    code, stdout, err = run_cli(
        ["fit", "--dataset", str(lab_file), *LAB, "--depth", "5", "--measure", "paper",
         "--out", str(tmp_path / "f")],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    assert "0 of" in stdout
    assert "why: every formula scores about the same" in stdout


def test_one_recording_through_run_end_to_end(lab_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    code, stdout, err = run_cli(
        ["run", "--dataset", str(lab_file), *LAB, "--run", str(run), "--epochs", "1",
         "--pretrain-steps", "20", "--top-k", "2", "--device", "cpu"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    ranking = pd.read_csv(run / "ranking.csv")
    assert "v^2 + c_0*cos(o)" in set(ranking["formula"])
    assert (run / "law.tex").exists() and (run / "report.md").exists()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["dataset"] == "lab"
    # the protocol is chosen on the one training trajectory, cut into 4 pieces for the cross-validation
    assert "cross-validation" in meta["protocol"]["by"]
    cv = pd.read_csv(run / "protocol_cv.csv")
    assert cv.groupby("protocol")["fold"].nunique().to_dict() == {"paper": 4, "polyak": 4}
