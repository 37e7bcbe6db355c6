"""Tailoring and meta-tailoring of a dx/dt model with a Noether (conservation) loss.

Notation (Noether Networks, eq. 2-3): a model f_theta predicts dx/dt from a state x; a candidate conserved
quantity g(x; c) has parameters c ("phi" in the paper). For a query state x_t the model's own
finite-difference prediction of the next state is ``x~ = x_t + f_theta(x_t) dt`` (section 4.1) and the
Noether loss is ``|g(x_t) - g(x~)|^2`` (eq. 2 with T = 1, where forms (a) and (b) coincide).

Tailoring is **per query state**: each state gets its own weights
``theta(x_t) = theta - lr grad_theta L_Noether(x_t)`` (eq. 3, repeated ``steps`` times), and the tailored
derivative is ``f_theta(x_t)(x_t)``. This makes the tailored model an ordinary vector field x -> dx/dt that can
be integrated, which is how the long-term rollouts are evaluated. Meta-tailoring trains theta and c on the
task loss (MSE of dx/dt) *after* tailoring, back-propagating through the inner step (second order).

With ``TailorConfig(mode="trajectory")`` tailoring is instead **per query sequence**, as Algorithm 1 writes
it: from the true first state x_0 the model is rolled out with explicit Euler steps
``x~_t = x~_{t-1} + f_theta(x~_{t-1}) dt`` (t = 1..T), the weights take SGD step(s) on the Noether loss of that
predicted sequence (eq. 2(a) or 2(b), :func:`sequence_noether_loss`), and the whole sequence is predicted by
integrating the tailored field ``f_theta(x_0)`` (RK4 on the data grid). :func:`tailor_trajectories` batches
this over sequences and inner learning rates with ``torch.func``; meta-tailoring then uses the MSE of the
predicted sequences as outer loss.

Two implementations of per-state tailoring compute the same numbers:

* :func:`tailored_predict_func` — generic, for any ``nn.Module``: ``torch.func.grad`` of the Noether loss per
  state, ``functional_call`` with the adapted weights, ``vmap`` over states and over inner learning rates.
  It materialises one weight copy per (state, learning rate), so it is the reference, not the workhorse.
* :func:`tailored_predict` — the fast path for the tanh MLP of :func:`~meta_tailor._mlp.make_mlp`. The
  per-state gradient of a linear layer is the outer product ``delta h^T`` of the back-propagated signal and
  the layer input, so after k inner steps each state's weights are ``W - sum_i lr delta_i h_i^T``: the
  tailored forward pass needs only dot products ``h_i . h`` and never builds per-state weights. It is batched
  over states, inner learning rates and (through broadcasting of ``g``) formula parameters, and it is
  differentiable to any order by ordinary autograd.

Inner step rule (``rule``, :data:`INNER_RULES`): ``"sgd"`` is the paper's step with a fixed rate ``lr``;
``"polyak"`` scales the rate of every query (state or sequence) by ``L / |grad L|^2`` of that query, the Polyak
step size, so that ``lr`` is the fraction of the query's Noether loss that the step removes to first order
(``lr = 1`` removes all of it). The step is then unchanged when ``g`` is multiplied by a constant, and one
``lr`` suits queries whose losses and gradients differ widely (on the real pendulum the full linearised step
``L / |grad L|^2`` of the pretrained MLP ranges from 0.0029 to 0.0166 over its sequences), which a fixed rate
does not.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from meta_tailor._config import INNER_RULES, TailorConfig
from meta_tailor._mlp import continue_adam
from meta_tailor._rollout import rk4_rollout

#: A conservation function: ``g(x (..., n_vars), theta (..., n_params)) -> (...)``, broadcasting.
ConservedFn = Callable[[Tensor, Tensor], Tensor]


def _check_rule(rule: str) -> None:
    if rule not in INNER_RULES:
        raise ValueError(f"inner step rule must be one of {', '.join(INNER_RULES)}, not {rule!r}")


def _polyak_scale(sq_norm: Tensor, loss: Tensor) -> Tensor:
    """``loss / sq_norm`` elementwise, 0 where the gradient is zero (there is nothing to step along)."""
    ok = sq_norm > 0
    return torch.where(ok, loss / torch.where(ok, sq_norm, torch.ones_like(sq_norm)), 0.0)


def rule_grads(
    rule: str, grads: dict[str | int, Tensor], losses: Tensor
) -> dict[str | int, Tensor]:
    """The inner step direction per query: ``grads`` (``"sgd"``) or ``grads * L / |grads|^2`` (``"polyak"``).

    ``grads`` have shapes (*batch, *s_k) and ``losses`` (*batch): one query per batch element, whose squared
    gradient norm sums over all parameters.
    """
    if rule == "sgd":
        return grads
    nb = losses.dim()
    sq = sum(v.pow(2).flatten(nb).sum(-1) for v in grads.values())
    scale = _polyak_scale(sq, losses)
    return {k: v * scale.reshape(*scale.shape, *([1] * (v.dim() - nb))) for k, v in grads.items()}


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


# --------------------------------------------------------------------------------------------------------
# Generic reference implementation with torch.func
# --------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------
# Fast low-rank path for the tanh MLP
# --------------------------------------------------------------------------------------------------------


def mlp_layers(params: dict[str, Tensor]) -> list[tuple[Tensor, Tensor | None]]:
    """The (weight, bias) pairs of a :func:`make_mlp` model from its parameter dict, in order."""
    return [(params[f"{i}.weight"], params.get(f"{i}.bias")) for i in _layer_indices(params)]


def _layer_indices(params: dict[str, Tensor]) -> list[int]:
    """The module indices of a :func:`make_mlp` model's linear layers, in order."""
    return sorted({int(k.split(".")[0]) for k in params})


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


