"""Tailoring per query state (eq. 2-3 with T = 1): each state gets its own weights.

``theta(x_t) = theta - lr grad_theta L_Noether(x_t)`` (repeated ``steps`` times), and the tailored derivative
is ``f_theta(x_t)(x_t)``, an ordinary vector field that can be integrated. Two implementations compute the
same numbers:

* :func:`tailored_predict_func` — generic, for any ``nn.Module``: ``torch.func.grad`` of the Noether loss per
  state, ``functional_call`` with the adapted weights, ``vmap`` over states and over inner learning rates.
  It materialises one weight copy per (state, learning rate), so it is the reference, not the workhorse.
* :func:`tailored_predict` — the fast path for the tanh MLP of :func:`~meta_tailor._mlp.make_mlp`. The
  per-state gradient of a linear layer is the outer product ``delta h^T`` of the back-propagated signal and
  the layer input, so after k inner steps each state's weights are ``W - sum_i lr delta_i h_i^T``: the
  tailored forward pass needs only dot products ``h_i . h`` and never builds per-state weights. It is batched
  over states, inner learning rates and (through broadcasting of ``g``) formula parameters, and it is
  differentiable to any order by ordinary autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from meta_tailor._losses import ConservedFn, noether_loss
from meta_tailor._mlp_fast import mlp_layers
from meta_tailor._rules import _check_rule, _polyak_scale, rule_grads


def tailored_predict_func(
    model: nn.Module,
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x: Tensor,
    *,
    lrs: Tensor,
    steps: int,
    dt: float,
    rule: str = "sgd",
) -> Tensor:
    """Tailored dx/dt with ``torch.func`` (per-state weights), for any model.

    Args:
        model: the dx/dt model (its own parameters are ignored; ``params`` are used).
        params: parameters by name (``dict(model.named_parameters())``), possibly requiring grad.
        g: conservation function.
        theta: formula parameters, shape (n_params,).
        x: query states, shape (N, n_vars).
        lrs: inner learning rates, shape (L,).
        steps: number of inner SGD steps.
        dt: time step of the finite difference.
        rule: inner step rule, ``"sgd"`` or ``"polyak"`` (module docstring).

    Returns:
        Tailored predictions, shape (L, N, n_vars). Differentiable w.r.t. ``params`` and ``theta``.
    """
    _check_rule(rule)

    def inner_loss(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        f = functional_call(model, p, (xi,))
        return noether_loss(g, theta, xi, f, dt)

    def adapt_and_predict(lr: Tensor, xi: Tensor) -> Tensor:
        p = params
        for _ in range(steps):
            gr, loss = grad_and_value(inner_loss)(p, xi)
            gr = rule_grads(rule, gr, loss)
            p = {k: p[k] - lr * gr[k] for k in p}
        return functional_call(model, p, (xi,))

    per_state = vmap(adapt_and_predict, in_dims=(None, 0))
    return vmap(per_state, in_dims=(0, None))(lrs, x)


@dataclass
class _Term:
    """One rank-1 per-state correction ``-a h^T`` of a layer's weights (and ``-a`` of its bias)."""

    a: Tensor  # (..., N, out): inner lr times back-propagated signal
    h: Tensor  # (..., N, in): the layer input when the gradient was taken


def _forward(
    layers: list[tuple[Tensor, Tensor | None]], x: Tensor, terms: list[list[_Term]]
) -> tuple[Tensor, list[Tensor]]:
    """Forward pass with per-state corrected weights; returns the output and each layer's input."""
    h = x
    inputs = []
    for li, (w, b) in enumerate(layers):
        inputs.append(h)
        z = h @ w.T
        if b is not None:
            z = z + b
        for t in terms[li]:
            dot = (t.h * h).sum(-1, keepdim=True)
            if b is not None:
                dot = dot + 1.0
            z = z - t.a * dot
        h = torch.tanh(z) if li < len(layers) - 1 else z
    return h, inputs


def _backward(
    layers: list[tuple[Tensor, Tensor | None]],
    inputs: list[Tensor],
    terms: list[list[_Term]],
    e: Tensor,
) -> list[Tensor]:
    """Per-state signals dL/dz of each layer, given e = dL/d(output); tanh between layers."""
    deltas = [e]
    delta = e
    for li in range(len(layers) - 1, 0, -1):
        w, _ = layers[li]
        back = delta @ w
        for t in terms[li]:
            back = back - (delta * t.a).sum(-1, keepdim=True) * t.h
        h_in = inputs[li]  # = tanh(z_{li-1})
        delta = back * (1.0 - h_in**2)
        deltas.append(delta)
    return deltas[::-1]


