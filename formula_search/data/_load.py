"""Find a dataset by name or path and load it: the one entry point later stages call."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

import dsl
from formula_search.data._cards import (
    Card,
    FileSpec,
    SplitSpec,
    builtin_cards,
    builtin_dir,
    check_split,
    parse_card,
    read_card,
)
from formula_search.data._dataset import Dataset, Trajectory
from formula_search.data._loaders import load_recorded, split_trajectories
from formula_search.data._simulate import generate_cached, hamiltonian_to_sympy
from formula_search.errors import InputError

#: Suffixes read as data files (anything else that exists is tried as text too).
DATA_SUFFIXES = (".csv", ".txt", ".dat", ".tsv", ".tab")


def parse_columns(spec: str, *, where: str = "--columns") -> tuple[dsl.Variable, ...]:
    """Parse ``"q:rad,p:rad/s"`` (file column name : unit) into variables.

    Raises:
        InputError: a malformed entry, a repeated name or an unknown unit (message starts with ``where``).
    """
    try:
        return dsl.parse_variables(spec)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _user_card(
    path: Path,
    *,
    columns: str | None,
    time_col: str | None,
    traj_col: str | None,
    derivative: str | None,
    names: str | None = None,
    skip_rows: int | None = None,
) -> Card:
    """A card for the user's data file: the sidecar ``<file>.toml`` if there is one, overridden by options."""
    sidecar = path.with_suffix(".toml")
    if sidecar.exists():
        try:
            text = sidecar.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{sidecar}: cannot read the card beside the data file: {exc}"
            ) from None
        card = parse_card(text, path=sidecar, name=path.stem, data_path=path)
        if card.kind != "recorded":
            raise InputError(f"{sidecar}: the card beside a data file must describe recorded data")
    else:
        if columns is None:
            raise InputError(
                f"{path}: name the state columns and their units, e.g. --columns 'q:rad,p:rad/s' "
                f"(or write a card {sidecar.name} beside the file; see docs/datasets.md)"
            )
        card = Card(
            name=path.stem,
            kind="recorded",
            variables=(),
            columns=(),
            file=FileSpec(path=path, time=None, trajectory=None, derivative="central"),
            split=SplitSpec(),
            description=f"user data from {path}",
            source=str(path),
        )
    if columns is not None:
        variables = parse_columns(columns)
        card = dataclasses.replace(
            card, variables=variables, columns=tuple(v.name for v in variables)
        )
    assert card.file is not None
    file = _file_overrides(card.file, time_col, traj_col, derivative, names, skip_rows)
    return dataclasses.replace(card, file=file)


def parse_names(text: str | None) -> tuple[str, ...] | None:
    """``--names 'trial,t,o,v'`` -> the file's column names (``None`` stays ``None``)."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise InputError(f"--names: expected column names separated by commas, got {text!r}")
    if len(set(names)) != len(names):
        raise InputError(f"--names: a column name is given twice in {text!r}")
    return names


def _file_overrides(file: FileSpec, time_col, traj_col, derivative, names, skip_rows) -> FileSpec:
    """The ``[file]`` table with the command line's options over it."""
    if skip_rows is not None and skip_rows < 0:
        raise InputError(f"--skip-rows must be >= 0, got {skip_rows}")
    return dataclasses.replace(
        file,
        time=time_col if time_col is not None else file.time,
        trajectory=traj_col if traj_col is not None else file.trajectory,
        derivative=derivative if derivative is not None else file.derivative,
        columns=parse_names(names) if names is not None else file.columns,
        skip_rows=skip_rows if skip_rows is not None else file.skip_rows,
    )


def _builtin_card(path: Path, text: str, columns, time_col, traj_col, names, skip_rows) -> Card:
    """The card of built-in dataset ``text``; refuse options that describe a data file."""
    card = read_card(path)
    given = [
        opt
        for opt, v in (
            ("--columns", columns),
            ("--time-col", time_col),
            ("--traj-col", traj_col),
            ("--names", names),
            ("--skip-rows", skip_rows),
        )
        if v is not None
    ]
    if given:
        raise InputError(f"{', '.join(given)} describe a data file; {text!r} is a built-in dataset")
    return card


def _existing_path(text: str, cards: dict[str, Path]) -> Path:
    """The file ``text`` names (a folder's ``card.toml``); refuse a name that is neither built in nor a file."""
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(
            f"unknown dataset {text!r}: not a built-in dataset ({', '.join(cards)}) and no such file"
        )
    if path.is_dir():
        inner = path / "card.toml"
        if not inner.exists():
            raise InputError(f"{path}: a folder; give a data file or a card (card.toml)")
        path = inner
    return path


