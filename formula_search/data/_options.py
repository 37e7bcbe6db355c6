"""The dataset options of the commands (``--dataset`` and the user-file options), as plain keyword arguments.

The click decorators that add them to a command live in :mod:`formula_search.cli._data_options`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from formula_search.data._cards import DEFAULT_DATASET
from formula_search.data._dataset import Dataset
from formula_search.data._load import load_dataset

#: Parameter names the dataset options add to a click command (pop them with :func:`pop_dataset_options`).
DATASET_OPTIONS: tuple[str, ...] = (
    "dataset",
    "columns",
    "time_col",
    "traj_col",
    "noise",
    "seed",
    "train_fraction",
    "derivative",
    "names",
    "skip_rows",
)


def pop_dataset_options(kwargs: MutableMapping[str, Any]) -> dict[str, Any]:
    """Remove and return the :data:`DATASET_OPTIONS` entries of a command's keyword arguments."""
    return {k: kwargs.pop(k) for k in DATASET_OPTIONS if k in kwargs}


def dataset_from_options(
    *,
    dataset: str | None = DEFAULT_DATASET,
    columns: str | None = None,
    time_col: str | None = None,
    traj_col: str | None = None,
    noise: float | None = None,
    seed: int = 0,
    train_fraction: float | None = None,
    derivative: str | None = None,
    cache_dir: str | None = None,
    names: str | None = None,
    skip_rows: int | None = None,
) -> Dataset:
    """Load the dataset the :func:`dataset_options` of a command describe (see :func:`load_dataset`)."""
    return load_dataset(
        dataset if dataset is not None else DEFAULT_DATASET,
        noise=noise,
        seed=seed,
        cache_dir=cache_dir,
        columns=columns,
        time_col=time_col,
        traj_col=traj_col,
        train_fraction=train_fraction,
        derivative=derivative,
        names=names,
        skip_rows=skip_rows,
    )