def _dloss_dxt(
    g: ConservedFn, theta: Tensor, x: Tensor, xt: Tensor, create_graph: bool
) -> tuple[Tensor, Tensor]:
    """Per-state gradient of ``(g(xt) - g(x))^2`` w.r.t. ``xt`` (rows are independent), and that loss."""
    with torch.enable_grad():
        if not create_graph:
            xt = xt.detach().requires_grad_(True)
            theta = theta.detach()
        elif not xt.requires_grad:
            xt = xt.clone().requires_grad_(True)
        loss = (g(xt, theta) - g(x, theta)) ** 2
        (e,) = torch.autograd.grad(loss.sum(), xt, create_graph=create_graph)
    return e, (loss if create_graph else loss.detach())


def tailored_predict(
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x: Tensor,
    *,
    lr: float | Tensor,
    steps: int,
    dt: float,
    create_graph: bool = False,
    rule: str = "sgd",
) -> Tensor:
    """Tailored dx/dt of the tanh MLP, batched, without per-state weight copies.

    Args:
        params: MLP parameters by name (``dict(model.named_parameters())``).
        g: conservation function.
        theta: formula parameters, shape (n_params,) or with leading batch dims that broadcast with
            ``x[..., 0]`` (e.g. (C, 1, n_params) for C parameter vectors of one formula).
        x: query states, shape (..., N, n_vars).
        lr: inner learning rate: a float, or a tensor broadcastable to ``x[..., :1]``, e.g. shape (L, 1, 1).
        steps: number of inner SGD steps (0 gives the untailored model).
        dt: time step of the finite difference.
        create_graph: keep the graph of the inner gradient, for meta-tailoring (second-order gradients).
            When False the result is computed without any outer graph (evaluation).
        rule: inner step rule, ``"sgd"`` or ``"polyak"`` (module docstring); with ``"polyak"`` a state's
            squared gradient norm is ``sum_layers |delta|^2 (|h|^2 + 1)`` (the bias adds the 1).

    Returns:
        Tailored predictions, shape broadcast of (lr batch dims, theta batch dims, ..., N, n_vars).
    """
    _check_rule(rule)
    if not create_graph:
        params = {k: v.detach() for k, v in params.items()}
        theta = theta.detach()
    layers = mlp_layers(params)
    terms: list[list[_Term]] = [[] for _ in layers]
    with torch.set_grad_enabled(create_graph or torch.is_grad_enabled()):
        for _ in range(steps):
            out, inputs = _forward(layers, x, terms)
            e, loss = _dloss_dxt(g, theta, x, x + out * dt, create_graph)
            deltas = _backward(layers, inputs, terms, e * dt)
            rate = lr
            if rule == "polyak":
                sq = sum(
                    (d * d).sum(-1) * ((h * h).sum(-1) + (0.0 if b is None else 1.0))
                    for (_, b), d, h in zip(layers, deltas, inputs)
                )
                rate = lr * _polyak_scale(sq, loss).unsqueeze(-1)
            for li, (d, h) in enumerate(zip(deltas, inputs)):
                terms[li].append(_Term(a=rate * d, h=h))
        out, _ = _forward(layers, x, terms)
    return out


def tailored_field(
    model: nn.Module,
    g: ConservedFn | None,
    theta: Tensor | None,
    *,
    lr: float | Tensor,
    steps: int,
    dt: float,
    rule: str = "sgd",
) -> Callable[[Tensor], Tensor]:
    """The tailored model as a vector field ``x (..., n_vars) -> dx/dt`` (for rollouts).

    With ``g=None`` or ``steps=0`` it is the plain model. ``rule``: inner step rule (module docstring).
    """
    params = {k: v.detach() for k, v in model.named_parameters()}
    if g is None or steps == 0:

        def plain(x: Tensor) -> Tensor:
            with torch.no_grad():
                return functional_call(model, params, (x,))

        return plain
    theta_d = theta.detach() if theta is not None else torch.zeros(0)

    def field(x: Tensor) -> Tensor:
        with torch.no_grad():
            return tailored_predict(params, g, theta_d, x, lr=lr, steps=steps, dt=dt, rule=rule)

    return field
