"""Laws deeper than any enumeration: sparse sums of terms with closed-form coefficients.

The energies of coupled systems are sums of 4-6 terms (``v1^2 + v2^2 + x1^2 + x1*x2 + x2^2``), 20-30 tokens:
far beyond an exhaustive search. Under the derivative measure (:mod:`formula_search._measure`) the
coefficients of a fixed set of terms need no search at all: ``g = sum_k a_k t_k`` has

    D(a) = a^T A a / a^T B a,   A_kl = sum_i (grad t_k . v_i)(grad t_l . v_i),
                                B_kl = sum_i (S grad t_k . S grad t_l) |S^-1 v_i|^2

so the best coefficients are the generalised eigenvector of the smallest eigenvalue. The search is over
which terms enter:

1. **Terms**: every unit-valid, parameter-free formula with a variable, up to ``term_depth`` tokens (the
   enumerator's, conservation dedup). Their gradients are evaluated once on the prepared points.
2. **Beam search** over term sets: every set of the beam is extended by every other term; a set's score is
   its smallest eigenvalue ``D``; sets whose ``B`` is singular (their terms' gradients are linearly
   dependent on the data and off it: ``sin(q)^2 + cos(q)^2``) are dropped; the ``beam`` best sets of each
   size are kept, up to ``max_terms`` terms. A set whose ``D`` is already below the acceptance
   (``ratio * D_null``) is a law; it is extended too (an approximate law of few terms can hide the exact
   one).
3. **Independent laws**: the best law is kept; a later candidate whose gradient lies, at every data point,
   in the span of the gradients of the laws kept (a function of them) is not new.
4. **Scoring**: each law is written as a formula (``t_0 + c_1*t_1 + ...``) and scored by
   :func:`formula_search._fit.fit_formulas`, so its table row (constants, units, ratio, status) is exactly
   what ``fsearch fit`` gives any formula, and ``rank``, ``run`` and ``export`` take it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

import dsl
from formula_search.errors import InputError

#: Ratios within this factor are ties (as in :func:`formula_search._fit.survivors`).
TIE = 2.0


@dataclass(frozen=True)
class TermConfig:
    """Options of :func:`term_search`.

    Attributes:
        term_depth: largest term size in tokens (``x1*py1`` has 3, ``v1*v2*cos(o1 - o2)`` 6).
        max_terms: most terms in one law.
        beam: term sets kept per size.
        max_laws: most independent laws reported.
        points: most points the quadratic forms are taken on (evenly spaced).
        operators: the operators terms are built with (``None``: :data:`dsl.DEFAULT_OPERATORS`; add
            ``"sqrt"`` for terms such as ``1/sqrt((x1 - x2)^2 + (y1 - y2)^2)``).
    """

    term_depth: int = 5
    max_terms: int = 6
    beam: int = 64
    max_laws: int = 6
    points: int = 4000
    operators: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("term_depth", "max_terms", "beam", "max_laws", "points"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_terms < 2:
            raise InputError("max_terms must be at least 2 (a law of one term is a plain formula)")


def terms(variables, term_depth: int, operators=None) -> list[str]:
    """Parameter-free, unit-valid formulas with a variable, up to ``term_depth`` tokens, algebraic dedup
    (``x^2`` and ``x`` are different terms, though one is conserved when the other is); a sum or difference
    at the top is left out: the combinations already span it."""
    from formula_search._enumerate import check_search_size, enumerate_formulas

    check_search_size(variables, max_size=term_depth, dedup="algebraic", operators=operators)
    names = [v.name for v in variables]
    out = []
    for f in enumerate_formulas(
        variables, max_size=term_depth, dedup="algebraic", operators=operators
    ):
        if f.n_params:
            continue
        expr = dsl.parse(f.formula, names)
        if isinstance(expr, dsl.Op) and expr.name in ("add", "sub"):
            continue
        out.append(f.formula)
    return out


def _gradients(texts, var_names, x, torch):
    """(K, n_vars, N) gradients of the terms at the points ``x`` (n_vars, N); non-finite entries as NaN."""
    from formula_search._fit import _group, _Program

    exprs = [dsl.parse(t, var_names) for t in texts]
    out = torch.full((len(texts), x.shape[0], x.shape[1]), math.nan, dtype=torch.float64)
    for group in _group(exprs, var_names):
        prog = _Program(group, slice(None), torch, x.device)
        theta = torch.zeros(len(group.rows), 1, 1, dtype=torch.float64)
        with torch.no_grad():
            _, jac = prog.with_gradient(x, theta)
        jac = jac.expand(len(group.rows), 1, x.shape[0], x.shape[1])[:, 0]
        out[torch.as_tensor(group.rows)] = jac
    return out


def _forms(grad, v, scale, torch):
    """``A`` and ``B`` (K, K) of the terms' gradients (K, d, N) against velocities ``v`` (d, N)."""
    rate = (grad * v.unsqueeze(0)).sum(1)  # (K, N)
    a = rate @ rate.T
    w = ((v / scale) ** 2).sum(0)
    gs = (grad * (scale * w.sqrt()).unsqueeze(0)).flatten(1)
    return a, gs @ gs.T


