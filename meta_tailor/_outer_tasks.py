"""What the outer loop of meta-tailoring trains and how it scores it: one candidate, or several stacked.

A task holds the outer leaves (the weights, and every candidate's formula parameters concatenated) and
computes, for all its candidates at once, the outer loss of the tailored model(s) and, on request, the
rollout score that ``select="rollout"`` chooses the returned epoch by. :func:`~meta_tailor._outer._outer_loop`
does the rest (Adam, schedule, selection) identically for both:

* :class:`_OneTask` — one candidate with the model's own weights: any model, state or trajectory mode,
  through :func:`~meta_tailor._per_state.tailored_predict` and :mod:`meta_tailor._trajectory`.
* :class:`_StackedTask` — several candidates of one tanh MLP in trajectory mode, the weights copied along a
  leading candidate dimension, so that each tensor operation of the inner rollout, the inner gradient and
  the outer loss serves every candidate (the per-operation overhead, which dominates for a 200-unit MLP, is
  paid once instead of once per candidate).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from meta_tailor._config import TailorConfig
from meta_tailor._losses import ConservedFn
from meta_tailor._mlp_fast import _mlp_apply, _mlp_fn, _mlp_inner_steps
from meta_tailor._per_state import tailored_predict
from meta_tailor._rollout import rk4_rollout
from meta_tailor._trajectory import (
    batched_field,
    batched_forward,
    tailor_trajectories,
    trajectory_rollout,
)

#: A trajectory group: ``(t, x)`` or ``(t, x, dxdt)`` of shapes (B, T), (B, T, n), (B, T, n).
Group = tuple[Tensor, ...]


class _OneTask:
    """One candidate ``(g, theta)`` with a copy of ``model`` whose own parameters are the outer leaves."""

    per_copy = False

    def __init__(
        self,
        model: nn.Module,
        g: ConservedFn,
        theta: Tensor,
        x: Tensor,
        dxdt: Tensor,
        *,
        dt: float,
        config: TailorConfig,
        trajectories: Sequence[Group] | None,
    ) -> None:
        self.model = copy.deepcopy(model)
        self.weights = dict(self.model.named_parameters())
        self.n_c, self.g, self.x, self.dxdt, self.dt, self.config = 1, g, x, dxdt, dt, config
        self.trajectories = trajectories
        self.theta = theta.detach().clone().to(x)
        self.learn = config.learn_params and self.theta.numel() > 0
        if self.learn:
            self.theta.requires_grad_(True)
        self.owner = torch.zeros(self.theta.numel(), dtype=torch.long, device=self.theta.device)
        self.inner = dict(
            lrs=torch.tensor([config.inner_lr], dtype=x.dtype, device=x.device),
            steps=config.inner_steps,
            dt=dt,
            form=config.loss_form,
            integrator=config.inner_integrator,
            rule=config.inner_rule,
        )

    def losses(self, score: bool) -> tuple[Tensor, Tensor | None]:
        """The outer loss, shape (1,), and (if ``score``) the rollout score, float64 (1,)."""
        cfg = self.config
        if cfg.mode == "state":
            pred = tailored_predict(
                self.weights,
                self.g,
                self.theta,
                self.x,
                lr=cfg.inner_lr,
                steps=cfg.inner_steps,
                dt=self.dt,
                create_graph=True,
                rule=cfg.inner_rule,
            )
            return torch.mean((pred - self.dxdt) ** 2).reshape(1), None
        total, count = 0.0, 0
        tailored = []  # (t, xs, per-sequence weights) of the derivative loss, reused by the score
        for t, xs, *rest in self.trajectories:
            if cfg.outer_loss == "derivative":
                p = self._tailor(xs[:, 0], horizon=cfg.horizon or xs.shape[1] - 1)
                tailored.append((t, xs, p))
                total = total + ((batched_forward(self.model, p, xs) - rest[0]) ** 2).sum()
            else:
                pred = trajectory_rollout(
                    self.model,
                    self.weights,
                    self.g,
                    self.theta,
                    xs[:, 0],
                    t,
                    horizon=cfg.horizon,
                    **self.inner,
                )[0]
                total = total + ((pred - xs) ** 2).sum()
            count += xs.numel()
        loss = (total / count).reshape(1)
        return loss, (self._rollout_score(tailored) if score else None)

    def _tailor(self, x0: Tensor, horizon: int) -> dict[str, Tensor]:
        p = tailor_trajectories(
            self.model, self.weights, self.g, self.theta, x0, horizon=horizon, **self.inner
        )
        return {k: v[0] for k, v in p.items()}

    def _rollout_score(self, tailored: list) -> Tensor:
        """Training rollout MSE of the per-sequence tailored weights (sums in float64)."""
        sq, n_sq = 0.0, 0
        with torch.no_grad():
            for t, xs, p in tailored:
                pd = {k: v.detach() for k, v in p.items()}
                pred = rk4_rollout(batched_field(self.model, pd, xs[:, 0]), xs[:, 0], t)
                sq += float(((pred - xs) ** 2).sum())
                n_sq += xs.numel()
        return torch.tensor([sq / n_sq], dtype=torch.float64, device=self.theta.device)

    def result(self, k: int, weights: list[Tensor], theta: Tensor) -> tuple[nn.Module, Tensor]:
        """The model with ``weights`` (the leaves' chosen values) and the parameters ``theta``."""
        with torch.no_grad():
            for v, w in zip(self.weights.values(), weights, strict=True):
                if v is not w:
                    v.copy_(w)
        return self.model, theta.detach().clone()


class _StackedTask:
    """Candidates ``(g_k, theta_k, inner_lr_k)`` of one tanh MLP, each with its own copy of the weights."""

    per_copy = True

    def __init__(
        self,
        model: nn.Module,
        candidates: Sequence[tuple[ConservedFn, Tensor, float]],
        *,
        dt: float,
        config: TailorConfig,
        trajectories: Sequence[Group],
    ) -> None:
        ref = next(model.parameters())
        n_c = len(candidates)
        self.model, self.n_c, self.dt, self.config = model, n_c, dt, config
        self.trajectories = trajectories
        self.weights = {
            k: v.detach().expand(n_c, *v.shape).clone().requires_grad_(True)
            for k, v in model.named_parameters()
        }
        self.sizes = [int(th.numel()) for _, th, _ in candidates]
        self.offsets = [sum(self.sizes[:i]) for i in range(n_c)]
        theta = torch.cat([th.detach().reshape(-1).to(ref) for _, th, _ in candidates])
        self.learn = config.learn_params and theta.numel() > 0
        self.theta = theta.requires_grad_(self.learn)
        self.owner = torch.repeat_interleave(
            torch.arange(n_c, device=ref.device), torch.tensor(self.sizes, device=ref.device)
        )
        self.gs = [g for g, _, _ in candidates]
        self.lr = torch.tensor([lr for _, _, lr in candidates], dtype=ref.dtype, device=ref.device)

    def _g_all(self, x: Tensor, th: Tensor) -> Tensor:
        """Every candidate's law on its own states: ``x`` (C, ...) -> (C, ...)."""
        return torch.stack(
            [
                gk(x[k], th[o : o + n])
                for k, (gk, o, n) in enumerate(zip(self.gs, self.offsets, self.sizes))
            ]
        )

    def _tailor_groups(self) -> list[tuple[Tensor, Tensor, list, dict[str, Tensor]]]:
        """Each trajectory group with the per-(candidate, sequence) tailored weights."""
        cfg, out = self.config, []
        for t, xs, *rest in self.trajectories:
            x0 = xs[:, 0].expand(self.n_c, *xs[:, 0].shape)
            if cfg.inner_steps == 0:
                p = {k: v.unsqueeze(1) for k, v in self.weights.items()}
            else:
                p = _mlp_inner_steps(
                    self.weights,
                    self._g_all,
                    self.theta,
                    x0,
                    self.lr,
                    steps=cfg.inner_steps,
                    dt=self.dt,
                    horizon=cfg.horizon or xs.shape[1] - 1,
                    form=cfg.loss_form,
                    integrator=cfg.inner_integrator,
                    rule=cfg.inner_rule,
                )
            out.append((t, xs, rest, p))
        return out

    def _mse(self, groups: list, kind: str) -> Tensor:
        """Per-candidate MSE (C,) of the tailored dx/dt (``"derivative"``) or rollouts (``"rollout"``)."""
        n_c = self.n_c
        total = torch.zeros(n_c, dtype=self.lr.dtype, device=self.lr.device)
        count = 0
        for t, xs, rest, p in groups:
            if kind == "derivative":
                pred = _mlp_apply(p, xs.expand(n_c, *xs.shape))
                target = rest[0]
            else:
                x0 = xs[:, 0].expand(n_c, *xs[:, 0].shape)
                pred = rk4_rollout(_mlp_fn(p, x0), x0, t)
                target = xs
            total = total + ((pred - target) ** 2).flatten(1).sum(1)
            count += xs.numel()
        return total / count

    def losses(self, score: bool) -> tuple[Tensor, Tensor | None]:
        """The outer loss (C,) and (if ``score``) the rollout score of the same tailored weights (C,)."""
        groups = self._tailor_groups()
        loss = self._mse(groups, self.config.outer_loss)
        if not score:
            return loss, None
        with torch.no_grad():
            detached = [(t, xs, r, {k: v.detach() for k, v in p.items()}) for t, xs, r, p in groups]
            return loss, self._mse(detached, "rollout").double()

    def result(self, k: int, weights: list[Tensor], theta: Tensor) -> tuple[nn.Module, Tensor]:
        """A copy of the model with candidate ``k``'s copy of ``weights``, and its slice of ``theta``."""
        copy_k = copy.deepcopy(self.model)
        with torch.no_grad():
            for v, w in zip(copy_k.parameters(), weights, strict=True):
                v.copy_(w[k])
        o, n = self.offsets[k], self.sizes[k]
        return copy_k, theta[o : o + n].clone()
