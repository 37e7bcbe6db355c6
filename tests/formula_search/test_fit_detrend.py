"""Conservation measured up to a slow drift (``detrend``), for dissipative recordings."""

from __future__ import annotations

import numpy as np
import pytest

from formula_search._fit import FitConfig, FitData, fit_formulas


def _damped_oscillator(n_traj=4, n=120, gamma=0.01, seed=0):
    """Lightly damped oscillator q'' = -q - 2*gamma*q', sampled exactly (closed form)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 20.0, n)
    w = np.sqrt(1 - gamma**2)
    seqs = []
    for _ in range(n_traj):
        a, phi = rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
        env = a * np.exp(-gamma * t)
        q = env * np.cos(w * t + phi)
        p = env * (-gamma * np.cos(w * t + phi) - w * np.sin(w * t + phi))
        seqs.append(np.stack([q, p], 1))
    return FitData(("q", "p"), tuple(seqs))


def test_detrended_score_equals_residuals_of_a_straight_line_fit():
    # one formula without parameters, so the score is a pure function of the data: compare it with numpy
    data = _damped_oscillator(n_traj=2, n=60)
    window = 20
    table = fit_formulas(
        ["q^2 + p^2"],
        data,
        config=FitConfig(window=window, detrend=True, device="cpu", measure="paper"),
    )
    g = np.concatenate([s[:, 0] ** 2 + s[:, 1] ** 2 for s in data.sequences])
    within = 0.0
    for start in range(0, len(g), window):
        seg = g[start : start + window]
        idx = np.arange(len(seg))
        coef = np.polyfit(idx, seg, 1)
        within += ((seg - np.polyval(coef, idx)) ** 2).sum()
    total = ((g - g.mean()) ** 2).sum()
    assert table["true_score"].iloc[0] == pytest.approx(within / total, rel=1e-9)


def test_detrending_accepts_the_energy_of_a_damped_oscillator_and_still_rejects_non_laws():
    data = _damped_oscillator()
    forms = ["q^2 + c_0*p^2", "q + c_0*p", "q*p + c_0"]
    plain = fit_formulas(
        forms, data, config=FitConfig(window=40, detrend=False, device="cpu", measure="paper")
    )
    drift = fit_formulas(
        forms, data, config=FitConfig(window=40, detrend=True, device="cpu", measure="paper")
    )
    energy_plain, energy_drift = plain.iloc[0], drift.iloc[0]
    # the energy decays by about 8% per window: a plain within-window variance sees the decay
    assert energy_drift["ratio"] < energy_plain["ratio"] / 10
    assert bool(energy_drift["accepted"])
    assert float(str(energy_drift["params"]).split(";")[0]) == pytest.approx(1.0, rel=0.05)
    # quantities that are not conserved stay rejected: detrending is applied to random sequences too
    assert not drift.iloc[1:]["accepted"].any()
