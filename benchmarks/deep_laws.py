"""Laws that are sums of terms (``fsearch fit --terms``): laws found, coefficients against the truth, false
laws, time and peak memory, per dataset.

    python benchmarks/deep_laws.py --beam 256           # every case but double_pendulum (enumerated terms)
    python benchmarks/deep_laws.py --case coupled_oscillators --case two_body

Cases: the built-in datasets (``coupled_oscillators``, ``double_pendulum``, ``two_body``, ``ideal_pendulum``,
``ideal_spring``; many trajectories from the card, and for the first three one long recording from the
``*_recording`` card; ``double_pendulum_products``: the double pendulum with the ``products`` term library,
which its cards name), and two systems simulated here with scipy's DOP853 (rtol 1e-10):

- ``anharmonic``: two unit masses, a cubic spring to the wall, linear springs between them and to the other
  wall: ``E = v1^2/2 + v2^2/2 + x1^4/4 + (x1 - x2)^2 + x2^2/2`` (6 terms). One trajectory of 800 points at
  uneven steps, and 20 trajectories of 100 points.
- ``two_body_moving``: two unit masses under gravity with a moving centre of mass (HNN's orbits, the
  built-in ``two_body``, have it fixed at the origin, so that ``x1 + x2`` is conserved there too); its laws:
  both momenta, the angular momentum, and the centre of mass's angular momentum ``X*Py - Y*Px``. Beam 4096
  (the case's own): at the usual 256 the angular momentum's partial sets (ratios 0.05-0.2) are crowded out
  of the beam by products that the slow drift of the centre leaves nearly conserved.
- ``two_body_energy``: the same orbits with ``1/sqrt((x1 - x2)^2 + (y1 - y2)^2)`` (11 tokens) added to the
  library (``TermConfig.extra``, ``--extra-term``): the energy too, in its three-term form
  ``px1*px2 + py1*py2 + 1/r`` (``P^2/2 - E``, with the total momentum ``P``).

Noise: a fraction of each variable's spread, added to the states; with noise the velocities come from the
noisy states (the term search's default: differences of the recorded states, ``--derivatives spline`` for
the smoothing spline), without it the simulation's exact derivatives are used.

Columns: laws (accepted, independent), ``truth in span`` (every true law is a function of the found ones: its
gradient lies in their gradients' span at the data), ``false`` (found laws that are not functions of the true
laws), ``energy first`` (the first law is the energy), the largest coefficient error of the first law against
the energy (both normalised by the same term), time and peak memory of the process (``ru_maxrss``, so a
maximum over the cases run so far). One process, one torch thread, on an otherwise idle machine.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import click
import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    truths: tuple[
        str, ...
    ]  # sympy texts of the true laws in the data's variables (the first: the energy)
    term_depth: int
    max_terms: int
    setups: tuple  # (label, loader) pairs
    operators: tuple[str, ...] | None = None
    library: str = "enumerate"
    beam: int | None = None  # None: --beam
    extra: tuple[str, ...] = ()  # terms added to the library (TermConfig.extra)


def _anharmonic_rhs(t, y):
    x1, x2, v1, v2 = y
    return [v1, v2, -(x1**3) - 2 * (x1 - x2), -x2 - 2 * (x2 - x1)]


def _gravity(t, y):
    x1, y1, x2, y2, px1, py1, px2, py2 = y
    dx, dy = x1 - x2, y1 - y2
    r3 = (dx * dx + dy * dy) ** 1.5
    return [px1, py1, px2, py2, -dx / r3, -dy / r3, dx / r3, dy / r3]


def _orbit(rng):
    r = rng.uniform(0.8, 1.2)
    a = rng.uniform(0, 2 * np.pi)
    v = np.sqrt(1 / (4 * r)) * rng.uniform(0.8, 1.1)
    cm, drift = rng.normal(0, 0.3, 2), rng.normal(0, 0.1, 2)
    u = np.array([np.cos(a), np.sin(a)])
    w = np.array([-u[1], u[0]])
    return np.r_[cm + r / 2 * u, cm - r / 2 * u, drift + v * w, drift - v * w]


def _simulated(variables, rhs, sampler, t_end, n_traj, points, canonical=False):
    """A loader: (noise, seed) -> FitData of ``n_traj`` trajectories at uneven times."""

    def load(noise, seed):
        from scipy.integrate import solve_ivp

        import dsl
        from formula_search.advanced import FitData

        rng = np.random.default_rng(seed)
        xs, ts, ds = [], [], []
        for _ in range(n_traj):
            t = np.sort(rng.uniform(0, t_end, points))
            sol = solve_ivp(rhs, (0, t_end), sampler(rng), t_eval=t, method="DOP853", rtol=1e-10,
                            atol=1e-12)  # fmt: skip
            x = sol.y.T
            xs.append(x + noise * x.std(0) * rng.standard_normal(x.shape))
            ts.append(t)
            ds.append(np.array([rhs(0, row) for row in x]))
        v = dsl.parse_variables(variables)
        exact = noise == 0
        return FitData(tuple(x.name for x in v), tuple(xs), v, tuple(ts),
                       tuple(ds) if exact else None, exact, canonical)  # fmt: skip

    return load


def _builtin(name, **kwargs):
    """A loader of a built-in dataset's training split with relative noise (see the module docstring)."""

    def load(noise, seed):
        from formula_search.advanced import FitData
        from formula_search.data import load_dataset

        ds = load_dataset(name, noise=0.0, **kwargs)
        rng = np.random.default_rng(seed)
        spread = np.concatenate([tr.x for tr in ds.train]).std(0)
        xs = tuple(tr.x + noise * spread * rng.standard_normal(tr.x.shape) for tr in ds.train)
        exact = noise == 0
        return FitData(tuple(ds.var_names), xs, tuple(ds.variables), tuple(tr.t for tr in ds.train),
                       tuple(tr.dxdt for tr in ds.train) if exact else None, exact,
                       ds.canonical)  # fmt: skip

    return load


