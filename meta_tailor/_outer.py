"""Meta-tailoring (Algorithm 1's outer loop): train the weights, and the law's parameters, through tailoring.

Each outer step is one full-batch Adam step (:class:`~meta_tailor._outer_adam.OuterAdam`) on the task loss of
the *tailored* model, with gradients through the inner step(s) (second order). One loop,
:func:`_outer_loop`, serves one candidate law (:func:`meta_tailor`: any model, state or trajectory mode) and
several at once (:func:`meta_tailor_many`: the tanh MLP's weights stacked per candidate, trajectory mode);
what differs is only how a task computes its candidates' losses (:mod:`meta_tailor._outer_tasks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from meta_tailor._config import TailorConfig
from meta_tailor._losses import ConservedFn
from meta_tailor._outer_adam import OuterAdam, _per_candidate
from meta_tailor._outer_tasks import Group, _OneTask, _StackedTask
from meta_tailor._trajectory import _kernels

Task = _OneTask | _StackedTask


@dataclass(frozen=True)
class MetaTailorResult:
    """Outcome of :func:`meta_tailor` (and of each candidate of :func:`meta_tailor_many`).

    Attributes:
        model: the meta-tailored MLP (a new module; the input model is unchanged).
        theta: meta-learned formula parameters, shape (n_params,).
        losses: task loss (MSE of tailored dx/dt) before each outer step.
        scores: the selection score of every scored weight set (trajectory mode), as ``(epoch, score)``:
            epoch ``e`` is the weights before outer step ``e`` (0: the tailored pretrained model; ``epochs``:
            after the last step). With ``select="rollout"`` the score is the training rollout MSE the
            returned epoch is chosen by, else the outer loss. Empty in state mode.
    """

    model: nn.Module
    theta: Tensor
    losses: list[float]
    scores: list[tuple[int, float]] = field(default_factory=list)


def can_stack(model: nn.Module, config: TailorConfig) -> bool:
    """Whether :func:`meta_tailor_many` can meta-tailor candidates of ``model`` together under ``config``:
    trajectory mode with the tanh MLP (whose kernels, :func:`~meta_tailor._trajectory._kernels`, stack)."""
    return config.mode == "trajectory" and _kernels(model).stacks


def _scored_epoch(epoch: int, config: TailorConfig) -> bool:
    """Whether ``select="rollout"`` scores the weights before outer step ``epoch`` (or after the last)."""
    return epoch % config.select_every == 0 or epoch == config.epochs


def _check_targets(config: TailorConfig, trajectories: Sequence[Group]) -> None:
    if config.outer_loss == "derivative" and any(len(tr) < 3 for tr in trajectories):
        raise ValueError("the derivative outer loss needs (t, x, dxdt) for every trajectory group")


class _Best:
    """Each candidate's lowest score so far and the leaves' values it was reached with (at first, the
    starting values: a candidate that never has a finite score returns them)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.score = torch.full(
            (task.n_c,), math.inf, dtype=torch.float64, device=task.theta.device
        )
        self.weights = [v.detach().clone() for v in task.weights.values()]
        self.theta = task.theta.detach().clone()

    def update(self, score: Tensor, finite: Tensor) -> None:
        """Keep the current values of the candidates whose loss is ``finite`` and ``score`` (C,) lower."""
        task = self.task
        better = finite & torch.isfinite(score) & (score < self.score)
        self.score = torch.where(better, score, self.score)
        with torch.no_grad():
            for b, v in zip(self.weights, task.weights.values()):
                b.copy_(torch.where(_per_candidate(task.n_c, v)(better), v, b))
            self.theta.copy_(torch.where(better[task.owner], task.theta, self.theta))


