"""One chunk of formulas fitted and scored under the derivative measure (:mod:`formula_search._measure`).

Parameters that enter a formula linearly (``p^2 + c*cos(q)``, ``c_0*q^2 + c_1*p^2``) are solved exactly: the
measure of ``g = t_0 + sum_k c_k t_k`` is a ratio of two quadratic forms in ``(1, c)``, minimised by the
generalised eigenvector of its smallest eigenvalue. Whether a formula is affine in its parameters is checked
numerically (its gradient at one more parameter vector must be the affine prediction), so nothing about the
operators is assumed. Every other formula is fitted by the batched damped Newton method of
:func:`formula_search._fit._optimise` from several starts, on a subsample of the points.

Every number here depends only on the formula, the data and the options: the random starts are seeded by the
formula's text and the seed, so the chunk size and the number of workers never change a result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

import dsl
from formula_search import _measure
from formula_search._fit import (
    TRIVIAL,
    _chunk_table,
    _group,
    _optimise,
    _parse_chunk,
    _Problem,
    _Program,
    _resolve_device,
    row_starts,
)

#: Elements of the largest tensor one batch may hold (formulas x starts x variables x points).
BUDGET = 4_000_000

#: Most points the closed-form solution is computed on (evenly spaced over the data).
CLOSED_FORM_POINTS = 20_000

#: A formula with one nonlinear parameter has it tried on this grid of values (both signs, 1e-3 to 1e3,
#: neighbours 34% apart), its linear parameters solved at each; then :data:`ZOOMS` finer rounds, and Newton
#: polishes, from the best two values, the formulas that score at most :func:`_polish` there.
GRID = np.concatenate([np.logspace(-3, 3, 48), -np.logspace(-3, 3, 48)])

#: Log-distance between neighbours of :data:`GRID`.
GRID_STEP = 6 * math.log(10) / 47

#: Rounds of refinement around the best grid value, each on this many points spanning the neighbours of
#: the previous round's best value (2 rounds of 9: a parameter within 2% of the best).
ZOOMS = 2
ZOOM_POINTS = 9


def _screen(ratio: float) -> float:
    """Newton's ``give_up`` score: 0.1 (a null scores about 0.5), more for a loose ``ratio``."""
    return max(0.1, 10 * ratio)


#: Points the grid screen is taken on (evenly spaced over the data).
SCREEN_POINTS = 24

#: Grid values scored at once.
_GRID_SLICE = 32


def _polish(ratio: float) -> float:
    """Largest measure after the zoom for which Newton polishes a one-nonlinear-parameter row: 5 times the
    largest measure that can be accepted (a null scores about 0.5)."""
    return 2.5 * ratio


#: The extra parameter vector at which affinity is checked (its first P entries).
_CHECK = (0.731, -1.37, 0.419, 2.09, -0.613, 1.71, -2.3, 0.97)


class _Points:
    """The prepared data as tensors: every point, the fit subsample, the closed-form subsample, the null."""

    def __init__(self, prep: _measure.Prepared, max_fit_points: int, torch, device):
        def tensor(a):
            return torch.as_tensor(np.ascontiguousarray(a.T), dtype=torch.float64, device=device)

        n = len(prep.x)
        self.x, self.v, self.v_null = tensor(prep.x), tensor(prep.v), tensor(prep.v_null)
        self.x_null = tensor(prep.x_null)
        self.scale = torch.as_tensor(prep.scale, dtype=torch.float64, device=device).view(-1, 1)
        # differences (Prepared.ends): the intervals' ends as (n_vars, N) and (N,) tensors, else None
        self.ends = None if prep.ends is None else tuple(tensor(a) for a in prep.ends)
        fit = np.arange(0, n, max(1, math.ceil(n / max_fit_points)))
        closed = np.arange(0, n, max(1, math.ceil(n / CLOSED_FORM_POINTS)))
        screen = np.arange(0, n, max(1, math.ceil(n / SCREEN_POINTS)))
        self.x_fit, self.v_fit, self.ends_fit = self.at(fit)
        self.x_screen, self.v_screen, self.ends_screen = self.at(screen)
        self.x_closed, self.v_closed, self.ends_closed = self.at(closed)
        self.n = n

    def at(self, idx):
        """States, velocities and ends (or ``None``) of the points ``idx`` (an index array or a slice)."""
        ends = None if self.ends is None else tuple(a[..., idx] for a in self.ends)
        return self.x[:, idx], self.v[:, idx], ends


