"""Algorithm 1 of the paper: tailor the prediction with an inner step on a learned conservation loss.

Two ways of tailoring, chosen by ``NoetherConfig.tailor``:

- ``"latent"`` (controlled pendulum): the adapted variables are the predicted LSTM outputs o_k; the embedding
  is an MLP of (o_{k-1}, o_k, a_k); the adapted outputs are decoded into the final frames.
- ``"cn"`` (ramp, CNGRAD): the adapted variables are per-example conditional-normalisation parameters
  (gamma, beta) of the encoder and decoder; the embedding is a CNN of two consecutive frames; the final frames
  come from a second rollout with the adapted parameters.

The Noether loss, per example, over the predicted steps t = 1..T with reference e_0 from the ground truth:
form "a": sum_t |e_0 - e_t|^2;  form "b": sum_t |e_{t-1} - e_t|^2 (equation 2 of the paper). With
``reduction="mean"`` each squared distance is divided by the embedding size k (a mean squared difference, as
in the authors' released inner criterion); the gradient, and so the inner step, is then k times smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from formula_search.errors import InputError
from meta_tailor._rules import rule_grads
from meta_tailor.video._models import CNParams, SVGPredictor

REDUCTIONS = ("sum", "mean")
INNER_OPTIMIZERS = ("sgd", "adam", "polyak")


@dataclass(frozen=True, slots=True)
class NoetherConfig:
    """Inner loop of a Noether Network.

    Attributes:
        tailor: "latent" (adapt LSTM outputs) or "cn" (adapt conditional-normalisation parameters).
        loss_form: "a" (conserve relative to the ground-truth input) or "b" (consecutive predictions).
        inner_lr: inner learning rate (paper: 0.5 latent, 1e-4 CN).
        inner_steps: inner steps (paper: 1).
        inner_optimizer: "sgd" (training and the paper's results), "adam" (the many-steps study, figure 6),
            or "polyak": SGD whose rate for each example is ``inner_lr * L / |grad L|^2`` (the Polyak step
            size, differentiated through in training), so that ``inner_lr`` is the fraction of the
            example's Noether loss one step removes to first order. That step does not change when the
            embedding's output is scaled, so it cannot stay idle while g_phi keeps its initial scale.
        reduction: "sum" (squared Euclidean distance of embeddings, equation 2 of the paper) or "mean"
            (mean squared difference over the embedding dimensions, as the authors' released code). The
            step of each example never depends on the batch size: the inner gradient is that of the sum of
            the per-example losses. (The released code averages over the batch as well, which for
            per-example variables equals dividing the inner learning rate by the batch size.)
    """

    tailor: str = "latent"
    loss_form: str = "a"
    inner_lr: float = 0.5
    inner_steps: int = 1
    inner_optimizer: str = "sgd"
    reduction: str = "sum"

    def __post_init__(self) -> None:
        if self.tailor not in ("latent", "cn"):
            raise InputError(f"tailor must be 'latent' or 'cn', got {self.tailor!r}")
        if self.loss_form not in ("a", "b"):
            raise InputError(f"loss form must be 'a' or 'b', got {self.loss_form!r}")
        if self.inner_steps < 0 or self.inner_lr < 0:
            raise InputError("inner steps and inner learning rate must be non-negative")
        if self.inner_optimizer not in INNER_OPTIMIZERS:
            raise InputError(
                f"inner optimizer must be one of {', '.join(INNER_OPTIMIZERS)}, "
                f"got {self.inner_optimizer!r}"
            )
        if self.reduction not in REDUCTIONS:
            raise InputError(f"reduction must be 'sum' or 'mean', got {self.reduction!r}")


def conservation_loss(ref: Tensor, emb: Tensor, form: str, reduction: str = "sum") -> Tensor:
    """Noether loss per example.

    Args:
        ref: (B, k) embedding of the ground-truth input, e_0.
        emb: (B, T, k) embeddings of the predictions e_1..e_T.
        form: "a" or "b".
        reduction: "sum" (squared Euclidean distances) or "mean" (divided by k).

    Returns:
        (B,) sum over t of squared Euclidean distances (or of mean squared differences).
    """
    if form == "a":
        diff = emb - ref[:, None]
    else:
        prev = torch.cat([ref[:, None], emb[:, :-1]], 1)
        diff = emb - prev
    sq = diff.pow(2).sum(dim=(1, 2))
    return sq / diff.shape[2] if reduction == "mean" else sq


def latent_noether_loss(
    embedding: nn.Module,
    cond_outputs: Tensor,
    pred_outputs: Tensor,
    actions: Tensor,
    *,
    form: str,
    reduction: str = "sum",
) -> Tensor:
    """Noether loss of predicted LSTM outputs, per example.

    Args:
        embedding: maps (..., 2 g_dim + action_dim) -> (..., k).
        cond_outputs: (B, n_past - 1, g_dim) LSTM outputs of the history steps (they predict known frames).
        pred_outputs: (B, T, g_dim) LSTM outputs of the predicted steps.
        actions: (B, >= n_past + T - 1, action_dim).
        reduction: see :func:`conservation_loss`.

    Returns:
        (B,) loss. The reference e_0 = g(o_{n_past-3}, o_{n_past-2}, a_{n_past-2}) depends only on true frames.
    """
    n_hist = cond_outputs.shape[1]
    if n_hist < 2:
        raise InputError("latent tailoring needs at least 3 history frames")
    t = pred_outputs.shape[1]
    outs = torch.cat([cond_outputs[:, -2:], pred_outputs], 1)  # o_{n_past-3} .. o_{n_past+T-2}
    acts = actions[:, n_hist - 1 : n_hist + t]  # a_{n_past-2} .. a_{n_past+T-2}
    pairs = torch.cat([outs[:, :-1], outs[:, 1:], acts], -1)  # (B, T + 1, 2 g + a)
    e = embedding(pairs)
    return conservation_loss(e[:, 0], e[:, 1:], form, reduction)


def frame_noether_loss(
    embedding: nn.Module, history: Tensor, preds: Tensor, *, form: str, reduction: str = "sum"
) -> Tensor:
    """Noether loss of predicted frames, per example, with a frame-pair embedding.

    Args:
        embedding: maps (N, 2C, S, S) -> (N, k).
        history: (B, n_past, C, S, S) true frames, n_past >= 2.
        preds: (B, T, C, S, S) predicted frames.
        reduction: see :func:`conservation_loss`.

    Returns:
        (B,) loss; e_0 = g(x_{n_past-2}, x_{n_past-1}), e_t = g(x~_{t-1}, x~_t) with x~_0 the last true frame.
    """
    if history.shape[1] < 2:
        raise InputError("frame embeddings need at least 2 history frames")
    seq = torch.cat([history[:, -2:], preds], 1)
    b, t1 = seq.shape[:2]
    pairs = torch.cat([seq[:, :-1], seq[:, 1:]], 2)  # (B, T + 1, 2C, S, S)
    e = embedding(pairs.reshape(b * (t1 - 1), *pairs.shape[2:])).reshape(b, t1 - 1, -1)
    return conservation_loss(e[:, 0], e[:, 1:], form, reduction)


class _InnerOpt:
    """Plain SGD, Adam written out, or Polyak-scaled SGD on a list of per-example tensors (leading batch
    dimension), differentiable when ``create_graph``."""

    def __init__(self, kind: str, lr: float) -> None:
        self.kind, self.lr, self.t = kind, lr, 0
        self.m: list[Tensor] = []
        self.v: list[Tensor] = []

    def step(
        self, params: list[Tensor], grads: tuple[Tensor, ...], losses: Tensor | None = None
    ) -> list[Tensor]:
        """One step; ``losses`` (B,), the per-example Noether losses, are needed by ``"polyak"``."""
        if self.kind == "polyak":  # SGD along each example's gradient times L / |grad L|^2
            grads = tuple(rule_grads("polyak", dict(enumerate(grads)), losses).values())
        if self.kind in ("sgd", "polyak"):
            return [p - self.lr * g for p, g in zip(params, grads, strict=True)]
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        if not self.m:
            self.m = [torch.zeros_like(p) for p in params]
            self.v = [torch.zeros_like(p) for p in params]
        out = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            mh = self.m[i] / (1 - b1**self.t)
            vh = self.v[i] / (1 - b2**self.t)
            out.append(p - self.lr * mh / (vh.sqrt() + eps))
        return out


@dataclass(frozen=True, slots=True)
class Prediction:
    """Result of :func:`predict_sequence`.

    Attributes:
        preds: final (tailored) predicted frames (B, T, C, S, S).
        initial_preds: predictions before tailoring (B, T, C, S, S).
        inner_losses: (inner_steps + 1, B) Noether loss before each inner step and after the last.
    """

    preds: Tensor
    initial_preds: Tensor
    inner_losses: Tensor


def predict_sequence(
    model: SVGPredictor,
    embedding: nn.Module | None,
    frames: Tensor,
    actions: Tensor,
    *,
    config: NoetherConfig,
    n_past: int,
    n_future: int,
    create_graph: bool,
    teacher_forcing: bool = False,
) -> Prediction:
    """PREDICTSEQUENCE of Algorithm 1: initial predictions, inner steps on the Noether loss, final predictions.

    Args:
        model: the predictor f_theta.
        embedding: g_phi, or None for no tailoring (then ``inner_steps`` is ignored).
        frames: (B, T, C, S, S); only the first ``n_past`` frames are seen unless ``teacher_forcing``.
        actions: (B, T, action_dim).
        config: inner-loop settings.
        create_graph: keep the graph of the inner step so that the task loss can be differentiated through it
            (training); at evaluation the inner step is taken on detached variables.
        teacher_forcing: feed true frames after the history (SVG training of the ramp model).

    Returns:
        Final and initial predictions and the Noether loss along the inner loop.
    """
    steps = 0 if embedding is None else config.inner_steps
    opt = _InnerOpt(config.inner_optimizer, config.inner_lr)
    rollout = {"n_past": n_past, "n_future": n_future, "teacher_forcing": teacher_forcing}
    if config.tailor == "latent":
        return _predict_latent(
            model, embedding, frames, actions, config, opt, steps, rollout, create_graph
        )
    return _predict_cn(model, embedding, frames, actions, config, opt, steps, rollout, create_graph)


def _predict_latent(
    model: SVGPredictor,
    embedding: nn.Module | None,
    frames: Tensor,
    actions: Tensor,
    config: NoetherConfig,
    opt: _InnerOpt,
    steps: int,
    rollout: dict,
    create_graph: bool,
) -> Prediction:
    """:func:`predict_sequence` tailoring the predicted LSTM outputs (``tailor="latent"``)."""
    lkw = {"form": config.loss_form, "reduction": config.reduction}
    losses: list[Tensor] = []
    b = frames.shape[0]
    n_past = rollout["n_past"]
    r = model.rollout(frames, actions, **rollout)
    cond, pred = r.outputs[:, : n_past - 1], r.outputs[:, n_past - 1 :]
    if steps == 0:
        if embedding is None:
            return Prediction(r.preds, r.preds, torch.zeros(1, b, device=frames.device))
        with torch.no_grad():
            loss = latent_noether_loss(embedding, cond, pred, actions, **lkw)
        return Prediction(r.preds, r.preds, loss[None])
    with torch.enable_grad():
        if not create_graph:
            cond, pred = cond.detach(), pred.detach().requires_grad_(True)
        for _ in range(steps):
            loss = latent_noether_loss(embedding, cond, pred, actions, **lkw)
            losses.append(loss.detach())
            (grad,) = torch.autograd.grad(loss.sum(), pred, create_graph=create_graph)
            (pred,) = opt.step([pred], (grad,), loss)
            if not create_graph:
                pred = pred.detach().requires_grad_(True)
        final_loss = latent_noether_loss(embedding, cond, pred, actions, **lkw)
        losses.append(final_loss.detach())
    with torch.set_grad_enabled(create_graph or torch.is_grad_enabled()):
        preds = model.decode(pred if create_graph else pred.detach(), r.skips)
    return Prediction(preds, r.preds, torch.stack(losses))


def _predict_cn(
    model: SVGPredictor,
    embedding: nn.Module | None,
    frames: Tensor,
    actions: Tensor,
    config: NoetherConfig,
    opt: _InnerOpt,
    steps: int,
    rollout: dict,
    create_graph: bool,
) -> Prediction:
    """:func:`predict_sequence` adapting per-example conditional-normalisation parameters (CNGRAD)."""
    lkw = {"form": config.loss_form, "reduction": config.reduction}
    losses: list[Tensor] = []
    b = frames.shape[0]
    n_past = rollout["n_past"]
    cn = model.identity_cn(b, frames.device)
    flat = [t for pair in cn for t in pair]
    first = None
    with torch.enable_grad():
        for _ in range(steps):
            flat = [
                t if (create_graph and t.requires_grad) else t.detach().requires_grad_(True)
                for t in flat
            ]
            r = model.rollout(frames, actions, **rollout, cn=_pair(flat))
            first = r.preds if first is None else first
            loss = frame_noether_loss(embedding, frames[:, :n_past], r.preds, **lkw)
            losses.append(loss.detach())
            grads = torch.autograd.grad(loss.sum(), flat, create_graph=create_graph)
            flat = opt.step(flat, grads, loss)
            if not create_graph:
                flat = [t.detach() for t in flat]
    r = model.rollout(frames, actions, **rollout, cn=_pair(flat))
    if embedding is not None:
        with torch.no_grad():
            losses.append(frame_noether_loss(embedding, frames[:, :n_past], r.preds, **lkw))
    first = r.preds if first is None else first
    inner = torch.stack(losses) if losses else torch.zeros(1, b, device=frames.device)
    return Prediction(r.preds, first, inner)


def _pair(flat: list[Tensor]) -> CNParams:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def task_loss(preds: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over pixels and predicted steps (the outer loss, L_task)."""
    return (preds - target).pow(2).mean()
