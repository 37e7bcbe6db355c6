"""The derivative conservation measure: what a conserved quantity does at every point of one recording.

A quantity ``g(x)`` is conserved along the data when its rate of change vanishes at every point::

    dg/dt = grad g(x_i) . xdot_i = 0

(Schmidt & Lipson, *Science* 324:81, 2009). The measure is the share of ``g``'s possible rate of change that
is actually realised along the data::

    D(g) = sum_i a_i (grad g_i . xdot_i)^2  /  sum_i a_i |S grad g_i|^2 |S^-1 xdot_i|^2

where ``S`` divides every variable by its standard deviation (so ``|.|`` mixes no units) and ``a_i`` caps
the weight of any point at ``CLIP`` times the median weight, so that a pole of ``g`` next to one point cannot
carry the sum. By Cauchy-Schwarz ``D`` lies in [0, 1]; it is 0 for a conserved ``g``, about 1/2 for an
arbitrary one in two variables, unchanged when ``g`` is scaled or shifted, and needs neither several
trajectories nor different energies. Slow dissipation only adds ``(rate of loss / rate of motion)^2``.

The **null** pairs every gradient with a velocity whose components come from other, randomly chosen points
(each component shuffled on its own): the same formula's ``D`` when the motion has nothing to do with the
state, and when no linear relation holds between the velocity's components (the total momentum of two bodies
is conserved by every velocity of the data, so shuffling whole velocities would conserve it too).
``ratio = D / D_null``.
A formula is **trivial** when it is constant on states drawn from the data's marginals independently (each
variable keeps its range, the joint relation is destroyed): ``sin(q)^2 + cos(q)^2`` is trivial, ``x^2 + y^2``
on a circle is not.

States and velocities come from a smoothing spline per sequence and variable (scipy's
``make_smoothing_spline``); its smoothing is chosen by generalised cross-validation on the data unless given,
so measurement noise is averaged out where there is noise and the data are followed where there is none.
The first and last ``EDGE`` points of every sequence, where a spline's derivative is least accurate, are left
out.

Instead of a spline, :func:`differences` pairs recorded states a stride apart: a formula's rate is then its
exact change between the two divided by the time between them (:func:`difference_rate`), with the gradient
and the null taken at the midpoint and the secant velocity. The term search uses it on recorded data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from formula_search.errors import InputError

#: Measures of :class:`formula_search._fit.FitConfig`: ``derivative`` (this module, the default) and
#: ``paper`` (the Noether paper's within-sequence variance share against shuffled sequences).
MEASURES = ("derivative", "paper")

#: No point weighs more than this many times the median point in :func:`score`.
CLIP = 10.0

#: Points left out at each end of a sequence: a smoothing spline's derivative is least accurate there
#: (its curvature is forced to 0; on the ideal spring, 6% error at the end point against 2e-5 inside).
EDGE = 3

#: Most points a null of triviality is drawn on.
NULL_POINTS = 512


def parse_smoothing(value) -> str | float:
    """``"auto"`` (cross-validated), ``"off"`` (interpolating spline) or a smoothing weight >= 0."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("auto", "off"):
            return v
        try:
            value = float(v)
        except ValueError:
            raise InputError(
                f"--smoothing must be auto, off or a number >= 0, got {value!r}"
            ) from None
    value = float(value)
    if not (value >= 0 and np.isfinite(value)):
        raise InputError(f"--smoothing must be auto, off or a number >= 0, got {value!r}")
    return value


#: Longest sequence whose smoothing weight GCV chooses on all its points. GCV costs about 0.3 ms a point and a
#: fixed weight 5 us, so a longer sequence gets the weight GCV chooses on its middle ``GCV_POINTS`` points
#: (the same noise and sampling throughout are assumed), applied to the whole sequence.
GCV_POINTS = 4000


