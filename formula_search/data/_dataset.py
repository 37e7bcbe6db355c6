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
