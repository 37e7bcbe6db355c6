"""Long-term prediction: integrate a learned vector field from each trajectory's first state.

We use the classical fixed-step Runge-Kutta 4 on the data's own time grid (one RK4 step per sample
interval, with that interval's length, so irregular grids such as the real pendulum's are followed
exactly). Reasons: (1) the rollout is then compared with the data at exactly the recorded times, with no
interpolation; (2) a fixed step makes the cost predictable and lets us batch all trajectories of a split
as one tensor program (an adaptive solver would need per-trajectory step control); (3) for these smooth,
slowly varying fields and steps (dt = 1/15 ... 1/6) the RK4 truncation error is far below the model error,
so the comparison between models is not affected. Each RK4 stage calls the (possibly tailored) field, so
tailoring happens at every evaluated state, as the prediction function of a tailored model requires.
:func:`predict_trajectories` takes a sequence predictor instead of a field, for per-trajectory tailoring
(which adapts the weights to each first state and then integrates the tailored field with RK4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor


def rk4_rollout(field: Callable[[Tensor], Tensor], x0: Tensor, t: Tensor) -> Tensor:
    """Integrate ``dx/dt = field(x)`` with RK4 on the grid ``t``.

    Args:
        field: maps states (..., B, n) to time derivatives (..., B, n).
        x0: initial states, shape (..., B, n); leading dims batch e.g. inner learning rates.
        t: time grid, shape (T,) shared by all, or (B, T) per trajectory.

    Returns:
        States at the grid times, shape (..., B, T, n); ``[..., 0, :]`` is ``x0``.
    """
    if t.dim() == 1:
        t = t.expand(x0.shape[-2], -1)
    hs = (t[:, 1:] - t[:, :-1]).to(x0)  # (B, T-1)
    xs = [x0]
    x = x0
    for k in range(hs.shape[1]):
        h = hs[:, k : k + 1]
        k1 = field(x)
        k2 = field(x + 0.5 * h * k1)
        k3 = field(x + 0.5 * h * k2)
        k4 = field(x + h * k3)
        x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        xs.append(x)
    return torch.stack(xs, dim=-2)


def rollout_trajectories(
    field: Callable[[Tensor], Tensor],
    trajectories: Sequence,
    *,
    device: str = "cpu",
    dtype=torch.float32,
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Roll out ``field`` from the first state of each trajectory, batching those of equal length.

    Args:
        field: the learned vector field.
        trajectories: objects with ``t`` (T,) and ``x`` (T, n) (numpy or torch).
        device: where to compute.
        dtype: floating type.

    Returns:
        One ``(t, x_true, x_pred)`` triple per trajectory (CPU tensors, shapes (T,), (T, n), (T, n)),
        in the input order.
    """
    return predict_trajectories(
        lambda x0, t: rk4_rollout(field, x0, t), trajectories, device=device, dtype=dtype
    )


def predict_trajectories(
    predict: Callable[[Tensor, Tensor], Tensor],
    trajectories: Sequence,
    *,
    device: str = "cpu",
    dtype=torch.float32,
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Predict each trajectory from its first state with a sequence predictor, batching equal lengths.

    Args:
        predict: ``predict(x0 (B, n), t (B, T)) -> (B, T, n)``, e.g. an RK4 rollout of a field, or the
            per-trajectory tailored model (which adapts its weights to each ``x0`` first).
        trajectories, device, dtype: as :func:`rollout_trajectories`.

    Returns:
        As :func:`rollout_trajectories`.
    """
    ts = [torch.tensor(np.asarray(tr.t), dtype=dtype) for tr in trajectories]
    xs = [torch.tensor(np.asarray(tr.x), dtype=dtype) for tr in trajectories]
    out: list = [None] * len(trajectories)
    by_len: dict[int, list[int]] = {}
    for i, t in enumerate(ts):
        by_len.setdefault(len(t), []).append(i)
    for idx in by_len.values():
        t = torch.stack([ts[i] for i in idx]).to(device)
        x0 = torch.stack([xs[i][0] for i in idx]).to(device)
        pred = predict(x0, t).cpu()
        for j, i in enumerate(idx):
            out[i] = (ts[i], xs[i], pred[j])
    return out