def _path_card(
    path: Path, columns, time_col, traj_col, derivative, names, skip_rows
) -> tuple[Card, str]:
    """``(card, origin)`` of a card file (``"card"``, file options over it) or a data file (``"user"``)."""
    if path.suffix.lower() == ".toml":
        card = read_card(path)
        if (
            columns is not None
            or time_col is not None
            or traj_col is not None
            or derivative is not None
            or names is not None
            or skip_rows is not None
        ):
            card = _apply_file_options(
                card, columns, time_col, traj_col, derivative, names, skip_rows
            )
        return card, "card"
    card = _user_card(
        path,
        columns=columns,
        time_col=time_col,
        traj_col=traj_col,
        derivative=derivative,
        names=names,
        skip_rows=skip_rows,
    )
    return card, "user"


def _apply_split_and_derivative(
    card: Card, origin: str, derivative: str | None, train_fraction: float | None
) -> Card:
    """The card with ``--derivative`` (recorded data only) and ``--train-fraction`` applied."""
    if derivative is not None and card.kind == "simulated":
        raise InputError(
            f"--derivative applies to recorded data; {card.name!r} is simulated (exact dx/dt)"
        )
    if derivative is not None and origin == "builtin":
        card = dataclasses.replace(card, file=dataclasses.replace(card.file, derivative=derivative))
    if train_fraction is not None:
        split = dataclasses.replace(card.split, train_fraction=float(train_fraction))
        check_split(split, where="--train-fraction")
        card = dataclasses.replace(card, split=split)
    return card


def resolve_card(
    name_or_path: str | os.PathLike[str],
    *,
    columns: str | None = None,
    time_col: str | None = None,
    traj_col: str | None = None,
    derivative: str | None = None,
    train_fraction: float | None = None,
    names: str | None = None,
    skip_rows: int | None = None,
) -> tuple[Card, str]:
    """Find the card of a built-in name, a card file (``.toml``) or a data file (with options).

    Returns:
        ``(card, kind)`` with kind ``"builtin"``, ``"card"`` or ``"user"``.
    """
    text = str(name_or_path)
    cards = builtin_cards()
    if text in cards:
        card = _builtin_card(cards[text], text, columns, time_col, traj_col, names, skip_rows)
        origin = "builtin"
    else:
        card, origin = _path_card(
            _existing_path(text, cards),
            columns,
            time_col,
            traj_col,
            derivative,
            names,
            skip_rows,
        )
    card = _apply_split_and_derivative(card, origin, derivative, train_fraction)
    return card, origin


def _apply_file_options(
    card: Card, columns, time_col, traj_col, derivative, names=None, skip_rows=None
) -> Card:
    if card.kind != "recorded":
        raise InputError(
            f"{card.path}: file options apply to recorded data; this card is simulated"
        )
    if columns is not None:
        variables = parse_columns(columns)
        card = dataclasses.replace(
            card, variables=variables, columns=tuple(v.name for v in variables)
        )
    file = _file_overrides(card.file, time_col, traj_col, derivative, names, skip_rows)
    return dataclasses.replace(card, file=file)


