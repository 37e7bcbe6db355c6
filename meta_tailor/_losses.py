"""The Noether (conservation) losses of tailoring and the model's own inner rollout they are taken on.

A conservation function ``g(x; c)`` (:data:`ConservedFn`) with parameters c ("phi" in the paper) should not
change along the model's predictions. Per state the prediction is the finite difference
``x + f_theta(x) dt`` (:func:`noether_loss`, eq. 2 with T = 1); per sequence it is the model's own
``horizon``-step rollout from the true first state (:func:`euler_states`), scored by
:func:`sequence_noether_loss` (eq. 2(a) or 2(b)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: A conservation function: ``g(x (..., n_vars), theta (..., n_params)) -> (...)``, broadcasting.
ConservedFn = Callable[[Tensor, Tensor], Tensor]


def noether_loss(g: ConservedFn, theta: Tensor, x: Tensor, dxdt: Tensor, dt: float) -> Tensor:
    """Noether loss of the finite-difference prediction, per state.

    Args:
        g: conservation function.
        theta: formula parameters, shape (n_params,) or broadcastable against ``x[..., 0]``.
        x: query states, shape (..., n_vars).
        dxdt: predicted time derivatives at ``x``, shape (..., n_vars).
        dt: time step of the data (units of time).

    Returns:
        ``(g(x) - g(x + dxdt dt))^2``, shape (...).
    """
    return (g(x + dxdt * dt, theta) - g(x, theta)) ** 2


def sequence_noether_loss(g: ConservedFn, theta: Tensor, xs: Tensor, *, form: str = "a") -> Tensor:
    """Noether loss of a predicted sequence (eq. 2), averaged over its T predicted states.

    Args:
        g: conservation function.
        theta: formula parameters, shape (n_params,).
        xs: the sequence, shape (..., T + 1, n_vars); ``xs[..., 0, :]`` is the true first state x_0.
        form: ``"a"``: ``mean_t (g(x_0) - g(x~_t))^2``; ``"b"``: ``mean_t (g(x~_{t-1}) - g(x~_t))^2``.

    Returns:
        The loss, shape (...). (The paper writes a sum over t; the mean only rescales the inner learning
        rate by 1/T and keeps one rate grid meaningful for every horizon.)
    """
    gs = g(xs, theta)
    ref = gs[..., :1] if form == "a" else gs[..., :-1]
    return ((gs[..., 1:] - ref) ** 2).mean(-1)


def euler_states(
    fn: Callable[[Tensor], Tensor],
    x0: Tensor,
    *,
    dt: float,
    horizon: int,
    integrator: str = "euler",
) -> Tensor:
    """The model's own finite-difference rollout ``x~_t = x~_{t-1} + f(x~_{t-1}) dt``, t = 1..horizon.

    Args:
        fn: dx/dt model, states (..., n) -> derivatives (..., n).
        x0: first states, shape (..., n).
        dt: time step.
        horizon: number of steps T.
        integrator: ``"euler"`` (the step above) or ``"rk4"`` (one classical RK4 step of ``dt`` instead).

    Returns:
        Shape (..., T + 1, n), starting with ``x0``.
    """
    xs = [x0]
    x = x0
    for _ in range(horizon):
        if integrator == "rk4":
            k1 = fn(x)
            k2 = fn(x + 0.5 * dt * k1)
            k3 = fn(x + 0.5 * dt * k2)
            k4 = fn(x + dt * k3)
            x = x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        else:
            x = x + fn(x) * dt
        xs.append(x)
    return torch.stack(xs, dim=-2)
