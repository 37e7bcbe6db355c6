"""Velocities as differences of the recorded states (``FitConfig(derivatives="differences")``): a formula's
change between two recorded states is exact at any step, so coarse sampling leaves no error in it, and the
term search takes it by default on data without exact derivatives."""

from __future__ import annotations

import numpy as np
import pytest

from formula_search import _measure
from formula_search.advanced import FitConfig, FitData, TermConfig, fit_formulas, term_search
from formula_search.data import load_dataset
from formula_search.errors import InputError


def test_differences_by_hand():
    seq = np.array([[0.0, 1.0], [1.0, 3.0], [4.0, 4.0]])
    x, v, (xa, xb, inv) = _measure.differences([seq], [np.array([0.0, 1.0, 3.0])], 2)
    np.testing.assert_allclose(xa, [[0.0, 1.0]])
    np.testing.assert_allclose(xb, [[4.0, 4.0]])
    np.testing.assert_allclose(inv, [1 / 3])
    np.testing.assert_allclose(x, [[2.0, 2.5]])  # the midpoint
    np.testing.assert_allclose(v, [[4 / 3, 1.0]])  # the secant
    # stride 1 on the same sequence: two pairs, the second over the uneven step of 2
    _, v1, (_, _, inv1) = _measure.differences([seq], [np.array([0.0, 1.0, 3.0])], 1)
    np.testing.assert_allclose(v1, [[1.0, 2.0], [1.5, 0.5]])
    np.testing.assert_allclose(inv1, [1.0, 0.5])


def test_the_automatic_stride_by_hand():
    # sin(2 pi k / P), P = 62.7 (phases spread evenly over 100 turns): spread 1/sqrt(2); a step of h samples
    # moves it by 2 sin(pi h / P) |cos(.)|, whose median over the phases is sqrt(2) sin(pi h / P): one
    # spread at sin(pi h / P) = 1/2, h = P / 6 = 10.45 -> 11
    wave = np.sin(2 * np.pi * np.arange(6270) / 62.7)[:, None]
    assert _measure.auto_stride([wave]) == 11
    # a ramp of T points steps h * sqrt(12) / T spreads: never a whole one within T / 4 samples, the cap
    assert _measure.auto_stride([np.arange(101.0)[:, None]]) == 25
    # a recording at rest but for one jolt: the typical step is 0 at every stride, so the cap (40 / 4)
    still = np.zeros((40, 1))
    still[20] = 1.0
    assert _measure.auto_stride([still]) == 10


def _circle(points_per_turn: int, seed: int = 0):
    """Three orbits of the ideal spring (q, p on circles of radii 0.5, 1, 1.5) at uneven times, about
    ``points_per_turn`` samples a turn."""
    rng = np.random.default_rng(seed)
    seqs, times = [], []
    for r in (0.5, 1.0, 1.5):
        t = np.cumsum(rng.uniform(0.5, 1.5, 3 * points_per_turn)) * 2 * np.pi / points_per_turn
        seqs.append(np.stack([r * np.cos(t), -r * np.sin(t)], 1))
        times.append(t)
    return FitData(("q", "p"), tuple(seqs), times=tuple(times))


def test_a_difference_is_exact_where_a_spline_is_not():
    data = _circle(6)  # 6 samples a turn: coarse for a derivative estimate
    exact = fit_formulas(
        ["q^2 + c*p^2"], data, config=FitConfig(derivatives="differences", stride=1)
    )
    c = float(exact["params"].iloc[0])
    assert c == pytest.approx(1.0, abs=1e-9)
    assert exact["true_score"].iloc[0] < 1e-20 and bool(exact["accepted"].iloc[0])
    # the same formula with the spline's derivative of the same states: visibly off
    spline = fit_formulas(["q^2 + c*p^2"], data, config=FitConfig(derivatives="spline"))
    assert abs(float(spline["params"].iloc[0]) - 1.0) > 1e-4


def test_a_formula_with_a_nonlinear_parameter_is_fitted_on_differences():
    # p^2 + c1*(q + c2)^2 has c2 inside a square: the grid and Newton path, not the closed form
    data = _circle(10, seed=1)
    table = fit_formulas(
        ["p^2 + c*(q + c)^2"], data, config=FitConfig(derivatives="differences", stride=2)
    )
    c1, c2 = (float(v) for v in str(table["params"].iloc[0]).split(";"))
    assert c1 == pytest.approx(1.0, abs=1e-4) and c2 == pytest.approx(0.0, abs=1e-4)
    assert bool(table["accepted"].iloc[0])


