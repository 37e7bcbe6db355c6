"""Helpers shared by the trajectory-mode tailoring tests: a pendulum law, a tiny float64 MLP, and the
model's inner rollout written out step by step (an independent reference for the library's rollouts)."""

from __future__ import annotations

import torch
from torch.func import functional_call

from meta_tailor import make_mlp


def g_pend(x, theta):
    """p^2 - c cos q with x = (q, p)."""
    return x[..., 1] ** 2 - theta[..., 0] * torch.cos(x[..., 0])


def tiny(hidden=5, seed=0):
    return make_mlp(2, hidden=hidden, seed=seed).double()


def hand_states(model, params, x0, *, dt, horizon, integrator="euler"):
    """[x0, x1, ..., x_horizon]: explicit Euler (or RK4) steps of ``dt`` of the model with ``params``."""
    f = lambda y: functional_call(model, params, (y,))  # noqa: E731
    xs, x = [x0], x0
    for _ in range(horizon):
        if integrator == "rk4":
            k1 = f(x)
            k2 = f(x + dt / 2 * k1)
            k3 = f(x + dt / 2 * k2)
            k4 = f(x + dt * k3)
            x = x + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        else:
            x = x + f(x) * dt
        xs.append(x)
    return xs
