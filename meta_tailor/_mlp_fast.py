"""The fast path of tailoring for the tanh MLP of :func:`~meta_tailor._mlp.make_mlp`, batched over weights.

Tailored weights differ per query sequence (and per inner rate, and per candidate when several laws are
meta-tailored at once), so every evaluation here takes weights with leading batch dimensions. Two ideas make
it fast and need only ordinary autograd (so it is differentiable to any order, for meta-tailoring):

* :func:`_mlp_fn` lays the batched weights out once and evaluates each layer as one fused ``baddbmm``: in a
  sequential rollout the cost is the number of operations, not their size.
* :func:`_mlp_sequence_grads` takes the per-sequence gradient of the inner loss from the adjoints of the
  pre-activations (``sum_s delta_s h_s^T`` per layer) instead of one weight gradient per sequence and
  evaluation, as autograd under ``vmap`` would.

:func:`_is_tanh_mlp` says whether a model can take this path (the choice is made once, by
:func:`meta_tailor._trajectory._kernels`); the generic reference is ``torch.func``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from meta_tailor._losses import ConservedFn, euler_states, sequence_noether_loss
from meta_tailor._rules import _check_rule, rule_grads


def _is_tanh_mlp(model: nn.Module) -> bool:
    """Whether ``model`` is Linear, (Tanh, Linear)* as built by :func:`~meta_tailor._mlp.make_mlp`."""
    if not isinstance(model, nn.Sequential) or len(model) % 2 == 0:
        return False
    return all(
        isinstance(m, nn.Linear) if i % 2 == 0 else isinstance(m, nn.Tanh)
        for i, m in enumerate(model)
    )


def mlp_layers(params: dict[str, Tensor]) -> list[tuple[Tensor, Tensor | None]]:
    """The (weight, bias) pairs of a :func:`make_mlp` model from its parameter dict, in order."""
    return [(params[f"{i}.weight"], params.get(f"{i}.bias")) for i in _layer_indices(params)]


def _layer_indices(params: dict[str, Tensor]) -> list[int]:
    """The module indices of a :func:`make_mlp` model's linear layers, in order."""
    return sorted({int(k.split(".")[0]) for k in params})


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
        g, theta, dt, horizon, form, integrator: as :func:`~meta_tailor._trajectory.tailor_trajectories`.
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
        g, theta, dt, horizon, form, integrator, rule: as
            :func:`~meta_tailor._trajectory.tailor_trajectories`.

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


def _mlp_tailor(
    model: nn.Module,
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    lrs: Tensor,
    **inner,
) -> dict[str, Tensor]:
    """:func:`~meta_tailor._trajectory.tailor_trajectories` (``steps >= 1``) of the tanh MLP: the same
    numbers without per-evaluation weight gradients. ``inner``: ``steps, dt, horizon, form, integrator,
    rule``."""
    if not torch.is_grad_enabled():
        params = {k: v.detach() for k, v in params.items()}
        theta = theta.detach()
    return _mlp_inner_steps(params, g, theta, x0, lrs, **inner)


def _mlp_one_step_field(
    model: nn.Module,
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    x0: Tensor,
    lrs: Tensor,
    *,
    rule: str,
    **inner,
) -> Callable[[Tensor], Tensor]:
    """The field of one inner step from shared weights, for every rate and sequence, without weight copies.

    ``W(lr, b) = W - lr G_b`` is applied as ``W h - lr (G_b h)``, so a rollout reads each sequence's
    gradient ``G_b`` once for all learning rates instead of L weight copies. The field maps states
    (L, B, n_vars) to dx/dt. ``inner``: ``dt, horizon, form, integrator`` of the inner loss.
    """
    if not torch.is_grad_enabled():
        params = {k: v.detach() for k, v in params.items()}
        theta = theta.detach()
    _check_rule(rule)
    grads = rule_grads(rule, *_mlp_sequence_grads(params, g, theta, x0, **inner))
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

    return one_step_field
