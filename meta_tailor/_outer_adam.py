"""The outer optimiser of meta-tailoring, set up in one place: Adam with warm-up, cosine decay and the
pretraining's Adam state continued, for one candidate or several stacked ones.

The settings are those of :class:`~meta_tailor._config.TailorConfig` (``outer_lr``, ``param_lr``,
``weight_decay``, ``outer_warmup``, ``outer_decay``, ``outer_adam``). Adam is elementwise, so one set of
tensor operations updates every candidate's copy of the weights; each candidate keeps its own step count,
so that a candidate whose outer loss is not finite skips that step (its moments, its weights and its
schedule stay where they are). With one candidate and the model's own (unstacked) weights the step takes
the operations of ``torch.optim.Adam`` in their order, so that its numbers are torch's to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from meta_tailor._config import TailorConfig

#: Adam's decay rates of the first and second moment estimates, and the denominator's epsilon (torch's).
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


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


@dataclass
class _Leaf:
    """One tensor the outer Adam updates, with its moments and how it maps to candidates."""

    value: Tensor  # the leaf itself
    # maps a per-candidate tensor (C,) to one that broadcasts against ``value``
    pick: Callable[[Tensor], Tensor]
    lr: float | Tensor  # base rate: one number, or per candidate (broadcastable against ``value``)
    weight_decay: float
    offset: int  # Adam steps taken before this run (the pretraining's, when continued)
    m: Tensor  # first moment estimate
    s: Tensor  # second moment estimate


class OuterAdam:
    """Adam on the outer leaves of meta-tailoring, with one step count per candidate.

    Args:
        weights: the model weights by name: stacked copies ``(C, *s_k)``, one per candidate, or (with
            ``C == 1``) the model's own ``(*s_k)``.
        theta: every candidate's formula parameters, concatenated, shape (P,); updated if ``learn``.
        owner: the candidate of each entry of ``theta``, shape (P,).
        n_c: number of candidates C.
        learn: whether ``theta`` is trained.
        per_copy: whether the weights are stacked copies (else one candidate's own weights, updated with
            the operations of ``torch.optim.Adam``).
        config: the outer settings (rates, weight decay, warm-up, decay, ``outer_adam``).
        outer_lrs: Adam rate of the weights per candidate (None: ``config.outer_lr`` for all). When they are
            all equal the rate stays one Python number, so such a run computes exactly as without them.
        outer_state: the MLP's pretraining Adam state (``adam_state`` of
            :func:`~meta_tailor._mlp.train_mlp`), continued by the weights when ``config.outer_adam ==
            "continue"``: its moment estimates, and its step count in the bias corrections. The warm-up
            and decay still count this run's steps; the formula parameters' Adam starts afresh.

    Raises:
        ValueError: ``outer_lrs`` not one per candidate, or a needed pretraining state missing.
    """

    def __init__(
        self,
        weights: dict[str, Tensor],
        theta: Tensor,
        owner: Tensor,
        *,
        n_c: int,
        learn: bool,
        per_copy: bool,
        config: TailorConfig,
        outer_lrs: Sequence[float] | None = None,
        outer_state: dict | None = None,
    ) -> None:
        ref = next(iter(weights.values()))
        if outer_lrs is not None and len(outer_lrs) != n_c:
            raise ValueError(f"{len(outer_lrs)} outer rates for {n_c} candidates")
        self.config, self.dtype, self.per_copy = config, ref.dtype, per_copy
        state = _continued_state(config, outer_state, weights)
        offset = int(state["step"]) if state is not None else 0
        rates = _weight_rates(config, outer_lrs, ref)
        self.leaves = []
        for name, v in weights.items():
            pick = _per_candidate(n_c, v)
            rate = pick(rates) if isinstance(rates, Tensor) else rates
            leaf = _Leaf(v, pick, rate, config.weight_decay, offset, *_zeros2(v))
            if state is not None:
                m0, sq0 = state["moments"][name]
                leaf.m.copy_(m0.to(leaf.m))
                leaf.s.copy_(sq0.to(leaf.s))
            self.leaves.append(leaf)
        if learn:
            self.leaves.append(
                _Leaf(theta, lambda u: u[owner], config.param_lr, 0.0, 0, *_zeros2(theta))
            )
        self.n_steps = torch.zeros(n_c, dtype=torch.float64, device=ref.device)

    @property
    def tensors(self) -> list[Tensor]:
        """The leaves, in the order :meth:`step` takes their gradients."""
        return [leaf.value for leaf in self.leaves]

    def step(self, grads: Sequence[Tensor], finite: Tensor) -> None:
        """One Adam step of the candidates where ``finite`` (C,) holds, with the leaves' ``grads``."""
        self.n_steps += finite.double()
        if self.per_copy:
            self._step_copies(grads, finite)
        else:
            self._step_one(grads)

    def _step_copies(self, grads: Sequence[Tensor], finite: Tensor) -> None:
        """Per-copy step counts, schedules and bias corrections, as tensors over the candidates; a copy
        outside ``finite`` keeps its moments and weights."""
        # the warm-up and decay after each copy's own steps
        warm = _outer_factor(self.n_steps, self.config).to(self.dtype)
        own = self.n_steps.clamp(min=1)
        with torch.no_grad():
            for leaf, gr in zip(self.leaves, grads, strict=True):
                # Adam's bias corrections per copy; continued weights count the pretraining's steps too
                bc1, bc2 = ((1 - b ** (own + leaf.offset)).to(self.dtype) for b in (BETA1, BETA2))
                v, m, s, pick = leaf.value, leaf.m, leaf.s, leaf.pick
                mask = pick(finite)
                gr = torch.where(mask, gr, 0.0) + leaf.weight_decay * v
                m.copy_(torch.where(mask, m.lerp(gr, 1 - BETA1), m))
                s.copy_(torch.where(mask, s * BETA2 + (1 - BETA2) * gr * gr, s))
                denom = s.sqrt() / pick(bc2).sqrt() + EPS
                rate = leaf.lr * pick(warm) / pick(bc1)
                v.sub_(torch.where(mask, rate * m / denom, 0.0))

    def _step_one(self, grads: Sequence[Tensor]) -> None:
        """One candidate's step: the schedule in Python numbers and ``torch.optim.Adam``'s operations in its
        order (the per-copy step is the same Adam, rounded differently), so that :func:`~meta_tailor._outer.meta_tailor` keeps
        the numbers it had with torch's optimiser. Called only when the candidate's loss is finite."""
        taken = int(self.n_steps[0])
        factor = float(_outer_factor(taken, self.config))
        with torch.no_grad():
            for leaf, gr in zip(self.leaves, grads, strict=True):
                step = taken + leaf.offset
                if leaf.weight_decay != 0:
                    gr = gr.add(leaf.value, alpha=leaf.weight_decay)
                leaf.m.lerp_(gr, 1 - BETA1)
                leaf.s.mul_(BETA2).addcmul_(gr, gr, value=1 - BETA2)
                denom = (leaf.s.sqrt() / (1 - BETA2**step) ** 0.5).add_(EPS)
                leaf.value.addcdiv_(leaf.m, denom, value=-(leaf.lr * factor) / (1 - BETA1**step))


def _per_candidate(n_c: int, like: Tensor) -> Callable[[Tensor], Tensor]:
    """Shapes a per-candidate tensor (C,) to broadcast against ``like``, whose dim 0 is the candidate (or,
    for one candidate, against unstacked weights)."""
    return lambda u: u.reshape(n_c, *([1] * (like.dim() - 1)))


def _weight_rates(
    config: TailorConfig, outer_lrs: Sequence[float] | None, ref: Tensor
) -> float | Tensor:
    """The weights' base rate: one Python number when all candidates share it, else a tensor (C,)."""
    distinct = set(outer_lrs) if outer_lrs is not None else {config.outer_lr}
    if len(distinct) == 1:
        return distinct.pop()
    return torch.tensor(list(outer_lrs), dtype=ref.dtype, device=ref.device)


def _zeros2(v: Tensor) -> tuple[Tensor, Tensor]:
    return torch.zeros_like(v), torch.zeros_like(v)
