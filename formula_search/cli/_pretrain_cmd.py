"""``fsearch pretrain``: train the baseline MLP into a run directory (:func:`formula_search.runs.pretrain_stage`)."""

from __future__ import annotations

import click

from formula_search.cli._stage_options import (
    DEVICE,
    MODEL_SEED,
    PRETRAIN_KEEP,
    RUN,
    dataset_options,
)
from formula_search.runs import (
    ensure_writable,
    load_data,
    pretrain_stage,
    resolve_device_name,
    run_folder,
)


@click.command("pretrain")
@dataset_options
@RUN
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=None,
    help="Adam steps [default: 2000, the paper's].",
)
@MODEL_SEED
@PRETRAIN_KEEP
@DEVICE
def pretrain_cmd(run, steps, model_seed, pretrain_keep, device, **kwargs):
    """Train the baseline MLP (HNN "vanilla MLP") and save it as RUN/model.pt."""
    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    data = load_data(options)
    out = run_folder(run, data.name)
    ensure_writable(out)  # a read-only folder fails now, not after the training
    secs, trained = pretrain_stage(
        data,
        options,
        out,
        steps=steps,
        device=resolve_device_name(device),
        model_seed=model_seed,
        keep=pretrain_keep,
    )
    if trained:
        click.echo(f"wrote {out / 'model.pt'} ({secs:.1f} s)")
    else:
        click.echo(f"{out / 'model.pt'} is already trained on these data and settings")
