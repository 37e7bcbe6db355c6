"""The ``--dataset`` option group shared by ``fsearch enumerate``, ``fit``, ``rank`` and friends.

The command receives the parameters named in :data:`formula_search.data.DATASET_OPTIONS`; turn them into a
:class:`~formula_search.data.Dataset` with ``dataset_from_options(**pop_dataset_options(kwargs))``.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from formula_search.data import DEFAULT_DATASET


def _file_options(with_dataset: bool, default: str | None) -> list[Callable]:
    opts: list[Callable] = []
    if with_dataset:
        opts.append(
            click.option(
                "--dataset",
                default=default,
                show_default=True,
                metavar="NAME|PATH",
                help="Built-in dataset (fsearch datasets list), a card (.toml) or your CSV / text file.",
            )
        )
    opts += [
        click.option(
            "--columns",
            default=None,
            metavar="SPEC",
            help="Your file's state columns with units, e.g. 'q:rad,p:rad/s' (coordinates, then momenta).",
        ),
        click.option(
            "--time-col", default=None, metavar="NAME", help="Your file's time column [t or time]."
        ),
        click.option(
            "--traj-col",
            default=None,
            metavar="NAME",
            help="Your file's trajectory-id column [one trajectory].",
        ),
        click.option(
            "--noise",
            type=float,
            default=None,
            help="Gaussian noise std added to simulated states [card default: 0; HNN used 0.1].",
        ),
        click.option(
            "--seed",
            type=click.IntRange(0, 2**32 - 1),
            default=0,
            show_default=True,
            help="Random seed (data and search), 0 to 2^32 - 1.",
        ),
        click.option(
            "--train-fraction",
            type=float,
            default=None,
            help="Share of the data used to train [card default].",
        ),
        click.option(
            "--derivative",
            type=click.Choice(["forward", "central"]),
            default=None,
            help="Finite differences for recorded dx/dt [card default; central for your files].",
        ),
        click.option(
            "--names",
            default=None,
            metavar="A,B,...",
            help="Your file's column names, when its header does not name every column (use with "
            "--skip-rows 1 to skip that header).",
        ),
        click.option(
            "--skip-rows",
            type=int,
            default=None,
            metavar="N",
            help="Lines skipped at the top of your file [card default: 0].",
        ),
    ]
    return opts


def dataset_options(
    func: Callable | None = None, *, default: str | None = DEFAULT_DATASET
) -> Callable:
    """Click decorator adding ``--dataset NAME|PATH`` and the user-file options to a command.

    The command receives the parameters named in :data:`DATASET_OPTIONS`; turn them into a
    :class:`Dataset` with ``dataset_from_options(**pop_dataset_options(kwargs))`` (``seed`` is also meant for
    the command's own randomness: read it before popping if needed).

    Usable as ``@dataset_options`` or ``@dataset_options(default=None)``.
    """

    def decorate(f: Callable) -> Callable:
        for opt in reversed(_file_options(True, default)):
            f = opt(f)
        return f

    return decorate(func) if func is not None else decorate


def user_file_options(func: Callable) -> Callable:
    """Like :func:`dataset_options` without ``--dataset`` (for commands taking the dataset as an argument)."""
    for opt in reversed(_file_options(False, None)):
        func = opt(func)
    return func
