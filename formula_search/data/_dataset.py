"""The dataset interface every later stage reads: trajectories with units, time steps and a split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import dsl
from formula_search.errors import InputError


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One trajectory: states at increasing times and their time derivatives.

    Attributes:
        t: (T,) float64 times, strictly increasing (time unit of the dataset).
        x: (T, n_vars) float64 states, columns in :attr:`Dataset.variables` order.
        dxdt: (T, n_vars) float64 time derivatives. Simulated systems: exact, from the Hamiltonian, evaluated
            on the noise-free state (as HNN does). Recorded data: finite differences divided by the actual
            time step, by the scheme the dataset names (:attr:`Dataset.derivative`): ``"forward"``
            ``(x[i+1] - x[i]) / (t[i+1] - t[i])`` (HNN's scheme; the recording's last point is dropped) or
            ``"central"`` (second-order three-point formula on an uneven grid, one-sided at both ends).
    """

    t: np.ndarray
    x: np.ndarray
    dxdt: np.ndarray

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.t, dtype=np.float64)
        x = np.ascontiguousarray(self.x, dtype=np.float64)
        dxdt = np.ascontiguousarray(self.dxdt, dtype=np.float64)
        if t.ndim != 1 or x.ndim != 2 or x.shape[0] != t.shape[0] or dxdt.shape != x.shape:
            raise ValueError(f"bad trajectory shapes t{t.shape} x{x.shape} dxdt{dxdt.shape}")
        for a in (t, x, dxdt):
            a.setflags(write=False)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "dxdt", dxdt)

    def __len__(self) -> int:
        return self.t.shape[0]

    @property
    def dt(self) -> np.ndarray:
        """(T-1,) actual time steps."""
        return np.diff(self.t)


# -- checking arrays given to Dataset.from_arrays ---------------------------------------------------------


def _check_variables(variables) -> tuple[dsl.Variable, ...]:
    """``"q:rad, p:rad/s"`` or a sequence of :class:`dsl.Variable` as a non-empty tuple of variables."""
    variables = dsl.parse_variables(variables) if isinstance(variables, str) else tuple(variables)
    if not variables or not all(isinstance(v, dsl.Variable) for v in variables):
        raise InputError(
            "variables: give 'q:rad, p:rad/s' or dsl.Variable objects (a name and a unit each)"
        )
    return variables


def _as_list(a, what, ndim):
    """One array per trajectory; a single array (or a flat list of numbers) is one."""
    if a is None:
        return None
    try:
        if isinstance(a, list | tuple) and any(np.ndim(v) >= ndim for v in a):
            return [np.asarray(v, dtype=np.float64) for v in a]
        return [np.asarray(a, dtype=np.float64)]
    except (TypeError, ValueError):
        raise InputError(f"{what}: not an array of numbers") from None


def _per_trajectory(x, t, dxdt, trajectory):
    """States, times and derivatives as lists of one array per trajectory (``None`` when not given),
    a single array cut into trajectories by the ``trajectory`` ids (in order of first appearance)."""
    xs, ts, ds = _as_list(x, "x", 2), _as_list(t, "t", 1), _as_list(dxdt, "dxdt", 2)
    for other, what in ((ts, "t"), (ds, "dxdt")):
        if other is not None and len(other) != len(xs):
            raise InputError(
                f"{what}: {len(other)} array(s) for {len(xs)} trajectories of x; give one per trajectory"
            )
    if trajectory is not None:
        if len(xs) != 1:
            raise InputError("trajectory= splits one array; x is already a list of trajectories")
        ids = np.asarray(trajectory)
        if ids.shape != (len(xs[0]),):
            raise InputError(f"trajectory has shape {ids.shape}; expected ({len(xs[0])},)")
        _, first = np.unique(ids, return_index=True)
        groups = [np.nonzero(ids == ids[i])[0] for i in sorted(first)]
        xs = [xs[0][g] for g in groups]
        ts = None if ts is None else [ts[0][g] for g in groups]
        ds = None if ds is None else [ds[0][g] for g in groups]
    return xs, ts, ds


