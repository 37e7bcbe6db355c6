"""The options of ``fsearch rank`` and ``run`` (:func:`stage_options`), grouped by topic, and the single
options ``fsearch pretrain`` and ``reproduce`` share with them.

Each group is a list of click decorators in the order ``--help`` shows them.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from formula_search.advanced import DERIVATIVES as DERIVATIVE_SOURCES
from formula_search.advanced import TermConfig
from formula_search.cli._common import MEASURE, OPERATORS, SMOOTHING, dedup_option
from formula_search.cli._data_options import dataset_options

DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to compute.",
)


TAILOR = click.option(
    "--tailor",
    "tailor",
    type=click.Choice(["state", "trajectory"]),
    default=None,
    help="Tailoring per trajectory (Algorithm 1, the default) or per query state.",
)


INNER_RULE = click.option(
    "--inner-rule",
    type=click.Choice(["sgd", "polyak"]),
    default=None,
    help="Inner step: the paper's fixed rate (sgd), or a Polyak rate per sequence (the rate is the "
    "fraction of the sequence's Noether loss one step removes; screens 0.1 to 1). Giving it (or "
    "--outer-lr) fixes the protocol [--protocol's].",
)

PROTOCOL = click.option(
    "--protocol",
    type=click.Choice(["auto", "paper", "polyak"]),
    default="auto",
    show_default=True,
    help="Meta-tailoring protocol of the final model: the paper's (fixed-rate inner step, outer rate "
    "1e-3), ours (a Polyak inner step, outer rate 3e-4), or auto: the dataset card's [protocol] if it "
    "names one, else chosen by cross-validating the chosen law over the training trajectories (the "
    "Polyak one only if 10x better and better in every fold; protocol_cv.csv). The law is chosen with "
    "the paper's protocol in every case (--law-choice).",
)


#: The term search's defaults (the options' help reads them).
_TERMS = TermConfig()

TERM_LIBRARY = click.option(
    "--term-library",
    type=click.Choice(["enumerate", "products"]),
    default=None,
    help="The terms of --terms: every unit-valid term up to --term-depth tokens (enumerate), or the "
    "monomials of the variables up to degree 2 times 1, sin and cos of each angle and of each difference "
    f"of two (products: w1*w2*cos(q1 - q2)) [the card's, else {_TERMS.library}].",
)

#: ``--derivatives``: where the derivative measure's velocities come from.
DERIVATIVES = click.option(
    "--derivatives",
    type=click.Choice(DERIVATIVE_SOURCES),
    default="auto",
    show_default=True,
    help="Derivative measure: velocities from a smoothing spline of the states, from differences of the "
    "recorded states --stride samples apart (a formula's exact change between them: no derivative "
    "estimate; the term search only), or the data's own derivatives; auto: the data's when exact (a "
    "simulation's), else the spline for the enumeration and differences for the term search.",
)

#: ``--stride``: samples between the two states of a difference.
STRIDE = click.option(
    "--stride",
    type=click.IntRange(min=1),
    default=None,
    help="With differences: samples between the two states [the smallest whose typical step is one "
    "standard deviation of the variables].",
)

EXTRA_TERMS = click.option(
    "--extra-term",
    "extra_terms",
    multiple=True,
    metavar="TERM",
    help="A term added to the library of --terms (repeatable; parameter-free and unit-valid, any "
    "operator of the language: '1/sqrt((x1 - x2)^2 + (y1 - y2)^2)') [the card's extra_terms].",
)

MODEL_SEED = click.option(
    "--model-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the MLP's and the HNN's initialisation (0 is the reference set-up's). A run "
    "directory keeps one pretrained MLP: another seed retrains it.",
)


PRETRAIN_KEEP = click.option(
    "--pretrain-keep",
    type=click.Choice(["last", "best"]),
    default="last",
    show_default=True,
    help="Weights the MLP (and the HNN and the MLP with more epochs) keep: those after the last Adam "
    "step (the reference set-up's), or those with the lowest training loss of all steps (full-batch "
    "Adam keeps spiking, and the last step may land on a spike).",
)

RUN = click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET].")


def stage_options(f: Callable) -> Callable:
    """Options shared by ``fsearch rank`` and ``fsearch run``."""
    decorators = [
        *_search_options(),
        *_budget_options(),
        *_meta_tailoring_options(),
        *_law_choice_options(),
        MODEL_SEED,
        PRETRAIN_KEEP,
        DEVICE,
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _search_options() -> list[Callable]:
    """The data, the formulas to rank (the search, or a file of them), and the run directory."""
    return [
        dataset_options,
        click.option(
            "--survivors",
            type=click.Path(dir_okay=False),
            default=None,
            help="Fitter output (.csv/.parquet) to rank [default: run the search, or reuse a cached one].",
        ),
        click.option(
            "--depth",
            type=click.IntRange(min=1),
            default=7,
            show_default=True,
            help="Largest formula size in tokens (tree nodes) for the search.",
        ),
        dedup_option(),
        OPERATORS,
        click.option(
            "--terms",
            type=click.IntRange(min=2),
            default=None,
            metavar="K",
            help="Search laws that are sums of up to K terms (the term search of fsearch fit --terms) "
            "instead of enumerating formulas [default: the dataset card's [search], else the enumeration].",
        ),
        click.option(
            "--term-depth",
            type=click.IntRange(min=1),
            default=None,
            help=f"Largest term size in tokens, with --terms [the card's, else {_TERMS.term_depth}].",
        ),
        click.option(
            "--beam",
            type=click.IntRange(min=1),
            default=None,
            help=f"Term sets kept per size, with --terms [the card's, else {_TERMS.beam}].",
        ),
        TERM_LIBRARY,
        EXTRA_TERMS,
        click.option(
            "--ratio", type=float, default=0.01, show_default=True, help="Fit filter threshold."
        ),
        MEASURE,
        SMOOTHING,
        DERIVATIVES,
        STRIDE,
        click.option(
            "--jobs",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Processes for the fit, and for the folds of --law-choice cv and of the protocol "
            "choice (1: the protocol choice on a CPU runs its folds in one process per core, up to "
            "4).",
        ),
        RUN,
    ]


def _budget_options() -> list[Callable]:
    """How much work the model gets: finalists, meta-tailoring epochs, pretraining steps."""
    return [
        click.option(
            "--top-k",
            type=click.IntRange(min=1),
            default=None,
            help="Survivors meta-tailored after the screen [20].",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(min=0),
            default=None,
            help="Meta-tailoring epochs [100].",
        ),
        click.option(
            "--pretrain-steps",
            type=click.IntRange(min=0),
            default=None,
            help="Steps if the MLP must be trained [2000].",
        ),
    ]


def _meta_tailoring_options() -> list[Callable]:
    """Meta-tailoring: the inner (tailoring) step and the outer Adam of the MLP's weights."""
    return [
        TAILOR,
        PROTOCOL,
        INNER_RULE,
        click.option(
            "--outer-lr",
            type=click.FloatRange(min=0, min_open=True),
            multiple=True,
            help="Adam rate of the MLP weights in meta-tailoring [1e-3]. Repeat it to screen several: "
            "each finalist keeps the rate with the lowest training rollout MSE (the time grows with "
            "their number).",
        ),
        click.option(
            "--inner-integrator",
            type=click.Choice(["euler", "rk4"]),
            default=None,
            help="Trajectory mode's inner rollout: the paper's finite difference x + f(x) dt (euler) "
            "or one RK4 step per dt, the integrator of the evaluation [rk4].",
        ),
        click.option(
            "--outer-warmup",
            type=click.IntRange(min=0),
            default=None,
            help="Meta-tailoring steps over which the outer Adam rates rise linearly to their values "
            "(a fresh Adam moves every weight by about the full rate at its first step; 0: none) [10].",
        ),
        click.option(
            "--outer-decay",
            type=click.Choice(["none", "cosine"]),
            default=None,
            help="Outer Adam rates after the warm-up: constant, or falling as a half cosine towards zero "
            "at the last epoch, so that the long stage settles [none].",
        ),
        click.option(
            "--outer-adam",
            type=click.Choice(["fresh", "continue"]),
            default="fresh",
            show_default=True,
            help="The outer Adam of the MLP weights: a fresh optimiser, or the MLP's pretraining Adam "
            "continued (its moment estimates scale each weight's first outer steps; the MLP with more "
            "epochs and the oracle continue it too).",
        ),
    ]


