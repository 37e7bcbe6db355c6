"""Laws that are sums of terms (``fsearch fit --terms``): found laws, coefficients against the truth, time.

    python benchmarks/deep_laws.py                      # every case
    python benchmarks/deep_laws.py --case anharmonic

Cases (simulated here with scipy's DOP853, rtol 1e-10; noise a fraction of each variable's spread):

- ``anharmonic``: two unit masses, a cubic spring to the wall, linear springs between them and to the other
  wall: ``E = v1^2/2 + v2^2/2 + x1^4/4 + (x1 - x2)^2 + x2^2/2`` (6 terms, terms up to 3 tokens). One
  trajectory of 800 points at uneven steps, and 20 trajectories of 100 points.
- ``linear``: the same with a linear spring to the wall. Its two normal-mode energies are conserved
  separately, so any of their combinations is a law: the search must report two independent laws whose span
  holds the energy (which one prints first is not determined by the data).
- ``two_body``: two unit masses under gravity (G = 1), centre of mass moving, 20 orbits of 100 points:
  the total momentum's two components and the angular momentum (4 terms) must each be found once; the energy
  needs ``1/sqrt(...)``, which the term language does not have.

Columns: laws (accepted, independent), ``truth in span`` (every true law is a function of the found ones:
its gradient lies in their gradients' span at the data), ``false`` (found laws that are not functions of the
true laws), the coefficient error of the law matching the energy (after normalising its largest term), and
time. One process on an otherwise idle machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import click
import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    variables: str
    rhs: object
    truths: tuple[str, ...]  # sympy texts of the true laws (the first: the energy)
    sampler: object  # rng -> initial state
    t_end: float
    term_depth: int = 3
    max_terms: int = 6


def _anharmonic(cubic: bool):
    def rhs(t, y):
        x1, x2, v1, v2 = y
        wall = x1**3 if cubic else x1
        return [v1, v2, -wall - 2 * (x1 - x2), -x2 - 2 * (x2 - x1)]

    return rhs


def _gravity(t, y):
    x1, y1, x2, y2, px1, py1, px2, py2 = y
    dx, dy = x1 - x2, y1 - y2
    r3 = (dx * dx + dy * dy) ** 1.5
    return [px1, py1, px2, py2, -dx / r3, -dy / r3, dx / r3, dy / r3]


def _orbit(rng):
    r = rng.uniform(0.8, 1.2)
    a = rng.uniform(0, 2 * np.pi)
    v = np.sqrt(1 / (4 * r)) * rng.uniform(0.8, 1.1)
    cm = rng.normal(0, 0.3, 2)
    drift = rng.normal(0, 0.1, 2)
    u = np.array([np.cos(a), np.sin(a)])
    w = np.array([-u[1], u[0]])
    p1, p2 = cm + r / 2 * u, cm - r / 2 * u
    m1, m2 = drift + v * w, drift - v * w
    return np.r_[p1, p2, m1, m2]


CASES = {
    c.name: c
    for c in (
        Case(
            "anharmonic",
            "x1:m, x2:m, v1:m/s, v2:m/s",
            _anharmonic(True),
            ("v1**2/2 + v2**2/2 + x1**4/4 + (x1 - x2)**2 + x2**2/2",),
            lambda rng: np.r_[rng.uniform(-1.2, 1.2, 2), rng.uniform(-1, 1, 2)],
            30.0,
        ),
        Case(
            "linear",
            "x1:m, x2:m, v1:m/s, v2:m/s",
            _anharmonic(False),
            ("v1**2/2 + v2**2/2 + x1**2/2 + (x1 - x2)**2 + x2**2/2",),
            lambda rng: np.r_[rng.uniform(-1.2, 1.2, 2), rng.uniform(-1, 1, 2)],
            30.0,
        ),
        Case(
            "two_body",
            "x1:m, y1:m, x2:m, y2:m, px1:kg*m/s, py1:kg*m/s, px2:kg*m/s, py2:kg*m/s",
            _gravity,
            ("px1 + px2", "py1 + py2", "x1*py1 - y1*px1 + x2*py2 - y2*px2"),
            _orbit,
            6.0,
            term_depth=3,
            max_terms=4,
        ),
    )
}


def simulate(case: Case, n_traj: int, points: int, noise: float, seed: int):
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(seed)
    xs, ts = [], []
    for _ in range(n_traj):
        t = np.sort(rng.uniform(0, case.t_end, points))
        sol = solve_ivp(
            case.rhs, (0, case.t_end), case.sampler(rng), t_eval=t, method="DOP853", rtol=1e-10,
            atol=1e-12,
        )  # fmt: skip
        x = sol.y.T
        xs.append(x + noise * x.std(0) * rng.standard_normal(x.shape))
        ts.append(t)
    return xs, ts


def _grad_fns(texts, names):
    import sympy

    syms = sympy.symbols(names, real=True)
    local = dict(zip(names, syms))
    out = []
    for text in texts:
        expr = sympy.sympify(text, locals=local)
        fns = [sympy.lambdify(syms, sympy.diff(expr, s), "numpy") for s in syms]
        out.append(
            lambda x, fns=fns: np.stack(
                [np.broadcast_to(np.asarray(f(*x.T), float), (len(x),)) for f in fns], 1
            )
        )
    return out


def _in_span(g, basis) -> bool:
    """Whether the gradients ``g`` (N, d) lie in the span of ``basis`` (list of (N, d)) at every point."""
    if not basis:
        return False
    b = np.stack(basis, -1)  # (N, d, m)
    sol = np.linalg.lstsq
    resid = 0.0
    for i in range(len(g)):
        coef = sol(b[i], g[i], rcond=None)[0]
        resid += float(((b[i] @ coef - g[i]) ** 2).sum())
    return resid <= 1e-4 * float((g**2).sum())


def _coef_error(found_sym, truth_text, names):
    """Largest relative error of the energy's coefficients read from a found law (largest term: 1)."""
    import sympy

    syms = sympy.symbols(names, real=True)
    if not sympy.expand(found_sym).is_polynomial(*syms):
        return np.nan
    truth = sympy.Poly(
        sympy.expand(sympy.sympify(truth_text, locals=dict(zip(names, syms)))), *syms
    )
    found = sympy.Poly(sympy.expand(found_sym), *syms)
    tc = {m: float(c) for m, c in zip(truth.monoms(), truth.coeffs()) if any(m)}
    fc = {m: float(c) for m, c in zip(found.monoms(), found.coeffs()) if any(m)}
    if set(fc) != set(tc):
        return np.nan
    key = max(tc, key=lambda m: abs(tc[m]))
    return max(abs(fc[m] / fc[key] - tc[m] / tc[key]) / abs(tc[m] / tc[key]) for m in tc)


