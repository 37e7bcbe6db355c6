"""formula-search: discover conservation laws from trajectory data (Noether Networks).

The pipeline: a unit-checked DSL (:mod:`dsl`) enumerates candidate formulas, a batched fitter keeps the ones
conserved along real trajectories, and meta-tailoring (:mod:`meta_tailor`) ranks the survivors by how much
they improve a neural predictor's long-term predictions.
"""

from formula_search.errors import FsearchError, InputError

__version__ = "0.1.0"

__all__ = ["FsearchError", "InputError", "__version__"]
