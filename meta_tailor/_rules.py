"""Inner step rules of tailoring (:data:`~meta_tailor._config.INNER_RULES`): the direction of one step.

``"sgd"`` is the paper's step with a fixed rate; ``"polyak"`` scales the rate of every query (state or
sequence) by ``L / |grad L|^2`` of that query's Noether loss L, so that the rate is the fraction of L one
step removes to first order (see :mod:`meta_tailor._tailor`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from dsl.errors import InputError
from meta_tailor._config import INNER_RULES


def _check_rule(rule: str) -> None:
    if rule not in INNER_RULES:
        raise InputError(f"inner step rule must be one of {', '.join(INNER_RULES)}, not {rule!r}")


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
