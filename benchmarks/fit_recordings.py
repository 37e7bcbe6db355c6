"""Does the fit find the law in one recording? Simulated single trajectories, with and without noise.

    python benchmarks/fit_recordings.py                      # every case, noise 0, 1% and 5%, derivative measure
    python benchmarks/fit_recordings.py --case pendulum --noise 0.01
    python benchmarks/fit_recordings.py --measure paper      # the Noether paper's measure, for comparison

Each case is one trajectory of 300-1,000 points at uneven time steps (sorted uniform random times), simulated
with scipy's DOP853 at rtol 1e-10; noise is Gaussian, a fraction of each variable's standard deviation. The
search is ``fsearch fit``'s: every formula up to the case's depth (conservation dedup), fitted and filtered.

Columns: ``accepted`` (formulas), ``rank`` (position of the first accepted formula equivalent to the true law,
best ratio first; ``-`` when none is), ``constants`` (that formula's constants read in the true law's form,
against the truth), ``worst err`` (largest relative error of those), ``ratio`` (its ratio) and ``time`` (fit
only, enumeration excluded). A formula is *equivalent* to the true law when it is a function of it: its
gradient is parallel to the true law's at states drawn off the data (each variable from its own range), not
only along the one trajectory, where every conserved quantity of a two-variable system looks alike. Its
constants are those of the true law's form whose gradient is parallel to the formula's along the data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import click
import numpy as np


@dataclass(frozen=True)
class Case:
    """One simulated recording and the law it should give."""

    name: str
    variables: str  # "q:rad, p:rad/s"
    rhs: object  # f(t, y) -> dy/dt
    y0: tuple[float, ...]
    t_end: float
    points: int
    depth: int
    truth: str | None  # the true law in its written form, constants as k_0, k_1, ...
    constants: tuple[float, ...] = field(default=())


def _pendulum(g=9.8, gamma=0.0):
    return lambda t, y: [y[1], -g * np.sin(y[0]) - gamma * y[1]]


def _kepler(t, y):
    x, yy, px, py = y
    r3 = (x * x + yy * yy) ** 1.5
    return [px, py, -x / r3, -yy / r3]


def _rotated(r, v, angle):
    """Kepler start: at distance r, speed v perpendicular to the radius, the periapsis at ``angle``."""
    c, s = np.cos(angle), np.sin(angle)
    return (r * c, r * s, -v * s, v * c)


def _offset_spring(t, y, k=4.0, x0=0.5, gamma=0.02):
    return [y[1], -k * (y[0] - x0) - gamma * y[1]]


def _driven(t, y):
    return [y[1], -np.sin(y[0]) - 0.5 * y[1] + 1.2 * np.cos(0.67 * t)]


CASES = {
    c.name: c
    for c in (
        # released at 90 degrees, about four swings; energy p^2/2 - 9.8 cos q
        Case(
            "pendulum",
            "q:rad, p:rad/s",
            _pendulum(),
            (np.pi / 2, 0.0),
            9.5,
            500,
            7,
            "p^2 + k_0*cos(q)",
            (-19.6,),
        ),
        Case(
            "circle",
            "x:m, y:m",
            lambda t, y: [-1.3 * y[1], 1.3 * y[0]],
            (2.0, 0.0),
            15.0,
            400,
            7,
            "x^2 + k_0*y^2",
            (1.0,),
        ),
        # eccentric orbit (e = 0.5), three revolutions, periapsis at 0.7 rad (no axis is special); its energy
        # needs 1/r: the angular momentum is checked
        Case(
            "kepler",
            "x:m, y:m, px:kg*m/s, py:kg*m/s",
            _kepler,
            _rotated(1.0, 1.2247, 0.7),
            3 * 2 * np.pi * 8**0.5,
            800,
            7,
            "x*py + k_0*y*px",
            (-1.0,),
        ),
        # the same orbit with its periapsis on the x axis: the Runge-Lenz vector's y component is then 0, and
        # that makes short formulas exact invariants of this orbit (r.p / y = e/L, px^2 + (py - c)^2, ...);
        # one orbit cannot tell them from the angular momentum, which then ranks after them
        Case(
            "kepler_aligned",
            "x:m, y:m, px:kg*m/s, py:kg*m/s",
            _kepler,
            _rotated(1.0, 1.2247, 0.0),
            3 * 2 * np.pi * 8**0.5,
            800,
            7,
            "x*py + k_0*y*px",
            (-1.0,),
        ),
        # energy decays about 7% per swing
        Case(
            "damped_pendulum",
            "q:rad, p:rad/s",
            _pendulum(gamma=0.03),
            (np.pi / 2, 0.0),
            9.5,
            500,
            7,
            "p^2 + k_0*cos(q)",
            (-19.6,),
        ),
        # rest point at x = 0.5 m, omega^2 = 4, light damping; energy (x - 0.5)^2 + v^2/4
        Case(
            "offset_spring",
            "x:m, v:m/s",
            _offset_spring,
            (1.5, 0.0),
            12.0,
            600,
            9,
            "(x + k_0)^2 + k_1*v^2",
            (-0.5, 0.25),
        ),
        # negative controls: nothing of this size is conserved
        Case("driven_damped_pendulum", "q:rad, p:rad/s", _driven, (0.2, 0.0), 60.0, 800, 7, None),
        Case("random_walk", "x:m, y:m", None, (0.0, 0.0), 100.0, 600, 7, None),
    )
}


def simulate(case: Case, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Times (T,) and states (T, n_vars) of one recording."""
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, case.t_end, case.points))
    t = t[np.concatenate([[True], np.diff(t) > 1e-9])]
    if case.rhs is None:  # a random walk: increments of variance proportional to the step
        steps = rng.standard_normal((len(t), 2)) * np.sqrt(np.diff(t, prepend=0.0))[:, None]
        x = np.cumsum(steps, 0)
    else:
        sol = solve_ivp(
            case.rhs, (0.0, case.t_end), case.y0, t_eval=t, method="DOP853", rtol=1e-10, atol=1e-12
        )
        x = sol.y.T
    x = x + noise * x.std(0) * rng.standard_normal(x.shape)
    return t, x