# --------------------------------------------------------------------------------------------------------
# Per-trajectory tailoring (Algorithm 1)
# --------------------------------------------------------------------------------------------------------


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
    """Tailored weights ``theta(x_0)`` of every query sequence and inner learning rate (Algorithm 1, line 3-4).

    For each first state x_0 the model is rolled out ``horizon`` explicit-Euler steps of ``dt``
    (:func:`euler_states`) and ``steps`` SGD steps are taken on :func:`sequence_noether_loss` of that
    rollout. ``torch.func``: ``grad`` per sequence, ``functional_call`` with the adapted weights, ``vmap``
    over sequences and learning rates. The result is differentiable w.r.t. ``params`` and ``theta`` by
    ordinary autograd (second order, for meta-tailoring).

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
        rule: inner step rule, ``"sgd"`` or ``"polyak"`` (a rate per sequence; module docstring).

    Returns:
        Tailored parameters by name, shapes (L, B, *s_k).
    """
    _check_rule(rule)
    n_l, n_b = lrs.shape[0], x0.shape[0]
    if steps and _is_tanh_mlp(model):  # same numbers, without per-evaluation weight gradients
        if not torch.is_grad_enabled():
            params = {k: v.detach() for k, v in params.items()}
            theta = theta.detach()
        return _mlp_inner_steps(
            params,
            g,
            theta,
            x0,
            lrs,
            steps=steps,
            dt=dt,
            horizon=horizon,
            form=form,
            integrator=integrator,
            rule=rule,
        )

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
    if steps == 0:
        return p
    # the first gradient does not depend on the learning rate: one per sequence
    g1 = rule_grads(rule, *vmap(grad_and_value(inner_loss), in_dims=(None, 0))(params, x0))
    p = {k: params[k] - lr_view(p[k]) * g1[k].unsqueeze(0) for k in params}
    both = vmap(vmap(grad_and_value(inner_loss), in_dims=(0, 0)), in_dims=(0, None))
    for _ in range(steps - 1):
        gr = rule_grads(rule, *both(p, x0))
        p = {k: p[k] - lr_view(p[k]) * gr[k] for k in p}
    return p


def _linear(w: Tensor, b: Tensor | None, h: Tensor) -> Tensor:
    """``h w^T + b`` with batched weights: ``w`` (*lead, out, in) shared by the rows of ``h`` (*lead, N, in),
    or one weight matrix per row, ``w`` (*lead, out, in) with ``h`` (*lead, in)."""
    if w.dim() == h.dim():
        z = h @ w.mT
        if b is not None:
            z = z + (b.unsqueeze(-2) if b.dim() > 1 else b)
    else:
        # a row vector times w^T: on the CPU several times faster than torch's batched matrix-vector
        # product w @ h[..., None] (bmm with a size-1 dimension), forward and backward; equal up to rounding
        z = (h.unsqueeze(-2) @ w.mT).squeeze(-2)
        if b is not None:
            z = z + b
    return z


