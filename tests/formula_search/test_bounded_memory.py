"""Memory bounded by design: segment sums without dense matrices, long recordings, size estimates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dsl
from formula_search import _measure
from formula_search._enumerate import count_formulas, estimate_count
from formula_search._fit import _Layout, _segments
from formula_search.cli import main


def _reference_within_total(g, segments, smooth, detrend):
    """The paper measure's sums of squares computed the plain way, segment by segment."""
    within = 0.0
    pieces = []
    for idx in segments:
        y = g[idx]
        if smooth > 1:
            h = smooth // 2
            y = np.array(
                [y[max(0, j - h) : min(len(y), j - h + smooth)].mean() for j in range(len(y))]
            )
        pieces.append(y)
        r = y - y.mean()
        if detrend:
            pos = np.arange(len(y), dtype=float)
            coef = np.polyfit(pos, y, 1)
            r = y - np.polyval(coef, pos)
        within += float((r * r).sum())
    allg = np.concatenate(pieces)
    return within, float(((allg - allg.mean()) ** 2).sum())


@pytest.mark.parametrize("smooth, detrend", [(1, False), (3, False), (4, True), (1, True)])
def test_segment_sums_equal_the_plain_computation(smooth, detrend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((57, 2))
    segs = _segments([20, 7, 30], window=9)
    layout = _Layout(x, segs, torch, "cpu", smooth, detrend)
    g = x[:, 0] ** 2 + np.sin(x[:, 1])
    used = np.concatenate(segs)
    gl = torch.as_tensor(g[used]).view(1, 1, -1)
    within, total = layout.within_total(gl)
    # the reference on the points in the layout's order (segments concatenated)
    order = np.concatenate([[0], np.cumsum([len(s) for s in segs])])
    ref_w, ref_t = _reference_within_total(
        g[used], [np.arange(a, b) for a, b in zip(order[:-1], order[1:])], smooth, detrend
    )
    assert float(within) == pytest.approx(ref_w, rel=1e-10)
    assert float(total) == pytest.approx(ref_t, rel=1e-10)


def test_gcv_weight_reproduces_the_gcv_spline():
    from scipy.interpolate import make_smoothing_spline

    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 30, 600))
    y = np.cos(t) + 0.02 * rng.standard_normal(600)
    gcv = make_smoothing_spline(t, y)(t)
    fixed = make_smoothing_spline(t, y, lam=_measure.gcv_weight(t, y))(t)
    assert np.max(np.abs(fixed - gcv)) < 1e-6 * np.ptp(y)


def test_long_sequence_uses_the_weight_of_its_middle(monkeypatch):
    # beyond GCV_POINTS the weight comes from the middle block: the derivative stays as accurate
    monkeypatch.setattr(_measure, "GCV_POINTS", 400)
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 60, 2000))
    x = np.c_[np.cos(t), -np.sin(t)] + 0.01 * rng.standard_normal((2000, 2))
    _, v = _measure.spline_derivatives(t, x)
    truth = np.c_[-np.sin(t), -np.cos(t)]
    inner = slice(10, -10)
    assert np.sqrt(np.mean((v[inner] - truth[inner]) ** 2)) < 0.03


def test_many_sequences_share_one_weight_per_variable(monkeypatch):
    monkeypatch.setattr(_measure, "GCV_SHARED_ABOVE", 500)
    rng = np.random.default_rng(3)
    seqs, times = [], []
    for k in range(12):
        t = np.linspace(0, 6, 100)
        a = 1 + 0.1 * k
        seqs.append(np.c_[a * np.cos(t), -a * np.sin(t)] + 0.01 * rng.standard_normal((100, 2)))
        times.append(t)
    weights = _measure._shared_weights(seqs, times)
    assert isinstance(weights, tuple) and len(weights) == 2 and all(w > 0 for w in weights)

    def rate_error(prep):  # dH/dt of H = q^2 + p^2, relative to |grad H| |v|
        rate = 2 * (prep.x * prep.v).sum(1)
        size = 2 * np.linalg.norm(prep.x, axis=1) * np.linalg.norm(prep.v, axis=1)
        return np.sqrt(np.mean(rate**2) / np.mean(size**2))

    shared = rate_error(_measure.prepare(seqs, times))
    monkeypatch.setattr(_measure, "GCV_SHARED_ABOVE", 10**9)
    own = rate_error(_measure.prepare(seqs, times))  # GCV on every sequence
    assert shared < 1.5 * own + 1e-3


def test_estimate_count_is_exact_to_depth_7_and_close_beyond():
    v = dsl.parse_variables("q:rad, p:kg*m^2/s")
    exact = sum(count_formulas(v, max_size=7, dedup="conservation").values())
    assert estimate_count(v, max_size=7, dedup="conservation") == (exact, True)
    est, is_exact = estimate_count(v, max_size=8, dedup="conservation")
    truth = sum(count_formulas(v, max_size=8, dedup="conservation").values())
    assert not is_exact and 0.5 * truth < est < 2 * truth


def test_depth_100_is_refused_with_an_estimate(capsys, tmp_path):
    # --depth 100 started with no estimate and died of MemoryError minutes later
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--dataset", "ideal_pendulum", "--depth", "100", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "formulas" in err and "GiB" in err and "--depth 100" in err


def test_hamiltonian_with_a_huge_power_is_refused():
    # a card's hamiltonian = "9**9**9" hung `datasets show`
    from formula_search.data._simulate import hamiltonian_to_sympy
    from formula_search.errors import InputError

    with pytest.raises(InputError, match="exponent"):
        hamiltonian_to_sympy("9**9**9", ["q", "p"])
    with pytest.raises(InputError, match="too large"):
        hamiltonian_to_sympy("1e400*q", ["q", "p"])
    expr, _ = hamiltonian_to_sympy("1/sqrt(q^2 + p^2)", ["q", "p"])
    assert expr.free_symbols


def test_formula_with_an_infinite_number_is_unparsable_not_fatal(tmp_path, capsys):
    # fit --formulas with 1e400*q lost the whole run
    table = tmp_path / "f.csv"
    table.write_text("formula\n1e400*q\np^2 + c*cos(q)\n")
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fit",
                "--dataset",
                "ideal_pendulum",
                "--formulas",
                str(table),
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert exc.value.code == 0, capsys.readouterr().err
    import pandas as pd

    out = pd.read_parquet(tmp_path / "out" / "fit.parquet").set_index("formula")
    assert out.loc["1e400*q", "status"] == "unparsable"
    assert bool(out.loc["p^2 + c*cos(q)", "accepted"])


def test_paper_layout_of_200k_points_in_2000_sequences_with_smoothing():
    # --smooth 3 on 50k rows allocated a (40000, 40000) matrix; 2,000 x 1,000 rows a (1.6M, 1,600) one:
    # here a dense layout would need 3.2 GB (points x segments) and 320 GB (points x points)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200_000, 2))
    segs = _segments([100] * 2000, window=None)
    layout = _Layout(x, segs, torch, "cpu", smooth=3, detrend=True)
    g = torch.as_tensor(x[:, 0] ** 2).view(1, 1, -1)
    within, total = layout.within_total(g)
    assert 0 < float(within) < float(total)