def _fit_loss(points: _Points):
    """The measure on the fit subsample, ``inf`` where it is not defined: for :func:`_optimise`."""

    import torch

    x, v, ends = points.x_fit, points.v_fit, points.ends_fit

    def loss(program, theta):
        _, jac = _measure.jacobian(program, x, theta)
        d = _measure.score(jac, v, points.scale, _measure.difference_rate(program, ends, theta))
        return torch.where(torch.isfinite(d), d, torch.full_like(d, math.inf))

    return loss


def _solve_linear(prog, x, v, scale, fixed, lmask, torch, affine=None, ends=None):
    """The linear parameters in closed form, the others held at ``fixed``.

    Args:
        prog: the program of B formulas; ``x`` (n_vars, N) and ``v`` (n_vars, N) the points; ``scale``
            (n_vars, 1); ``ends``: the points' intervals when velocities are differences
            (:attr:`_Points.ends`), else ``None``.
        fixed: (B, G, P) values of the parameters that are not solved (G settings per formula; the
            linear slots are ignored).
        lmask: (B, P) 1 where the parameter is solved (it stands in an affine position).

    Returns:
        ``theta`` (B, G, P), the unclipped measure there ``score`` (B, G), ``ok`` (B, G): the formula is
        affine in the solved parameters (checked at one more parameter vector) and the solution is finite,
        and the affinity check alone (B,) (``None`` when nothing is solved).
        With ``affine`` (B,) given (a check made at other values of the fixed parameters), the check is not
        made again.
    """
    b, g, p = fixed.shape
    dev = fixed.device
    if not bool(lmask.any()):  # nothing to solve: the measure at the fixed values
        _, jac = _measure.jacobian(prog, x, fixed)
        num, den = _measure.sums(jac, v, scale, rate=_measure.difference_rate(prog, ends, fixed))
        value = num / den
        ok = torch.isfinite(value)
        return fixed, torch.where(ok, value, torch.full_like(value, math.inf)), ok, None
    check = torch.tensor(
        [_CHECK[k % len(_CHECK)] for k in range(p)], dtype=torch.float64, device=dev
    )
    base = fixed * (1 - lmask).unsqueeze(1)  # (B, G, P)
    eye = torch.eye(p, dtype=torch.float64, device=dev) * lmask.unsqueeze(1)  # (B, P, P)
    parts = [torch.zeros(b, 1, p, dtype=torch.float64, device=dev), eye]
    if affine is None:
        parts.append((check * lmask).unsqueeze(1))
    steps = torch.cat(parts, 1)  # (B, P+2, P), or P+1 without the check
    m = steps.shape[1]
    basis = base.unsqueeze(2) + steps.unsqueeze(1)  # (B, G, m, P)
    _, jac = _measure.jacobian(prog, x, basis.reshape(b, g * m, p))
    jac = jac.reshape(b, g, m, *jac.shape[-2:])
    t0 = jac[:, :, 0]
    terms = jac[:, :, 1 : p + 1] - t0.unsqueeze(2)
    if affine is None:
        predicted = t0 + (terms * (check * lmask).view(b, 1, p, 1, 1)).sum(2)
        size = jac.abs().flatten(2).amax(-1).clamp_min(1e-300)
        err = (jac[:, :, p + 1] - predicted).abs().flatten(2).amax(-1)
        fin = torch.isfinite(jac).flatten(2).all(-1)
        close = err <= 1e-7 * size
        # affinity from the settings where the gradient is finite (read from the tree, so a row with no
        # finite setting here keeps it); finiteness itself is a property of each setting
        checked = torch.where(fin.any(1), (close | ~fin).all(1), torch.ones_like(fin[:, 0]))
        affine = fin & close
    else:
        checked = affine.view(b)
        affine = affine.view(b, 1) & torch.isfinite(jac).flatten(2).all(-1)
    t_all = torch.cat([t0.unsqueeze(2), terms], 2).reshape(b * g, p + 1, *jac.shape[-2:])
    t_all = torch.nan_to_num(t_all, nan=0.0, posinf=0.0, neginf=0.0)
    rates = None
    if ends is not None:  # the parts' exact changes over the intervals, as their gradients above
        r = _measure.difference_rate(prog, ends, basis[:, :, : p + 1].reshape(b, g * (p + 1), p))
        r = r.reshape(b, g, p + 1, -1)
        # a pole at an interval's end: no solution (not a rate of 0)
        affine = affine & torch.isfinite(r).flatten(2).all(-1)
        rates = torch.cat([r[:, :, :1], r[:, :, 1:] - r[:, :, :1]], 2).reshape(b * g, p + 1, -1)
        rates = torch.nan_to_num(rates, nan=0.0, posinf=0.0, neginf=0.0)
    qa, qb = _measure.quadratic_forms(t_all, v, scale, rates)
    c, ok = _measure.smallest_direction(qa, qb)
    coef = torch.cat([torch.ones_like(c[:, :1]), c], 1).unsqueeze(-1)
    value = ((coef.transpose(-1, -2) @ qa @ coef) / (coef.transpose(-1, -2) @ qb @ coef)).view(b, g)
    theta = base + c.view(b, g, p) * lmask.unsqueeze(1)
    ok = ok.view(b, g) & affine & torch.isfinite(value)
    return theta, torch.where(ok, value, torch.full_like(value, math.inf)), ok, checked


