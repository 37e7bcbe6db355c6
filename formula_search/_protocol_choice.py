"""Which meta-tailoring protocol a run's final model uses (``fsearch run --protocol``).

The law is chosen with the paper's protocol; the protocol of the final model is then, in this order of
precedence: the command line's ``--inner-rule``/``--outer-lr``, a protocol named with ``--protocol paper`` or
``polyak`` (:data:`meta_tailor.advanced.PROTOCOLS`), the dataset card's ``[protocol] inner_rule``/``outer_lr``,
and otherwise (``--protocol auto``, the default) the one chosen by cross-validation over the training
trajectories (:func:`meta_tailor.advanced.compare_protocols`): the chosen law alone, meta-tailored under each
protocol on the same folds for :data:`CV_EPOCHS` epochs, scored by rollouts of the held-out trajectories. The
test split is never read. The paper's protocol is kept unless another is :data:`MARGIN` times better on
average and better in every fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from formula_search.errors import InputError

#: Meta-tailoring epochs per fold and protocol in the comparison, at most the run's own (the final model gets
#: the full stage).
CV_EPOCHS = 25
#: Another protocol replaces the paper's only if its mean held-out rollout MSE is this many times lower (and
#: lower in every fold). Set from the training-data CV of MLP seed 0 (a script over the same folds and
#: epochs, from the derivative measure's constants), before the seed study of 2026-12-06: the Polyak
#: protocol 58x lower on the real pendulum, 1.8x on the ideal pendulum, 1.0x on the spring (the runs
#: themselves on seed 0: 42x and 1.3x).
MARGIN = 10.0
#: Folds of the comparison (at most the number of training trajectories or pieces).
FOLDS = 4
#: The protocol the law is chosen with, and the one kept without strong evidence for another.
PAPER = "paper"


@dataclass(frozen=True)
class ProtocolPlan:
    """How a run's protocol is decided: ``name`` is ``"auto"`` (chosen by CV), a name of
    :data:`~meta_tailor.advanced.PROTOCOLS`, or ``"given"`` (the settings of the command line or the card,
    which ``by`` names)."""

    name: str
    by: str


def plan_protocol(
    protocol: str, inner_rule: str | None, outer_lr: tuple, card: dict
) -> ProtocolPlan:
    """The :class:`ProtocolPlan` of a run's options (``--protocol``, ``--inner-rule``, ``--outer-lr``) and
    its card's ``[protocol]``: the command line wins over the card, the card over the choice."""
    from meta_tailor.advanced import PROTOCOLS

    if protocol not in ("auto", *PROTOCOLS):
        raise InputError(f"--protocol {protocol}: choose auto or one of {', '.join(PROTOCOLS)}")
    if inner_rule is not None or outer_lr:
        if protocol != "auto":
            raise InputError(
                f"--protocol {protocol} names the inner rule and the outer rate; "
                "give it or --inner-rule/--outer-lr, not both"
            )
        return ProtocolPlan("given", "the command line (--inner-rule/--outer-lr)")
    if protocol != "auto":
        return ProtocolPlan(protocol, "the command line (--protocol)")
    if "inner_rule" in card or "outer_lr" in card:
        return ProtocolPlan("given", "the dataset card's [protocol]")
    return ProtocolPlan("auto", f"{FOLDS}-fold cross-validation over the training trajectories")


def choose_protocol(law, data, configs: dict, *, mlp_cfg, jobs: int, out: Path, progress):
    """Compare ``configs`` (name -> ranking settings, the paper's first) for ``law`` (one row: formula and
    the fitter's params) on the training trajectories; write RUN/protocol_cv.csv and return the name chosen
    and the :class:`~meta_tailor.advanced.ProtocolCV` (:func:`describe_protocol` says it, from the run's
    record)."""
    from joblib import cpu_count

    from formula_search.io import write_table
    from meta_tailor.advanced import RECORDING_PIECES, compare_protocols

    pieces = RECORDING_PIECES if len(data.train) == 1 else len(data.train)
    folds = min(FOLDS, pieces)
    workers = jobs
    if jobs == 1 and configs[PAPER].device == "cpu":  # folds side by side, one torch thread each
        workers = min(folds, cpu_count())  # the cores this process may use (affinity, cgroups)
    cv = compare_protocols(
        law,
        data,
        configs,
        mlp_config=mlp_cfg,
        folds=folds,
        jobs=workers,
        epochs=min(CV_EPOCHS, configs[PAPER].tailor.epochs),
        progress=progress,
    )
    write_table(cv.folds, out / "protocol_cv.csv")
    return cv.choose(PAPER, MARGIN), cv


def protocol_record(plan: ProtocolPlan, choice: str, cv) -> dict:
    """The run's ``meta.json`` entry ``protocol``: what was used, what decided it, and the CV's numbers."""
    record = {"name": choice, "by": plan.by}
    if cv is not None:
        record["cv"] = {
            "mean_held_out_mse": {
                k: (float(v) if math.isfinite(v) else None) for k, v in cv.scores.items()
            },
            "lower_in_folds": {k: cv.lower_in(k, PAPER) for k in cv.scores.index if k != PAPER},
            "folds": int(cv.folds["fold"].nunique()),
            "epochs": cv.epochs,
            "margin": MARGIN,
        }
    return record


def describe_protocol(meta: dict) -> str | None:
    """A run's protocol in one sentence, from its ``meta.json`` (``None`` for runs that predate the
    record): which protocol the final model used, what decided it, and the CV's numbers when it chose."""
    record = meta.get("protocol")
    if not record:
        return None
    tailor = (meta.get("rank_config") or {}).get("tailor", {})
    text = (
        f"meta-tailoring protocol: {record['name']} (inner rule {tailor.get('inner_rule')}, "
        f"outer rate {tailor.get('outer_lr', float('nan')):g}), by {record['by']}"
    )
    cv = record.get("cv")
    if cv:
        scores = cv["mean_held_out_mse"]
        others = [
            f"{k} {v:.4g} ({scores[PAPER] / v:.3g}x lower, in {cv['lower_in_folds'][k]} of "
            f"{cv['folds']} folds)"
            for k, v in scores.items()
            if k != PAPER and v and scores[PAPER]
        ]
        paper = scores[PAPER]
        text += f": mean held-out rollout MSE {PAPER} {paper:.4g}, " if paper is not None else ": "
        text += ", ".join(others)
        text += f"; another replaces {PAPER}'s only if {cv['margin']:g}x lower in every fold"
    return text