def _smallest(a_sets, b_sets, torch):
    """Smallest generalised eigenvalue and its vector per set: (M,), (M, s); ``inf`` where ``B`` is
    singular (linearly dependent gradients) or not finite."""
    m, s, _ = a_sets.shape
    d = b_sets.diagonal(dim1=-2, dim2=-1).clamp_min(1e-300).rsqrt()
    an = a_sets * d.unsqueeze(-1) * d.unsqueeze(-2)
    bn = b_sets * d.unsqueeze(-1) * d.unsqueeze(-2)
    eye = torch.eye(s, dtype=torch.float64)
    finite = torch.isfinite(an).flatten(1).all(-1) & torch.isfinite(bn).flatten(1).all(-1)
    bn = torch.where(finite.view(-1, 1, 1), bn, eye)
    an = torch.where(finite.view(-1, 1, 1), an, eye)
    bmin = torch.linalg.eigvalsh(bn)[:, 0]
    good = finite & (bmin > 1e-9)  # the terms' gradients are independent
    bn = torch.where(good.view(-1, 1, 1), bn, eye)
    chol = torch.linalg.cholesky(bn)
    inv = torch.linalg.solve_triangular(chol, eye.expand(m, s, s), upper=False)
    c = inv @ an @ inv.transpose(-1, -2)
    vals, vecs = torch.linalg.eigh(0.5 * (c + c.transpose(-1, -2)))
    y = inv.transpose(-1, -2) @ vecs[:, :, :1]  # back to the normalised basis
    coef = y[:, :, 0] * d  # and to the terms
    value = torch.where(good, vals[:, 0].clamp_min(0.0), torch.full_like(vals[:, 0], math.inf))
    return value, coef


def _law_text(texts, idx, coef) -> str:
    """``t_0 + c*t_1 + ...`` with the term of the largest coefficient first (its coefficient 1)."""
    order = sorted(range(len(idx)), key=lambda j: -abs(coef[j]))
    parts = [f"({texts[idx[order[0]]]})"] + [f"c*({texts[idx[j]]})" for j in order[1:]]
    return " + ".join(parts)