def _outer_loop(
    task: Task, adam: OuterAdam, config: TailorConfig, progress: Callable[[int], None] | None
) -> list[MetaTailorResult]:
    """The outer loop of meta-tailoring, for every candidate of ``task`` at once.

    Each epoch computes the candidates' outer losses (before the step) and takes one Adam step for each
    candidate whose loss is finite. In trajectory mode the weights before each step and after the last
    are scored (the outer loss, or with ``select="rollout"`` every ``select_every`` epochs the training
    rollout MSE) and each candidate returns its best-scored weights, since Adam through the inner step can
    jump to much worse weights; state mode steps on every loss and returns the last weights.
    ``progress(epoch)`` is called after each outer step.
    """
    select = config.mode == "trajectory"
    by_rollout = select and config.select == "rollout" and config.outer_loss != "rollout"
    history: list[list[float]] = [[] for _ in range(task.n_c)]
    scores: list[list[tuple[int, float]]] = [[] for _ in range(task.n_c)]
    best = _Best(task) if select else None
    for epoch in range(config.epochs + select):
        loss, rollout = task.losses(by_rollout and _scored_epoch(epoch, config))
        value = loss.detach().double()
        finite = torch.isfinite(value)
        if select:
            score = rollout if by_rollout else value
            if score is None:  # not a scored epoch
                score = torch.full_like(value, math.inf)
            for k, v in enumerate(score.tolist()):  # one transfer from the device per epoch
                if math.isfinite(v):
                    scores[k].append((epoch, v))
            best.update(score, finite)  # type: ignore[union-attr]
            if epoch == config.epochs:  # the extra pass only scores the last step's weights
                break
        else:  # state mode steps on every loss (a NaN one spreads to the weights, as it always did)
            finite = torch.ones_like(finite)
        for k, (v, ok) in enumerate(zip(value.tolist(), finite.tolist())):
            history[k].append(v if ok else math.inf)
        if finite.any():
            grads = torch.autograd.grad(
                torch.where(finite, loss, 0.0).sum(), adam.tensors, materialize_grads=True
            )
            adam.step(grads, finite)
        if progress is not None:
            progress(epoch)
    if best is not None:
        weights, theta = best.weights, best.theta
    else:
        weights, theta = list(task.weights.values()), task.theta
    return [
        MetaTailorResult(*task.result(k, weights, theta), losses=history[k], scores=scores[k])
        for k in range(task.n_c)
    ]


def _adam(
    task: Task, config: TailorConfig, outer_lrs: Sequence[float] | None, outer_state: dict | None
) -> OuterAdam:
    return OuterAdam(
        task.weights,
        task.theta,
        task.owner,
        n_c=task.n_c,
        learn=task.learn,
        per_copy=task.per_copy,
        config=config,
        outer_lrs=outer_lrs,
        outer_state=outer_state,
    )


def meta_tailor(
    model: nn.Module,
    g: ConservedFn,
    theta: Tensor,
    x: Tensor,
    dxdt: Tensor,
    *,
    dt: float,
    config: TailorConfig = TailorConfig(),
    trajectories: Sequence[tuple[Tensor, ...]] | None = None,
    progress: Callable[[int], None] | None = None,
    outer_state: dict | None = None,
) -> MetaTailorResult:
    """Meta-tailor a copy of ``model`` (tanh MLP) with the conservation function ``g``.

    Each outer step is one full-batch Adam step on the MSE between the *tailored* prediction
    (:func:`~meta_tailor._per_state.tailored_predict`, ``config.inner_steps`` steps at
    ``config.inner_lr``) and the true dx/dt (state mode) or between the tailored predicted sequences and
    the true ones (trajectory mode), with gradients through the inner step(s) into the MLP weights and, if
    ``config.learn_params``, into the formula parameters ``theta`` (:func:`_outer_loop`).

    Args:
        model: pretrained MLP from :func:`~meta_tailor._mlp.make_mlp`.
        g: conservation function.
        theta: initial formula parameters, shape (n_params,) (may be empty).
        x: training states, shape (N, n_vars).
        dxdt: training targets, shape (N, n_vars).
        dt: time step of the data.
        config: inner and outer settings.
        trajectories: training sequences for ``config.mode == "trajectory"``: ``(t, x)`` or
            ``(t, x, dxdt)`` of shapes (B, T), (B, T, n_vars), (B, T, n_vars), one tuple per length
            (``dxdt`` is needed by ``config.outer_loss == "derivative"``, which instead takes the MSE of the
            per-trajectory tailored dx/dt at the true states). In that mode the outer loss is the MSE between
            :func:`~meta_tailor._trajectory.trajectory_rollout` (tailored from each true first state, RK4
            on the data grid) and the true sequences, differentiated through the inner step(s);
            ``x``/``dxdt`` are then unused. The weights (and parameters) of the epoch with the lowest
            ``config.select`` score are returned (training rollout MSE by default, else the outer loss; the
            last step's weights are scored too), since Adam on these losses can end on worse weights.
        progress: optional callable ``progress(epoch)``.
        outer_state: the MLP's pretraining Adam state (``adam_state`` of
            :func:`~meta_tailor._mlp.train_mlp`), continued when ``config.outer_adam == "continue"``.
    """
    if config.mode == "trajectory":
        if not trajectories:
            raise ValueError("trajectory mode needs the training trajectories")
        _check_targets(config, trajectories)
    task = _OneTask(model, g, theta, x, dxdt, dt=dt, config=config, trajectories=trajectories)
    return _outer_loop(task, _adam(task, config, None, outer_state), config, progress)[0]