def _simulated_dataset(
    card: Card, *, noise: float, seed: int, trajectories: int | None, cache_dir
) -> Dataset:
    sim = card.simulation
    assert sim is not None
    t, xs, dxs = generate_cached(
        card, seed=seed, noise=noise, trajectories=trajectories, cache_dir=cache_dir
    )
    trajs = [Trajectory(t=t, x=xs[i], dxdt=dxs[i]) for i in range(xs.shape[0])]
    split = card.split
    if split.by == "auto":
        split = dataclasses.replace(split, by="trajectories")
    train, test = split_trajectories(trajs, split, where=str(card.path or card.name))
    energy = card.recorded_energy
    in_dsl = energy is not None and hamiltonian_to_sympy(energy, card.var_names)[1]
    return Dataset(
        name=card.name,
        variables=card.variables,
        train=train,
        test=test,
        hamiltonian=energy if in_dsl else None,
        description=card.description,
        source=card.source,
        license=card.license,
        noise=noise,
        seed=seed,
        default_window=card.default_window,
        default_detrend=card.default_detrend,
        time_step=float((sim.t_end - sim.t_start) / (sim.points - 1)),
        kind="simulated",
        citation=card.citation,
        reference_hamiltonian=energy,
        derivative="exact",
        n_rows=None,
        extra={"card": str(card.path) if card.path else None},
        canonical=card.canonical_names == list(card.var_names),
        protocol=dict(card.protocol),
        search=dict(card.search),
    )


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    noise: float | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    columns: str | None = None,
    time_col: str | None = None,
    traj_col: str | None = None,
    derivative: str | None = None,
    train_fraction: float | None = None,
    trajectories: int | None = None,
    names: str | None = None,
    skip_rows: int | None = None,
) -> Dataset:
    """Load a built-in dataset by name, a dataset card (``.toml``), or the user's data file.

    Args:
        name_or_path: built-in name (``fsearch datasets list``), a card file, or a CSV / whitespace text
            file (its card ``<file>.toml`` beside it is used when present).
        noise: standard deviation of Gaussian noise added to simulated states (``None``: the card's default,
            0 for the built-in systems as in the Noether paper; ``0.1`` reproduces HNN's data).
        seed: seed of simulated initial states and noise.
        cache_dir: cache of simulated data (default ``$FSEARCH_CACHE`` or ``~/.cache/formula-search``).
        columns: the user file's state columns with units, ``"q:rad,p:rad/s"``.
        time_col: the user file's time column (default ``t`` or ``time``).
        traj_col: the user file's trajectory-id column (default: one trajectory).
        derivative: finite-difference scheme of recorded data, ``"forward"`` or ``"central"``.
        train_fraction: override the share of trajectories (or of a single recording) used to train.
        trajectories: override the number of simulated trajectories (the first ones are unchanged).
        names: the file's column names, comma-separated, when its header does not name every column.
        skip_rows: lines skipped at the top of the file (e.g. such a header).

    Raises:
        InputError: unknown name, bad file (one line naming file, line and column), bad options.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"--seed must be an integer, got {seed!r}")
    if noise is not None and not (math.isfinite(noise) and noise >= 0):
        raise InputError(f"--noise must be a non-negative number, got {noise!r}")
    card, origin = resolve_card(
        name_or_path,
        columns=columns,
        time_col=time_col,
        traj_col=traj_col,
        derivative=derivative,
        train_fraction=train_fraction,
        names=names,
        skip_rows=skip_rows,
    )
    if card.kind == "simulated":
        return _simulated_dataset(
            card,
            noise=card.noise if noise is None else float(noise),
            seed=int(seed),
            trajectories=trajectories,
            cache_dir=cache_dir,
        )
    if trajectories is not None:
        raise InputError(f"trajectories= applies to simulated data; {card.name!r} is recorded")
    return load_recorded(
        card, kind="recorded" if origin == "builtin" else "user", noise=noise, seed=int(seed)
    )


def list_datasets() -> pd.DataFrame:
    """The built-in datasets, one row each, read from their cards (nothing is simulated).

    Columns: ``name``, ``kind`` (simulated/recorded), ``variables`` (``"q [rad], p [kg*m^2/s]"``),
    ``trajectories`` (total; for a recording, after the split), ``points`` (per trajectory, text),
    ``split`` (e.g. ``"25/25"``), ``hamiltonian``, ``source``, ``card`` (path).
    """
    rows = []
    for name, path in builtin_cards().items():
        card = read_card(path)
        variables = ", ".join(f"{v.name} [{v.unit}]" for v in card.variables)
        if card.kind == "simulated":
            sim = card.simulation
            n = sim.trajectories
            by_time = card.split.by == "time" or (card.split.by == "auto" and n < 2)
            if by_time:  # each recording cut in time order: the training part in its pieces
                split = f"{card.split.train_pieces * n}/{n}"
            else:
                n_train = int(math.floor(n * card.split.train_fraction + 1e-9))
                split = f"{n_train}/{n - n_train}"
            trajectories, points = n, str(sim.points)
        else:
            ds = load_recorded(card)
            trajectories = len(ds.train) + len(ds.test)
            lens = sorted({len(tr) for tr in ds.train + ds.test})
            points = (
                "-".join(str(v) for v in (lens[0], lens[-1])) if len(lens) > 1 else str(lens[0])
            )
            split = f"{len(ds.train)}/{len(ds.test)}"
        rows.append(
            {
                "name": name,
                "kind": card.kind,
                "variables": variables,
                "trajectories": trajectories,
                "points": points,
                "split": split,
                "hamiltonian": card.hamiltonian or "",
                "source": card.source.splitlines()[0] if card.source else "",
                "card": str(path),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "name",
            "kind",
            "variables",
            "trajectories",
            "points",
            "split",
            "hamiltonian",
            "source",
            "card",
        ],
    )


__all__ = ["builtin_dir", "list_datasets", "load_dataset", "parse_columns", "resolve_card"]