def _grid_starts(prog, nl_mask, lmask, points, torch):
    """One-nonlinear-parameter rows: that parameter on :data:`GRID`, the linear ones solved at each value,
    then :data:`ZOOMS` rounds of a finer grid around the best value.

    Returns the two best settings per row (B, 2, P) and their unclipped measure (B, 2) on the screen points.
    """
    b, p = nl_mask.shape
    has_linear = lmask.any(1)
    if bool(has_linear.any()) and not bool(
        has_linear.all()
    ):  # one kind of row per call: see _solve_linear
        cand = torch.zeros(b, 2, p, dtype=torch.float64, device=nl_mask.device)
        value = torch.zeros(b, 2, dtype=torch.float64, device=nl_mask.device)
        for rows in (has_linear.nonzero().squeeze(-1), (~has_linear).nonzero().squeeze(-1)):
            cand[rows], value[rows] = _grid_starts(
                prog.subset(rows), nl_mask[rows], lmask[rows], points, torch
            )
        return cand, value
    grid = torch.as_tensor(GRID, dtype=torch.float64, device=nl_mask.device).expand(b, -1)

    affine = None  # whether each row is affine in its linear parameters: checked on the first slice

    def scored(values):  # values (B, G) of the nonlinear parameter
        nonlocal affine
        thetas, out = [], []
        for lo in range(0, values.shape[1], _GRID_SLICE):
            fixed = values[:, lo : lo + _GRID_SLICE].unsqueeze(-1) * nl_mask.unsqueeze(1)
            th, val, _, checked = _solve_linear(
                prog, points.x_screen, points.v_screen, points.scale, fixed, lmask, torch, affine,
                points.ends_screen,
            )  # fmt: skip
            if affine is None and checked is not None:
                # the affinity check alone (not the finiteness of the values), at the first slice's
                # values; later slices reuse it
                affine = checked
            thetas.append(th)
            out.append(val)
        return torch.cat(thetas, 1), torch.cat(out, 1)

    theta, value = scored(grid)
    step = torch.full((b, 1), GRID_STEP, dtype=torch.float64, device=grid.device)
    for _ in range(ZOOMS):
        top = value.argmin(1, keepdim=True)
        centre = theta.gather(1, top.unsqueeze(-1).expand(-1, -1, p))
        v0 = (centre[:, 0] * nl_mask).sum(-1, keepdim=True)  # (B, 1)
        offsets = torch.linspace(-1, 1, ZOOM_POINTS, dtype=torch.float64, device=grid.device)
        offsets = offsets[offsets != 0]  # the centre is scored already
        local = v0 * torch.exp(step * offsets)  # same sign, log-spaced around the best value
        th, val = scored(local)
        theta, value = torch.cat([theta, th], 1), torch.cat([value, val], 1)
        step = step * 2 / (ZOOM_POINTS - 1)
    top = value.topk(2, dim=1, largest=False)
    idx = top.indices.unsqueeze(-1).expand(-1, -1, p)
    return theta.gather(1, idx), top.values


