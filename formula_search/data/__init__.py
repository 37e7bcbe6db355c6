"""Datasets with units: built-in cards, the generic Hamiltonian simulator, and the user's own files.

Every later stage reads trajectories through :func:`load_dataset`, which returns a :class:`Dataset`: variables
with units, train and test :class:`Trajectory` tuples, the time step and provenance. See ``docs/datasets.md``.
"""

from formula_search.data._cards import (
    DEFAULT_DATASET,
    Card,
    builtin_cards,
    builtin_dir,
    parse_card,
    read_card,
)
from formula_search.data._dataset import Dataset, Trajectory
from formula_search.data._load import list_datasets, load_dataset, parse_columns, resolve_card
from formula_search.data._options import DATASET_OPTIONS, dataset_from_options, pop_dataset_options
from formula_search.data._plot import plot_dataset
from formula_search.data._simulate import (
    default_cache_dir,
    energy_function,
    hamiltonian_field,
    hamiltonian_to_sympy,
)

__all__ = [
    "DATASET_OPTIONS",
    "DEFAULT_DATASET",
    "Card",
    "Dataset",
    "Trajectory",
    "builtin_cards",
    "builtin_dir",
    "dataset_from_options",
    "default_cache_dir",
    "energy_function",
    "hamiltonian_field",
    "hamiltonian_to_sympy",
    "list_datasets",
    "load_dataset",
    "parse_card",
    "parse_columns",
    "plot_dataset",
    "pop_dataset_options",
    "read_card",
    "resolve_card",
]