def meta_tailor_many(
    model: nn.Module,
    candidates: Sequence[tuple[ConservedFn, Tensor, float]],
    *,
    dt: float,
    config: TailorConfig,
    trajectories: Sequence[tuple[Tensor, ...]],
    progress: Callable[[int], None] | None = None,
    outer_lrs: Sequence[float] | None = None,
    outer_state: dict | None = None,
) -> list[MetaTailorResult]:
    """:func:`meta_tailor` of several candidates at once (trajectory mode, tanh MLP).

    Candidate ``k`` is ``(g_k, theta_k, inner_lr_k)``; it gets its own copy of ``model`` and the same result
    as ``meta_tailor(model, g_k, theta_k, ..., config=replace(config, inner_lr=inner_lr_k,
    outer_lr=outer_lrs[k]))``. The copies are
    stacked along a leading candidate dimension, so that each tensor operation of the inner rollout, the
    inner gradient and the outer loss serves every candidate: the per-operation overhead, which dominates
    for a 200-unit MLP, is paid once instead of once per candidate. Adam is elementwise, so it is applied to
    the stacked tensors, with a per-candidate step count so that a candidate whose outer loss is not finite
    skips that step as in :func:`meta_tailor`.

    Args:
        model: pretrained tanh MLP from :func:`~meta_tailor._mlp.make_mlp` (not modified).
        candidates: ``(g, theta, inner_lr)`` per candidate; ``theta`` of any length (may be empty).
        dt, trajectories, progress: as :func:`meta_tailor` (``progress(epoch)`` once per epoch of all).
        config: trajectory-mode settings; ``config.inner_lr`` is replaced by each candidate's rate.
        outer_lrs: Adam rate of the MLP weights per candidate (default: ``config.outer_lr`` for all). When
            they are all equal the run is the same as with that one rate in ``config``.
        outer_state: the MLP's pretraining Adam state (``adam_state`` of
            :func:`~meta_tailor._mlp.train_mlp`), used when ``config.outer_adam == "continue"``: every
            copy's outer Adam then continues it (its moment estimates, and its step count in the bias
            corrections). The warm-up still counts this run's steps; the formula parameters' Adam starts
            afresh.

    Returns:
        One :class:`MetaTailorResult` per candidate, in order.

    Raises:
        ValueError: not trajectory mode, not a tanh MLP, or no trajectories.
    """
    if not can_stack(model, config) or not trajectories:
        raise ValueError("meta_tailor_many needs trajectory mode, a tanh MLP and trajectories")
    _check_targets(config, trajectories)
    if not candidates:
        return []
    task = _StackedTask(model, candidates, dt=dt, config=config, trajectories=trajectories)
    return _outer_loop(task, _adam(task, config, outer_lrs, outer_state), config, progress)