def _best(prog, loss, theta, torch):
    """The start with the lowest loss per row: (B, P)."""
    with torch.no_grad():
        j = loss(prog, theta).argmin(1)
    return theta[torch.arange(theta.shape[0], device=theta.device), j]


def _fit_params(prog, k, affine, texts, nonlinear, points, loss, cfg, torch):
    """Fitted parameters (B, 1, P) of one slice of a topology group.

    Rows whose parameters all stand in affine positions: closed form. Rows with one parameter in a
    nonlinear position: that parameter on :data:`GRID`, the others in closed form at each value; Newton then
    refines, from the two best values, the rows whose best value scores at most :func:`_polish`. Other rows
    (and rows whose affinity the numbers contradict): Newton from ``cfg.n_starts`` starts. With
    ``cfg.closed_form`` off, every parameter counts as nonlinear.
    """
    device = points.x.device
    b = len(k)
    pdim = max(1, int(k.max()))
    used = np.arange(pdim)[None, :] < k[:, None]
    pmask = torch.as_tensor(used.astype(np.float64), device=device).view(b, 1, pdim)
    lin = used & affine[:, :pdim] if cfg.closed_form else np.zeros_like(used)
    lmask = torch.as_tensor(lin.astype(np.float64), device=device)
    n_nl = torch.as_tensor((used & ~lin).sum(1), device=device)
    kt = torch.as_tensor(k, device=device)
    best = torch.ones(b, pdim, dtype=torch.float64, device=device) * pmask[:, 0]
    solved = kt == 0
    linear = ((n_nl == 0) & (kt > 0)).nonzero().squeeze(-1)
    if len(linear):
        with torch.no_grad():
            fixed = torch.zeros(len(linear), 1, pdim, dtype=torch.float64, device=device)
            theta, _, ok, _ = _solve_linear(
                prog.subset(linear),
                points.x_closed,
                points.v_closed,
                points.scale,
                fixed,
                lmask[linear],
                torch,
                ends=points.ends_closed,
            )
        done = linear[ok[:, 0]]
        best[done] = theta[ok[:, 0], 0]
        solved[done] = True
    one = ((n_nl == 1) & ~solved).nonzero().squeeze(-1)
    if len(one):
        sub = prog.subset(one)
        nl_mask = pmask[one, 0] - lmask[one]
        with torch.no_grad():
            cand, value = _grid_starts(sub, nl_mask, lmask[one], points, torch)
        found = torch.isfinite(value[:, 0])
        best[one[found]] = cand[found, 0]
        keen = (found & (value[:, 0] <= _polish(cfg.ratio))).nonzero().squeeze(-1)
        if cfg.steps and len(keen):
            idx = one[keen]
            sub = prog.subset(idx)
            fitted = _optimise(sub, loss, cand[keen], pmask[idx], cfg, _screen(cfg.ratio))
            best[idx] = _best(sub, loss, fitted, torch)
        solved[one[found]] = True  # the others (no finite grid value) go to Newton below
    many = (~solved).nonzero().squeeze(-1)
    if cfg.steps and len(many):
        sub = prog.subset(many)
        starts = cfg.n_starts if nonlinear else min(2, cfg.n_starts)
        rows = many.tolist()
        init = row_starts([texts[r] for r in rows], starts, pdim, cfg.seed)
        init = torch.as_tensor(init, device=device) * pmask[many]
        fitted = _optimise(sub, loss, init, pmask[many], cfg, _screen(cfg.ratio))
        best[many] = _best(sub, loss, fitted, torch)
    return best.unsqueeze(1)


