"""One generic simulator for every Hamiltonian system described by a card.

dq_i/dt = dH/dp_i and dp_i/dt = -dH/dq_i, with the partial derivatives taken by sympy from the card's
Hamiltonian and the trajectories integrated by ``scipy.integrate.solve_ivp`` at the card's tolerances
(rtol 1e-10). Random draws follow HNN's order (numpy's legacy ``RandomState`` seeded with the dataset seed:
initial direction, radius, then the noise of q and of p), so that ``--noise 0.1`` with seed 0 gives HNN's
initial states and noise; the states themselves agree with HNN's up to HNN's looser integration (its
default atol is 1e-6; ours 1e-12).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import sympy

import dsl
from formula_search.data._cards import Card
from formula_search.data._progress import progress as _progress
from formula_search.errors import FsearchError, InputError
from formula_search.io import atomic_path

#: Bump when generated numbers change for the same card, seed and noise (invalidates caches).
CACHE_VERSION = 1

_FUNCTIONS = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "square": lambda a: a**2,
}
_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


class SimulationError(FsearchError):
    """The integrator failed on a trajectory."""


#: Largest exponent a reference Hamiltonian may write (``r^-3``, ``sqrt`` as ``^0.5``).
MAX_EXPONENT = 64


def _extended_to_sympy(text: str, names: Sequence[str]) -> sympy.Expr:
    """Read a reference Hamiltonian the DSL cannot write (e.g. ``1/sqrt(...)``) into sympy.

    The text is parsed by Python's ``ast`` (never evaluated) and only numbers, the dataset's variables,
    ``+ - * / ^ **``, unary minus and the functions in ``_FUNCTIONS`` are accepted.
    """
    symbols = {n: sympy.Symbol(n, real=True) for n in names}
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise InputError(f"malformed hamiltonian {text!r}: {exc.msg}") from None

    def go(node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Expression):
            return go(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            v = node.value
            if not math.isfinite(v) or abs(v) > 1e300:
                raise InputError(
                    f"hamiltonian {text!r}: the number {ast.unparse(node)} is too large"
                )
            return sympy.Integer(v) if isinstance(v, int) else sympy.Float(v)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            # a number's power is evaluated exactly by sympy: 9**9**9 would never finish
            exponent = go(node.right)
            if not exponent.is_number or abs(float(exponent)) > MAX_EXPONENT:
                raise InputError(
                    f"hamiltonian {text!r}: the exponent of {ast.unparse(node)} must be a number between "
                    f"-{MAX_EXPONENT} and {MAX_EXPONENT}"
                )
            return go(node.left) ** exponent
        if isinstance(node, ast.Name) and node.id in symbols:
            return symbols[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](go(node.left), go(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = go(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and len(node.args) == 1
            and not node.keywords
        ):
            return _FUNCTIONS[node.func.id](go(node.args[0]))
        what = node.id if isinstance(node, ast.Name) else ast.unparse(node)
        raise InputError(
            f"hamiltonian {text!r}: {what!r} is not a variable, number or known operation"
        )

    return go(tree)


def hamiltonian_to_sympy(text: str, names: Sequence[str]) -> tuple[sympy.Expr, bool]:
    """The reference Hamiltonian as a sympy expression in real symbols named like the variables.

    Returns:
        ``(expr, in_dsl)``: ``in_dsl`` is true when the DSL itself parses the text (then ``expr`` is
        ``dsl.to_sympy(dsl.parse(text))``).
    """
    try:
        return dsl.to_sympy(dsl.parse(text, list(names))), True
    except dsl.ParseError:
        return _extended_to_sympy(text, names), False


def _lambdify(exprs: list[sympy.Expr], names: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    symbols = [sympy.Symbol(n, real=True) for n in names]
    fn = sympy.lambdify(symbols, exprs, "numpy")

    def f(y: np.ndarray) -> np.ndarray:
        # y: (n, ...) -> (len(exprs), ...); constant entries are broadcast
        vals = fn(*y)
        out = np.empty((len(exprs),) + y.shape[1:], dtype=np.float64)
        for i, v in enumerate(vals):
            out[i] = v
        return out

    return f


def energy_function(text: str, names: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """Numpy function of a reference Hamiltonian: (N, n_vars) states -> (N,) energies."""
    expr, _ = hamiltonian_to_sympy(text, names)
    f = _lambdify([expr], names)
    return lambda x: f(np.asarray(x, dtype=np.float64).T)[0]


def hamiltonian_field(text: str, names: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """Hamilton's equations of ``text``: state (n, ...) -> time derivative (n, ...).

    The first half of ``names`` are the coordinates q_i, the second half their momenta p_i.
    """
    return _lambdify(_field_exprs(text, names), names)


def _field_exprs(text: str, names: Sequence[str]) -> list[sympy.Expr]:
    """Hamilton's equations of ``text`` as sympy expressions in real symbols named ``names``."""
    n = len(names)
    if n % 2:
        raise InputError(
            f"hamiltonian {text!r}: need as many momenta as coordinates, got {n} variables"
        )
    expr, _ = hamiltonian_to_sympy(text, names)
    sym = [sympy.Symbol(name, real=True) for name in names]
    k = n // 2
    return [sympy.diff(expr, sym[k + i]) for i in range(k)] + [
        -sympy.diff(expr, sym[i]) for i in range(k)
    ]


