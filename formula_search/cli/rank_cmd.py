"""``fsearch rank``: rank the conserved formulas by meta-tailoring the pretrained MLP, into a run directory.

The other commands on a run directory: ``fsearch pretrain`` (:mod:`._pretrain_cmd`), ``run``
(:mod:`._run_cmd`), ``reproduce`` (:mod:`._reproduce_cmd`), ``export`` and ``plot`` (:mod:`.export_cmd`);
their options are in :mod:`._stage_options`. A run directory (``RUN``, default ``runs/DATASET``) holds:

- ``model.pt``: the pretrained vanilla MLP (``fsearch pretrain``; loaded with ``weights_only=True``);
- ``pretrain_curve.csv``: its training loss after each number of Adam steps (0 to 2000);
- ``ranking.csv``: the ranking table (:data:`meta_tailor.RANK_COLUMNS`), one row per accepted survivor;
- ``screen.csv``: every screened (formula, inner_lr, inner_steps) and its screen loss;
- ``meta_curves.csv``: the long stage epoch by epoch, per finalist and outer rate: outer loss and the
  training rollout MSE the returned epoch is chosen by (:data:`meta_tailor.CURVE_COLUMNS`);
- ``comparators.csv``: vanilla MLP, MLP with more epochs, Noether winner, oracle, HNN
  (:data:`meta_tailor.COMPARATOR_COLUMNS`);
- ``horizons.csv``: test error per prediction horizon and method;
- ``law_ranking.csv``: when the final model's protocol is not the paper's, the ranking with the paper's
  protocol that chose the law (``--law-choice paper``, the default);
- ``protocol_cv.csv``: with ``--protocol auto`` (the default) and no protocol pinned, every fold's held-out
  rollout MSE of the law under each protocol (:data:`meta_tailor.advanced.PROTOCOL_CV_COLUMNS`);
- ``cv.csv``: with ``--law-choice cv``, every fold's held-out rollout MSE per finalist
  (:data:`meta_tailor.CV_COLUMNS`); the ranking's ``cv_mse`` is its mean over the folds;
- ``winner.pt``: the meta-tailored winner's MLP weights and formula parameters;
- ``meta.json``: dataset, variables and units, settings, device, timings, the winner, and a run id.

The stages themselves live in :mod:`formula_search.runs` (:func:`formula_search.discover`), which writes
the folder as a whole or not at all.
"""

from __future__ import annotations

import click

from formula_search.cli._common import parse_operators
from formula_search.cli._stage_options import stage_options
from formula_search.runs import describe_protocol, execute


@click.command("rank")
@stage_options
@click.option(
    "--comparators/--no-comparators",
    default=True,
    show_default=True,
    help="Also train and evaluate the comparators.",
)
@click.option("--hnn/--no-hnn", default=True, show_default=True, help="Include the HNN comparator.")
def rank_cmd(**kwargs):
    """Rank conserved formulas by meta-tailoring the pretrained MLP; write RUN/ranking.csv and more.

    Without --survivors it runs (or reuses, when cached) the search: enumeration up to --depth tokens and
    the fit with its variance-ratio filter.
    """
    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    kwargs["operators"] = parse_operators(kwargs["operators"])
    out, meta = execute(options, **kwargs)
    winner = meta["winner"]
    if winner:
        click.echo(
            f"winner: {winner['formula']} params={winner['params']} test RMSE {winner['test_rmse']:.4g}"
        )
    protocol = describe_protocol(meta)
    if protocol:
        click.echo(protocol)
    click.echo(f"wrote {out}/ranking.csv, screen.csv, meta_curves.csv, meta.json")
