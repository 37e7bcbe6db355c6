"""Recorded data: read a CSV or whitespace text file, check it, group it into trajectories, differentiate, split.

Every problem in a file is reported as one :class:`InputError` line naming the file, the line and the column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from formula_search.data._cards import Card, SplitSpec
from formula_search.data._dataset import Dataset, Trajectory
from formula_search.data._progress import progress
from formula_search.errors import InputError

#: Column names tried, in order, when no time column is named.
TIME_COLUMN_GUESSES = ("t", "time")
MIN_POINTS = 3

#: Files of at least this many rows show a progress bar while they are read.
PROGRESS_ROWS = 200_000


@dataclass(frozen=True)
class RawTable:
    """A data file's relevant columns after checking.

    Attributes:
        path: the file.
        time: (R,) time of each row.
        x: (R, n_vars) state columns in the card's variable order.
        traj: (R,) trajectory id of each row (text), or all ``""`` for a one-trajectory file.
        lines: (R,) line number of each row in the file (1-based).
        time_col: name of the time column.
        traj_col: name of the trajectory-id column or ``None``.
        time_index: 1-based position of the time column in the file.
    """

    path: Path
    time: np.ndarray
    x: np.ndarray
    traj: tuple[str, ...]
    lines: np.ndarray
    time_col: str
    traj_col: str | None
    time_index: int = 0


def _separator(line: str, suffix: str) -> str | None:
    """The cell separator of a file whose first line is ``line``: ";" (spreadsheets written with decimal
    commas), "," or ``None`` for whitespace."""
    if ";" in line:
        return ";"
    if "," in line or suffix.lower() == ".csv":
        return ","
    return None


def _split_line(line: str, sep: str | None) -> list[str]:
    if sep is not None:
        return [cell.strip().strip('"').strip("'") for cell in line.split(sep)]
    return line.split()


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_text(path: Path) -> str:
    """The data file's text, a missing file, a folder or a binary file refused."""
    try:
        return path.read_text(encoding="utf-8-sig", errors="strict")  # -sig: a spreadsheet's BOM
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a data file") from None
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: not a text file (expected CSV or whitespace-separated numbers)"
        ) from None


def _content_lines(text: str, skip_rows: int, path: Path) -> list[tuple[int, str]]:
    """``(line number, line)`` of each line after ``skip_rows`` that is neither blank nor a comment."""
    lines = text.splitlines()
    content = [
        (i, ln)
        for i, ln in enumerate(lines, start=1)
        if i > skip_rows and ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not content:
        raise InputError(f"{path}: the file is empty")
    return content


def _header(
    content: list[tuple[int, str]],
    sep: str | None,
    column_names: tuple[str, ...] | None,
    path: Path,
) -> tuple[tuple[str, ...], list[tuple[int, str]], str]:
    """The column names (the header line, or ``column_names``), the data rows and the header's place."""
    first_no, first = content[0]
    if column_names is None:
        header = _split_line(first.strip().lstrip("%#"), sep)
        if header and all(_is_number(c) for c in header):
            raise InputError(
                f"{path}, line {first_no}: expected a header line naming the columns, found numbers "
                "(add a header, or list the columns in a card: columns = [...])"
            )
        names = tuple(header)
        rows = content[1:]
        header_no: int | None = first_no
    else:
        names = tuple(column_names)
        rows = content
        header_no = None
    where_hdr = f"{path}, line {header_no}" if header_no is not None else f"{path}"
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"{where_hdr}: column {dup!r} appears twice")
    if not rows:
        raise InputError(f"{path}: the file is empty (a header but no data rows)")
    return names, rows, where_hdr


