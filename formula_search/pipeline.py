"""The symbolic stages chained together, with results cached by their inputs.

``search`` = enumerate (:mod:`formula_search._enumerate`) + fit and filter (:mod:`formula_search._fit`). Its
table is cached under a key made of everything that determines it (the training data, the depth, the dedup
level, the fit options that change results, the package version), so ``fsearch rank`` and ``fsearch run``
reuse an earlier search of the same problem instead of redoing it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from formula_search._enumerate import check_search_size, enumerate_formulas
from formula_search._fit import FitConfig, check_enumeration, fit_formulas, resolve_defaults
from formula_search.io import read_table, write_table
from formula_search.version import __version__

#: Fit options that change where work runs but never the result; left out of the cache key.
_NOT_IN_KEY = ("jobs", "backend", "scheduler", "device", "chunk_size")


@dataclass(frozen=True)
class SearchConfig:
    """Options of the symbolic search.

    Attributes:
        depth: largest formula size in tokens (7 reaches the paper's laws).
        dedup: ``commutative`` (the paper's level), ``algebraic`` or ``conservation`` (ours, the default: it
            never drops a law the weaker levels keep, up to an equivalent form, and is several times smaller).
        fit: options of the fitter and variance-ratio filter.
        operators: the operators to build with (``None``: the paper's, :data:`dsl.DEFAULT_OPERATORS`).
    """

    depth: int = 7
    dedup: str = "conservation"
    fit: FitConfig = field(default_factory=FitConfig)
    operators: tuple[str, ...] | None = None


def default_cache_dir() -> Path:
    """``$FSEARCH_CACHE`` or ``~/.cache/formula-search``."""
    return Path(os.environ.get("FSEARCH_CACHE", Path.home() / ".cache" / "formula-search"))


def search_key(data, config: SearchConfig) -> str:
    """Fingerprint of everything that determines :func:`search`'s table."""
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(repr([(v.name, v.unit) for v in data.variables]).encode())
    for traj in data.train:
        h.update(np.ascontiguousarray(traj.x, dtype=np.float64).tobytes())
        h.update(str(len(traj.x)).encode())
        # the derivative measure reads the times and, for exact ones, the derivatives
        h.update(np.ascontiguousarray(traj.t, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(traj.dxdt, dtype=np.float64).tobytes())
    fit = {
        k: v for k, v in asdict(resolve_defaults(config.fit, data)).items() if k not in _NOT_IN_KEY
    }
    if fit.get("stride", 0) is None:  # the automatic stride: earlier tables keep their keys
        del fit["stride"]
    h.update(repr((config.depth, config.dedup, sorted(fit.items()))).encode())
    if config.operators is not None:  # default operators keep the keys of earlier tables
        h.update(repr(sorted(config.operators)).encode())
    return h.hexdigest()[:16]


_FALLBACK: list[Path] = []


def _fallback_cache() -> Path:
    """One temporary cache folder per process, removed at exit (the cache folder cannot be written)."""
    if not _FALLBACK:
        import atexit
        import shutil

        _FALLBACK.append(Path(tempfile.mkdtemp(prefix="fsearch-cache-")))
        atexit.register(shutil.rmtree, _FALLBACK[0], True)
    return _FALLBACK[0]


def search(
    data,
    *,
    config: SearchConfig = SearchConfig(),
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    on_enumerated: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, Path | None]:
    """Enumerate every formula over ``data``'s variables and fit it on ``data``'s training split.

    Args:
        data: a :class:`formula_search.data.Dataset`.
        config: depth, dedup level and fit options; ``window``/``detrend`` left unset take the dataset's
            defaults.
        cache_dir: where finished tables are kept (default :func:`default_cache_dir`).
        use_cache: reuse a finished table of the same inputs when there is one.
        on_enumerated: called with the number of candidates once enumeration is done.
        progress: called with the number of formulas fitted in each finished chunk.

    Returns:
        The fit table (columns of :data:`formula_search._fit.COLUMNS`) and the path it is cached at.
    """
    check_enumeration(config.fit)
    fit_cfg = resolve_defaults(config.fit, data)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:  # a read-only home: the search still runs, cached in a temporary folder for this process
        (root / "search").mkdir(parents=True, exist_ok=True)
        probe = root / "search" / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        root = _fallback_cache()
    path = (
        root
        / "search"
        / f"{data.name}-d{config.depth}-{config.dedup}-{search_key(data, config)}.parquet"
    )
    if use_cache and path.exists():
        return read_table(path), path
    ops = config.operators
    check_search_size(data.variables, max_size=config.depth, dedup=config.dedup, operators=ops)
    formulas = [
        f.formula
        for f in enumerate_formulas(
            data.variables, max_size=config.depth, dedup=config.dedup, operators=ops
        )
    ]
    if on_enumerated is not None:
        on_enumerated(len(formulas))
    table = fit_formulas(
        formulas,
        data,
        config=fit_cfg,
        checkpoint_dir=path.with_suffix(".chunks"),
        resume=use_cache,
        progress=progress,
    )
    write_table(table, path)
    shutil.rmtree(
        path.with_suffix(".chunks"), ignore_errors=True
    )  # the finished table replaces them
    return table, path
