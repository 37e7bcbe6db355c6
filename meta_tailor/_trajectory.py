"""Tailoring per query sequence (Algorithm 1) and the prediction of whole sequences with it.

From the true first state x_0 the model is rolled out with explicit Euler steps
``x~_t = x~_{t-1} + f_theta(x~_{t-1}) dt`` (t = 1..T), the weights take step(s) on the Noether loss of that
predicted sequence (eq. 2(a) or 2(b), :func:`~meta_tailor._losses.sequence_noether_loss`), and the whole
sequence is predicted by integrating the tailored field ``f_theta(x_0)`` (RK4 on the data grid).
:func:`tailor_trajectories` batches this over sequences and inner learning rates.

Every function here evaluates a model with batched weights through one of two kernels, chosen once per call
by :func:`_kernels`: the tanh MLP's batched path (:mod:`meta_tailor._mlp_fast`) or ``torch.func``
(``grad``, ``functional_call`` and ``vmap``, for any model). Both give the same numbers up to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from meta_tailor._losses import ConservedFn, euler_states, sequence_noether_loss
from meta_tailor._mlp_fast import _is_tanh_mlp, _mlp_fn, _mlp_one_step_field, _mlp_tailor
from meta_tailor._rollout import rk4_rollout
from meta_tailor._rules import _check_rule, rule_grads

Field = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class _Kernels:
    """How tailoring evaluates a model with batched weights (a row of the table :func:`_kernels` reads).

    Attributes:
        inner_steps: ``(model, params, g, theta, x0, lrs, *, steps >= 1, dt, horizon, form, integrator,
            rule)`` -> the tailored weights (L, B, *s_k) of :func:`tailor_trajectories`.
        field: ``(model, params, like)`` -> the model as a function of states shaped like ``like``, with
            weights whose leading dims (beyond the model's own shapes) match the leading dims of ``like``.
        one_step_field: ``(model, params, g, theta, x0, lrs, *, rule, dt, horizon, form, integrator)`` ->
            the field of one inner step for every rate and sequence at once, states (L, B, n); or None.
        stacks: whether :func:`~meta_tailor._outer.meta_tailor_many` can stack candidates of this model.
    """

    inner_steps: Callable[..., dict[str, Tensor]]
    field: Callable[[nn.Module, dict[str, Tensor], Tensor], Field]
    one_step_field: Callable[..., Field] | None
    stacks: bool


def _func_inner_steps(
    model: nn.Module,
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    lrs: Tensor,
    *,
    steps: int,
    dt: float,
    horizon: int,
    form: str,
    integrator: str,
    rule: str,
) -> dict[str, Tensor]:
    """:func:`tailor_trajectories` (``steps >= 1``) with ``torch.func``: ``grad`` per sequence,
    ``functional_call`` with the adapted weights, ``vmap`` over sequences and learning rates."""
    n_l, n_b = lrs.shape[0], x0.shape[0]

    def inner_loss(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        def fn(x: Tensor) -> Tensor:
            return functional_call(model, p, (x,))

        return sequence_noether_loss(
            g,
            theta,
            euler_states(fn, xi, dt=dt, horizon=horizon, integrator=integrator),
            form=form,
        )

    def lr_view(v: Tensor) -> Tensor:
        return lrs.reshape(n_l, 1, *([1] * (v.dim() - 2))).to(v)

    p = {k: v.expand(n_l, n_b, *v.shape) for k, v in params.items()}
    # the first gradient does not depend on the learning rate: one per sequence
    g1 = rule_grads(rule, *vmap(grad_and_value(inner_loss), in_dims=(None, 0))(params, x0))
    p = {k: params[k] - lr_view(p[k]) * g1[k].unsqueeze(0) for k in params}
    both = vmap(vmap(grad_and_value(inner_loss), in_dims=(0, 0)), in_dims=(0, None))
    for _ in range(steps - 1):
        gr = rule_grads(rule, *both(p, x0))
        p = {k: p[k] - lr_view(p[k]) * gr[k] for k in p}
    return p


def _func_field(model: nn.Module, params: dict[str, Tensor], like: Tensor) -> Field:
    """``vmap`` of ``functional_call`` over the weights' leading dims (those beyond the model's own)."""
    name, value = next(iter(params.items()))
    lead = value.dim() - model.get_parameter(name).dim()
    fn = lambda p, xi: functional_call(model, p, (xi,))  # noqa: E731
    for _ in range(lead):
        fn = vmap(fn)
    return lambda x: fn(params, x)


def _mlp_field(model: nn.Module, params: dict[str, Tensor], like: Tensor) -> Field:
    """The tanh MLP with batched weights laid out once (:func:`~meta_tailor._mlp_fast._mlp_fn`)."""
    return _mlp_fn(params, like)


_TANH_MLP = _Kernels(_mlp_tailor, _mlp_field, _mlp_one_step_field, stacks=True)
_TORCH_FUNC = _Kernels(_func_inner_steps, _func_field, None, stacks=False)


def _kernels(model: nn.Module) -> _Kernels:
    """The kernels of ``model``: the tanh MLP of :func:`~meta_tailor._mlp.make_mlp` takes the fast path,
    every other model ``torch.func``. The only place that makes this choice."""
    return _TANH_MLP if _is_tanh_mlp(model) else _TORCH_FUNC


def tailor_trajectories(
    model: nn.Module,
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    *,
    lrs: Tensor,
    steps: int,
    dt: float,
    horizon: int,
    form: str = "a",
    integrator: str = "euler",
    rule: str = "sgd",
) -> dict[str, Tensor]:
    """Tailored weights ``theta(x_0)`` of every query sequence and inner learning rate (Algorithm 1, l. 3-4).

    For each first state x_0 the model is rolled out ``horizon`` explicit-Euler steps of ``dt``
    (:func:`~meta_tailor._losses.euler_states`) and ``steps`` SGD steps are taken on
    :func:`~meta_tailor._losses.sequence_noether_loss` of that rollout, through the kernels of the model
    (:func:`_kernels`). The result is differentiable w.r.t. ``params`` and ``theta`` by ordinary autograd
    (second order, for meta-tailoring).

    Args:
        model: the dx/dt model (its own parameters are ignored; ``params`` are used).
        params: parameters by name, shapes ``s_k``.
        g: conservation function.
        theta: formula parameters, shape (n_params,).
        x0: true first states, shape (B, n_vars).
        lrs: inner learning rates, shape (L,).
        steps: inner SGD steps (0 gives copies of ``params``).
        dt: time step of the inner finite-difference rollout.
        horizon: number of inner rollout steps T.
        form: ``"a"`` or ``"b"`` (eq. 2).
        integrator: inner rollout, ``"euler"`` (the paper's finite difference) or ``"rk4"``.
        rule: inner step rule, ``"sgd"`` or ``"polyak"`` (a rate per sequence; :mod:`meta_tailor._rules`).

    Returns:
        Tailored parameters by name, shapes (L, B, *s_k).
    """
    _check_rule(rule)
    if steps == 0:
        return {k: v.expand(lrs.shape[0], x0.shape[0], *v.shape) for k, v in params.items()}
    inner = dict(steps=steps, dt=dt, horizon=horizon, form=form, integrator=integrator, rule=rule)
    return _kernels(model).inner_steps(model, params, g, theta, x0, lrs, **inner)


def batched_field(model: nn.Module, params: dict[str, Tensor], like: Tensor) -> Field:
    """:func:`batched_forward` as a function of states shaped like ``like``, prepared once (e.g. for a
    whole rollout): the tanh MLP's weights laid out, or the ``vmap`` of ``functional_call``."""
    return _kernels(model).field(model, params, like)


def batched_forward(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """``model`` with batched weights ``params`` (*batch, *s_k): one weight set per state (``x`` (*batch, n)
    -> (*batch, out)) or per sequence, shared by its rows (``x`` (*batch, T, n) -> (*batch, T, out)).

    The tanh MLP of :func:`~meta_tailor._mlp.make_mlp` is computed directly with batched matrix products
    (the same numbers as ``vmap(functional_call)``, without its per-call overhead); other models use
    ``vmap`` of ``functional_call``.
    """
    return batched_field(model, params, x)(x)


def trajectory_rollout(
    model: nn.Module,
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    t: Tensor,
    *,
    lrs: Tensor,
    steps: int,
    dt: float,
    horizon: int | None = None,
    form: str = "a",
    integrator: str = "euler",
    rule: str = "sgd",
) -> Tensor:
    """Algorithm 1's PREDICTSEQUENCE for a dx/dt model: tailor from x_0, then RK4 with the tailored field.

    Args:
        model, params, g, theta, lrs, steps, dt, form, integrator, rule: as :func:`tailor_trajectories`.
        x0: true first states, shape (B, n_vars).
        t: time grid of the prediction, shape (T,) or (B, T) (RK4 on this grid, as
            :func:`~meta_tailor._rollout.rk4_rollout`).
        horizon: inner rollout steps (None: ``T - 1``).

    Returns:
        Predicted sequences, shape (L, B, T, n_vars), ``[:, :, 0]`` equal to ``x0``.
    """
    horizon = int(t.shape[-1] - 1) if horizon is None else horizon
    inner = dict(dt=dt, horizon=horizon, form=form, integrator=integrator)
    kernels = _kernels(model)
    x_all = x0.expand(lrs.shape[0], *x0.shape)
    if steps == 1 and kernels.one_step_field is not None:
        field = kernels.one_step_field(model, params, g, theta, x0, lrs, rule=rule, **inner)
        return rk4_rollout(field, x_all, t)
    p = tailor_trajectories(model, params, g, theta, x0, lrs=lrs, steps=steps, rule=rule, **inner)
    return rk4_rollout(kernels.field(model, p, x_all), x_all, t)


def trajectory_predictor(
    model: nn.Module,
    g: ConservedFn,
    theta: Tensor | None,
    *,
    lr: float,
    steps: int,
    dt: float,
    horizon: int | None = None,
    form: str = "a",
    integrator: str = "euler",
    rule: str = "sgd",
) -> Callable[[Tensor, Tensor], Tensor]:
    """The per-trajectory tailored model as a sequence predictor ``(x0 (B, n), t (B, T)) -> (B, T, n)``."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta_d = theta.detach() if theta is not None else torch.zeros(0)

    def predict(x0: Tensor, t: Tensor) -> Tensor:
        lrs = torch.tensor([lr], dtype=x0.dtype, device=x0.device)
        with torch.no_grad():
            return trajectory_rollout(
                model,
                params,
                g,
                theta_d.to(x0.device),
                x0,
                t,
                lrs=lrs,
                steps=steps,
                dt=dt,
                horizon=horizon,
                form=form,
                integrator=integrator,
                rule=rule,
            )[0]

    return predict