# ---------------------------------------------------------------------------------------------------------
# Constant blocks: a subtree without variables is one number, whatever its parameters


def _has_input(node) -> bool:
    if isinstance(node, dsl.Input):
        return True
    return isinstance(node, dsl.Op) and any(_has_input(a) for a in node.args)


def _n_params(node) -> int:
    if isinstance(node, dsl.Param):
        return 1
    return sum(_n_params(a) for a in node.args) if isinstance(node, dsl.Op) else 0


def fold(expr):
    """``expr`` with every largest variable-free subtree that holds a parameter, other than a bare parameter,
    replaced by one parameter: ``q/(c_0 + c_1)`` -> ``q/c``, ``p^2 + c_0^2*cos(q)`` -> ``p^2 + c*cos(q)``.

    The measure sees only the subtree's value, so the folded formula has the same best score with fewer,
    often linear, parameters. Returns ``(folded, blocks)``: per parameter of the folded formula (pre-order),
    ``None`` for a parameter kept as it was, or the replaced subtree; ``None`` when nothing was folded.
    """
    blocks: list = []
    changed = False

    def go(node):
        nonlocal changed
        if isinstance(node, dsl.Param):
            blocks.append(None)
            return node
        if not isinstance(node, dsl.Op):
            return node
        if not _has_input(node) and _n_params(node) > 0:
            blocks.append(node)
            changed = True
            return dsl.Param()
        return dsl.Op(node.name, tuple(go(a) for a in node.args))

    folded = go(expr)
    return (folded, blocks) if changed else None


def _value(node, values: list[float]) -> float:
    """A variable-free subtree's value, its parameters taking ``values`` in pre-order (consumed)."""
    if isinstance(node, dsl.Param):
        return values.pop(0)
    if isinstance(node, dsl.Const):
        return float(node.value)
    args = [_value(a, values) for a in node.args]
    return dsl.PRIMITIVES[node.name].float_fn(*args)


def _solve_block(node, target: float) -> list[float] | None:
    """Parameter values (pre-order) that give the variable-free subtree ``node`` the value ``target``: every
    parameter but the first is 1, the first follows by inverting the operators above it. ``None`` when the
    value cannot be reached that way (``c^2 = -1``, ``sin(c) = 2``)."""

    def solve(n, t):  # -> values of n's parameters with n == t, or None
        if isinstance(n, dsl.Param):
            return [t]
        k = _n_params(n)
        if not isinstance(n, dsl.Op) or k == 0:
            return None
        if len(n.args) == 1:
            inner = dsl.PRIMITIVES[n.name].inverse(t)
            return None if inner is None else solve(n.args[0], inner)
        a, b = n.args
        first_left = _n_params(a) > 0
        other = b if first_left else a
        v = _value(other, [1.0] * _n_params(other))
        if n.name == "add":
            inner = t - v
        elif n.name == "sub":
            inner = t + v if first_left else v - t
        elif n.name == "mul":
            inner = t / v if v != 0 else None
        else:  # div
            inner = t * v if first_left else (v / t if t != 0 else None)
        if inner is None or not math.isfinite(inner):
            return None
        part = solve(a if first_left else b, inner)
        if part is None:
            return None
        ones = [1.0] * _n_params(other)
        return part + ones if first_left else ones + part

    values = solve(node, float(target))
    if values is None or not all(math.isfinite(x) for x in values):
        return None
    got = _value(node, list(values))
    if not math.isfinite(got) or abs(got - target) > 1e-9 * max(1.0, abs(target)):
        return None
    return values


def unfold(blocks, folded_params) -> tuple[float, ...] | None:
    """The original formula's parameters from the folded formula's (see :func:`fold`), or ``None``."""
    out: list[float] = []
    for block, value in zip(blocks, folded_params):
        if block is None:
            out.append(float(value))
            continue
        solved = _solve_block(block, value)
        if solved is None:
            return None
        out.extend(solved)
    return tuple(out)