def _mlp_fn(
    params: dict[str, Tensor],
    like: Tensor,
    record: list[tuple[list[Tensor], list[Tensor]]] | None = None,
) -> Callable[[Tensor], Tensor]:
    """The tanh MLP with batched weights, as a function of states shaped like ``like``.

    The weights are laid out once, so that each evaluation is one fused ``baddbmm`` (``h w^T + b``) and one
    ``tanh`` per layer: in a sequential rollout the cost is the number of operations, not their size. The
    shapes of :func:`_linear`: weights ``(*lead, out, in)`` either shared by the rows of ``like``
    (``(*lead, N, n)``) or one set per row (``(*lead, n)``); with ``lead`` empty, any ``like``; other shapes
    take :func:`_linear` per evaluation.

    Args:
        params: MLP parameters by name.
        like: a state tensor of the shape the function will be called with.
        record: if given, one ``(inputs, pre-activations)`` pair of lists per layer; every evaluation
            appends its tensors (in a flattened layout: stack them along dim -2, then reshape to
            ``(*like.shape[:-1], evaluations, -1)``).
    """
    layers = mlp_layers(params)
    last = len(layers) - 1
    lead = layers[0][0].shape[:-2]
    if lead and like.shape[:-1] == lead:
        rows = 1  # one weight set per row
    elif lead and like.shape[:-2] == lead:
        rows = like.shape[-2]  # shared by the rows of each weight set
    else:
        rows = 0
    n_sets = math.prod(lead)
    laid = [  # the weights as (n_sets, in, out) and the biases as (n_sets, 1, out), for baddbmm
        (w.reshape(n_sets, *w.shape[-2:]).mT, None if b is None else b.reshape(n_sets, 1, -1))
        for w, b in (layers if rows else [])
    ]
    out_dim = layers[-1][0].shape[-2]

    def fn(x: Tensor) -> Tensor:
        h = x.reshape(n_sets, rows, x.shape[-1]) if rows else x
        for li in range(len(layers)):
            if record is not None:
                record[li][0].append(h)
            if rows:
                w_t, b = laid[li]
                z = torch.bmm(h, w_t) if b is None else torch.baddbmm(b, h, w_t)
            elif not lead:
                z = torch.nn.functional.linear(h, *layers[li])
            else:
                z = _linear(*layers[li], h)
            if record is not None:
                record[li][1].append(z)
            h = torch.tanh(z) if li < last else z
        return h.reshape(*x.shape[:-1], out_dim) if rows else h

    return fn


def _mlp_apply(params: dict[str, Tensor], x: Tensor) -> Tensor:
    """The tanh MLP with batched weights (see :func:`_linear` for the shapes)."""
    return _mlp_fn(params, x)(x)


def _mlp_sequence_grads(
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    *,
    dt: float,
    horizon: int,
    form: str,
    integrator: str,
) -> tuple[dict[str, Tensor], Tensor]:
    """Per-sequence gradients of the inner loss of the tanh MLP, without per-evaluation weight gradients.

    The weights of a linear layer are used at every evaluation s of the inner rollout, so the gradient of
    one sequence's loss is ``sum_s delta_s h_s^T`` (``delta_s`` the adjoint of the layer's pre-activation
    at evaluation s, ``h_s`` its input). Autograd under ``vmap`` would form and add one (out, in) matrix per
    sequence and evaluation; here one backward pass gives all ``delta_s`` (autograd's gradients w.r.t. the
    pre-activations themselves, which are non-leaf tensors of the graph), and each layer's gradient is one
    batched product.
    Differentiable w.r.t. ``params`` and ``theta`` when grad mode is on (second order, for meta-tailoring).

    Args:
        params: MLP parameters by name, shared by the sequences (``(*lead, *s_k)``) or one set per sequence
            (``(*lead, N, *s_k)``); ``lead`` are batch dimensions such as candidates (may be empty).
        g, theta, dt, horizon, form, integrator: as :func:`tailor_trajectories`.
        x0: first states, shape (*lead, N, n_vars).

    Returns:
        Gradients by name, shapes (*lead, N, *s_k), and the per-sequence inner losses, shape (*lead, N).
    """
    layers = mlp_layers(params)
    # per layer, the inputs h_s and the pre-activations (whose gradients are the delta_s)
    record: list[tuple[list[Tensor], list[Tensor]]] = [([], []) for _ in layers]
    outer = torch.is_grad_enabled()

    def stacked(seq: Sequence[Tensor]) -> Tensor:  # (..., N, S, dim)
        return torch.stack(list(seq), dim=-2).reshape(*x0.shape[:-1], len(seq), -1)

    with torch.enable_grad():
        # so that every pre-activation is in the graph, even with fixed weights
        if not x0.requires_grad:
            x0 = x0.detach().requires_grad_(True)
        fn = _mlp_fn(params, x0, record)
        xs = euler_states(fn, x0, dt=dt, horizon=horizon, integrator=integrator)
        losses = sequence_noether_loss(g, theta, xs, form=form)
        flat = [z for _, pre in record for z in pre]
        adjoints = torch.autograd.grad(losses.sum(), flat, create_graph=outer)
    out: dict[str, Tensor] = {}
    pos = 0
    for li, (name, (_, b)) in enumerate(zip(_layer_indices(params), layers)):
        n_eval = len(record[li][1])
        delta = stacked(adjoints[pos : pos + n_eval])  # (..., N, S, out)
        h = stacked(record[li][0])  # (..., N, S, in)
        if not outer:
            h = h.detach()
        pos += n_eval
        out[f"{name}.weight"] = delta.mT @ h
        if b is not None:
            out[f"{name}.bias"] = delta.sum(-2)
    return out, (losses if outer else losses.detach())