def recording(
    text: str, canonical: Sequence[str], momenta: dict[str, str], recorded: Sequence[str]
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """What is recorded of a canonical state when velocities stand in place of momenta.

    Returns:
        ``record`` (canonical state (n, ...) -> recorded state) and ``rate`` (canonical state -> time
        derivative of the recorded state): a velocity ``w = dH/dp`` changes at ``grad(w) . field``.
    """
    field = _field_exprs(text, canonical)
    sym = [sympy.Symbol(name, real=True) for name in canonical]
    k = len(canonical) // 2
    # momentum name -> the slot of its coordinate
    velocity_of = {p: i for i, p in enumerate(canonical[k:])}
    exprs, rates = [], []
    for name, canon, s in zip(recorded, canonical, sym):
        if canon == name:
            exprs.append(s)
            rates.append(field[canonical.index(name)])
        else:
            w = field[velocity_of[canon]]  # dq/dt = dH/dp
            exprs.append(w)
            rates.append(sum(sympy.diff(w, y) * f for y, f in zip(sym, field)))
    return _lambdify(exprs, canonical), _lambdify(rates, canonical)


# -- initial states ---------------------------------------------------------------------------------------


def _radius(rng: np.random.RandomState, n: int, spec: dict) -> np.ndarray:
    # HNN: y0 = rand(n)*2 - 1, radius = rand()*(r_max - r_min) + r_min, y0 = y0 / |y0| * radius
    y0 = rng.rand(n) * 2 - 1
    radius = rng.rand() * (float(spec["r_max"]) - float(spec["r_min"])) + float(spec["r_min"])
    return y0 / np.sqrt((y0**2).sum()) * radius


def _two_body_circular(rng: np.random.RandomState, n: int, spec: dict) -> np.ndarray:
    # HNN's orbits (masses 1, G = 1): body 1 at pos ~ U[r_min, r_max]^2, body 2 at -pos, speed of a circular
    # orbit about the centre scaled by (1 + orbit_noise * N(0, 1)). State order: x1 x2 y1 y2 px1 px2 py1 py2.
    if n != 8:
        raise InputError(f"initial kind two_body_circular needs 8 variables, got {n}")
    r_min, r_max = float(spec["r_min"]), float(spec["r_max"])
    pos = rng.rand(2) * (r_max - r_min) + r_min
    r = np.sqrt(np.sum(pos**2))
    vel = pos[::-1] / (2 * r**1.5)
    vel[0] *= -1
    vel = vel * (1 + float(spec.get("orbit_noise", 0.0)) * rng.randn())
    return np.array([pos[0], -pos[0], pos[1], -pos[1], vel[0], -vel[0], vel[1], -vel[1]])


INITIAL_SAMPLERS: dict[
    str, tuple[Callable[[np.random.RandomState, int, dict], np.ndarray], tuple[str, ...]]
] = {
    "radius": (_radius, ("r_min", "r_max")),
    "two_body_circular": (_two_body_circular, ("r_min", "r_max")),
}


# -- generation and cache ---------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$FSEARCH_CACHE`` or ``~/.cache/formula-search``."""
    env = os.environ.get("FSEARCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "formula-search"


def cache_key(card: Card, *, seed: int, noise: float, trajectories: int) -> str:
    """Hash of everything that determines the generated numbers."""
    payload = json.dumps(
        {"v": CACHE_VERSION, "card": card.text, "seed": seed, "noise": noise, "n": trajectories},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def generate(
    card: Card, *, seed: int, noise: float, trajectories: int | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the card's system.

    Args:
        card: a simulated card.
        seed: seed of the random initial states and noise.
        noise: standard deviation of Gaussian noise added to every state variable after integration
            (``dxdt`` stays the exact derivative at the noise-free state, as in HNN).
        trajectories: override the card's number of trajectories (the first ones are identical).
        progress: show a progress bar for long generations.

    Returns:
        ``t`` (T,), ``x`` (n_traj, T, n_vars), ``dxdt`` (n_traj, T, n_vars).
    """
    sim = card.simulation
    assert sim is not None and card.hamiltonian is not None
    names = card.var_names
    n = len(names)
    n_traj = sim.trajectories if trajectories is None else int(trajectories)
    if n_traj < 1:
        raise InputError(f"{card.name}: need at least 1 trajectory, got {n_traj}")
    kind = sim.initial.get("kind")
    if kind not in INITIAL_SAMPLERS:
        raise InputError(
            f"{card.path or card.name}: unknown initial-state kind {kind!r}; known: {', '.join(INITIAL_SAMPLERS)}"
        )
    sampler, required = INITIAL_SAMPLERS[kind]
    missing = [key for key in required if key not in sim.initial]
    if missing:
        raise InputError(
            f"{card.path or card.name}: [simulation.initial] needs {', '.join(missing)}"
        )
    canonical = card.canonical_names
    field = hamiltonian_field(card.hamiltonian, canonical)
    record = rate = None
    if canonical != list(names):
        record, rate = recording(card.hamiltonian, canonical, dict(sim.momenta), names)

    from scipy.integrate import solve_ivp

    t_eval = np.linspace(sim.t_start, sim.t_end, sim.points)
    rng = np.random.RandomState(seed)
    noise_rng = np.random.RandomState(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    xs = np.empty((n_traj, sim.points, n))
    dxs = np.empty_like(xs)

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        return field(y)

    bar = _progress(progress and n_traj * sim.points >= 20_000, f"simulating {card.name}", n_traj)
    with bar as advance:
        for i in range(n_traj):
            y0 = sampler(rng, n, dict(sim.initial))
            sol = solve_ivp(
                rhs,
                (sim.t_start, sim.t_end),
                y0,
                method=sim.method,
                t_eval=t_eval,
                rtol=sim.rtol,
                atol=sim.atol,
            )
            if not sol.success or sol.y.shape[1] != sim.points:
                raise SimulationError(
                    f"{card.name}: integration of trajectory {i} failed: {sol.message}"
                )
            x = sol.y.T if record is None else record(sol.y).T
            dxs[i] = (field(sol.y) if rate is None else rate(sol.y)).T
            stream = rng if sim.noise_stream == "inline" else noise_rng
            eps = stream.randn(n, sim.points).T  # HNN: noise of q, then of p
            xs[i] = x + noise * eps
            advance()
    return t_eval, xs, dxs


def generate_cached(
    card: Card,
    *,
    seed: int,
    noise: float,
    trajectories: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`generate`, reading and writing a cache file keyed by card text, seed, noise and size.

    The cache file (``<cache_dir>/datasets/<name>-<key>.npz``) is written atomically; an unreadable cache is
    regenerated; a cache folder that cannot be written is skipped.
    """
    n_traj = card.simulation.trajectories if trajectories is None else int(trajectories)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = (
        root
        / "datasets"
        / f"{card.name}-{cache_key(card, seed=seed, noise=noise, trajectories=n_traj)}.npz"
    )
    if path.exists():
        try:
            with np.load(path) as z:
                return z["t"], z["x"], z["dxdt"]
        except (OSError, ValueError, KeyError):
            pass
    t, x, dxdt = generate(card, seed=seed, noise=noise, trajectories=n_traj)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, t=t, x=x, dxdt=dxdt)
    except OSError:
        pass
    return t, x, dxdt
