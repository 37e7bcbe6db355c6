"""RK4 rollouts against closed-form solutions, and the error tables on hand-worked numbers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from meta_tailor._metrics import horizon_errors, rollout_mse, rollout_rmse
from meta_tailor._rollout import rk4_rollout, rollout_trajectories


def test_rk4_matches_harmonic_oscillator():
    # dq/dt = 2p, dp/dt = -2q from x0 = (1, 0): q = cos 2t, p = -sin 2t
    field = lambda x: torch.stack([2 * x[:, 1], -2 * x[:, 0]], -1)  # noqa: E731
    t = torch.linspace(0, 3, 46, dtype=torch.float64)
    out = rk4_rollout(field, torch.tensor([[1.0, 0.0]], dtype=torch.float64), t)
    exact = torch.stack([torch.cos(2 * t), -torch.sin(2 * t)], -1)
    assert out.shape == (1, 46, 2)
    # global RK4 error ~ (h omega)^5 / 120 per step times steps: far below 1e-4 here
    assert (out[0] - exact).abs().max() < 1e-4


def test_rk4_irregular_grid_per_trajectory():
    # dx/dt = -x: one RK4 step of length h multiplies x by the Taylor polynomial 1 - h + h^2/2 - h^3/6 + h^4/24;
    # two trajectories with different grids (one with a zero-length step) in one batch
    field = lambda x: -x  # noqa: E731
    t = torch.tensor([[0.0, 0.1, 0.3, 0.35], [0.0, 0.2, 0.2, 0.5]], dtype=torch.float64)
    out = rk4_rollout(field, torch.ones(2, 1, dtype=torch.float64), t)
    h = t[:, 1:] - t[:, :-1]
    factor = 1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24
    expected = torch.cat(
        [torch.ones(2, 1, dtype=torch.float64), torch.cumprod(factor, dim=1)], dim=1
    )
    torch.testing.assert_close(out[..., 0], expected, atol=1e-14, rtol=1e-12)
    assert (out[..., 0] - torch.exp(-t)).abs().max() < 1e-4


def test_rollout_trajectories_groups_lengths_and_keeps_order():
    field = lambda x: torch.zeros_like(x)  # noqa: E731
    trajs = [
        SimpleNamespace(t=torch.arange(3.0), x=torch.ones(3, 2)),
        SimpleNamespace(t=torch.arange(5.0), x=torch.full((5, 2), 2.0)),
        SimpleNamespace(t=torch.arange(3.0), x=torch.full((3, 2), 3.0)),
    ]
    outs = rollout_trajectories(field, trajs)
    assert [len(t) for t, _, _ in outs] == [3, 5, 3]
    assert [float(xp[-1, 0]) for _, _, xp in outs] == [1.0, 2.0, 3.0]


def test_error_tables_hand_worked():
    t = torch.tensor([0.0, 0.5, 1.0])
    xt = torch.zeros(3, 2)
    xp1 = torch.tensor(
        [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]
    )  # squared errors per step: 0, 1, 2 (mean)
    xp2 = torch.tensor([[0.0, 0.0], [3.0, 1.0], [0.0, 0.0]])  # 0, 5, 0
    rolls = [(t, xt, xp1), (t, xt, xp2)]
    assert rollout_mse(rolls) == pytest.approx((0 + 2 + 4 + 0 + 10 + 0) / 12)
    assert rollout_rmse(rolls) == pytest.approx(math.sqrt(16 / 12))
    table = horizon_errors(rolls, method="m")
    assert list(table.columns) == ["method", "horizon", "t", "mse", "rmse", "n_trajectories"]
    assert table["mse"].tolist() == pytest.approx([0.0, 3.0, 1.0])
    assert table["t"].tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_diverged_rollout_is_infinite_not_nan():
    t = torch.tensor([0.0, 1.0])
    rolls = [(t, torch.zeros(2, 1), torch.tensor([[0.0], [float("nan")]]))]
    assert rollout_mse(rolls) == math.inf