def _check_columns(
    names: tuple[str, ...],
    where_hdr: str,
    state_columns: tuple[str, ...],
    time_col: str | None,
    traj_col: str | None,
) -> str:
    """The time column (guessed when not named); refuse a missing column or time used as a state."""
    if time_col is None:
        time_col = next((c for c in TIME_COLUMN_GUESSES if c in names), None)
        if time_col is None:
            raise InputError(
                f"{where_hdr}: no time column (looked for {' or '.join(TIME_COLUMN_GUESSES)}); "
                f"name it with --time-col (columns: {', '.join(names)})"
            )
    for col, what in (
        [(time_col, "time column")]
        + ([(traj_col, "trajectory column")] if traj_col else [])
        + [(c, "state column") for c in state_columns]
    ):
        if col not in names:
            raise InputError(f"{where_hdr}: missing {what} {col!r} (columns: {', '.join(names)})")
    if time_col in state_columns:
        raise InputError(
            f"{where_hdr}: column {time_col!r} is the time column and cannot be a state variable"
        )
    return time_col


def _parse_table(
    rows: list[tuple[int, str]],
    sep: str | None,
    names: tuple[str, ...],
    numeric: tuple[str, ...],
    traj_col: str | None,
    path: Path,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Values of the ``numeric`` columns, line numbers and trajectory ids of every row (with progress)."""
    index = {name: k for k, name in enumerate(names)}
    idx = [index[c] for c in numeric]
    ncols = len(names)
    values = np.empty((len(rows), len(numeric)), dtype=np.float64)
    line_nos = np.empty(len(rows), dtype=np.int64)
    traj: list[str] = []
    traj_k = index[traj_col] if traj_col else None
    with progress(len(rows) >= PROGRESS_ROWS, f"reading {path.name}", len(rows)) as advance:
        for lo in range(0, len(rows), PROGRESS_ROWS // 4):
            _parse_rows(
                rows,
                lo,
                PROGRESS_ROWS // 4,
                sep,
                ncols,
                names,
                idx,
                traj_k,
                values,
                line_nos,
                traj,
                path,
            )
            advance(min(PROGRESS_ROWS // 4, len(rows) - lo))
    return values, line_nos, traj


def read_table(
    path: Path,
    *,
    state_columns: tuple[str, ...],
    column_names: tuple[str, ...] | None = None,
    skip_rows: int = 0,
    time_col: str | None = None,
    traj_col: str | None = None,
) -> RawTable:
    """Read and check the columns a dataset needs from a CSV or whitespace-separated text file.

    The first line that is neither blank nor a ``#`` comment is the header (a leading ``%`` or ``#`` is
    dropped) unless ``column_names`` is given. Cells are separated by semicolons when the header line (or first
    data line) contains one (spreadsheets that write decimal commas export so; the numbers must still use a
    point), else by commas when it contains one or the file ends in ``.csv``, else by whitespace.

    Args:
        path: the file.
        state_columns: columns holding the state variables, in variable order.
        column_names: names of all columns when the file's header does not give them.
        skip_rows: lines skipped at the top before anything is read.
        time_col: time column (``None``: ``t`` or ``time``).
        traj_col: trajectory-id column (``None``: the whole file is one trajectory).

    Raises:
        InputError: the file is missing or empty; a column is missing; a row has the wrong number of cells;
            a value is not a number, NaN or infinite.
    """
    content = _content_lines(_read_text(path), skip_rows, path)
    sep = _separator(content[0][1], path.suffix)
    names, rows, where_hdr = _header(content, sep, column_names, path)
    time_col = _check_columns(names, where_hdr, state_columns, time_col, traj_col)
    values, line_nos, traj = _parse_table(
        rows, sep, names, (time_col, *state_columns), traj_col, path
    )
    return RawTable(
        path=path,
        time=values[:, 0],
        x=values[:, 1:],
        traj=tuple(traj),
        lines=line_nos,
        time_col=time_col,
        traj_col=traj_col,
        time_index=names.index(time_col) + 1,
    )


def group_trajectories(table: RawTable) -> list[tuple[str, np.ndarray]]:
    """Split rows by trajectory id (in order of first appearance) and check each trajectory.

    Returns:
        ``(id, row indices)`` per trajectory.

    Raises:
        InputError: time does not increase within a trajectory, or a trajectory has fewer than 3 points.
    """
    groups: dict[str, list[int]] = {}
    for r, key in enumerate(table.traj):
        groups.setdefault(key, []).append(r)
    out = []
    for key, rows_list in groups.items():
        rows = np.asarray(rows_list)
        label = (
            f"trajectory {key!r} (column {table.traj_col!r})"
            if table.traj_col
            else "the trajectory"
        )
        if len(rows) < MIN_POINTS:
            raise InputError(
                f"{table.path}, line {table.lines[rows[0]]}: {label} has {len(rows)} point"
                f"{'s' if len(rows) != 1 else ''}; each trajectory needs at least {MIN_POINTS}"
            )
        t = table.time[rows]
        bad = np.nonzero(np.diff(t) <= 0)[0]
        if bad.size:
            r0, r1 = rows[bad[0]], rows[bad[0] + 1]
            raise InputError(
                f"{table.path}, line {table.lines[r1]}, column {table.time_index} ({table.time_col!r}): time {t[bad[0] + 1]:g} "
                f"does not increase within {label} (line {table.lines[r0]} has {t[bad[0]]:g})"
            )
        out.append((key, rows))
    return out


def finite_difference(
    t: np.ndarray, x: np.ndarray, scheme: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time derivative of a recorded trajectory by finite differences over the actual time steps.

    Args:
        t: (T,) increasing times.
        x: (T, n) states.
        scheme: ``"forward"``: ``(x[i+1] - x[i]) / (t[i+1] - t[i])`` at ``t[i]``, dropping the last point
            (HNN's scheme); ``"central"``: second-order three-point differences on the uneven grid
            (``numpy.gradient`` with ``edge_order=2``), keeping every point.

    Returns:
        ``(t, x, dxdt)`` at the points kept.
    """
    if scheme == "forward":
        dxdt = np.diff(x, axis=0) / np.diff(t)[:, None]
        return t[:-1], x[:-1], dxdt
    if scheme == "central":
        return t, x, np.gradient(x, t, axis=0, edge_order=2)
    raise InputError(f"unknown derivative scheme {scheme!r}; use forward or central")


