"""The baseline dynamics model: the HNN "vanilla MLP" predicting dx/dt from x, and its training."""

from __future__ import annotations

import math
import os
from dataclasses import asdict

import torch
from torch import Tensor, nn

from meta_tailor._config import MLPConfig


def make_mlp(
    n_vars: int, *, hidden: int = 200, seed: int = 0, dtype=torch.float32
) -> nn.Sequential:
    """Linear(n, h) - tanh - Linear(h, h) - tanh - Linear(h, n, bias=False), orthogonal initialisation.

    This is the "vanilla MLP" of Greydanus et al. (their ``MLP`` with ``nonlinearity='tanh'``): weights are
    initialised with :func:`torch.nn.init.orthogonal_`, biases keep PyTorch's default initialisation.
    The layout (indices 0, 2, 4 of the Sequential) is what :mod:`meta_tailor._tailor` expects.
    """
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nn.Sequential(
            nn.Linear(n_vars, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, n_vars, bias=False),
        )
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.to(dtype)


def continue_adam(opt: torch.optim.Adam, params: dict[str, Tensor], state: dict) -> None:
    """Give the parameters ``params`` (by name) of ``opt`` the Adam state ``state`` (``adam_state`` of
    :func:`train_mlp`: moment estimates and step count), so that ``opt`` continues that optimiser."""
    for name, p in params.items():
        m, v = state["moments"][name]
        opt.state[p] = {
            "step": torch.tensor(float(state["step"])),
            "exp_avg": m.detach().clone().to(p),
            "exp_avg_sq": v.detach().clone().to(p),
        }


def train_mlp(
    model: nn.Module,
    x: Tensor,
    dxdt: Tensor,
    *,
    config: MLPConfig = MLPConfig(),
    steps: int | None = None,
    progress=None,
    adam_state: dict | None = None,
    resume: dict | None = None,
) -> list[float]:
    """Train ``model`` in place: full-batch Adam on the MSE of dx/dt.

    Args:
        model: maps states (N, n) to time derivatives (N, n).
        x: states, shape (N, n).
        dxdt: target time derivatives, shape (N, n), units of x per unit time.
        config: optimiser settings (lr, weight decay, steps).
        steps: overrides ``config.steps`` (used to train "as many extra epochs as meta-tailoring").
        progress: optional callable ``progress(step)`` called after each step.
        adam_state: if given, filled with the optimiser's state belonging to the returned weights:
            ``{"step": k, "moments": {name: (exp_avg, exp_avg_sq)}}`` (Adam's first and second moment
            estimates after k steps, detached copies), so that a later run can continue the same Adam.
        resume: such a state to continue instead of starting a fresh Adam (its step count goes on too).

    Returns:
        The training loss before each step, then after the last one (``steps + 1`` values). With
        ``config.keep == "best"`` the model ends with the weights of the lowest of them.
    """
    steps = config.steps if steps is None else steps
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if resume is not None:
        continue_adam(opt, dict(model.named_parameters()), resume)
    best = config.keep == "best"
    best_loss, best_state, best_adam = math.inf, None, None
    names = {p: name for name, p in model.named_parameters()}

    def snapshot() -> dict:
        """The optimiser's state now; before the first step, a fresh Adam's (zero moments)."""
        moments = {}
        for p, name in names.items():
            st = opt.state.get(p, {})
            moments[name] = tuple(
                st[k].detach().clone() if k in st else torch.zeros_like(p)
                for k in ("exp_avg", "exp_avg_sq")
            )
        taken = next((int(st["step"]) for st in opt.state.values()), 0)
        return {"step": taken, "moments": moments}

    losses = []
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - dxdt) ** 2)
        loss.backward()
        value = float(loss.detach())
        if best and value < best_loss:  # the weights this loss was computed with, before the step
            best_loss = value
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_adam = snapshot() if adam_state is not None else None
        opt.step()
        losses.append(value)
        if progress is not None:
            progress(step)
    with torch.no_grad():
        final = float(torch.mean((model(x) - dxdt) ** 2))
    losses.append(final)
    restore = best_loss < final  # only "best" records a finite best_loss (and its state)
    if restore:
        model.load_state_dict(best_state)
    if adam_state is not None:
        adam_state.update(best_adam if restore else snapshot())
    return losses


def save_mlp(
    model: nn.Sequential,
    path: str | os.PathLike[str],
    *,
    config: MLPConfig,
    n_vars: int,
    adam_state: dict | None = None,
    **meta,
) -> None:
    """Save the weights and the settings needed to rebuild the model (atomic write), and the training's
    Adam state if given (read back by :func:`load_adam_state`)."""
    from formula_search.io import atomic_path

    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": asdict(config),
        "n_vars": int(n_vars),
        "meta": {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)},
    }
    if adam_state is not None:
        payload["adam_step"] = int(adam_state["step"])
        payload["adam_moments"] = {
            k: [m.detach().cpu(), v.detach().cpu()] for k, (m, v) in adam_state["moments"].items()
        }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_mlp(path: str | os.PathLike[str]) -> tuple[nn.Sequential, MLPConfig, dict]:
    """Load a model written by :func:`save_mlp` (``weights_only=True``: no code is unpickled).

    Returns:
        The model (float32, on the CPU), its :class:`MLPConfig`, and the saved metadata.
    """
    from formula_search.errors import InputError

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = MLPConfig(**payload["config"])
        model = make_mlp(int(payload["n_vars"]), hidden=config.hidden, seed=config.seed)
        model.load_state_dict(payload["state_dict"])
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such model file") from exc
    except Exception as exc:  # a corrupt or foreign file is bad input, not a crash
        raise InputError(
            f"{path}: not a model saved by fsearch pretrain ({exc.__class__.__name__})"
        ) from exc
    return model, config, dict(payload.get("meta", {}))


def load_adam_state(path: str | os.PathLike[str]) -> dict | None:
    """The Adam state saved with a model by :func:`save_mlp` (``weights_only=True``), or None for a model
    saved without one."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "adam_moments" not in payload:
        return None
    moments = {k: (m, v) for k, (m, v) in payload["adam_moments"].items()}
    return {"step": int(payload["adam_step"]), "moments": moments}
