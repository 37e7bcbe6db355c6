"""Frozen configuration of the learning stages, with the papers' defaults.

A bad value raises :class:`dsl.errors.InputError` (a ``ValueError``), the one error type of bad options,
which the command line shows as one line.

Every stage takes one of these (keyword-only); nothing is read from globals. Use
:func:`dataclasses.replace` to derive a variant, e.g. ``replace(MLPConfig(), steps=200)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dsl.errors import InputError

#: Which weights MLP training returns (:attr:`MLPConfig.keep`).
MLP_KEEP = ("last", "best")


@dataclass(frozen=True, slots=True)
class MLPConfig:
    """The HNN "vanilla MLP" baseline (Greydanus et al. 2019), predicting dx/dt from x.

    Attributes:
        hidden: width of the two tanh hidden layers (200).
        steps: full-batch Adam steps (2000).
        lr: Adam learning rate (1e-3).
        weight_decay: Adam L2 weight decay (1e-4; the real pendulum uses 1e-5).
        seed: seed of the orthogonal initialisation (0).
        keep: which weights training returns: ``"last"``, those after the last step (the reference
            set-up's), or ``"best"``, those with the lowest full-batch training loss of all steps, the last
            included. Full-batch Adam keeps spiking on the built-in datasets (the loss stands above twice
            its running minimum in 8 to 425 of the 2,000 steps, seeds 0-4), so the last step may land on
            a spike: the ideal pendulum's seed-0 MLP ends 14x above its lowest loss, with test RMSE 0.191
            against 0.090 (``benchmarks/pretrain_repro.py keep``). Where the spikes fall depends on the
            float rounding, and so on the torch thread count.
    """

    hidden: int = 200
    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    keep: str = "last"

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.steps < 0 or self.lr <= 0 or self.weight_decay < 0:
            raise InputError(f"invalid MLPConfig {self}")
        if self.keep not in MLP_KEEP:
            raise InputError(f"MLPConfig.keep must be one of {MLP_KEEP}, not {self.keep!r}")


#: Inner step rules: a fixed rate (``"sgd"``, the paper's) or the per-query Polyak rate (``"polyak"``).
INNER_RULES = ("sgd", "polyak")
#: Outer rates after the warm-up: constant (``"none"``) or a cosine fall towards zero (``"cosine"``).
OUTER_DECAYS = ("none", "cosine")
#: The outer Adam's start: a fresh optimiser (``"fresh"``) or the MLP's pretraining optimiser continued
#: (``"continue"``).
OUTER_ADAMS = ("fresh", "continue")


def _paper_inner_lrs() -> tuple[float, ...]:
    # 10^k for k in {-3, -2.5, ..., 1}: nine rates.
    return tuple(10.0 ** (k / 2) for k in range(-6, 3))


def _polyak_inner_lrs() -> tuple[float, ...]:
    # fractions of the linearised Noether loss one Polyak step removes: 10^k, k in {-1, -0.75, ..., 0}
    # (above 1 the step overshoots the linearised zero; below 0.1 it barely moves the model)
    return tuple(10.0 ** (k / 4) for k in range(-4, 1))


def default_inner_lrs(rule: str) -> tuple[float, ...]:
    """The screened inner rates of an inner step rule: the paper's 10^k, k in {-3, -2.5, ..., 1}, for
    ``"sgd"``; for ``"polyak"`` (where the rate is the fraction of the query's linearised Noether loss that a
    step removes) 10^k, k in {-1, -0.75, ..., 0}."""
    if rule == "polyak":
        return _polyak_inner_lrs()
    return _paper_inner_lrs()


@dataclass(frozen=True, slots=True)
class TailorConfig:
    """Tailoring and meta-tailoring of a dx/dt model with a Noether (conservation) loss.

    Attributes:
        inner_lr: SGD learning rate of the inner (tailoring) step(s).
        inner_steps: number of inner steps per query (1; the real pendulum tries 1-3).
        inner_rule: ``"sgd"`` (the paper's fixed rate ``inner_lr``) or ``"polyak"`` (the rate of each query,
            state or sequence, is ``inner_lr * L / |grad L|^2`` of its own Noether loss L, so ``inner_lr`` is
            the fraction of L that one step removes to first order; see :mod:`meta_tailor._tailor`).
        epochs: outer full-batch Adam steps of meta-tailoring (100).
        outer_lr: Adam learning rate of the MLP weights in the outer loop (1e-3, as pretraining).
        outer_warmup: outer steps over which both outer Adam rates rise linearly to their values (step k of
            the first ``outer_warmup`` uses ``k / outer_warmup`` of them); 0 (default here): none;
            :func:`paper_configs`, and so the command line, use :data:`OUTER_WARMUP`. A fresh Adam
            moves every weight by about the full rate at its first step, whatever the gradient's size.
        outer_decay: the outer rates after the warm-up: ``"none"`` (default: constant) or ``"cosine"`` (they
            fall as ``(1 + cos(pi j / n)) / 2`` at the j-th step after the warm-up, j = 0 .. n - 1, where n is
            the number of steps after it, ``epochs - outer_warmup``), so the last steps are small and the long
            stage settles instead of ending wherever Adam's oscillation left it.
        outer_adam: the MLP weights' outer Adam: ``"fresh"`` (default: new moment estimates) or
            ``"continue"`` (the pretraining's Adam goes on: its first and second moment estimates and step
            count, so each weight's first outer steps are scaled by the gradient history of pretraining
            instead of moving it by about the full rate; the formula parameters' Adam starts afresh). Needs
            the pretraining's state (``adam_state`` of :func:`~meta_tailor._mlp.train_mlp`).
        param_lr: Adam learning rate of the formula's parameters in the outer loop.
        weight_decay: Adam weight decay of the MLP weights in the outer loop.
        learn_params: whether the formula's parameters are meta-learned.
        mode: ``"state"`` (tailor per query state: one set of weights per evaluated state, eq. 2 with
            T = 1) or ``"trajectory"`` (Algorithm 1: tailor once per query sequence from its true first
            state on the Noether loss of the model's own ``horizon``-step explicit-Euler rollout, then
            predict the whole sequence with the tailored weights).
        loss_form: trajectory mode's Noether loss: ``"a"`` (eq. 2(a), ``g(x_0)`` against every predicted
            state) or ``"b"`` (eq. 2(b), consecutive predicted states).
        horizon: trajectory mode's inner rollout length T in steps of ``dt`` (None: the trajectory's own
            number of steps, its length minus one).
        inner_integrator: trajectory mode's inner rollout: ``"euler"`` (the paper's finite difference
            ``x + f(x) dt``) or ``"rk4"`` (one RK4 step of ``dt``, the integrator of the evaluation).
        outer_loss: trajectory mode's meta-tailoring loss: ``"rollout"`` (MSE of the tailored model's
            predicted sequences, Algorithm 1) or ``"derivative"`` (MSE of the per-trajectory tailored dx/dt
            at the trajectory's true states).
        select: trajectory mode's choice of the returned epoch: ``"rollout"`` (lowest MSE of the tailored
            model's RK4 rollouts of the training trajectories, the ranking's own criterion, so meta-tailoring
            never returns weights that predict the training trajectories worse than the tailored
            pretrained model) or ``"outer"`` (lowest outer loss).
        select_every: with ``select="rollout"``, score the weights at epochs 0, k, 2k, ... and after the
            last step (each score costs about one rollout of every training trajectory) (1: every epoch).
    """

    inner_lr: float = 0.1
    inner_steps: int = 1
    inner_rule: str = "sgd"
    epochs: int = 100
    outer_lr: float = 1e-3
    outer_warmup: int = 0
    outer_decay: str = "none"
    outer_adam: str = "fresh"
    param_lr: float = 1e-3
    weight_decay: float = 1e-4
    learn_params: bool = True
    mode: str = "state"
    loss_form: str = "a"
    horizon: int | None = None
    inner_integrator: str = "rk4"
    outer_loss: str = "derivative"
    select: str = "rollout"
    select_every: int = 1

    def __post_init__(self) -> None:
        if self.inner_lr < 0 or self.inner_steps < 0 or self.epochs < 0 or self.outer_warmup < 0:
            raise InputError(f"invalid TailorConfig {self}")
        if self.inner_rule not in INNER_RULES:
            raise InputError(f"inner_rule must be one of {INNER_RULES}, not {self.inner_rule!r}")
        if self.mode not in ("state", "trajectory"):
            raise InputError(f"mode must be 'state' or 'trajectory', not {self.mode!r}")
        if self.loss_form not in ("a", "b"):
            raise InputError(f"loss_form must be 'a' or 'b', not {self.loss_form!r}")
        if self.inner_integrator not in ("euler", "rk4"):
            raise InputError(
                f"inner_integrator must be 'euler' or 'rk4', not {self.inner_integrator!r}"
            )
        if self.outer_loss not in ("rollout", "derivative"):
            raise InputError(
                f"outer_loss must be 'rollout' or 'derivative', not {self.outer_loss!r}"
            )
        if self.outer_decay not in OUTER_DECAYS:
            raise InputError(f"outer_decay must be one of {OUTER_DECAYS}, not {self.outer_decay!r}")
        if self.outer_adam not in OUTER_ADAMS:
            raise InputError(f"outer_adam must be one of {OUTER_ADAMS}, not {self.outer_adam!r}")
        if self.select_every < 1:
            raise InputError("select_every must be a positive number of epochs")
        if self.select not in ("rollout", "outer"):
            raise InputError(f"select must be 'rollout' or 'outer', not {self.select!r}")
        if self.horizon is not None and self.horizon < 1:
            raise InputError("horizon must be a positive number of steps or None")


#: Outer warm-up steps of the protocol (:func:`protocol_tailor`, the command line's default): a tenth of the
#: 100 epochs.
OUTER_WARMUP = 10


def protocol_tailor(inner_rule: str = "sgd") -> TailorConfig:
    """The long stage's tailoring as the ranking protocol runs it: per query trajectory (Algorithm 1) with
    the outer rates warmed up over :data:`OUTER_WARMUP` steps."""
    return TailorConfig(mode="trajectory", inner_rule=inner_rule, outer_warmup=OUTER_WARMUP)


@dataclass(frozen=True, slots=True)
class RankConfig:
    """The ranking protocol of the Noether Networks paper (section 4.2 and appendix C), with the defaults
    the command line runs (a dataset's card may change some: :func:`paper_configs`).

    Attributes:
        inner_lrs: inner learning rates screened for every survivor (None: :func:`default_inner_lrs` of
            ``tailor.inner_rule``; for ``"sgd"`` the paper's 10^k, k in {-3, -2.5, ..., 1}).
        inner_steps: numbers of inner steps screened ((1,); the real pendulum uses (1, 2, 3)).
        top_k: how many survivors of the screen are meta-tailored for ``tailor.epochs`` epochs (20).
        train_segments: cut each training trajectory into this many equal pieces before use (1; the real
            pendulum, one long trajectory, uses 4).
        tailor: meta-tailoring settings of the long stage (its ``inner_lr``/``inner_steps`` are overridden
            by the screened values); default :func:`protocol_tailor` (per trajectory, outer rates warmed up),
            not the bare ``TailorConfig()`` of per-state tailoring.
        outer_lrs: outer Adam rates of the long stage (None: ``(tailor.outer_lr,)``). With several, every
            finalist is meta-tailored at each and keeps the rate whose result has the lowest training
            rollout MSE, the criterion that then ranks the laws (so the cost grows with their number).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    inner_lrs: tuple[float, ...] | None = None
    inner_steps: tuple[int, ...] = (1,)
    top_k: int = 20
    train_segments: int = 1
    tailor: TailorConfig = field(default_factory=protocol_tailor)
    device: str = "auto"
    outer_lrs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.inner_lrs is None:
            object.__setattr__(self, "inner_lrs", default_inner_lrs(self.tailor.inner_rule))
        if self.outer_lrs is not None:
            object.__setattr__(self, "outer_lrs", tuple(float(o) for o in self.outer_lrs))
            if not self.outer_lrs or any(not o > 0 for o in self.outer_lrs):
                raise InputError("outer_lrs must be a non-empty tuple of positive rates")
            if len(set(self.outer_lrs)) != len(self.outer_lrs):
                raise InputError("outer_lrs must not repeat a rate")
        if not self.inner_lrs or any(lr < 0 for lr in self.inner_lrs):
            raise InputError("inner_lrs must be a non-empty tuple of non-negative rates")
        if not self.inner_steps or any(s < 1 for s in self.inner_steps):
            raise InputError("inner_steps must be a non-empty tuple of positive integers")
        if self.top_k < 1 or self.train_segments < 1:
            raise InputError("top_k and train_segments must be positive")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda, not {self.device!r}")

    @property
    def outer_rates(self) -> tuple[float, ...]:
        """The outer rates the long stage uses: ``outer_lrs``, or ``(tailor.outer_lr,)``."""
        return self.outer_lrs if self.outer_lrs is not None else (self.tailor.outer_lr,)


#: The meta-tailoring protocols by name: the paper's (fixed-rate inner step, outer rate 1e-3) and ours, the
#: Polyak inner step at outer rate 3e-4 (docs/experiments/2026-11-24-law-choice-paper.md). ``fsearch run``
#: chooses between them on the training data unless the command line or the card pins one.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "paper": {"inner_rule": "sgd", "outer_lr": 1e-3},
    "polyak": {"inner_rule": "polyak", "outer_lr": 3e-4},
}


def paper_configs(
    protocol: Mapping[str, Any] | None = None,
    *,
    inner_rule: str | None = None,
    outer_lr: float | None = None,
) -> tuple[MLPConfig, RankConfig]:
    """The paper's settings, with a dataset's own (its card's ``[protocol]`` table, e.g. the real
    pendulum's appendix C: ``mlp_weight_decay``, ``weight_decay``, ``inner_steps``, ``sgd_inner_lrs``;
    ``inner_rule`` and ``outer_lr`` pin the rule and the outer rate). ``inner_rule`` and ``outer_lr`` given
    here win over the card's (``None``: the card's, else ``"sgd"`` and the default rate);
    ``paper_configs(protocol, **PROTOCOLS[name])`` is the named protocol on those data.

    Tailoring is per trajectory (Algorithm 1, ``mode="trajectory"``) for every dataset: measured with
    ``fsearch run`` on CPU it recovers p^2 - 2.99 cos q on the ideal pendulum with test RMSE 0.0497 (state
    mode: 0.1071, vanilla MLP 0.1912), q^2 + 1.000 p^2 on the spring (equal to the vanilla MLP), and the true
    law p^2 - c cos q on the real pendulum where state mode picks the small-angle q^2 + c p^2.

    ``inner_rule="polyak"`` swaps the paper's fixed-rate inner step for the per-query Polyak rate and screens
    :func:`default_inner_lrs` of that rule (the real pendulum keeps its 1-3 inner steps).

    The outer Adam rates warm up over the first :data:`OUTER_WARMUP` steps (not in the paper). Without it the
    first outer step throws the converged MLP off (the outer loss of the real pendulum rises 31-53-fold), the
    weights oscillate, and the winning law is decided by a dip of that oscillation (the paper's law in 1 of 5
    MLP seeds); with it, in 5 of 5, and the ideal pendulum gains more in 4 of 5 seeds (docs/meta-tailoring.md).
    """
    if isinstance(protocol, str):
        raise TypeError("paper_configs takes a dataset's protocol (Dataset.protocol), not its name")
    p = dict(protocol or {})
    inner_rule = inner_rule if inner_rule is not None else p.get("inner_rule", "sgd")
    tailor = protocol_tailor(inner_rule)
    rate = outer_lr if outer_lr is not None else p.get("outer_lr")
    if rate is not None:
        tailor = replace(tailor, outer_lr=float(rate))
    if "weight_decay" in p:
        tailor = replace(tailor, weight_decay=float(p["weight_decay"]))
    mlp = MLPConfig()
    if "mlp_weight_decay" in p:
        mlp = replace(mlp, weight_decay=float(p["mlp_weight_decay"]))
    rank = RankConfig(
        inner_lrs=(
            tuple(float(v) for v in p["sgd_inner_lrs"])
            if inner_rule == "sgd" and "sgd_inner_lrs" in p
            else None
        ),
        inner_steps=tuple(int(v) for v in p.get("inner_steps", (1,))),
        tailor=tailor,
    )
    return mlp, rank


def resolve_device(device: str) -> str:
    """Map ``"auto"`` to ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but no CUDA GPU is available")
    return device
