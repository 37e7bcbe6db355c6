"""formula-search: discover conservation laws from trajectory data (Noether Networks).

The pipeline: a unit-checked DSL (:mod:`dsl`) enumerates candidate formulas, a batched fitter keeps the ones
conserved along real trajectories, and meta-tailoring (:mod:`meta_tailor`) ranks the survivors by how much
they improve a neural predictor's long-term predictions.
"""

from formula_search._api import LAW_COLUMNS, SearchResult, search
from formula_search.data import Dataset, Trajectory, list_datasets, load_dataset
from formula_search.errors import FsearchError, InputError
from formula_search.runs import Discovery, discover
from formula_search.version import __version__  # noqa: E402

__all__ = [
    "LAW_COLUMNS",
    "Dataset",
    "Discovery",
    "FsearchError",
    "InputError",
    "SearchResult",
    "Trajectory",
    "__version__",
    "discover",
    "list_datasets",
    "load_dataset",
    "search",
]