COUPLED = "p1**2/2 + p2**2/4 + x1**2/2 + (x1 - x2)**2/4 + 3*x2**2/4"
# the second quadratic invariant of a linear system (p M^-1 K M^-1 p + x K M^-1 K x)/2 (normal modes)
COUPLED_MODES = "3*p1**2/4 - p1*p2/4 + p2**2/4 + 19*x1**2/16 - 5*x1*x2/4 + 9*x2**2/8"
DOUBLE = "1.5*w1**2 + 0.25*w2**2 + w1*w2*cos(q1 - q2) - 29.43*cos(q1) - 9.81*cos(q2)"
TWO_BODY = ("px1 + px2", "py1 + py2", "x1*py1 - y1*px1 + x2*py2 - y2*px2")
# with a moving centre of mass also its angular momentum X*Py - Y*Px (X = x1 + x2: dX/dt = Px, so
# d/dt (X*Py - Y*Px) = Px*Py - Py*Px = 0), not a function of the three above
CENTRE = "(x1 + x2)*(py1 + py2) - (y1 + y2)*(px1 + px2)"
# the energy as P^2/2 - E = p1.p2 + 1/r (P the total momentum, conserved): three terms, not seven, and as
# good a truth (the same span with the momenta); its coefficients are all 1 for unit masses and G = 1
ENERGY_2B = "px1*px2 + py1*py2 + 1/sqrt((x1 - x2)**2 + (y1 - y2)**2)"
INVERSE_R = "1/sqrt((x1 - x2)^2 + (y1 - y2)^2)"
ANHARMONIC = "v1**2/2 + v2**2/2 + x1**4/4 + (x1 - x2)**2 + x2**2/2"
NO_DIV = ("add", "sub", "mul", "square", "sin", "cos")