def run(case: Case, n_traj: int, points: int, noise: float, seed: int, beam: int) -> dict:
    import dsl
    from formula_search.advanced import FitConfig, FitData, TermConfig, term_search

    variables = dsl.parse_variables(case.variables)
    names = [v.name for v in variables]
    xs, ts = simulate(case, n_traj, points, noise, seed)
    data = FitData(tuple(names), tuple(xs), variables, tuple(ts))
    t0 = time.perf_counter()
    table = term_search(
        data,
        config=TermConfig(term_depth=case.term_depth, max_terms=case.max_terms, beam=beam),
        fit_config=FitConfig(device="cpu", seed=seed),
    )
    wall = time.perf_counter() - t0
    laws = table[table["accepted"]].reset_index(drop=True)
    x = np.concatenate(xs)[:: max(1, len(np.concatenate(xs)) // 2000)]
    true_grads = [f(x) for f in _grad_fns(case.truths, names)]
    found_syms, found_grads = [], []
    for r in laws.itertuples(index=False):
        params = [float(p) for p in str(r.params).split(";") if p.strip()]
        expr = dsl.to_sympy(dsl.parse(r.formula, names), params)
        found_syms.append(expr)
        found_grads.append(_grad_fns([str(expr)], names)[0](x))
    covered = all(_in_span(g, found_grads) for g in true_grads)
    false = sum(not _in_span(g, true_grads) for g in found_grads)
    errs = [_coef_error(s, case.truths[0], names) for s in found_syms]
    errs = [e for e in errs if np.isfinite(e)]
    return {
        "laws": len(laws),
        "covered": covered,
        "false": false,
        "err": min(errs) if errs else np.nan,
        "top": laws["formula"].iloc[0] if len(laws) else "",
        "time": wall,
    }


@click.command()
@click.option("--case", "cases", multiple=True, type=click.Choice(sorted(CASES)))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--beam", type=int, default=64, show_default=True)
def main(cases, seed, beam):
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    table = Table(title=f"fsearch fit --terms (beam {beam}, seed {seed})")
    for col in ("case", "data", "noise", "depth/K", "laws", "truth in span", "false", "energy coef err",
                "time s", "first law"):  # fmt: skip
        table.add_column(col)
    for name in cases or CASES:
        case = CASES[name]
        setups = [(1, 800, 0.0), (1, 800, 0.01), (20, 100, 0.0), (20, 100, 0.01)]
        if name == "two_body":
            setups = [(20, 100, 0.0), (20, 100, 0.01)]
        for n_traj, points, noise in setups:
            r = run(case, n_traj, points, noise, seed, beam)
            table.add_row(
                name,
                f"{n_traj} x {points}",
                f"{noise:g}",
                f"{case.term_depth}/{case.max_terms}",
                str(r["laws"]),
                "yes" if r["covered"] else "no",
                str(r["false"]),
                "" if not np.isfinite(r["err"]) else f"{100 * r['err']:.2f}%",
                f"{r['time']:.1f}",
                r["top"][:70],
            )
            print(f"done {name} {n_traj}x{points} noise {noise}: {r}", flush=True)
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