def _n_first(n: int, fraction: float) -> int:
    # floor(n * fraction) robust to 0.8 * 555 = 443.99999...; HNN's int(n * fraction) on exact products
    return int(math.floor(n * fraction + 1e-9))


def split_trajectories(
    trajs: list[Trajectory], split: SplitSpec, *, where: str
) -> tuple[tuple[Trajectory, ...], tuple[Trajectory, ...]]:
    """Split trajectories into (train, test) as ``split`` says.

    By trajectories: the first ``floor(n * train_fraction)`` trajectories train and the rest test (or the
    test part first, ``test_first``). By time: each trajectory's first ``floor(T * train_fraction)`` points
    train, cut into ``train_pieces`` nearly equal trajectories (``numpy.array_split``), and the rest test.

    Raises:
        InputError: a side would be empty, or a piece would have fewer than 3 points.
    """
    by = split.by
    if by == "auto":
        by = "trajectories" if len(trajs) >= 2 else "time"
    if by == "trajectories":
        n = len(trajs)
        if n < 2:
            raise InputError(
                f"{where}: a split by trajectories needs at least 2 trajectories, got {n}"
            )
        n_train = _n_first(n, split.train_fraction)
        n_train = min(max(n_train, 1), n - 1)
        if split.test_first:
            return tuple(trajs[n - n_train :]), tuple(trajs[: n - n_train])
        return tuple(trajs[:n_train]), tuple(trajs[n_train:])

    train: list[Trajectory] = []
    test: list[Trajectory] = []
    for tr in trajs:
        T = len(tr)
        n_train = _n_first(T, split.train_fraction)
        n_test = T - n_train
        pieces = split.train_pieces
        if n_test < MIN_POINTS or n_train < MIN_POINTS * pieces:
            raise InputError(
                f"{where}: a trajectory of {T} points is too short to split in time "
                f"({n_train} train in {pieces} piece(s), {n_test} test; each needs at least {MIN_POINTS})"
            )
        tr_part = slice(n_test, T) if split.test_first else slice(0, n_train)
        te_part = slice(0, n_test) if split.test_first else slice(n_train, T)
        idx = np.arange(T)[tr_part]
        for piece in np.array_split(idx, pieces):
            train.append(Trajectory(t=tr.t[piece], x=tr.x[piece], dxdt=tr.dxdt[piece]))
        test.append(Trajectory(t=tr.t[te_part], x=tr.x[te_part], dxdt=tr.dxdt[te_part]))
    return tuple(train), tuple(test)