def _checked_trajectory(k, xs, ts, ds, n, derivative) -> Trajectory:
    """Trajectory ``k`` after checking its shapes, values and times; ``dxdt`` by finite differences
    (``derivative``) when ``ds`` is ``None``."""
    from formula_search.data._loaders import MIN_POINTS, finite_difference

    xk = xs[k]
    where = f"trajectory {k}" if len(xs) > 1 else "x"
    if xk.ndim != 2 or xk.shape[1] != n:
        raise InputError(f"{where}: shape {xk.shape}; expected (points, {n}) for {n} variables")
    tk = np.arange(len(xk), dtype=np.float64) if ts is None else ts[k]
    if tk.shape != (len(xk),):
        raise InputError(f"{where}: {len(xk)} states but times of shape {tk.shape}")
    if len(xk) < MIN_POINTS:
        raise InputError(f"{where}: {len(xk)} points; each trajectory needs {MIN_POINTS}")
    if not (np.isfinite(xk).all() and np.isfinite(tk).all()):
        raise InputError(f"{where}: the states or times hold NaN or infinite values")
    if not np.all(np.diff(tk) > 0):
        raise InputError(f"{where}: time does not increase")
    if ds is not None:
        if ds[k].shape != xk.shape or not np.isfinite(ds[k]).all():
            raise InputError(f"{where}: dxdt must be finite and of the shape of x")
        return Trajectory(t=tk, x=xk, dxdt=ds[k])
    return Trajectory(*finite_difference(tk, xk, derivative))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Trajectories of a physical system, with units, a time step and a train/test split.

    Attributes:
        name: dataset name.
        variables: state variables (name and unit) in column order of every ``x``.
        train, test: the split's trajectories.
        hamiltonian: reference Hamiltonian in DSL text (e.g. ``"3*(1 - cos(q)) + p^2"``), ``None`` if unknown
            or not expressible in the DSL (see :attr:`reference_hamiltonian`).
        description, source, license, citation: provenance, shown by ``fsearch datasets show``.
        noise: standard deviation of the Gaussian noise added to the states (simulated data; 0 for none).
        seed: random seed the data were generated with.
        default_window: conservation window (points) for dissipative recordings; ``None``: whole trajectories.
        default_detrend: whether conservation is measured after removing a slow linear drift per window.
        time_step: typical (median) time step.
        kind: ``"simulated"``, ``"recorded"`` (a built-in recording) or ``"user"`` (the user's file).
        reference_hamiltonian: the reference energy as text in the simulator's syntax, which also allows
            ``sqrt``/``exp``/``log`` and powers (two-body gravity); equal to :attr:`hamiltonian` when the DSL
            can write it.
        derivative: how ``dxdt`` was obtained: ``"exact"``, ``"forward"`` or ``"central"``.
        n_rows: data rows read from the file (recorded data), else ``None``.
        search: how a run searches these data (the card's ``[search]``: the term search's ``terms``,
            ``term_depth``, ``beam``, ``operators``; the ``measure``); empty: the enumeration.
        protocol: the meta-tailoring settings of the data's card (``[protocol]``), read by
            :func:`meta_tailor.advanced.paper_configs`; empty: its defaults.
        canonical: the variables are canonical, coordinates first and their momenta after them in the same
            order (a simulation of a Hamiltonian); the Hamiltonian is then the conserved quantity whose
            symplectic gradient is the velocity, which the term search uses to name the energy first.
    """

    name: str
    variables: tuple[dsl.Variable, ...]
    train: tuple[Trajectory, ...]
    test: tuple[Trajectory, ...]
    hamiltonian: str | None = None
    description: str = ""
    source: str = ""
    license: str = ""
    noise: float = 0.0
    seed: int = 0
    default_window: int | None = None
    default_detrend: bool = False
    time_step: float = float("nan")
    kind: str = "simulated"
    citation: str = ""
    reference_hamiltonian: str | None = None
    derivative: str = "exact"
    n_rows: int | None = None
    extra: dict = field(default_factory=dict, repr=False)
    canonical: bool = False
    protocol: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)

    def search_measure(self, *, terms: bool = False) -> str:
        """The conservation measure a search of these data uses unless told another: the derivative
        measure for the term search (``terms``, the only one it has), else the card's ``[search] measure``,
        else ``"derivative"``."""
        return "derivative" if terms else self.search.get("measure", "derivative")

    @classmethod
    def from_arrays(
        cls,
        x,
        t=None,
        *,
        variables,
        trajectory=None,
        dxdt=None,
        name: str = "arrays",
        train_fraction: float = 0.8,
        split: str = "auto",
        derivative: str = "central",
    ) -> Dataset:
        """A dataset from arrays in memory (a notebook's recording).

        Args:
            x: (T, n_vars) states, or a list of such arrays, one per trajectory.
            t: (T,) increasing times (or a list, one per trajectory); ``None``: steps of 1.
            variables: ``"q:rad, p:rad/s"`` or a sequence of :class:`dsl.Variable`, in column order.
            trajectory: (T,) trajectory id of each row of a single ``x`` (rows of one id in time order).
            dxdt: exact time derivatives in the shape of ``x`` (a simulation's); ``None``: the fit smooths
                the states itself and ``dxdt`` holds finite differences (``derivative``).
            name: the dataset's name in tables and run folders.
            train_fraction, split: the train/test split (``"auto"``: by trajectories when there are
                several, else the first ``train_fraction`` of the one recording's time).
            derivative: ``"central"`` or ``"forward"`` finite differences for ``dxdt`` when not given.

        Raises:
            InputError: shapes that do not agree, non-finite values, times that do not increase, a
                trajectory of fewer than 3 points, a split with an empty side.
        """
        from formula_search.data._cards import SplitSpec, check_split
        from formula_search.data._loaders import split_trajectories

        variables = _check_variables(variables)
        xs, ts, ds = _per_trajectory(x, t, dxdt, trajectory)
        trajs = [
            _checked_trajectory(k, xs, ts, ds, len(variables), derivative) for k in range(len(xs))
        ]
        spec = SplitSpec(train_fraction=train_fraction, by=split)
        check_split(spec, where="split")
        train, test = split_trajectories(trajs, spec, where=name)
        steps = np.concatenate([tr.dt for tr in trajs])
        return cls(
            name=name,
            variables=variables,
            train=train,
            test=test,
            time_step=float(np.median(steps)),
            kind="user",
            derivative="exact" if ds is not None else derivative,
        )

    def __post_init__(self) -> None:
        n = len(self.variables)
        for traj in (*self.train, *self.test):
            if traj.x.shape[1] != n:
                raise ValueError(f"trajectory has {traj.x.shape[1]} variables, dataset has {n}")

    @property
    def var_names(self) -> tuple[str, ...]:
        """Variable names in column order."""
        return tuple(v.name for v in self.variables)

    @property
    def units(self) -> tuple[str, ...]:
        """Variable units in column order."""
        return tuple(v.unit for v in self.variables)

    def trajectories(self, split: str) -> tuple[Trajectory, ...]:
        """The trajectories of ``split`` (``"train"``, ``"test"`` or ``"all"``)."""
        if split == "train":
            return self.train
        if split == "test":
            return self.test
        if split == "all":
            return self.train + self.test
        raise InputError(f"unknown split {split!r}; use train, test or all")

    def stacked(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """All points of ``split`` stacked: ``x`` (N, n_vars) and ``dxdt`` (N, n_vars)."""
        trajs = self.trajectories(split)
        n = len(self.variables)
        if not trajs:
            return np.zeros((0, n)), np.zeros((0, n))
        return (
            np.concatenate([tr.x for tr in trajs], axis=0),
            np.concatenate([tr.dxdt for tr in trajs], axis=0),
        )

    def n_points(self, split: str) -> int:
        """Number of points in ``split``."""
        return sum(len(tr) for tr in self.trajectories(split))

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of every point.

        Columns: ``split`` (train/test), ``trajectory`` (index within the split), ``t``, one column per
        variable, and ``d_<name>`` per variable (time derivative).
        """
        frames = []
        for split in ("train", "test"):
            for i, tr in enumerate(self.trajectories(split)):
                df = pd.DataFrame(tr.x, columns=list(self.var_names))
                for j, name in enumerate(self.var_names):
                    df[f"d_{name}"] = tr.dxdt[:, j]
                df.insert(0, "t", tr.t)
                df.insert(0, "trajectory", i)
                df.insert(0, "split", split)
                frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> dict:
        """Sizes and provenance as a flat mapping (used by ``fsearch datasets show``)."""
        lens = [len(tr) for tr in (*self.train, *self.test)]
        return {
            "name": self.name,
            "kind": self.kind,
            "variables": ", ".join(f"{v.name} [{v.unit}]" for v in self.variables),
            "train_trajectories": len(self.train),
            "test_trajectories": len(self.test),
            "train_points": self.n_points("train"),
            "test_points": self.n_points("test"),
            "points_per_trajectory": (
                str(min(lens)) if lens and min(lens) == max(lens) else f"{min(lens)}-{max(lens)}"
            ),
            "time_step": self.time_step,
            "derivative": self.derivative,
            "noise": self.noise,
            "seed": self.seed,
            "default_window": self.default_window,
            "default_detrend": self.default_detrend,
            "hamiltonian": self.reference_hamiltonian or self.hamiltonian,
        }