def gcv_weight(t: np.ndarray, y: np.ndarray) -> float:
    """The smoothing weight ``lam`` that scipy's GCV chooses for ``y(t)``.

    :func:`scipy.interpolate.make_smoothing_spline` does not return the weight it chose, so it is recovered
    as the fixed weight whose spline matches the GCV spline: a grid over 33 decades (in units of the time
    span cubed), then Brent's method between the best grid value's neighbours.
    """
    from scipy.interpolate import make_smoothing_spline
    from scipy.optimize import minimize_scalar

    target = make_smoothing_spline(t, y)(t)
    unit = 3 * math.log(max(float(np.ptp(t)), 1e-300))

    def miss(u):
        with np.errstate(all="ignore"):
            fit = make_smoothing_spline(t, y, lam=math.exp(unit + u))(t)
        d = np.mean((fit - target) ** 2)
        return d if np.isfinite(d) else np.inf

    grid = np.linspace(math.log(1e-30), math.log(1e3), 34)
    k = int(np.argmin([miss(u) for u in grid]))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    best = minimize_scalar(miss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return math.exp(unit + best.x)


def spline_derivatives(
    t: np.ndarray, x: np.ndarray, smoothing: str | float = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed states and their time derivatives along one sequence.

    Args:
        t: (T,) strictly increasing times (uneven steps allowed).
        x: (T, n_vars) states.
        smoothing: ``"auto"``: each variable's smoothing weight chosen by generalised cross-validation
            (on the middle :data:`GCV_POINTS` points of a longer sequence);
            ``"off"``: the interpolating cubic spline; a number: that weight (``lam`` of
            :func:`scipy.interpolate.make_smoothing_spline`, in the data's units).

    Returns:
        ``(xs, v)``, both (T, n_vars). Sequences of fewer than 5 points use the states as they are and
        second-order finite differences.
    """
    from scipy.interpolate import make_smoothing_spline

    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if len(t) < 5:
        if len(t) < 2:
            return x.copy(), np.zeros_like(x)
        return x.copy(), np.gradient(x, t, axis=0, edge_order=1 if len(t) < 3 else 2)
    if isinstance(smoothing, tuple):  # one weight per variable (see prepare); None: GCV here
        lams = [None if w is None else float(w) for w in smoothing]
    else:
        lam = None if smoothing == "auto" else 0.0 if smoothing == "off" else float(smoothing)
        lams = [lam] * x.shape[1]
    xs, v = np.empty_like(x), np.empty_like(x)
    for k in range(x.shape[1]):
        col = x[:, k]
        if np.ptp(col) == 0:  # a constant column: GCV has nothing to choose from
            xs[:, k], v[:, k] = col, 0.0
            continue
        lam = weight = lams[k]
        if lam is None and len(t) > GCV_POINTS:
            mid = slice((len(t) - GCV_POINTS) // 2, (len(t) + GCV_POINTS) // 2)
            weight = gcv_weight(t[mid], col[mid])
        spline = make_smoothing_spline(t, col, lam=weight)
        xs[:, k] = spline(t)
        v[:, k] = spline.derivative()(t)
    return xs, v


@dataclass(frozen=True)
class Prepared:
    """The points the derivative measure is taken on (picklable; computed once per fit).

    Attributes:
        x: (N, n_vars) smoothed states of every sequence, concatenated.
        v: (N, n_vars) their time derivatives.
        scale: (n_vars,) standard deviation of each variable over ``x`` (1 where it is 0).
        v_null: (N, n_vars) velocities paired at random with the states, each component from its own random
            point (the null).
        x_null: (M, n_vars) states whose coordinates are drawn independently from the data's marginals.

        ends: ``None``, or for velocities taken as differences (:func:`prepare` with ``stride``) the states at
            each interval's two ends and the interval's inverse length, ``(xa, xb, inv_dt)`` of shapes
            (N, n_vars), (N, n_vars), (N,): a formula's rate there is ``(g(xb) - g(xa)) * inv_dt``, exact
            for any step, while ``x`` is the interval's midpoint and ``v = (xb - xa) * inv_dt``.
    """

    x: np.ndarray
    v: np.ndarray
    scale: np.ndarray
    v_null: np.ndarray
    x_null: np.ndarray
    ends: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


#: Data of more points than this (in sequences of at least 5) get one smoothing weight per variable, the
#: median of GCV's choices on sequences spread evenly through the data, :data:`GCV_POINTS` points in all
#: (GCV on every sequence of 2,000 x 1,000 points would take 20 minutes).
GCV_SHARED_ABOVE = 20_000


def _shared_weights(sequences, times) -> str | tuple[float, ...]:
    """``"auto"`` for small data; else one smoothing weight per variable (:data:`GCV_SHARED_ABOVE`)."""
    usable = [j for j, s in enumerate(sequences) if len(s) >= 5]
    total = sum(len(sequences[j]) for j in usable)
    if total <= GCV_SHARED_ABOVE or len(usable) < 2:
        return "auto"
    per = total / len(usable)
    picks = usable[:: max(1, int(len(usable) * per // GCV_POINTS))] or usable[:1]
    weights = []
    for k in range(np.shape(sequences[usable[0]])[1]):
        logs = []
        for j in picks:
            seq = np.asarray(sequences[j], dtype=np.float64)
            t = (
                np.arange(len(seq), dtype=np.float64)
                if times is None
                else np.asarray(times[j], float)
            )
            if len(t) != len(seq) or not np.all(np.diff(t) > 0):
                continue  # reported when the sequence itself is prepared
            mid = slice(max(0, (len(t) - GCV_POINTS) // 2), (len(t) + GCV_POINTS) // 2)
            if np.ptp(seq[mid, k]) == 0:
                continue  # GCV has nothing to choose from on a constant stretch
            logs.append(math.log(gcv_weight(t[mid], seq[mid, k])))
        weights.append(math.exp(float(np.median(logs))) if logs else None)  # None: GCV per sequence
    return tuple(weights)


def prepare(
    sequences,
    times,
    *,
    smoothing: str | float = "auto",
    seed: int = 0,
    derivatives=None,
    stride: int | None = None,
) -> Prepared:
    """Smooth every sequence, take its derivative, and draw the nulls (see the module docstring).

    Args:
        sequences: (T_j, n_vars) arrays.
        times: (T_j,) arrays of increasing times, or ``None`` for unit steps.
        smoothing: see :func:`spline_derivatives`; ``"auto"`` on large data: :data:`GCV_SHARED_ABOVE`.
        seed: seed of the nulls.
        derivatives: (T_j, n_vars) time derivatives to use as they are, with the states as they are
            (a simulation's exact ones); ``None``: the smoothing spline's.
        stride: instead of a spline, the states as recorded, paired ``stride`` samples apart
            (:func:`differences`); ``smoothing`` does not apply.
    """
    if stride is not None and derivatives is None:
        return _with_nulls(*differences(sequences, times, stride), seed=seed)
    if smoothing == "auto" and derivatives is None:
        smoothing = _shared_weights(sequences, times)
    xs, vs = [], []
    for j, seq in enumerate(sequences):
        t = _times(times, j, len(seq))
        if len(seq) < 2:
            continue
        if derivatives is not None:
            if np.shape(derivatives[j]) != np.shape(seq):
                raise InputError(
                    f"sequence {j}: derivatives of shape {np.shape(derivatives[j])} for states of shape "
                    f"{np.shape(seq)}"
                )
            xs.append(np.asarray(seq, dtype=np.float64))
            vs.append(np.asarray(derivatives[j], dtype=np.float64))
            continue
        a, b = spline_derivatives(t, seq, smoothing)
        edge = max(0, min(EDGE, (len(seq) - 5) // 4))
        xs.append(a[edge : len(a) - edge])
        vs.append(b[edge : len(b) - edge])
    if not xs:
        raise InputError("no sequence has at least 2 points to measure conservation on")
    return _with_nulls(np.concatenate(xs), np.concatenate(vs), seed=seed)


def _times(times, j: int, n: int) -> np.ndarray:
    """Sequence ``j``'s times, checked against its ``n`` states."""
    t = np.arange(n, dtype=np.float64) if times is None else np.asarray(times[j], float)
    if len(t) != n:
        raise InputError(f"sequence {j}: {n} states but {len(t)} times")
    if n > 1 and not np.all(np.diff(t) > 0):
        raise InputError(f"sequence {j}: time does not increase")
    return t


#: The automatic stride of :func:`differences`: the smallest whose typical step (the median over pairs of the
#: root mean square of ``(xb - xa) / scale`` over the variables) reaches this many standard deviations, so
#: that a difference is large next to measurement noise while the two states are still related (set on the
#: simulated systems of ``benchmarks/deep_laws.py`` at 1% noise, between 0.5 and 1:
#: docs/experiments/2026-12-07-differences.md).
STRIDE_STEP = 1.0

#: The automatic stride is at most this share of the median sequence's length (pairs span the sequences).
STRIDE_SHARE = 0.25

#: The automatic stride's median step is taken on at most this many pairs per stride (evenly spaced starts).
STRIDE_PAIRS = 4096


def _stride_candidates(longest: int) -> list[int]:
    """Strides tried by :func:`auto_stride`: every one up to 64, then 25% apart, up to ``longest``."""
    out = list(range(1, min(64, longest) + 1))
    while out[-1] < longest:
        out.append(min(longest, max(out[-1] + 1, int(out[-1] * 1.25))))
    return out


def auto_stride(sequences) -> int:
    """The stride :data:`STRIDE_STEP` chooses on ``sequences`` ((T_j, n_vars) arrays), at least 1."""
    seqs = [np.asarray(s, dtype=np.float64) for s in sequences if len(s) >= 2]
    if not seqs:
        return 1
    scale = np.concatenate(seqs).std(0)
    scale = np.where(scale > 0, scale, 1.0)
    longest = max(1, int(STRIDE_SHARE * np.median([len(s) for s in seqs])))
    for h in _stride_candidates(longest):
        steps = [s[h:] - s[:-h] for s in seqs if len(s) > h]
        if not steps:
            return 1
        steps = np.concatenate(steps)
        steps = steps[:: max(1, len(steps) // STRIDE_PAIRS)]
        size = np.sqrt(((steps / scale) ** 2).mean(1))
        if np.median(size) >= STRIDE_STEP:
            return h
    return longest


def differences(sequences, times, stride: int):
    """Every pair of states ``stride`` samples apart in each sequence, as midpoints ``x``, secant velocities
    ``v`` and ends ``(xa, xb, inv_dt)`` (see :class:`Prepared`); a sequence of ``stride`` samples or fewer
    gives none.

    No smoothing and no derivative: a formula's change between the two recorded states is exact whatever the
    step, so the measure keeps no error of a derivative estimate (a spline's on fast or coarsely sampled
    motion); noise enters each difference once, not divided by a short step.
    """
    if int(stride) < 1:
        raise InputError(f"stride must be at least 1, got {stride}")
    xa, xb, inv = [], [], []
    for j, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.float64)
        t = _times(times, j, len(seq))
        h = int(stride)
        if len(seq) <= h:
            continue
        xa.append(seq[:-h])
        xb.append(seq[h:])
        inv.append(1.0 / (t[h:] - t[:-h]))
    if not xa:
        raise InputError(
            f"no sequence has more than {int(stride)} points, the stride of the differences"
        )
    xa, xb, inv = np.concatenate(xa), np.concatenate(xb), np.concatenate(inv)
    return (xa + xb) / 2, (xb - xa) * inv[:, None], (xa, xb, inv)


def _with_nulls(x, v, ends=None, *, seed: int) -> Prepared:
    """The prepared points with their scale and nulls."""
    if not (np.isfinite(x).all() and np.isfinite(v).all()):
        raise InputError("the states or velocities are not finite; check the data for huge values")
    scale = x.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    rng = np.random.default_rng(seed)
    # each velocity component from another random point: a linear relation that every velocity of the
    # data obeys (v_px1 + v_px2 = 0 when the total momentum is conserved everywhere) is not kept
    v_null = np.stack([v[rng.permutation(len(v)), k] for k in range(v.shape[1])], 1)
    m = min(len(x), NULL_POINTS)
    x_null = np.stack([x[rng.integers(0, len(x), m), k] for k in range(x.shape[1])], 1)
    return Prepared(x, v, scale, v_null, x_null, ends)


def jacobian(program, x, theta):
    """Values and gradients with respect to the state of a batch of formulas.

    Args:
        program: a :class:`formula_search._fit._Program` (anything with ``with_gradient(x, theta)``).
        x: (n_vars, N) states.
        theta: (B, S, P) parameters.

    Returns:
        ``g`` (B, S, N) and ``J`` (B, S, n_vars, N), ``J[..., k, i] = d g(x_i) / d x_k``, differentiable with
        respect to ``theta``.
    """
    shape = (theta.shape[0], theta.shape[1], x.shape[-1])
    g, jac = program.with_gradient(x, theta)
    return g.expand(shape), jac.expand(shape[0], shape[1], x.shape[0], shape[2])


def difference_rate(program, ends, theta):
    """``(g(xb) - g(xa)) * inv_dt`` (B, S, N) of a batch of formulas over the intervals ``ends``
    (``(xa, xb, inv_dt)`` as tensors of shapes (n_vars, N), (n_vars, N), (N,)); ``None`` without ends."""
    if ends is None:
        return None
    xa, xb, inv = ends
    shape = (theta.shape[0], theta.shape[1], xa.shape[-1])
    return (program(xb, theta).expand(shape) - program(xa, theta).expand(shape)) * inv


def median_cap(J, v, scale):
    """Per formula, ``CLIP`` times the median weight ``|S grad g|^2 |S^-1 v|^2`` of the points that move
    (the data's velocity is not 0 there): (..., 1)."""
    import torch

    speed2 = ((v / scale) ** 2).sum(0)
    norm2 = ((J * scale) ** 2).sum(-2) * speed2
    # points at rest (a recording's still start or end) carry no weight and do not set the median
    moving = speed2 > 1e-12 * speed2.mean()
    return CLIP * torch.where(moving, norm2, math.nan).nanmedian(-1, keepdim=True).values


def sums(J, v, scale, cap=None, grad2=None, rate=None):
    """Numerator and denominator of ``D`` (module docstring) over the points given.

    Args:
        J: (..., n_vars, N) gradients of ``g``; ``v``: (n_vars, N) velocities; ``scale``: (n_vars, 1).
        cap: (..., 1) largest weight of one point (:func:`median_cap`; ``None``: no cap).
        grad2: ``|S grad g|^2`` (..., N) when already computed (it does not depend on ``v``).
        rate: (..., N) ``g``'s rate of change when known otherwise (:func:`difference_rate`); ``None``:
            ``grad g . v``.

    Returns:
        ``(num, den)`` of shape (...); ``den`` is 0 where ``g``'s gradient vanishes at every point.
    """
    import torch

    if rate is None:
        rate = (J * v).sum(-2)
    if grad2 is None:
        grad2 = ((J * scale) ** 2).sum(-2)
    norm2 = grad2 * ((v / scale) ** 2).sum(0)
    if cap is not None:
        weight = torch.where(norm2 > cap, cap / norm2, torch.ones_like(norm2))
        weight = torch.nan_to_num(weight, nan=1.0)
        rate2, norm2 = weight * rate * rate, weight * norm2
    else:
        rate2 = rate * rate
    return rate2.sum(-1), norm2.sum(-1)


def score(J, v, scale, rate=None):
    """``D`` with the cap taken from the same points: (...)."""
    num, den = sums(J, v, scale, median_cap(J, v, scale), rate=rate)
    return num / den


def quadratic_forms(T, v, scale, rate=None):
    """The measure of ``g = sum_k a_k t_k`` as ``a^T A a / a^T B a`` (unclipped).

    Args:
        T: (B, K, n_vars, N) gradients of the terms ``t_k``.
        v: (n_vars, N) velocities; ``scale``: (n_vars, 1).
        rate: (B, K, N) the terms' rates of change when known otherwise (:func:`difference_rate`).

    Returns:
        ``A``, ``B``: (B, K, K).
    """

    if rate is None:
        rate = (T * v).sum(-2)  # (B, K, N)
    a = rate @ rate.transpose(-1, -2)
    w = ((v / scale) ** 2).sum(0)  # (N,)
    ts = (T * (scale * w.sqrt())).flatten(-2)  # (B, K, n_vars * N)
    b = ts @ ts.transpose(-1, -2)
    return a, b


def smallest_direction(a, b):
    """Per batch row, the ``c`` minimising ``(1, c)^T A (1, c) / (1, c)^T B (1, c)``.

    Solved as the generalised eigenproblem ``A y = lambda B y``: the eigenvector of the smallest eigenvalue
    whose first component is not negligible, divided by that component. Terms with no gradient at any point
    (constants: the measure does not see them) get coefficient 0.

    Args:
        a, b: (B, K, K) symmetric, ``b`` positive semi-definite.

    Returns:
        ``c`` (B, K-1) and ``ok`` (B,) (False where no eigenvector has a usable first component or the
        problem is not finite).
    """
    import torch

    k = a.shape[-1]
    diag = b.diagonal(dim1=-2, dim2=-1)
    top = diag.amax(-1, keepdim=True)
    free = ~(diag > 1e-13 * top)  # no gradient: a constant term
    d = torch.where(free, torch.ones_like(diag), diag.rsqrt())
    an = a * d.unsqueeze(-1) * d.unsqueeze(-2)
    bn = b * d.unsqueeze(-1) * d.unsqueeze(-2)
    eye = torch.eye(k, dtype=a.dtype, device=a.device)
    keep = (~free).to(a.dtype)
    mask2 = keep.unsqueeze(-1) * keep.unsqueeze(-2)
    # free directions: B -> 1, A -> a large value, so their eigenvectors come last and others avoid them
    an = an * mask2 + torch.diag_embed((1 - keep) * 1e6)
    bn = bn * mask2 + torch.diag_embed(1 - keep) + 1e-12 * eye
    finite = torch.isfinite(an).all(-1).all(-1) & torch.isfinite(bn).all(-1).all(-1)
    an = torch.where(finite.view(-1, 1, 1), an, eye)
    bn = torch.where(finite.view(-1, 1, 1), bn, eye)
    chol, info = torch.linalg.cholesky_ex(bn)
    good = finite & (info == 0)
    chol = torch.where(good.view(-1, 1, 1), chol, eye)
    inv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
    c_mat = inv @ an @ inv.transpose(-1, -2)
    c_mat = 0.5 * (c_mat + c_mat.transpose(-1, -2))
    _, vecs = torch.linalg.eigh(c_mat)
    y = inv.transpose(-1, -2) @ vecs  # columns: generalised eigenvectors, smallest eigenvalue first
    y = y * keep.unsqueeze(-1)
    first = y[:, 0, :].abs()
    size = y.abs().amax(1).clamp_min(1e-300)
    usable = first > 1e-8 * size
    idx = torch.where(usable, torch.arange(k, device=a.device), k).amin(-1)
    ok = good & (idx < k) & ~free[:, 0]
    idx = idx.clamp_max(k - 1)
    vec = y.gather(2, idx.view(-1, 1, 1).expand(-1, k, 1)).squeeze(-1)  # (B, K)
    coef = vec * d
    c = coef[:, 1:] / coef[:, :1]
    # every term carries a coefficient (t_0 has no gradient: c_0*q^2 + c_1*p^2): the measure ignores the
    # scale, so the smallest eigenvector itself, its largest coefficient set to 1
    bare = good & free[:, 0]
    if bool(bare.any()):
        rest = (y[:, :, 0] * d)[:, 1:]
        top = rest.abs().argmax(-1, keepdim=True)
        scaled = rest / rest.gather(1, top)
        c = torch.where(bare.unsqueeze(-1), scaled, c)
        ok = ok | bare
    ok = ok & torch.isfinite(c).all(-1)
    return torch.where(ok.unsqueeze(-1), c, torch.zeros_like(c)), ok