def _mlp_inner_steps(
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    lr: Tensor,
    *,
    steps: int,
    dt: float,
    horizon: int,
    form: str,
    integrator: str,
    rule: str = "sgd",
) -> dict[str, Tensor]:
    """``steps`` (>= 1) SGD steps of the tanh MLP on the inner loss, one weight set per rate and sequence.

    Args:
        params: MLP parameters by name, either shared (``s_k``) with ``x0`` (N, n_vars), and then the R
            rates of ``lr`` give R weight sets per sequence; or with a leading dimension of size R
            (``(R, *s_k)``, e.g. candidates) with ``x0`` (R, N, n_vars), and rate r applies to ``params[r]``.
        lr: inner learning rates, shape (R,).
        g, theta, dt, horizon, form, integrator, rule: as :func:`tailor_trajectories`.

    Returns:
        Tailored parameters by name, shapes (R, N, *s_k). The first gradient is computed once per sequence
        (it does not depend on the rate).
    """
    kw = dict(dt=dt, horizon=horizon, form=form, integrator=integrator)
    lead = x0.dim() - 2  # 1 when params carry the rate dimension

    def rate(ndim: int) -> Tensor:  # (R, 1, 1, ...) against the (R, N, *s_k) weights of ndim dims
        return lr.reshape(-1, *([1] * (ndim - 1)))

    lr = lr.to(x0)
    grads = rule_grads(rule, *_mlp_sequence_grads(params, g, theta, x0, **kw))  # (*lead, N, *s_k)
    p = {
        k: v.unsqueeze(lead) - rate(grads[k].dim() + 1 - lead) * grads[k] for k, v in params.items()
    }
    x_all = x0.expand(lr.shape[0], *x0.shape[-2:])
    for _ in range(steps - 1):
        grads = rule_grads(rule, *_mlp_sequence_grads(p, g, theta, x_all, **kw))  # (R, N, *s_k)
        p = {k: v - rate(v.dim()) * grads[k] for k, v in p.items()}
    return p


def _is_tanh_mlp(model: nn.Module) -> bool:
    """Whether ``model`` is Linear, (Tanh, Linear)* as built by :func:`~meta_tailor._mlp.make_mlp`."""
    if not isinstance(model, nn.Sequential) or len(model) % 2 == 0:
        return False
    return all(
        isinstance(m, nn.Linear) if i % 2 == 0 else isinstance(m, nn.Tanh)
        for i, m in enumerate(model)
    )


