"""Small I/O helpers shared by the stages: atomic writes and tables by file extension."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from formula_search.errors import InputError

TABLE_SUFFIXES = (".csv", ".parquet")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or Ctrl-C never leaves a half-written file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file private (0600); give the result the permissions of a normal new file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_table_suffix(path: str | os.PathLike[str]) -> str:
    """Return the table format of ``path`` (``"csv"`` or ``"parquet"``) or raise :class:`InputError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(
            f"{path}: unsupported table format {suffix or '(none)'!r}; use .csv or .parquet"
        )
    return suffix[1:]


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` atomically as CSV or Parquet, chosen by the extension of ``path``."""
    fmt = check_table_suffix(path)
    with atomic_path(path) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return Path(path)


#: Columns always read as text (a formula "2" is not the number 2, nor "nan" a missing value).
TEXT_COLUMNS = ("formula",)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (or by a person: any CSV or Parquet file).

    Raises:
        InputError: no such file, or a file that is not a readable table of that format.
    """
    fmt = check_table_suffix(path)
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    try:
        if fmt == "csv":
            header = pd.read_csv(path, nrows=0).columns
            text = {c: str for c in TEXT_COLUMNS if c in header}
            table = pd.read_csv(path, converters=text)
        else:
            table = pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: not a readable {fmt} table ({first})") from None
    for c in TEXT_COLUMNS:
        if c in table.columns:
            table[c] = table[c].astype(str)
    return table


def parse_params(value) -> list[float]:
    """Formula parameters from a table cell.

    Accepts a list, JSON list text (``"[3.0, 1.0]"``), the fitter's ``"c_0; c_1"`` text (``"-3; 1.5"``) or
    one number.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = (
                json.loads(text)
                if text.startswith("[")
                else [v for v in text.split(";") if v.strip()]
            )
        except json.JSONDecodeError:
            raise InputError(f"parameters {text!r}: not a list of numbers") from None
        if not isinstance(value, list):
            value = [value]
    elif isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        value = [value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise InputError(
            f"parameters {value!r}: not numbers (write e.g. '-3; 1.5' or '[-3, 1.5]')"
        ) from None
    return out