def _law_choice_options() -> list[Callable]:
    """How the law is chosen: given by an earlier run, by the training rollouts, by CV, or the paper's way."""
    return [
        click.option(
            "--law-from",
            type=click.Path(file_okay=False),
            default=None,
            help="Meta-tailor only the law an earlier run on the same data chose (its run directory), "
            "starting from the fit's constants: the law found with one setting, the predictor built "
            "with another (e.g. a first run with the paper's settings, then --inner-rule polyak).",
        ),
        click.option(
            "--law-choice",
            type=click.Choice(["train", "cv", "paper"]),
            default="paper",
            show_default=True,
            help="Choose the winner by the meta-tailored models' rollouts of the training trajectories "
            "with the paper's protocol (paper: the paper's criterion; with another protocol the law is "
            "then meta-tailored alone with it, and law_ranking.csv keeps the ranking that chose it), or "
            "with the run's own protocol (train), or by cross-validation over them (cv: the MLP's "
            "pretraining and the ranking again without each fold, scored by rollouts of the held-out "
            "trajectories; costs --cv-folds more rankings, run in --jobs processes; needs a named "
            "protocol).",
        ),
        click.option(
            "--cv-folds",
            type=click.IntRange(min=2),
            default=None,
            help="Folds of --law-choice cv; trajectory j goes to fold j mod K [4, or the number of "
            "training trajectories if fewer].",
        ),
    ]