CASES = {
    c.name: c
    for c in (
        Case("coupled_oscillators", (COUPLED, COUPLED_MODES), 3, 6,
             (("25 x 200", _builtin("coupled_oscillators")),
              ("1 x 3200", _builtin("coupled_oscillators_recording")))),
        Case("double_pendulum", (DOUBLE,), 6, 5,
             (("25 x 200", _builtin("double_pendulum")),
              ("1 x 3200", _builtin("double_pendulum_recording"))), NO_DIV),
        Case("double_pendulum_products", (DOUBLE,), 0, 6,
             (("25 x 200", _builtin("double_pendulum")),
              ("1 x 3200", _builtin("double_pendulum_recording"))), library="products"),
        Case("two_body", ("x1 + x2", "y1 + y2", *TWO_BODY), 3, 4,
             (("800 x 50", _builtin("two_body")), ("1 x 1600", _builtin("two_body_recording")))),
        Case("two_body_moving", (*TWO_BODY, CENTRE), 3, 4,
             (("20 x 100", _simulated("x1:m, y1:m, x2:m, y2:m, px1:kg*m/s, py1:kg*m/s, px2:kg*m/s, "
                                      "py2:kg*m/s", _gravity, _orbit, 6.0, 20, 100, canonical=True)),),
             beam=4096),
        Case("two_body_energy", (ENERGY_2B, *TWO_BODY, CENTRE), 3, 4,
             (("20 x 100", _simulated("x1:m, y1:m, x2:m, y2:m, px1:kg*m/s, py1:kg*m/s, px2:kg*m/s, "
                                      "py2:kg*m/s", _gravity, _orbit, 6.0, 20, 100, canonical=True)),),
             beam=4096, extra=(INVERSE_R,)),
        Case("anharmonic", (ANHARMONIC,), 3, 6,
             (("1 x 800", _simulated("x1:m, x2:m, v1:m/s, v2:m/s", _anharmonic_rhs,
                                     lambda rng: np.r_[rng.uniform(-1.2, 1.2, 2), rng.uniform(-1, 1, 2)],
                                     30.0, 1, 800)),
              ("20 x 100", _simulated("x1:m, x2:m, v1:m/s, v2:m/s", _anharmonic_rhs,
                                      lambda rng: np.r_[rng.uniform(-1.2, 1.2, 2), rng.uniform(-1, 1, 2)],
                                      30.0, 20, 100)))),
        Case("ideal_pendulum", ("p**2 - 3*cos(q)",), 2, 3, (("25 x 30", _builtin("ideal_pendulum")),)),
        Case("ideal_spring", ("q**2 + p**2",), 2, 3, (("25 x 30", _builtin("ideal_spring")),)),
    )
}  # fmt: skip


#: Cases left out unless named: the double pendulum over enumerated terms (3,034 terms of up to 6 tokens do
#: not hold its coupling; 26-175 s to say so; its cards name the products library instead).
SLOW = ("double_pendulum",)


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


def _in_span(g, basis, tol=1e-3) -> bool:
    """Whether the gradients ``g`` (N, d) lie in the span of ``basis`` (list of (N, d)) at every point."""
    if not basis:
        return False
    b = np.stack(basis, -1)  # (N, d, m)
    resid = 0.0
    for i in range(len(g)):
        coef = np.linalg.lstsq(b[i], g[i], rcond=None)[0]
        resid += float(((b[i] @ coef - g[i]) ** 2).sum())
    return resid <= tol * float((g**2).sum())


def _coef_error(found, truth_text, names):
    """Largest relative error of a found law's coefficients against the truth's, both normalised by the
    truth's largest term; ``nan`` when their terms differ (constants ignored)."""
    import sympy

    syms = sympy.symbols(names, real=True)
    truth = sympy.expand(sympy.sympify(truth_text, locals=dict(zip(names, syms))))
    tc = {k: float(v) for k, v in truth.as_coefficients_dict().items() if k.free_symbols}
    fc = {
        k: float(v) for k, v in sympy.expand(found).as_coefficients_dict().items() if k.free_symbols
    }
    fc = {k: v for k, v in fc.items() if abs(v) > 1e-12 * max(map(abs, fc.values()))}
    if set(fc) != set(tc):
        return np.nan
    key = max(tc, key=lambda m: abs(tc[m]))
    return max(abs(fc[m] / fc[key] - tc[m] / tc[key]) / abs(tc[m] / tc[key]) for m in tc)