def test_the_enumeration_refuses_differences(capsys, tmp_path):
    """Over enumerated formulas, a pole between two states makes a formula look conserved (see
    check_enumeration), so fsearch fit without --terms and the API's search refuse them in one line."""
    from formula_search import search
    from formula_search.cli import main

    with pytest.raises(InputError, match="differences and --stride are for the term search"):
        search("ideal_spring", depth=3, derivatives="differences")
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--dataset", "ideal_spring", "--depth", "3", "--derivatives", "differences",
              "--out", str(tmp_path / "fit")])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "are for the term search" in err
    assert "Traceback" not in err and not (tmp_path / "fit").exists()


def test_a_run_refuses_differences_without_terms_before_any_work(tmp_path):
    from formula_search.runs import execute

    run = tmp_path / "run"
    with pytest.raises(InputError, match="differences and --stride are for the term search"):
        execute({"dataset": "ideal_spring"}, run=str(run), derivatives="differences")
    with pytest.raises(InputError, match="--survivors and --law-from skip it"):
        execute({"dataset": "ideal_spring"}, run=str(run), stride=4, survivors="x.csv")
    assert not run.exists()


def test_the_term_search_takes_differences_when_asked_and_the_exact_derivatives_when_there():
    from formula_search._fit import velocity_source

    data = load_dataset("ideal_spring")  # a simulation: exact derivatives
    exact = FitData.from_dataset(data, "train")
    assert velocity_source(FitConfig(), exact, terms=True) == ("data", None)
    assert velocity_source(FitConfig(), exact) == ("data", None)
    recorded = FitData(exact.var_names, exact.sequences, exact.variables, exact.times)
    source, stride = velocity_source(FitConfig(), recorded, terms=True)
    assert source == "differences" and stride == _measure.auto_stride(recorded.sequences)
    assert velocity_source(FitConfig(), recorded) == ("spline", None)  # the enumeration's
    assert velocity_source(FitConfig(derivatives="differences", stride=3), exact) == (
        "differences",
        3,
    )
    # asked for, differences are what the term search uses, and the spring's law comes out exact
    table = term_search(
        exact,
        config=TermConfig(term_depth=2, max_terms=3),
        fit_config=FitConfig(derivatives="differences"),
    )
    top = table[table["accepted"]].iloc[0]
    assert set(top["formula"].replace("c*", "").replace(" + ", " ").split()) == {"(q^2)", "(p^2)"}
    assert float(top["params"]) == pytest.approx(1.0, rel=1e-6)


def test_sequences_shorter_than_the_stride_give_no_pairs():
    short, long = np.zeros((3, 1)), np.arange(10.0)[:, None]
    x, _, (xa, xb, _) = _measure.differences([short, long], None, 3)
    assert len(x) == 7 and np.all(xb - xa == 3)
    with pytest.raises(InputError, match="no sequence has more than 3 points"):
        _measure.differences([short], None, 3)


def test_the_command_lines_choices_are_the_fits():
    from formula_search._fit import DERIVATIVES
    from formula_search.cli.fit_cmd import fit_cmd

    (option,) = [p for p in fit_cmd.params if p.name == "derivatives"]
    assert tuple(option.type.choices) == DERIVATIVES


def test_fsearch_fit_terms_says_where_its_velocities_come_from(capsys, tmp_path):
    from formula_search.cli import main

    base = ["fit", "--dataset", "ideal_spring", "--terms", "2", "--term-depth", "2"]
    for extra, says in (
        ([], "velocities: the data's exact derivatives"),
        (
            ["--derivatives", "differences", "--stride", "3"],
            "differences of the recorded states 3 samples",
        ),
    ):
        with pytest.raises(SystemExit) as exc:
            main([*base, *extra, "--out", str(tmp_path / str(len(extra)))])
        assert exc.value.code == 0 and says in capsys.readouterr().out


def test_bad_settings_are_one_line():
    with pytest.raises(InputError, match="stride must be a whole number"):
        FitConfig(derivatives="differences", stride=0)
    with pytest.raises(InputError, match="unknown derivatives 'diff'"):
        FitConfig(derivatives="diff")
    with pytest.raises(InputError, match="stride must be at least 1"):
        _measure.differences([np.zeros((3, 1))], None, 0)
    with pytest.raises(InputError, match="does not apply to --derivatives spline"):
        FitConfig(derivatives="spline", stride=4)