def load_recorded(
    card: Card, *, kind: str = "recorded", noise: float | None = None, seed: int = 0
) -> Dataset:
    """Load a recorded dataset described by ``card`` (its ``[file]`` table).

    Raises:
        InputError: any problem with the file (see :func:`read_table`, :func:`group_trajectories`), or
            ``noise`` requested for recorded data.
    """
    assert card.file is not None
    if noise:
        raise InputError(
            f"{card.name}: --noise adds noise to simulated data only; {card.name} is recorded"
        )
    spec = card.file
    table = read_table(
        spec.path,
        state_columns=card.columns,
        column_names=spec.columns,
        skip_rows=spec.skip_rows,
        time_col=spec.time,
        traj_col=spec.trajectory,
    )
    groups = group_trajectories(table)
    trajs = []
    for _key, rows in groups:
        t, x, dxdt = finite_difference(table.time[rows], table.x[rows], spec.derivative)
        trajs.append(Trajectory(t=t, x=x, dxdt=dxdt))
    train, test = split_trajectories(trajs, card.split, where=str(spec.path))
    steps = np.concatenate([np.diff(table.time[rows]) for _k, rows in groups])
    return Dataset(
        name=card.name,
        variables=card.variables,
        train=train,
        test=test,
        hamiltonian=card.hamiltonian,
        description=card.description,
        source=card.source,
        license=card.license,
        noise=0.0,
        seed=seed,
        default_window=card.default_window,
        default_detrend=card.default_detrend,
        time_step=float(np.median(steps)),
        kind=kind,
        citation=card.citation,
        reference_hamiltonian=card.hamiltonian,
        derivative=spec.derivative,
        n_rows=int(table.time.shape[0]),
        extra={"path": str(spec.path), "time_col": table.time_col, "traj_col": table.traj_col},
        protocol=dict(card.protocol),
        search=dict(card.search),
    )


def _parse_rows(
    rows, lo, count, sep, ncols, names, idx, traj_k, values, line_nos, traj, path
) -> None:
    """Rows ``lo`` to ``lo + count`` of a data file into ``values``, ``line_nos`` and ``traj``."""
    for r in range(lo, min(lo + count, len(rows))):
        no, line = rows[r]
        cells = _split_line(line, sep)
        if len(cells) != ncols:
            raise InputError(
                f"{path}, line {no}: {len(cells)} values, expected {ncols} ({', '.join(names)})"
            )
        for j, k in enumerate(idx):
            cell = cells[k]
            try:
                v = float(cell)
            except ValueError:
                shown = repr(cell) if cell else "an empty cell"
                hint = (
                    f" (a decimal comma: write {cell.replace(',', '.')})"
                    if _DECIMAL_COMMA.fullmatch(cell)
                    else ""
                )
                raise InputError(
                    f"{path}, line {no}, column {k + 1} ({names[k]!r}): {shown} is not a number{hint}"
                ) from None
            if not math.isfinite(v):
                raise InputError(
                    f"{path}, line {no}, column {k + 1} ({names[k]!r}): {cell!r} is NaN or infinite"
                )
            values[r, j] = v
        line_nos[r] = no
        traj.append(cells[traj_k] if traj_k is not None else "")