def run(
    case: Case,
    load,
    noise: float,
    seed: int,
    beam: int,
    derivatives="auto",
    stride=None,
    verbose=False,
) -> dict:
    import dsl
    from formula_search.advanced import FitConfig, TermConfig, term_search

    data = load(noise, seed)
    names = list(data.var_names)
    config = TermConfig(term_depth=max(1, case.term_depth), max_terms=case.max_terms, beam=beam,
                        operators=case.operators, library=case.library, extra=case.extra)  # fmt: skip
    t0 = time.perf_counter()
    table = term_search(
        data,
        config=config,
        fit_config=FitConfig(device="cpu", seed=seed, derivatives=derivatives, stride=stride),
    )
    wall = time.perf_counter() - t0
    laws = table[table["accepted"]].reset_index(drop=True)
    x = np.concatenate(data.sequences)[:: max(1, sum(map(len, data.sequences)) // 2000)]
    true_grads = [f(x) for f in _grad_fns(case.truths, names)]
    found_syms, found_grads = [], []
    for r in laws.itertuples(index=False):
        params = [float(p) for p in str(r.params).split(";") if p.strip()]
        expr = dsl.to_sympy(dsl.parse(r.formula, names), params)
        found_syms.append(expr)
        found_grads.append(_grad_fns([str(expr)], names)[0](x))
    err = _coef_error(found_syms[0], case.truths[0], names) if found_syms else np.nan
    if verbose:
        for r, g in zip(laws.itertuples(index=False), found_grads):
            print(f"  {'true ' if _in_span(g, true_grads) else 'FALSE'} {r.ratio:.3g}  {r.formula}")
    return {
        "laws": len(laws),
        "covered": all(_in_span(g, found_grads) for g in true_grads),
        "false": sum(not _in_span(g, true_grads) for g in found_grads),
        "first": bool(found_grads) and _in_span(found_grads[0], true_grads[:1]),
        "err": err,
        "top": laws["formula"].iloc[0] if len(laws) else "",
        "time": wall,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


@click.command()
@click.option("--case", "cases", multiple=True, type=click.Choice(sorted(CASES)))
@click.option(
    "--noise", "noises", multiple=True, type=float, default=(0.0, 0.01), show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--beam", type=int, default=64, show_default=True)
@click.option("--derivatives", default="auto", show_default=True)
@click.option("--stride", type=int, default=None, help="[auto]")
@click.option(
    "--verbose", is_flag=True, help="Print every law found, true or false, with its ratio."
)
def main(cases, noises, seed, beam, derivatives, stride, verbose):
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    table = Table(title=f"fsearch fit --terms (beam {beam} unless the case sets it, seed {seed})")
    for col in ("case", "data", "noise", "depth/K/beam", "laws", "truth in span", "false", "energy first",
                "coef err", "time s", "peak GiB", "first law"):  # fmt: skip
        table.add_column(col)
    for name in cases or [c for c in CASES if c not in SLOW]:
        case = CASES[name]
        for label, load in case.setups:
            for noise in noises:
                width = case.beam or beam
                r = run(case, load, noise, seed, width, derivatives, stride, verbose)
                table.add_row(
                    name, label, f"{noise:g}",
                    f"{case.term_depth or case.library}{' (+ extra)' if case.extra else ''}/"
                    f"{case.max_terms}/{width}", str(r["laws"]),
                    "yes" if r["covered"] else "no", str(r["false"]), "yes" if r["first"] else "no",
                    "" if not np.isfinite(r["err"]) else f"{100 * r['err']:.2f}%",
                    f"{r['time']:.1f}", f"{r['rss']:.2f}", r["top"][:80],
                )  # fmt: skip
                print(f"done {name} {label} noise {noise} beam {width}: {r}", flush=True)
    Console(width=250).print(table)


if __name__ == "__main__":
    main()