def per_sequence_forward(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """``model`` with one weight set per sequence: ``params`` (B, *s_k), ``x`` (B, T, n) -> (B, T, out)."""
    if _is_tanh_mlp(model):
        return _mlp_apply(params, x)  # weights (B, out, in) shared by the T rows of each sequence
    return vmap(lambda p, xi: functional_call(model, p, (xi,)))(params, x)


def batched_forward(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor:
    """``model`` with one weight set per state: ``params`` (*batch, *s_k), ``x`` (*batch, n) -> (*batch, out).

    The tanh MLP of :func:`~meta_tailor._mlp.make_mlp` is computed directly with batched matrix products
    (the same numbers as ``vmap(functional_call)``, without its per-call overhead); other models use
    ``vmap`` of ``functional_call``.
    """
    return _rollout_field(model, params, x)(x)


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
    if steps == 1 and _is_tanh_mlp(model):
        # one step from shared weights: W(lr, b) = W - lr G_b, applied as W h - lr (G_b h), so the rollout
        # reads each sequence's G_b once for all learning rates instead of L weight copies
        if not torch.is_grad_enabled():
            params = {k: v.detach() for k, v in params.items()}
            theta = theta.detach()
        _check_rule(rule)
        grads = rule_grads(
            rule,
            *_mlp_sequence_grads(
                params,
                g,
                theta,
                x0,
                dt=dt,
                horizon=horizon,
                form=form,
                integrator=integrator,
            ),
        )
        layers, deltas = mlp_layers(params), mlp_layers(grads)
        lr = lrs.reshape(-1, 1, 1).to(x0)

        def one_step_field(x: Tensor) -> Tensor:
            h = x
            for li, ((w, b), (gw, gb)) in enumerate(zip(layers, deltas)):
                z = h @ w.T - lr * torch.einsum("boi,lbi->lbo", gw, h)
                if b is not None:
                    z = z + b - lr * gb
                h = torch.tanh(z) if li < len(layers) - 1 else z
            return h

        return rk4_rollout(one_step_field, x0.expand(lrs.shape[0], *x0.shape), t)
    p = tailor_trajectories(
        model,
        params,
        g,
        theta,
        x0,
        lrs=lrs,
        steps=steps,
        dt=dt,
        horizon=horizon,
        form=form,
        integrator=integrator,
        rule=rule,
    )

    x0 = x0.expand(lrs.shape[0], *x0.shape)
    return rk4_rollout(_rollout_field(model, p, x0), x0, t)


def _rollout_field(
    model: nn.Module, params: dict[str, Tensor], like: Tensor
) -> Callable[[Tensor], Tensor]:
    """:func:`batched_forward` as a function of states shaped like ``like``, prepared once for a whole
    rollout: the tanh MLP's weights laid out (:func:`_mlp_fn`), or the ``vmap`` of ``functional_call``."""
    if _is_tanh_mlp(model):
        return _mlp_fn(params, like)  # one weight matrix per row
    fn = lambda p, xi: functional_call(model, p, (xi,))  # noqa: E731
    for _ in range(like.dim() - 1):
        fn = vmap(fn)
    return lambda x: fn(params, x)


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


# --------------------------------------------------------------------------------------------------------
# Meta-tailoring
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetaTailorResult:
    """Outcome of :func:`meta_tailor`.

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
    (:func:`tailored_predict`, ``config.inner_steps`` steps at ``config.inner_lr``) and the true dx/dt (state
    mode) or between the tailored predicted sequences and the true ones (trajectory mode), with
    gradients through the inner step(s) into the MLP weights and, if ``config.learn_params``, into the formula
    parameters ``theta``.

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
            :func:`trajectory_rollout` (tailored from each true first state, RK4 on the data grid) and the
            true sequences, differentiated through the inner step(s); ``x``/``dxdt`` are then unused. The
            weights (and parameters) of the epoch with the lowest ``config.select`` score are returned
            (training rollout MSE by default, else the outer loss; the last step's weights are scored too),
            since Adam on these losses can end on worse weights.
        progress: optional callable ``progress(epoch)``.
        outer_state: the MLP's pretraining Adam state (``adam_state`` of
            :func:`~meta_tailor._mlp.train_mlp`), continued when ``config.outer_adam == "continue"``.
    """
    trajectory_mode = config.mode == "trajectory"
    if trajectory_mode and not trajectories:
        raise ValueError("trajectory mode needs the training trajectories")
    if (
        trajectory_mode
        and config.outer_loss == "derivative"
        and any(len(tr) < 3 for tr in trajectories)
    ):
        raise ValueError("the derivative outer loss needs (t, x, dxdt) for every trajectory group")
    model = copy.deepcopy(model)
    params = dict(model.named_parameters())
    theta = theta.detach().clone().to(x)
    groups = [
        {
            "params": list(params.values()),
            "lr": config.outer_lr,
            "weight_decay": config.weight_decay,
        }
    ]
    if config.learn_params and theta.numel() > 0:
        theta.requires_grad_(True)
        groups.append({"params": [theta], "lr": config.param_lr, "weight_decay": 0.0})
    opt = torch.optim.Adam(groups)
    state = _continued_state(config, outer_state, params)
    if state is not None:
        continue_adam(opt, params, state)
    base_lrs = [group["lr"] for group in groups]
    taken = 0  # outer steps taken (an epoch with a non-finite loss takes none)
    losses = []
    scores: list[tuple[int, float]] = []
    best: tuple[float, dict[str, Tensor], Tensor] | None = None
    inner = dict(
        lrs=torch.tensor([config.inner_lr], dtype=x.dtype, device=x.device),
        steps=config.inner_steps,
        dt=dt,
        form=config.loss_form,
        integrator=config.inner_integrator,
        rule=config.inner_rule,
    )

    for epoch in range(config.epochs + (1 if trajectory_mode else 0)):
        opt.zero_grad(set_to_none=True)
        if trajectory_mode:
            total, count = 0.0, 0
            tailored = []  # (t, xs, per-sequence weights) of the derivative loss, reused by the score
            for t, xs, *rest in trajectories:
                if config.outer_loss == "derivative":
                    horizon = config.horizon or xs.shape[1] - 1
                    p = tailor_trajectories(
                        model, params, g, theta, xs[:, 0], horizon=horizon, **inner
                    )
                    p = {k: v[0] for k, v in p.items()}
                    tailored.append((t, xs, p))
                    pred_dx = per_sequence_forward(model, p, xs)
                    total = total + ((pred_dx - rest[0]) ** 2).sum()
                    count += xs.numel()
                    continue
                pred = trajectory_rollout(
                    model, params, g, theta, xs[:, 0], t, horizon=config.horizon, **inner
                )[0]
                total = total + ((pred - xs) ** 2).sum()
                count += xs.numel()
            loss = total / count
        else:
            pred = tailored_predict(
                params,
                g,
                theta,
                x,
                lr=config.inner_lr,
                steps=config.inner_steps,
                dt=dt,
                create_graph=True,
                rule=config.inner_rule,
            )
            loss = torch.mean((pred - dxdt) ** 2)
        if trajectory_mode:
            value = score = float(loss.detach())
            by_rollout = config.select == "rollout" and config.outer_loss != "rollout"
            if by_rollout:
                score = math.inf
            if by_rollout and _scored_epoch(epoch, config):
                with torch.no_grad():
                    sq, n_sq = 0.0, 0
                    for t, xs, p in tailored:
                        pd = {k: v.detach() for k, v in p.items()}
                        pred = rk4_rollout(_rollout_field(model, pd, xs[:, 0]), xs[:, 0], t)
                        sq += float(((pred - xs) ** 2).sum())
                        n_sq += xs.numel()
                    score = sq / n_sq
            if math.isfinite(score):
                scores.append((epoch, score))
            if math.isfinite(value) and math.isfinite(score) and (best is None or score < best[0]):
                best = (
                    score,
                    {k: v.detach().clone() for k, v in params.items()},
                    theta.detach().clone(),
                )
            if epoch == config.epochs:  # the extra pass only scores the last step's weights
                break
            if not math.isfinite(value):  # diverged rollout: no NaN/inf step
                losses.append(math.inf)
                if progress is not None:
                    progress(epoch)
                continue
        loss.backward()
        taken += 1
        for group, base in zip(opt.param_groups, base_lrs, strict=True):
            group["lr"] = base * float(_outer_factor(taken, config))
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(epoch)
    if best is not None:
        # trajectory mode keeps the weights with the best score (config.select): Adam through the inner
        # step can jump to much worse weights
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(best[1][k])
        theta = best[2]
    return MetaTailorResult(model=model, theta=theta.detach(), losses=losses, scores=scores)


def _continued_state(config: TailorConfig, outer_state: dict | None, names) -> dict | None:
    """The pretraining Adam state to continue (``config.outer_adam == "continue"``), checked; else None."""
    if config.outer_adam != "continue":
        return None
    if outer_state is None:
        raise ValueError(
            "outer_adam='continue' needs the MLP's pretraining Adam state (outer_state)"
        )
    missing = set(names) - set(outer_state["moments"])
    if missing:
        raise ValueError(f"the pretraining Adam state lacks {', '.join(sorted(missing))}")
    return outer_state


def _outer_factor(steps: Tensor | int, config: TailorConfig) -> Tensor:
    """Factor of the outer Adam rates at outer step ``steps`` (1-based; an int, or a tensor of each copy's
    steps): the warm-up ``min(1, k / outer_warmup)``, times, with ``outer_decay="cosine"``,
    ``(1 + cos(pi j / n)) / 2`` at the j-th step after the warm-up (j = k - outer_warmup - 1 from 0,
    n = epochs - outer_warmup)."""
    k = torch.as_tensor(steps, dtype=torch.float64)
    w = config.outer_warmup
    factor = (k / w).clamp(max=1) if w > 0 else torch.ones_like(k)
    if config.outer_decay == "cosine":
        n = max(1, config.epochs - w)
        j = (k - w - 1).clamp(min=0)  # the warm-up's steps take the decay's first factor, 1
        factor = factor * (1 + torch.cos(math.pi * j / n)) / 2
    return factor


def _scored_epoch(epoch: int, config: TailorConfig) -> bool:
    """Whether ``select="rollout"`` scores the weights before outer step ``epoch`` (or after the last)."""
    return epoch % config.select_every == 0 or epoch == config.epochs


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
    if config.mode != "trajectory" or not _is_tanh_mlp(model) or not trajectories:
        raise ValueError("meta_tailor_many needs trajectory mode, a tanh MLP and trajectories")
    if config.outer_loss == "derivative" and any(len(tr) < 3 for tr in trajectories):
        raise ValueError("the derivative outer loss needs (t, x, dxdt) for every trajectory group")
    n_c = len(candidates)
    if n_c == 0:
        return []
    ref = next(model.parameters())
    stacked = {
        k: v.detach().expand(n_c, *v.shape).clone().requires_grad_(True)
        for k, v in model.named_parameters()
    }
    sizes = [int(th.numel()) for _, th, _ in candidates]
    offsets = [sum(sizes[:i]) for i in range(n_c)]
    theta = torch.cat([th.detach().reshape(-1).to(ref) for _, th, _ in candidates])
    learn = config.learn_params and theta.numel() > 0
    theta.requires_grad_(learn)
    owner = torch.repeat_interleave(
        torch.arange(n_c, device=ref.device), torch.tensor(sizes, device=ref.device)
    )
    gs = [g for g, _, _ in candidates]
    lr = torch.tensor([lr for _, _, lr in candidates], dtype=ref.dtype, device=ref.device)

    def g_all(x: Tensor, th: Tensor) -> Tensor:
        return torch.stack(
            [gk(x[k], th[o : o + n]) for k, (gk, o, n) in enumerate(zip(gs, offsets, sizes))]
        )

    def per_candidate(v: Tensor, like: Tensor) -> Tensor:
        return v.reshape(n_c, *([1] * (like.dim() - 1)))

    def tailor_groups() -> list[tuple[Tensor, Tensor, list, dict[str, Tensor]]]:
        """Each trajectory group with the per-(candidate, sequence) tailored weights."""
        out = []
        for t, xs, *rest in trajectories:
            x0 = xs[:, 0].expand(n_c, *xs[:, 0].shape)
            if config.inner_steps == 0:
                p = {k: v.unsqueeze(1) for k, v in stacked.items()}
            else:
                p = _mlp_inner_steps(
                    stacked,
                    g_all,
                    theta,
                    x0,
                    lr,
                    steps=config.inner_steps,
                    dt=dt,
                    horizon=config.horizon or xs.shape[1] - 1,
                    form=config.loss_form,
                    integrator=config.inner_integrator,
                    rule=config.inner_rule,
                )
            out.append((t, xs, rest, p))
        return out

    def losses(groups, kind: str) -> Tensor:
        total = torch.zeros(n_c, dtype=ref.dtype, device=ref.device)
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

    leaves = [*stacked.values(), *([theta] if learn else [])]
    if outer_lrs is not None and len(outer_lrs) != n_c:
        raise ValueError(f"{len(outer_lrs)} outer rates for {n_c} candidates")
    distinct = set(outer_lrs) if outer_lrs is not None else {config.outer_lr}
    # one rate for all stays a Python number, so that such a run computes exactly as without outer_lrs
    outer: float | Tensor = (
        distinct.pop()
        if len(distinct) == 1
        else torch.tensor(list(outer_lrs), dtype=ref.dtype, device=ref.device)
    )
    # per-copy rates shaped once to broadcast over each stacked leaf
    group_lr = [
        per_candidate(outer, v) if isinstance(outer, Tensor) else outer for v in stacked.values()
    ] + [config.param_lr] * learn
    group_wd = [config.weight_decay] * len(stacked) + [0.0] * learn
    moments = [(torch.zeros_like(v), torch.zeros_like(v)) for v in leaves]
    offset = 0  # Adam steps taken before this run (by the MLP weights)
    state = _continued_state(config, outer_state, stacked)
    if state is not None:
        offset = int(state["step"])
        for (m, sq), name in zip(moments, stacked):
            m0, sq0 = state["moments"][name]
            m.copy_(m0.to(m))
            sq.copy_(sq0.to(sq))
    n_steps = torch.zeros(n_c, dtype=torch.float64, device=ref.device)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    best_loss = torch.full((n_c,), math.inf, dtype=torch.float64, device=ref.device)
    best = [v.detach().clone() for v in (*stacked.values(), theta)]
    history: list[list[float]] = [[] for _ in range(n_c)]
    scores: list[list[tuple[int, float]]] = [[] for _ in range(n_c)]
    by_rollout = config.select == "rollout" and config.outer_loss != "rollout"
    for epoch in range(config.epochs + 1):
        groups = tailor_groups()
        loss = losses(groups, config.outer_loss)
        value = loss.detach().double()
        finite = torch.isfinite(value)
        if by_rollout:
            score = torch.full_like(value, math.inf)
            if _scored_epoch(epoch, config):
                with torch.no_grad():  # the same tailored weights, rolled out
                    detached = [
                        (t, xs, r, {k: v.detach() for k, v in p.items()}) for t, xs, r, p in groups
                    ]
                    score = losses(detached, "rollout").double()
        else:
            score = value
        for k, v in enumerate(score.tolist()):  # one transfer from the device per epoch
            if math.isfinite(v):
                scores[k].append((epoch, v))
        better = finite & torch.isfinite(score) & (score < best_loss)
        best_loss = torch.where(better, score, best_loss)
        with torch.no_grad():
            for b, v in zip(best[:-1], stacked.values()):
                b.copy_(torch.where(per_candidate(better, v), v, b))
            best[-1].copy_(torch.where(better[owner], theta, best[-1]))
        if epoch == config.epochs:  # the extra pass only scores the last step's weights
            break
        for k in range(n_c):
            history[k].append(float(value[k]) if finite[k] else math.inf)
        if finite.any():
            grads = torch.autograd.grad(
                torch.where(finite, loss, 0.0).sum(), leaves, materialize_grads=True
            )
            n_steps += finite.double()
            warm = _outer_factor(n_steps, config).to(ref.dtype)  # after each copy's own steps
            # Adam's bias corrections per copy; the MLP weights count the pretraining's steps too
            own = n_steps.clamp(min=1)
            corr_theta = ((1 - beta1**own).to(ref.dtype), (1 - beta2**own).to(ref.dtype))
            corr_mlp = corr_theta
            if offset:
                corr_mlp = tuple((1 - b ** (own + offset)).to(ref.dtype) for b in (beta1, beta2))
            with torch.no_grad():
                for i, (v, gr, (m, s)) in enumerate(zip(leaves, grads, moments)):
                    is_theta = learn and i == len(leaves) - 1
                    bc1, bc2 = corr_theta if is_theta else corr_mlp
                    pick = (
                        (lambda u: u[owner]) if is_theta else (lambda u, w=v: per_candidate(u, w))
                    )
                    mask = pick(finite)
                    gr = torch.where(mask, gr, 0.0) + group_wd[i] * v
                    m.copy_(torch.where(mask, m.lerp(gr, 1 - beta1), m))
                    s.copy_(torch.where(mask, s * beta2 + (1 - beta2) * gr * gr, s))
                    denom = s.sqrt() / pick(bc2).sqrt() + eps
                    rate = group_lr[i] * pick(warm) / pick(bc1)
                    v.sub_(torch.where(mask, rate * m / denom, 0.0))
        if progress is not None:
            progress(epoch)
    results = []
    for k, (o, n) in enumerate(zip(offsets, sizes)):
        copy_k = copy.deepcopy(model)
        with torch.no_grad():
            for v, b in zip(copy_k.parameters(), best[:-1]):
                v.copy_(b[k])
        results.append(
            MetaTailorResult(
                model=copy_k,
                theta=best[-1][o : o + n].clone(),
                losses=history[k],
                scores=scores[k],
            )
        )
    return results


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