def _final_scores(prog, theta, points: _Points, torch):
    """Measure, null measure, triviality and finiteness of every row at its parameters (B, 1, P); the weight
    cap comes from the fit subsample."""
    b = theta.shape[0]
    d = points.x.shape[0]
    step = max(256, BUDGET // max(1, b * (d + 2)))
    # the cap from the same points whatever the batch: results never depend on the chunk size
    _, jac_fit = _measure.jacobian(prog, points.x_fit, theta)
    cap = _measure.median_cap(jac_fit, points.v_fit, points.scale)  # (B, 1, 1)
    num = torch.zeros(b, 1, dtype=torch.float64, device=theta.device)
    den, num_null, den_null = num.clone(), num.clone(), num.clone()
    finite = torch.ones(b, dtype=torch.bool, device=theta.device)
    for lo in range(0, points.n, step):
        x, v, ends = points.at(slice(lo, lo + step))
        g, jac = _measure.jacobian(prog, x, theta)
        # a non-finite gradient anywhere makes the sums below non-finite (an infinite weight is capped to
        # 0 * inf = nan), so only the values are checked here and the sums after the loop
        finite &= torch.isfinite(g).flatten(1).all(-1)
        grad2 = ((jac * points.scale) ** 2).sum(-2)
        rate = _measure.difference_rate(prog, ends, theta)
        a, c = _measure.sums(jac, v, points.scale, cap, grad2, rate)
        num, den = num + a, den + c
        a, c = _measure.sums(jac, points.v_null[:, lo : lo + step], points.scale, cap, grad2)
        num_null, den_null = num_null + a, den_null + c
    for total in (num, den, num_null, den_null):
        finite &= torch.isfinite(total[:, 0])
    g_null = prog(points.x_null, theta).expand(b, 1, points.x_null.shape[-1])[:, 0]
    ok = torch.isfinite(g_null)
    cnt = ok.sum(-1).clamp_min(1)
    gz = torch.where(ok, g_null, 0.0)
    mean = gz.sum(-1) / cnt
    var = (torch.where(ok, (g_null - mean.unsqueeze(-1)) ** 2, 0.0)).sum(-1) / cnt
    trivial = (var <= TRIVIAL * (gz * gz).sum(-1) / cnt) | (den[:, 0] <= 0)
    return (num / den)[:, 0], (num_null / den_null)[:, 0], trivial, finite


def _slices(groups, points: _Points, cfg, d: int):
    """``(group, slice)`` pairs, each slice small enough for :data:`BUDGET`."""
    for group in groups:
        pdim = max(1, int(group.n_params.max()))
        widest = max(
            points.x_fit.shape[-1] * max(cfg.n_starts, 2) * 7,
            points.x_screen.shape[-1] * _GRID_SLICE * (pdim + 2),
            points.x_closed.shape[-1] * (pdim + 2),
        )
        per = max(1, BUDGET // max(1, widest * (d + 1)))
        for lo in range(0, len(group.rows), per):
            yield group, slice(lo, lo + per)


def _fit_all(exprs, seeds, var_names, points, cfg, torch, memo=None) -> list[tuple[float, ...]]:
    """Fitted parameters of every formula of ``exprs`` (``seeds``: the texts their starts are drawn from;
    ``memo``: see :func:`formula_search._fit._group`)."""
    out: list = [()] * len(exprs)
    loss = _fit_loss(points)
    for group, sl in _slices(_group(exprs, var_names, memo), points, cfg, points.x.shape[0]):
        k = group.n_params[sl]
        if not int(k.max()):
            continue
        rows = group.rows[sl]
        prog = _Program(group, sl, torch, points.x.device)
        theta = _fit_params(
            prog,
            k,
            group.param_affine[sl],
            [seeds[r] for r in rows],
            group.nonlinear,
            points,
            loss,
            cfg,
            torch,
        )
        values = theta[:, 0].detach().cpu().numpy()
        for j, r in enumerate(rows):
            out[r] = tuple(float(v) for v in values[j, : k[j]])
    return out


def fit_chunk(problem: _Problem, texts: Sequence[str]) -> pd.DataFrame:
    """Fit and score one chunk of formula texts under the derivative measure (no I/O).

    Formulas are fitted in their folded form (:func:`fold`) where it maps back to their own parameters, as
    they are otherwise; every formula is then scored as it is written."""
    import torch

    cfg = problem.config
    if cfg.jobs > 1 or cfg.backend == "dask":
        torch.set_num_threads(1)
    device = _resolve_device(cfg.device, torch)
    points = _Points(problem.prepared, cfg.max_fit_points, torch, device)
    n = len(texts)
    params: list = [()] * n
    true_s = np.full(n, np.nan)
    null_s = np.full(n, np.nan)
    status = ["failed"] * n
    parsed, positions = _parse_chunk(texts, problem.var_names, status)
    exprs, good = _set_aside_constants(parsed, positions, status, params)
    # fit: folded forms first, then the formulas whose folded constants cannot be mapped back
    folds = [fold(e) if cfg.closed_form else None for e in exprs]
    memo: dict = {}  # the exprs (id) stay alive below, so their ids are not reused
    seeds = [texts[i] for i in good]
    theta_of = _fit_folded(exprs, folds, seeds, problem.var_names, points, cfg, torch, memo)
    # score every formula as written
    for group, sl in _slices(
        _group(exprs, problem.var_names, memo), points, cfg, points.x.shape[0]
    ):
        ts, ns, trivial, finite = _score_slice(group, sl, theta_of, points, torch, device)
        for j, r in enumerate(group.rows[sl]):
            i = good[r]
            params[i] = tuple(theta_of[r])
            if not finite[j]:
                status[i] = "failed"
                continue
            if trivial[j]:
                status[i] = "trivial"
                continue
            if not (np.isfinite(ts[j]) and np.isfinite(ns[j])):
                continue
            true_s[i], null_s[i] = ts[j], ns[j]
            status[i] = "ok"
    return _chunk_table(texts, params, true_s, null_s, status, cfg.ratio)


def _set_aside_constants(parsed, positions, status, params) -> tuple[list, list[int]]:
    """``(exprs, their positions)`` of the formulas with a variable; the others are marked trivial."""
    exprs, good = [], []
    for i, expr in zip(positions, parsed):
        if not dsl.inputs(expr):  # no variable: constant whatever its parameters
            status[i] = "trivial"
            params[i] = (1.0,) * dsl.n_params(expr)
            continue
        exprs.append(expr)
        good.append(i)
    return exprs, good


def _fit_folded(exprs, folds, seeds, var_names, points, cfg, torch, memo) -> list:
    """Each formula's fitted parameters: through its folded form where that maps back, else directly."""
    fitted = _fit_all(
        [f[0] if f else e for e, f in zip(exprs, folds)],
        seeds,
        var_names,
        points,
        cfg,
        torch,
        memo,
    )
    theta_of: list = [None] * len(exprs)
    for j, (f, values) in enumerate(zip(folds, fitted)):
        theta_of[j] = values if f is None else unfold(f[1], values)
    again = [j for j, t in enumerate(theta_of) if t is None]
    if again:
        refit = _fit_all(
            [exprs[j] for j in again],
            [seeds[j] for j in again],
            var_names,
            points,
            cfg,
            torch,
        )
        for j, values in zip(again, refit):
            theta_of[j] = values
    return theta_of


def _score_slice(group, sl, theta_of, points, torch, device):
    """True and null scores, trivial and finite flags (numpy) of one slice of a group at its parameters."""
    prog = _Program(group, sl, torch, device)
    k = group.n_params[sl]
    rows = group.rows[sl]
    pdim = max(1, int(k.max()))
    theta = np.zeros((len(rows), 1, pdim))
    for j, r in enumerate(rows):
        theta[j, 0, : k[j]] = theta_of[r]
    theta = torch.as_tensor(theta, dtype=torch.float64, device=device)
    with torch.no_grad():
        ts, ns, trivial, finite = _final_scores(prog, theta, points, torch)
    ts, ns = ts.cpu().numpy(), ns.cpu().numpy()
    trivial, finite = trivial.cpu().numpy(), finite.cpu().numpy()
    return ts, ns, trivial, finite
