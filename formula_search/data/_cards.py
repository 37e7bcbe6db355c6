"""Dataset cards: the declarative TOML description of a dataset.

A card says what a dataset is (name, variables with units, source, license), where its numbers come from
(a simulation of a Hamiltonian, or a recorded file) and how it is split. Adding a built-in system is adding a
card under ``datasets/``; no code changes. The schema (every key, with defaults) is documented in
``docs/datasets.md``.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dsl
from formula_search.errors import InputError

#: The dataset every command uses when none is named.
DEFAULT_DATASET = "ideal_pendulum"

_KINDS = ("simulated", "recorded")
_DERIVATIVES = ("forward", "central")


@dataclass(frozen=True)
class SimulationSpec:
    """How a simulated dataset is generated (the ``[simulation]`` table of a card).

    Attributes:
        trajectories: number of trajectories generated.
        t_start, t_end: integration span (time units of the card).
        points: evaluation points per trajectory, evenly spaced on ``[t_start, t_end]`` (both included).
        rtol, atol: tolerances of ``scipy.integrate.solve_ivp``.
        method: ``solve_ivp`` method.
        initial: initial-state sampler: ``{"kind": "radius", "r_min": .., "r_max": ..}`` (random direction in
            the full state space, radius uniform in ``[r_min, r_max]``, as HNN) or
            ``{"kind": "two_body_circular", "r_min": .., "r_max": .., "orbit_noise": ..}`` (HNN's orbits).
        noise_stream: ``"inline"``: the observation noise is drawn from the same random stream right after each
            trajectory's initial state, as HNN does for the pendulum and the spring (so the seed gives HNN's
            initial states and noise); ``"separate"``: from an independent stream (HNN's orbits draw none).
        momenta: velocities recorded instead of momenta: ``{"w1": "p1"}`` integrates Hamilton's equations
            with the momentum ``p1`` (the name the Hamiltonian uses) and records ``w1 = dH/dp1`` (a camera
            sees angular velocities, not momenta). Empty: the variables are the canonical coordinates.
    """

    trajectories: int
    t_start: float
    t_end: float
    points: int
    rtol: float = 1e-10
    atol: float = 1e-12
    method: str = "DOP853"
    initial: Mapping[str, Any] = field(default_factory=dict)
    noise_stream: str = "inline"
    momenta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileSpec:
    """Where a recorded dataset's numbers are (the ``[file]`` table of a card).

    Attributes:
        path: the data file (CSV, or whitespace-separated text).
        columns: names of the file's columns when its header does not give them (``None``: read the header).
        skip_rows: lines skipped at the top before reading (e.g. a header that does not name every column).
        time: name of the time column (``None``: ``t`` or ``time``).
        trajectory: name of the trajectory-id column (``None``: the file is one trajectory).
        derivative: finite-difference scheme for dx/dt: ``"forward"`` (HNN; the last point of each trajectory
            is dropped) or ``"central"`` (second order on an uneven grid, one-sided at both ends).
    """

    path: Path
    columns: tuple[str, ...] | None = None
    skip_rows: int = 0
    time: str | None = None
    trajectory: str | None = None
    derivative: str = "central"


@dataclass(frozen=True)
class SplitSpec:
    """How points are split into train and test (the ``[split]`` table).

    Attributes:
        train_fraction: share of trajectories (or, for one continuous recording, of points) used to train.
        test_first: the test part comes first (HNN's orbits take the first 20% as test).
        by: ``"trajectories"`` (whole trajectories go to one side), ``"time"`` (each recording is split in time
            order) or ``"auto"`` (by trajectories when there are at least two, else by time).
        train_pieces: a time split cuts the training part into this many equal trajectories (the Noether paper
            cuts the real pendulum's training part into 4).
    """

    train_fraction: float = 0.8
    test_first: bool = False
    by: str = "auto"
    train_pieces: int = 1


@dataclass(frozen=True)
class Card:
    """A parsed dataset card.

    Attributes:
        name: dataset name (``fsearch datasets show NAME``).
        kind: ``"simulated"`` or ``"recorded"``.
        variables: the state variables with units; for simulated systems the first half are the
            coordinates q_i and the second half their conjugate momenta p_i, in the same order.
        columns: data-file column of each variable (recorded data), in ``variables`` order.
        hamiltonian: reference Hamiltonian as text (``None`` if unknown), in the canonical variables (the
            momenta of :attr:`SimulationSpec.momenta` in place of the velocities recorded).
        energy: the conserved energy in the recorded variables, when they are not canonical (velocities).
        search: how the run searches these data (``[search]``: ``terms``, ``term_depth``, ``beam``,
            ``operators``: the term search for laws of several terms; ``measure``: the conservation
            measure); empty: the enumeration with the default measure.
        protocol: the meta-tailoring protocol's settings for these data (``[protocol]``: see
            :data:`PROTOCOL_KEYS`), which :func:`meta_tailor.advanced.paper_configs` reads; empty: its defaults.
        simulation: generation recipe (simulated cards).
        file: data file description (recorded cards).
        split: train/test split.
        noise: default observation noise (standard deviation added to every state variable).
        default_window: conservation window in points for dissipative recordings (``None``: whole trajectory).
        default_detrend: whether the fitter removes a slow linear drift inside each window (dissipative data).
        description, source, license, citation: free text shown by ``fsearch datasets show``.
        path: the card file (``None`` for a card built from command-line options).
        text: the card's text (part of the cache key).
    """

    name: str
    kind: str
    variables: tuple[dsl.Variable, ...]
    columns: tuple[str, ...]
    hamiltonian: str | None = None
    energy: str | None = None
    protocol: Mapping[str, Any] = field(default_factory=dict)
    search: Mapping[str, Any] = field(default_factory=dict)
    simulation: SimulationSpec | None = None
    file: FileSpec | None = None
    split: SplitSpec = field(default_factory=SplitSpec)
    noise: float = 0.0
    default_window: int | None = None
    default_detrend: bool = False
    description: str = ""
    source: str = ""
    license: str = ""
    citation: str = ""
    path: Path | None = None
    text: str = ""

    @property
    def canonical_names(self) -> list[str]:
        """The variables the Hamiltonian is written in: the recorded ones, momenta for velocities."""
        momenta = self.simulation.momenta if self.simulation is not None else {}
        return [momenta.get(v.name, v.name) for v in self.variables]

    @property
    def recorded_energy(self) -> str | None:
        """The energy in the recorded variables: ``energy``, or the Hamiltonian when they are canonical."""
        if self.energy is not None:
            return self.energy
        return None if self.canonical_names != list(self.var_names) else self.hamiltonian

    @property
    def var_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)


# -- locating built-in cards -------------------------------------------------------------------------------


def builtin_dir() -> Path:
    """The folder of the built-in cards: installed as ``formula_search.builtin_datasets``, else the checkout's
    top-level ``datasets/``."""
    try:
        spec = importlib.util.find_spec("formula_search.builtin_datasets")
    except (ModuleNotFoundError, ValueError):
        spec = None
    # a data-only folder is a namespace package: use its search locations rather than files()
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location)
        if path.is_dir() and any(path.glob("*.toml")):
            return path
    # the repository's datasets/ beside the package (formula_search/data/_cards.py -> the repository root)
    return Path(__file__).resolve().parents[2] / "datasets"


@functools.cache
def _builtin_cards(root: Path) -> dict[str, Path]:
    paths = sorted(root.glob("*.toml")) + sorted(root.glob("*/card.toml"))
    out: dict[str, Path] = {}
    for path in paths:
        name = path.stem if path.name != "card.toml" else path.parent.name
        out[name] = path
    return out


def builtin_cards() -> dict[str, Path]:
    """Map each built-in dataset name to its card file, in name order."""
    return dict(sorted(_builtin_cards(builtin_dir()).items()))


# -- reading a card ----------------------------------------------------------------------------------------


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return i
    return None


def _where(path: Path | None, text: str, needle: str | None = None) -> str:
    where = str(path) if path is not None else "card"
    if needle is not None and (line := _line_of(text, needle)) is not None:
        where += f", line {line}"
    return where


def make_variable(name: str, unit: str, *, where: str) -> dsl.Variable:
    """Build a :class:`dsl.Variable`, turning a bad name or unit into an :class:`InputError` naming ``where``."""
    try:
        return dsl.Variable(name, unit)
    except InputError as exc:
        raise InputError(f"{where}: variable {name!r}: {exc}") from None
    except ValueError as exc:  # defensive: any other rejection of the name
        raise InputError(f"{where}: variable {name!r}: {exc}") from None


#: Every key a card may have, per table (``None``: the top level). ``[simulation] initial`` is checked by
#: the sampler it names.
CARD_KEYS: dict[str | None, tuple[str, ...]] = {
    None: (
        "name",
        "kind",
        "description",
        "source",
        "license",
        "citation",
        "hamiltonian",
        "energy",
        "noise",
        "default_window",
        "default_detrend",
        "variables",
        "simulation",
        "file",
        "split",
        "protocol",
        "search",
    ),
    "variables": ("name", "unit", "column", "description"),
    "simulation": (
        "trajectories",
        "t_start",
        "t_end",
        "points",
        "rtol",
        "atol",
        "method",
        "initial",
        "noise_stream",
        "momenta",
    ),
    "file": ("path", "columns", "skip_rows", "time", "trajectory", "derivative"),
    "split": ("train_fraction", "test_first", "by", "train_pieces"),
    "protocol": (
        "mlp_weight_decay",
        "weight_decay",
        "inner_steps",
        "sgd_inner_lrs",
        "inner_rule",
        "outer_lr",
    ),
    "search": ("terms", "term_depth", "beam", "operators", "measure", "library", "extra_terms"),
}

#: The ``[protocol]`` keys and their types: the MLP's and the outer loop's Adam weight decay, the inner step
#: counts the screen tries, and the inner rates it screens with the paper's fixed-rate (sgd) rule; ``inner_rule``
#: and ``outer_lr`` pin the meta-tailoring protocol (else a run chooses it on the training data).
PROTOCOL_KEYS: dict[str, type] = {
    "mlp_weight_decay": float,
    "weight_decay": float,
    "inner_steps": list,
    "sgd_inner_lrs": list,
    "inner_rule": str,
    "outer_lr": float,
}

#: The inner rules a card's ``[protocol] inner_rule`` may name, and the measures ``[search] measure`` may.
INNER_RULES = ("sgd", "polyak")
MEASURES = ("derivative", "paper")


def _check_keys(
    table: Mapping[str, Any], section: str | None, path: Path | None, text: str
) -> None:
    """Refuse a key the card schema does not have (a typo would otherwise be ignored silently)."""
    known = CARD_KEYS[section]
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
            place = f"[{section}] " if section else ""
            raise InputError(f"{_where(path, text, str(key))}: unknown key {place}{key!r}{hint}")


def _get(
    table: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str, default: Any = ...
):
    if key not in table:
        if default is ...:
            raise InputError(f"{where}: missing key {key!r}")
        return default
    value = table[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise InputError(f"{where}: key {key!r} must be {names}, got {value!r}")
    return value


def _load_toml(text: str, path: Path | None, where: str) -> dict[str, Any]:
    """Parse the card's TOML and refuse unknown keys at the top level and in its tables."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not a valid TOML card: {exc}") from None
    _check_keys(raw, None, path, text)
    for section in ("simulation", "file", "split", "protocol", "search"):
        if isinstance(raw.get(section), dict):
            _check_keys(raw[section], section, path, text)
    return raw


def _default_name(path: Path | None) -> str:
    """The dataset name a card without ``name`` gets: its folder for ``card.toml``, else its file name."""
    if path is not None and path.name == "card.toml":
        return path.parent.name
    return path.stem if path is not None else "dataset"


def _parse_kind(
    raw: Mapping[str, Any], path: Path | None, text: str, where: str, data_path: Path | None
) -> str:
    """The card's ``kind`` (default: recorded when it describes a file, else simulated), checked."""
    kind = _get(raw, "kind", str, where, "recorded" if "file" in raw or data_path else "simulated")
    if kind not in _KINDS:
        raise InputError(
            f"{_where(path, text, 'kind')}: kind must be one of {', '.join(_KINDS)}, got {kind!r}"
        )
    return kind


def _parse_variables(
    raw: Mapping[str, Any], path: Path | None, text: str, where: str
) -> tuple[list[dsl.Variable], list[str]]:
    """The ``[[variables]]`` entries as variables and their data-file columns, names checked unique."""
    raw_vars = _get(raw, "variables", list, where)
    if not raw_vars:
        raise InputError(f"{where}: the card lists no variables")
    variables, columns = [], []
    for item in raw_vars:
        if isinstance(item, dict):
            _check_keys(item, "variables", path, text)
        if not isinstance(item, dict) or "name" not in item or "unit" not in item:
            raise InputError(f"{where}: each [[variables]] entry needs a name and a unit")
        vname, unit = str(item["name"]), str(item["unit"])
        variables.append(make_variable(vname, unit, where=_where(path, text, f'"{unit}"')))
        columns.append(str(item.get("column", vname)))
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: repeated variable name in {names}")
    return variables, columns


def _parse_hamiltonian(
    raw: Mapping[str, Any],
    names: list[str],
    path: Path | None,
    text: str,
    where: str,
    key: str = "hamiltonian",
) -> str | None:
    """The card's ``hamiltonian`` (or ``energy``) text (``None`` if absent), checked to parse over
    ``names``."""
    hamiltonian = _get(raw, key, str, where, None)
    if hamiltonian is not None:
        from formula_search.data._simulate import hamiltonian_to_sympy

        try:
            hamiltonian_to_sympy(hamiltonian, names)
        except InputError as exc:
            raise InputError(f"{_where(path, text, key)}: {exc}") from None
    return hamiltonian


def _parse_momenta(raw: Mapping[str, Any], names: list[str], where: str) -> dict[str, str]:
    """``[simulation] momenta``: recorded velocity -> the momentum the Hamiltonian names in its place."""
    sim = raw.get("simulation")
    momenta = sim.get("momenta", {}) if isinstance(sim, dict) else {}
    swhere = f"{where} [simulation] momenta"
    if not isinstance(momenta, dict) or not all(isinstance(v, str) for v in momenta.values()):
        raise InputError(f'{swhere}: expected a table such as {{ w1 = "p1" }}')
    half = names[len(names) // 2 :]
    for velocity, momentum in momenta.items():
        if velocity not in half:
            raise InputError(
                f"{swhere}: {velocity!r} is not one of the second half of the variables "
                f"({', '.join(half)}), where the momenta stand"
            )
        if momentum in names or not momentum.isidentifier():
            raise InputError(
                f"{swhere}: {momentum!r} must be a new name for the momentum of {velocity}"
            )
    if len(set(momenta.values())) != len(momenta):
        raise InputError(f"{swhere}: two velocities share a momentum name")
    return dict(momenta)


def _parse_fit_defaults(
    raw: Mapping[str, Any], path: Path | None, text: str, where: str
) -> tuple[float, int | None, bool]:
    """The card's ``noise``, ``default_window`` and ``default_detrend``, checked."""
    noise = _get(raw, "noise", float, where, 0.0)
    if not (math.isfinite(noise) and noise >= 0):
        raise InputError(f"{_where(path, text, 'noise')}: noise must be a non-negative number")
    window = _get(raw, "default_window", int, where, None)
    if window is not None and window < 2:
        raise InputError(
            f"{_where(path, text, 'default_window')}: default_window must be at least 2"
        )

    detrend = _get(raw, "default_detrend", bool, where, False)
    return noise, window, detrend


def _parse_simulation(
    raw: Mapping[str, Any], where: str, hamiltonian: str | None, names: list[str]
) -> SimulationSpec:
    """The ``[simulation]`` table of a simulated card, checked against its Hamiltonian and variables."""
    sim = _get(raw, "simulation", dict, where)
    swhere = f"{where} [simulation]"
    simulation = SimulationSpec(
        trajectories=_get(sim, "trajectories", int, swhere),
        t_start=_get(sim, "t_start", float, swhere, 0.0),
        t_end=_get(sim, "t_end", float, swhere),
        points=_get(sim, "points", int, swhere),
        rtol=_get(sim, "rtol", float, swhere, 1e-10),
        atol=_get(sim, "atol", float, swhere, 1e-12),
        method=_get(sim, "method", str, swhere, "DOP853"),
        initial=dict(_get(sim, "initial", dict, swhere)),
        noise_stream=_get(sim, "noise_stream", str, swhere, "inline"),
        momenta=_parse_momenta(raw, names, where),
    )
    if hamiltonian is None:
        raise InputError(f"{where}: a simulated dataset needs a hamiltonian")
    if len(names) % 2:
        raise InputError(f"{where}: a simulated dataset needs as many momenta as coordinates")
    if simulation.trajectories < 1 or simulation.points < 3:
        raise InputError(f"{swhere}: need at least 1 trajectory and 3 points")
    if not simulation.t_end > simulation.t_start:
        raise InputError(f"{swhere}: t_end must be after t_start")
    if simulation.noise_stream not in ("inline", "separate"):
        raise InputError(f"{swhere}: noise_stream must be 'inline' or 'separate'")
    return simulation


def _parse_file(
    raw: Mapping[str, Any], where: str, path: Path | None, data_path: Path | None
) -> FileSpec:
    """The ``[file]`` table of a recorded card, its relative path resolved against the card's folder."""
    fil = _get(raw, "file", dict, where, {} if data_path is not None else ...)
    fwhere = f"{where} [file]"
    file_path = Path(
        _get(fil, "path", str, fwhere, str(data_path) if data_path is not None else ...)
    )
    if not file_path.is_absolute() and path is not None:
        file_path = path.parent / file_path
    cols = _get(fil, "columns", list, fwhere, None)
    file = FileSpec(
        path=file_path,
        columns=None if cols is None else tuple(str(c) for c in cols),
        skip_rows=_get(fil, "skip_rows", int, fwhere, 0),
        time=_get(fil, "time", str, fwhere, None),
        trajectory=_get(fil, "trajectory", str, fwhere, None),
        derivative=_get(fil, "derivative", str, fwhere, "central"),
    )
    if file.derivative not in _DERIVATIVES:
        raise InputError(f"{fwhere}: derivative must be one of {', '.join(_DERIVATIVES)}")
    return file


def _parse_protocol(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[protocol]`` table: numbers non-negative, step counts whole and positive, rates positive."""
    table = _get(raw, "protocol", dict, where, {})
    pwhere = f"{where} [protocol]"
    out: dict[str, Any] = {}
    for key, typ in PROTOCOL_KEYS.items():
        if key not in table:
            continue
        value = _get(table, key, typ, pwhere)
        if key == "inner_rule":
            if value not in INNER_RULES:
                raise InputError(f"{pwhere}: inner_rule must be one of {', '.join(INNER_RULES)}")
            out[key] = value
        elif key == "outer_lr":
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{pwhere}: outer_lr must be a positive number")
            out[key] = float(value)
        elif typ is float:
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{pwhere}: {key} must be a non-negative number")
            out[key] = float(value)
        elif key == "inner_steps":
            if not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
            ):
                raise InputError(f"{pwhere}: inner_steps must be a list of whole numbers >= 1")
            out[key] = [int(v) for v in value]
        else:
            ok = value and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            )
            if not ok or not all(math.isfinite(v) and v > 0 for v in value):
                raise InputError(f"{pwhere}: {key} must be a list of positive numbers")
            out[key] = [float(v) for v in value]
    return out


def _parse_search(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[search]`` table: whole numbers for the term search's sizes, operators of the language."""
    table = _get(raw, "search", dict, where, {})
    swhere = f"{where} [search]"
    out: dict[str, Any] = {}
    for key in ("terms", "term_depth", "beam"):
        if key in table:
            value = _get(table, key, int, swhere)
            if value < (2 if key == "terms" else 1):
                raise InputError(f"{swhere}: {key} must be at least {2 if key == 'terms' else 1}")
            out[key] = value
    if "operators" in table:
        names = _get(table, "operators", list, swhere)
        if not all(isinstance(n, str) for n in names):
            raise InputError(f"{swhere}: operators must be a list of operator names")
        out["operators"] = list(dsl.check_operators(names))
    if "library" in table:
        library = _get(table, "library", str, swhere)
        if library not in ("enumerate", "products"):
            raise InputError(f"{swhere}: library must be one of enumerate, products")
        out["library"] = library
    if "extra_terms" in table:
        extra = _get(table, "extra_terms", list, swhere)
        if not all(isinstance(t, str) and t.strip() for t in extra):
            raise InputError(f"{swhere}: extra_terms must be a list of formulas (strings)")
        out["extra_terms"] = list(extra)
    if "measure" in table:
        measure = _get(table, "measure", str, swhere)
        if measure not in MEASURES:
            raise InputError(f"{swhere}: measure must be one of {', '.join(MEASURES)}")
        out["measure"] = measure
    return out


def _parse_split(raw: Mapping[str, Any], where: str) -> SplitSpec:
    """The ``[split]`` table (defaults when absent), checked."""
    spl = _get(raw, "split", dict, where, {})
    pwhere = f"{where} [split]"
    split = SplitSpec(
        train_fraction=_get(spl, "train_fraction", float, pwhere, 0.8),
        test_first=_get(spl, "test_first", bool, pwhere, False),
        by=_get(spl, "by", str, pwhere, "auto"),
        train_pieces=_get(spl, "train_pieces", int, pwhere, 1),
    )
    check_split(split, where=pwhere)
    return split


def parse_card(
    text: str, *, path: Path | None = None, name: str | None = None, data_path: Path | None = None
) -> Card:
    """Parse the TOML text of a card.

    Args:
        text: TOML text.
        path: the card's file; relative data paths are resolved against its folder.
        name: dataset name when the card gives none (defaults to the file name).
        data_path: the data file a card beside it describes (used when ``[file]`` gives no ``path``).

    Raises:
        InputError: malformed TOML, a missing or mistyped key, an unknown unit.
    """
    where = str(path) if path is not None else "card"
    raw = _load_toml(text, path, where)
    name = _get(raw, "name", str, where, name or _default_name(path))
    kind = _parse_kind(raw, path, text, where, data_path)
    variables, columns = _parse_variables(raw, path, text, where)
    names = [v.name for v in variables]
    momenta = _parse_momenta(raw, names, where) if kind == "simulated" else {}
    canonical = [momenta.get(n, n) for n in names]
    hamiltonian = _parse_hamiltonian(raw, canonical, path, text, where)
    energy = _parse_hamiltonian(raw, names, path, text, where, key="energy")
    noise, window, detrend = _parse_fit_defaults(raw, path, text, where)

    simulation = file = None
    if kind == "simulated":
        simulation = _parse_simulation(raw, where, hamiltonian, names)
    else:
        file = _parse_file(raw, where, path, data_path)
    split = _parse_split(raw, where)
    protocol = _parse_protocol(raw, where)
    search = _parse_search(raw, where)

    return Card(
        name=name,
        kind=kind,
        variables=tuple(variables),
        columns=tuple(columns),
        hamiltonian=hamiltonian,
        energy=energy,
        protocol=protocol,
        search=search,
        simulation=simulation,
        file=file,
        split=split,
        noise=noise,
        default_window=window,
        default_detrend=detrend,
        description=_get(raw, "description", str, where, "").strip(),
        source=_get(raw, "source", str, where, "").strip(),
        license=_get(raw, "license", str, where, "").strip(),
        citation=_get(raw, "citation", str, where, "").strip(),
        path=path,
        text=text,
    )


def check_split(split: SplitSpec, *, where: str) -> None:
    """Raise :class:`InputError` if ``split`` is not a usable split."""
    if not 0.0 < split.train_fraction < 1.0:
        raise InputError(
            f"{where}: train_fraction must be between 0 and 1, got {split.train_fraction}"
        )
    if split.by not in ("auto", "trajectories", "time"):
        raise InputError(f"{where}: by must be 'auto', 'trajectories' or 'time', got {split.by!r}")
    if split.train_pieces < 1:
        raise InputError(f"{where}: train_pieces must be at least 1")


def read_card(path: str | Path) -> Card:
    """Read and parse the card at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such card") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the card: {exc}") from None
    return parse_card(text, path=path)