def term_search(
    data,
    *,
    config: TermConfig | None = None,
    fit_config=None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Sparse sums of terms conserved along ``data`` (module docstring).

    Args:
        data: a :class:`formula_search.data.Dataset` (its training split) or a
            :class:`formula_search._fit.FitData`.
        config: the term search's options.
        fit_config: a :class:`formula_search._fit.FitConfig` (measure must be ``derivative``); its ``ratio``
            is the acceptance.
        progress: called with a line of text after each stage.

    Returns:
        The fit table (columns of :data:`formula_search._fit.COLUMNS`) of the laws found, best first, plus
        ``terms`` (number of terms) and ``term_depth``.
    """
    import torch

    from formula_search import _measure
    from formula_search._fit import FitConfig, _as_fitdata, _problem, fit_formulas, resolve_defaults

    config = config or TermConfig()
    fit_config = resolve_defaults(fit_config or FitConfig(), data)
    if fit_config.measure != "derivative":
        raise InputError("the term search needs the derivative measure (--measure derivative)")
    fit_data = _as_fitdata(data)
    say = progress or (lambda _line: None)
    problem = _problem(fit_data, fit_config)
    prep: _measure.Prepared = problem.prepared
    n = len(prep.x)
    keep = np.arange(0, n, max(1, math.ceil(n / config.points)))
    x = torch.as_tensor(np.ascontiguousarray(prep.x[keep].T))
    v = torch.as_tensor(np.ascontiguousarray(prep.v[keep].T))
    v_null = torch.as_tensor(np.ascontiguousarray(prep.v_null[keep].T))
    scale = torch.as_tensor(prep.scale).view(-1, 1)
    variables = fit_data.variables or tuple(dsl.Variable(nm, "1") for nm in fit_data.var_names)
    texts = terms(variables, config.term_depth, config.operators)
    grad = _gradients(texts, fit_data.var_names, x, torch)
    usable = torch.isfinite(grad).flatten(1).all(-1) & (grad.abs().flatten(1).amax(-1) > 0)
    texts = [t for t, ok in zip(texts, usable.tolist()) if ok]
    grad = grad[usable]
    # a term conserved on its own is a law of one term (the plain fit finds it); in a set it would make
    # every companion look conserved with coefficient 0
    a1, b1 = _forms(grad, v, scale, torch)
    an1, bn1 = _forms(grad, v_null, scale, torch)
    own = (a1.diagonal() / b1.diagonal()) / (an1.diagonal() / bn1.diagonal())
    alone = ~(own > fit_config.ratio)
    texts = [t for t, c in zip(texts, alone.tolist()) if not c]
    grad = grad[~alone]
    k = len(texts)
    if k < 2:
        raise InputError(f"only {k} usable term(s) up to size {config.term_depth}")
    say(f"{k} terms up to size {config.term_depth} ({int(alone.sum())} conserved alone, left out)")
    gnorm = (grad * scale.unsqueeze(0)).flatten(1).norm(dim=1)
    a_all, b_all = _forms(grad, v, scale, torch)
    an_all, bn_all = _forms(grad, v_null, scale, torch)
    accept = fit_config.ratio

    def score(sets):  # sets (M, s) of term indices -> D, coefficients, ratio
        ix = sets.unsqueeze(-1), sets.unsqueeze(-2)
        val, coef = _smallest(a_all[ix], b_all[ix], torch)
        cn = coef.unsqueeze(-1)
        an, bn = an_all[ix], bn_all[ix]
        null = (cn.transpose(-1, -2) @ an @ cn / (cn.transpose(-1, -2) @ bn @ cn)).view(-1)
        return val, coef, val / null

    # size 2: every pair
    pairs = torch.combinations(torch.arange(k), 2)
    found: list[tuple[list[int], np.ndarray, float]] = []
    beam = pairs
    for size in range(2, config.max_terms + 1):
        val, coef, ratio = score(beam)
        law = torch.isfinite(ratio) & (ratio <= accept)
        # every term must take part: a set with a negligible coefficient is a smaller set's law
        part = coef.abs() * gnorm[beam]
        full = (part >= 1e-6 * part.amax(1, keepdim=True)).all(1)
        law = law & full
        for j in law.nonzero().view(-1).tolist():
            found.append((beam[j].tolist(), coef[j].numpy(), float(ratio[j])))
        say(f"size {size}: {len(beam)} term sets, {int(law.sum())} conserved")
        if size == config.max_terms:
            break
        # conserved sets are extended too: an approximate law of a few terms can hide the exact one
        order = val.argsort()[: config.beam]
        order = order[torch.isfinite(val[order])]
        if len(order) == 0:
            break
        parents = beam[order]  # (W, size)
        ext = torch.cat(
            [parents.repeat_interleave(k, 0), torch.arange(k).repeat(len(parents)).view(-1, 1)], 1
        )
        fresh = (ext[:, :-1] != ext[:, -1:]).all(1)
        ext = ext[fresh].sort(1).values.unique(dim=0)
        beam = ext
    # independent laws, the best first: by ratio (within a factor TIE, fewer terms first)
    found.sort(
        key=lambda f: (math.floor(math.log(max(f[2], 1e-300)) / math.log(TIE)), len(f[0]), f[2])
    )
    kept: list[tuple[list[int], np.ndarray, float]] = []
    kept_grads: list = []
    for idx, coef, ratio in found:
        g = (grad[idx] * torch.as_tensor(coef).view(-1, 1, 1)).sum(0)  # (d, N)
        if kept_grads and _in_span(g, kept_grads, torch):
            continue
        kept.append((idx, coef, ratio))
        kept_grads.append(g)
        if len(kept) >= config.max_laws:
            break
    say(f"{len(kept)} independent law(s) of {len(found)} conserved term sets")
    if not kept:
        empty = fit_formulas([], fit_data, config=fit_config)
        return empty.assign(terms=pd.Series(dtype=int), term_depth=config.term_depth)
    laws = [_law_text(texts, idx, coef) for idx, coef, _ in kept]
    table = fit_formulas(laws, fit_data, config=replace(fit_config, jobs=1))
    table["terms"] = [len(idx) for idx, _, _ in kept]
    table["term_depth"] = config.term_depth
    return table.reset_index(drop=True)


def _in_span(g, others, torch) -> bool:
    """Whether ``g`` (d, N) lies, at every point, in the span of the gradients ``others`` (each (d, N)):
    the quantity is then locally a function of the laws already kept."""
    basis = torch.stack(others, 0).permute(2, 1, 0)  # (N, d, m)
    target = g.T.unsqueeze(-1)  # (N, d, 1)
    sol = torch.linalg.lstsq(basis, target).solution
    resid = target - basis @ sol
    return bool((resid**2).sum() <= 1e-6 * (target**2).sum())