def _grad_fn(text_or_expr, names, params=None):
    """Numeric gradient function x (M, n_vars) -> (M, n_vars) of a formula (DSL text with values)."""
    import sympy

    import dsl

    expr = dsl.parse(text_or_expr, names) if isinstance(text_or_expr, str) else text_or_expr
    sym = dsl.to_sympy(expr, params)
    syms = [sympy.Symbol(n, real=True) for n in names]
    grads = [sympy.lambdify(syms, sympy.diff(sym, s), "numpy") for s in syms]
    return lambda x: np.stack(
        [np.broadcast_to(np.asarray(g(*x.T), float), (len(x),)) for g in grads], 1
    )


def _sin2(a, b):
    """Squared sine of the angle between rows of ``a`` and ``b`` (after scaling by ``s``)."""
    na = (a * a).sum(1)
    nb = (b * b).sum(1)
    dot = (a * b).sum(1)
    with np.errstate(all="ignore"):
        return 1.0 - dot * dot / (na * nb)


def read_law(formula: str, params, case: Case, x: np.ndarray, rng) -> tuple[bool, np.ndarray]:
    """Whether the fitted formula is a function of the true law, and the true form's constants it implies."""
    from scipy.optimize import least_squares

    import dsl

    names = [v.name for v in dsl.parse_variables(case.variables)]
    scale = x.std(0)
    g = _grad_fn(formula, names, params)(x) * scale
    truth = dsl.parse(case.truth.replace("k_", "c_"), names)

    def resid(k, pts, gp):
        h = _grad_fn(truth, names, list(k))(pts) * scale
        return np.sqrt(np.clip(np.nan_to_num(_sin2(gp, h), nan=1.0, posinf=1.0, neginf=1.0), 0, 1))

    fit = least_squares(resid, np.asarray(case.constants), args=(x, g))
    off = np.stack([rng.choice(x[:, k], 2000) for k in range(x.shape[1])], 1)
    goff = _grad_fn(formula, names, params)(off) * scale
    s2 = resid(fit.x, off, goff) ** 2
    return bool(np.nanmedian(s2) < 1e-3), fit.x


def run_case(case: Case, noise: float, seed: int, measure: str) -> dict:
    import dsl
    from formula_search.advanced import (
        FitConfig,
        FitData,
        enumeration_table,
        fit_formulas,
        survivors,
    )

    variables = dsl.parse_variables(case.variables)
    t, x = simulate(case, noise, seed)
    data = FitData(tuple(v.name for v in variables), (x,), tuple(variables), (t,))
    formulas = enumeration_table(variables, max_size=case.depth, dedup="conservation")
    t0 = time.perf_counter()
    table = fit_formulas(formulas, data, config=FitConfig(device="cpu", measure=measure, seed=seed))
    wall = time.perf_counter() - t0
    best = survivors(table)
    row = {
        "case": case.name,
        "noise": noise,
        "points": len(t),
        "candidates": len(table),
        "accepted": len(best),
        "rank": None,
        "constants": "",
        "err": np.nan,
        "ratio": np.nan,
        "time": wall,
        "top": best["formula"].iloc[0] if len(best) else "",
    }
    if case.truth is None:
        return row
    rng = np.random.default_rng(seed + 1)
    for i, r in enumerate(best.head(50).itertuples(index=False)):
        params = [float(v) for v in str(r.params).split(";") if v.strip()]
        same, k = read_law(r.formula, params, case, x, rng)
        if same:
            err = np.max(np.abs(k - np.asarray(case.constants)) / np.abs(case.constants))
            row.update(
                rank=i + 1,
                err=err,
                ratio=r.ratio,
                constants=", ".join(f"{a:.4g} ({b:g})" for a, b in zip(k, case.constants)),
            )
            break
    return row


@click.command()
@click.option("--case", "cases", multiple=True, type=click.Choice(sorted(CASES)), help="[all]")
@click.option(
    "--noise", "noises", multiple=True, type=float, default=(0.0, 0.01, 0.05), show_default=True
)
@click.option("--measure", default="derivative", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def main(cases, noises, measure, seed):
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    table = Table(
        title=f"fsearch fit on single simulated recordings ({measure} measure, seed {seed})"
    )
    for col in (
        "case",
        "noise",
        "points",
        "depth",
        "candidates",
        "accepted",
        "rank",
        "constants (truth)",
        "worst err",
        "ratio",
        "time s",
        "best accepted",
    ):
        table.add_column(
            col,
            justify="left" if col in ("case", "constants (truth)", "best accepted") else "right",
        )
    for name in cases or CASES:
        case = CASES[name]
        for noise in noises:
            r = run_case(case, noise, seed, measure)
            table.add_row(
                name,
                f"{noise:g}",
                str(r["points"]),
                str(case.depth),
                str(r["candidates"]),
                str(r["accepted"]),
                "-" if r["rank"] is None else str(r["rank"]),
                r["constants"],
                "" if np.isnan(r["err"]) else f"{100 * r['err']:.2f}%",
                "" if np.isnan(r["ratio"]) else f"{r['ratio']:.2g}",
                f"{r['time']:.1f}",
                r["top"],
            )
            print(f"done {name} noise {noise}: {r}", flush=True)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
