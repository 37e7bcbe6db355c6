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

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

import dsl
from formula_search.errors import InputError

#: Ratios within this factor are ties (as in :func:`formula_search._fit.survivors`).
TIE = 2.0
#: A term set whose combination's gradient is this small next to its terms' gradients is an identity
#: (``sin(q)^2 + cos(q)^2``, ``cos(q + q) + 2*sin(q)^2``): constant everywhere, not a law of the data.
IDENTITY = 1e-8
#: A term takes part in a law when its share of the gradient is at least this (else the smaller set is the law).
PARTICIPATION = 1e-3
#: A law is new unless this share (squared) of its gradient or more is explained, at the data's points, by
#: the gradients of the laws already kept (a function of them, up to the noise of the fit).
SPAN_TOL = 1e-2
#: Ratios below this are round-off: the law is exact on the data, and all such laws tie.
EXACT = 1e-14
#: When the best law is exact, a law more than this factor worse is an approximation, not reported.
GAP = 1e6
#: On canonical data a law is the Hamiltonian when its symplectic gradient explains the velocities but for
#: this share (squared): the energy is named before other conserved quantities (normal-mode energies),
#: whose share is large (0.45-0.98 on the coupled oscillators; the energy's 0.000 at 1% noise).
GENERATOR = 0.05
#: Conserved term sets examined for independence, the best first (the rest are supersets of them).
MAX_CANDIDATES = 2000
#: Searches at most, each without a term of every law found before (:func:`_rounds`).
ROUNDS = 4
#: Term pairs scored per batch (closed form, a few floats each).
PAIR_BATCH = 1_000_000
#: The term libraries of :class:`TermConfig`, and the largest degree of the ``products`` library's monomials.
LIBRARIES = ("enumerate", "products")
DEGREE = 2


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
        library: ``"enumerate"``: every unit-valid term up to ``term_depth`` tokens; ``"products"``: the
            monomials of the variables up to degree :data:`DEGREE` times 1, sine and cosine of each
            dimensionless variable and of each difference of two (:func:`product_terms`; ``term_depth``
            and ``operators`` do not apply): terms such as ``w1*w2*cos(q1 - q2)`` (8 tokens), in a
            library of about a hundred.
        extra: terms added to the library, written in the language (parameter-free, with a variable,
            unit-valid, any operator of :data:`dsl.PRIMITIVES`): a term deeper than the library reaches,
            such as the two bodies' ``1/sqrt((x1 - x2)^2 + (y1 - y2)^2)`` (11 tokens).
    """

    term_depth: int = 5
    max_terms: int = 6
    beam: int = 256
    max_laws: int = 6
    points: int = 4000
    operators: tuple[str, ...] | None = None
    library: str = "enumerate"
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.library not in LIBRARIES:
            raise InputError(f"library must be one of {', '.join(LIBRARIES)}, not {self.library!r}")
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


def product_terms(variables) -> list[str]:
    """The ``products`` library: every monomial of the variables up to degree :data:`DEGREE` (1 included)
    times 1, ``sin`` and ``cos`` of each dimensionless variable (an angle) and of each difference of two;
    the constant 1 left out. Unit-valid by construction (trigonometry of dimensionless arguments only)."""
    names = [v.name for v in variables]
    angles = [v.name for v in variables if dsl.Dim.from_units(v.unit).is_dimensionless]
    monomials = [""]
    for degree in range(1, DEGREE + 1):
        for combo in itertools.combinations_with_replacement(names, degree):
            counts = {n: combo.count(n) for n in dict.fromkeys(combo)}
            monomials.append("*".join(n if k == 1 else f"{n}^{k}" for n, k in counts.items()))
    args = angles + [f"{a} - {b}" for a, b in itertools.combinations(angles, 2)]
    trig = [""] + [f"{f}({a})" for a in args for f in ("sin", "cos")]
    return ["*".join(p for p in (m, t) if p) for m in monomials for t in trig if m or t]


def _extra_terms(texts, variables) -> list[str]:
    """The user's extra terms as the language writes them, each checked (one-line errors)."""
    names = [v.name for v in variables]
    out = []
    for text in texts:
        try:
            expr = dsl.parse(text, names)
        except dsl.ParseError as exc:
            raise InputError(f"extra term {text!r}: {exc}") from None
        if dsl.n_params(expr) or not dsl.inputs(expr):
            raise InputError(f"extra term {text!r}: a term has a variable and no parameter")
        if not dsl.is_valid(expr, variables):
            raise InputError(f"extra term {text!r}: its units do not agree")
        out.append(dsl.to_text(expr))
    return out


def _gradients(texts, var_names, x, torch, ends=None):
    """(K, n_vars, N) gradients of the terms at the points ``x`` (n_vars, N), non-finite entries as NaN, and
    with ``ends`` (:attr:`formula_search._fit_derivative._Points.ends`) their rates over the intervals (K, N)
    (:func:`formula_search._measure.difference_rate`), else ``None``."""
    from formula_search._fit import _group, _Program
    from formula_search._measure import difference_rate

    exprs = [dsl.parse(t, var_names) for t in texts]
    out = torch.full((len(texts), x.shape[0], x.shape[1]), math.nan, dtype=torch.float64)
    rates = (
        None
        if ends is None
        else torch.full((len(texts), x.shape[1]), math.nan, dtype=torch.float64)
    )
    for group in _group(exprs, var_names):
        prog = _Program(group, slice(None), torch, x.device)
        theta = torch.zeros(len(group.rows), 1, 1, dtype=torch.float64)
        rows = torch.as_tensor(group.rows)
        with torch.no_grad():
            _, jac = prog.with_gradient(x, theta)
            if ends is not None:
                rates[rows] = difference_rate(prog, ends, theta)[:, 0]
        out[rows] = jac.expand(len(group.rows), 1, x.shape[0], x.shape[1])[:, 0]
    return out, rates


def _forms(grad, v, scale, torch, rate=None):
    """``A`` and ``B`` (K, K) of the terms' gradients (K, d, N) against velocities ``v`` (d, N); ``rate``
    (K, N): the terms' rates when known otherwise (differences), else ``grad . v``."""
    if rate is None:
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
    good = good & ~_identity(coef, b_sets, torch)
    value = torch.where(good, vals[:, 0].clamp_min(0.0), torch.full_like(vals[:, 0], math.inf))
    return value, coef


def _identity(coef, b_sets, torch):
    """Whether each combination's gradient cancels (an identity among its terms, not a law)."""
    c = coef.unsqueeze(-1)
    whole = (c.transpose(-1, -2) @ b_sets @ c).view(-1)
    parts = (coef**2 * b_sets.diagonal(dim1=-2, dim2=-1)).sum(-1)
    return ~(whole > IDENTITY * parts)


def _pair_scores(a, b, an, bn, i, j, torch):
    """Smallest generalised eigenvalue, coefficients and null ratio of the pairs ``(i, j)`` in closed form
    (the 2x2 case of :func:`_smallest`): ``det(A - l B) = 0``."""
    a11, a22, a12 = a[i, i], a[j, j], a[i, j]
    b11, b22, b12 = b[i, i], b[j, j], b[i, j]
    q = b11 * b22 - b12**2
    p = a11 * b22 + a22 * b11 - 2 * a12 * b12
    r = a11 * a22 - a12**2
    disc = (p * p - 4 * q * r).clamp_min(0.0)
    lam = (2 * r / (p + disc.sqrt()).clamp_min(1e-300)).clamp_min(0.0)  # the smaller root, stably
    # the null vector of (A - lam B): from the row of larger norm
    r1 = torch.stack([a11 - lam * b11, a12 - lam * b12], -1)
    r2 = torch.stack([a12 - lam * b12, a22 - lam * b22], -1)
    row = torch.where((r1.norm(dim=-1) >= r2.norm(dim=-1)).unsqueeze(-1), r1, r2)
    coef = torch.stack([row[:, 1], -row[:, 0]], -1)
    coef = coef / coef.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    bset = torch.stack([torch.stack([b11, b12], -1), torch.stack([b12, b22], -1)], -2)
    good = (q > 1e-9 * b11 * b22) & torch.isfinite(lam) & ~_identity(coef, bset, torch)
    value = torch.where(good, lam, torch.full_like(lam, math.inf))
    c0, c1 = coef[:, 0], coef[:, 1]
    null_a = c0**2 * an[i, i] + 2 * c0 * c1 * an[i, j] + c1**2 * an[j, j]
    null_b = c0**2 * bn[i, i] + 2 * c0 * c1 * bn[i, j] + c1**2 * bn[j, j]
    return value, coef, value / (null_a / null_b)


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
            is the acceptance. Its ``derivatives="auto"`` means the data's exact derivatives when they have
            them, else differences of the recorded states (:func:`formula_search._measure.differences`), not
            a spline (:func:`formula_search._fit.velocity_source`): a sum of terms has its coefficients from
            a linear solve, which a derivative estimate's error (a spline's on fast or coarsely sampled
            motion) biases, and a difference has no such error.
        progress: called with a line of text after each stage.

    Returns:
        The fit table (columns of :data:`formula_search._fit.COLUMNS`) of the laws found, best first, plus
        ``terms`` (number of terms) and ``term_depth``.
    """
    import torch

    from formula_search._fit import (
        FitConfig,
        _as_fitdata,
        describe_velocities,
        fit_formulas,
        resolve_defaults,
        velocity_source,
    )

    config = config or TermConfig()
    fit_config = resolve_defaults(fit_config or FitConfig(), data)
    if fit_config.measure != "derivative":
        raise InputError("the term search needs the derivative measure (--measure derivative)")
    fit_data = _as_fitdata(data)
    source, stride = velocity_source(fit_config, fit_data, terms=True)
    fit_config = replace(fit_config, derivatives=source, stride=stride)
    say = progress or (lambda _line: None)
    say(describe_velocities(source, stride))
    lib = _Library.build(fit_data, fit_config, config, torch)
    say(f"{lib.k} terms up to size {config.term_depth} ({lib.alone} conserved alone, left out)")
    found, kept = _rounds(lib, config, fit_config.ratio, say, torch)
    say(f"{len(kept)} independent law(s) of {len(found)} conserved term sets")
    if not kept:
        empty = fit_formulas([], fit_data, config=fit_config)
        return empty.assign(terms=pd.Series(dtype=int), term_depth=config.term_depth)
    laws = [_law_text(lib.texts, idx, coef) for idx, coef, _ in kept]
    table = fit_formulas(laws, fit_data, config=replace(fit_config, jobs=1))
    table["terms"] = [len(idx) for idx, _, _ in kept]
    table["term_depth"] = config.term_depth
    return table.reset_index(drop=True)


@dataclass
class _Library:
    """The terms, their gradients at the prepared points and the quadratic forms of every pair."""

    texts: list[str]
    grad: object  # (K, d, N) tensor
    gnorm: object  # (K,) scaled gradient norms
    size: object  # (K,) tokens of each term
    a: object  # (K, K) forms against the true velocities and against the null ones
    b: object
    an: object
    bn: object
    alone: int
    v: object  # (d, N) velocities at the points
    canonical: bool

    @property
    def k(self) -> int:
        return len(self.texts)

    @classmethod
    def build(cls, fit_data, fit_config, config: TermConfig, torch) -> _Library:
        """Terms of the language on the fit's prepared points; terms conserved alone are left out."""
        from formula_search import _measure
        from formula_search._fit import _problem

        prep: _measure.Prepared = _problem(fit_data, fit_config).prepared
        n = len(prep.x)
        keep = np.arange(0, n, max(1, math.ceil(n / config.points)))
        x = torch.as_tensor(np.ascontiguousarray(prep.x[keep].T))
        v = torch.as_tensor(np.ascontiguousarray(prep.v[keep].T))
        v_null = torch.as_tensor(np.ascontiguousarray(prep.v_null[keep].T))
        scale = torch.as_tensor(prep.scale).view(-1, 1)
        ends = None
        if prep.ends is not None:
            ends = tuple(torch.as_tensor(np.ascontiguousarray(a[keep].T)) for a in prep.ends)
        variables = fit_data.variables or tuple(dsl.Variable(nm, "1") for nm in fit_data.var_names)
        if config.library == "products":
            texts = product_terms(variables)
        else:
            texts = terms(variables, config.term_depth, config.operators)
        texts += [t for t in _extra_terms(config.extra, variables) if t not in texts]
        grad, rate = _gradients(texts, fit_data.var_names, x, torch, ends)
        usable = torch.isfinite(grad).flatten(1).all(-1) & (grad.abs().flatten(1).amax(-1) > 0)
        if rate is not None:
            usable &= torch.isfinite(rate).all(-1)
            rate = rate[usable]
        texts = [t for t, ok in zip(texts, usable.tolist()) if ok]
        grad = grad[usable]
        # a term conserved on its own is a law of one term (the plain fit finds it); in a set it would
        # make every companion look conserved with coefficient 0
        a, b = _forms(grad, v, scale, torch, rate)
        an, bn = _forms(grad, v_null, scale, torch)
        own = (a.diagonal() / b.diagonal()) / (an.diagonal() / bn.diagonal())
        alone = ~(own > fit_config.ratio)
        idx = (~alone).nonzero().view(-1)
        texts = [t for t, c in zip(texts, alone.tolist()) if not c]
        if len(texts) < 2:
            raise InputError(f"only {len(texts)} usable term(s) up to size {config.term_depth}")
        grad = grad[idx]
        ix = idx.unsqueeze(-1), idx.unsqueeze(0)
        sizes = torch.tensor([dsl.size(dsl.parse(t, fit_data.var_names)) for t in texts])
        gnorm = (grad * scale.unsqueeze(0)).flatten(1).norm(dim=1)
        return cls(
            texts, grad, gnorm, sizes, a[ix], b[ix], an[ix], bn[ix], int(alone.sum()), v,
            bool(getattr(fit_data, "canonical", False)),
        )  # fmt: skip

    def subset(self, idx) -> _Library:
        """The library restricted to the terms ``idx`` (a LongTensor), in that order."""
        ix = idx.unsqueeze(-1), idx.unsqueeze(0)
        return dataclasses.replace(
            self, texts=[self.texts[i] for i in idx.tolist()], grad=self.grad[idx],
            gnorm=self.gnorm[idx], size=self.size[idx], a=self.a[ix], b=self.b[ix], an=self.an[ix],
            bn=self.bn[ix],
        )  # fmt: skip

    def score(self, sets, torch):
        """Smallest eigenvalue ``D``, coefficients and null ratio of term sets (M, s)."""
        ix = sets.unsqueeze(-1), sets.unsqueeze(-2)
        val, coef = _smallest(self.a[ix], self.b[ix], torch)
        cn = coef.unsqueeze(-1)
        an, bn = self.an[ix], self.bn[ix]
        null = (cn.transpose(-1, -2) @ an @ cn / (cn.transpose(-1, -2) @ bn @ cn)).view(-1)
        return val, coef, val / null

    def full(self, sets, coef):
        """Whether every term of each set takes part in its combination."""
        part = coef.abs() * self.gnorm[sets]
        return (part >= PARTICIPATION * part.amax(1, keepdim=True)).all(1)


class _Beam:
    """The best term sets of one size: the ``width`` lowest ratios that are not laws (partial laws to extend),
    and the best laws (extended too: an approximate law of a few terms can hide the exact one)."""

    def __init__(self, width: int, torch) -> None:
        self.width, self.torch = width, torch
        self.open = (None, None)  # (sets, D)
        self.laws = (None, None)  # (sets, ratio)

    def offer(self, sets, ratio, law, conserved) -> None:
        # a conserved set that is not a law has a term that takes no part: it is a law plus a spare term
        spare = ~conserved
        self.open = self._merge(self.open, sets[spare], ratio[spare], self.width)
        self.laws = self._merge(self.laws, sets[law], ratio[law], max(1, self.width // 4))

    def _merge(self, held, sets, key, width):
        t = self.torch
        keep = t.isfinite(key)
        sets, key = sets[keep], key[keep]
        if held[0] is not None:
            sets, key = t.cat([held[0], sets]), t.cat([held[1], key])
        order = key.argsort()[:width]
        return sets[order], key[order]

    def parents(self):
        held = [s for s, _ in (self.open, self.laws) if s is not None and len(s)]
        return self.torch.cat(held) if held else None


def _search_sets(lib: _Library, config: TermConfig, accept: float, say, torch) -> list:
    """Every conserved term set the beam meets: ``(term indices, coefficients, ratio)``."""
    found: list[tuple[list[int], np.ndarray, float]] = []

    def record(sets, coef, ratio, beam):
        conserved = torch.isfinite(ratio) & (ratio <= accept)
        law = conserved & lib.full(sets, coef)
        for j in law.nonzero().view(-1).tolist():
            found.append((sets[j].tolist(), coef[j].numpy(), float(ratio[j])))
        beam.offer(sets, ratio, law, conserved)
        return int(law.sum())

    beam = _Beam(config.beam, torch)
    pairs = torch.combinations(torch.arange(lib.k), 2)
    n_laws = 0
    for chunk in pairs.split(PAIR_BATCH):
        i, j = chunk[:, 0], chunk[:, 1]
        _, coef, ratio = _pair_scores(lib.a, lib.b, lib.an, lib.bn, i, j, torch)
        n_laws += record(chunk, coef, ratio, beam)
    say(f"size 2: {len(pairs)} term sets, {n_laws} conserved")
    for size in range(3, config.max_terms + 1):
        parents = beam.parents()
        if parents is None:
            break
        ext = torch.cat(
            [
                parents.repeat_interleave(lib.k, 0),
                torch.arange(lib.k).repeat(len(parents)).view(-1, 1),
            ],
            1,
        )
        ext = ext[(ext[:, :-1] != ext[:, -1:]).all(1)].sort(1).values.unique(dim=0)
        beam, n_laws = _Beam(config.beam, torch), 0
        for chunk in ext.split(max(1, PAIR_BATCH // (size * size))):
            _, coef, ratio = lib.score(chunk, torch)
            n_laws += record(chunk, coef, ratio, beam)
        say(f"size {size}: {len(ext)} term sets, {n_laws} conserved")
    return found


def _rounds(lib: _Library, config: TermConfig, accept: float, say, torch) -> tuple[list, list]:
    """Searches until no new law appears: after each, one term of every new law (its largest) leaves the
    library, so that the next search cannot rebuild that law with spare terms and finds the others (the
    angular momentum behind the two total momenta)."""
    active = torch.arange(lib.k)
    found: list = []
    kept: list = []
    for _ in range(ROUNDS):
        sub = lib.subset(active)
        new = [
            (active[f[0]].tolist(), f[1], f[2])
            for f in _search_sets(sub, config, accept, say, torch)
        ]
        found += new
        before = {tuple(sorted(f[0])) for f in kept}
        kept = _independent(found, lib, config.max_laws, torch)
        fresh = [f for f in kept if tuple(sorted(f[0])) not in before]
        if not fresh or len(kept) >= config.max_laws:
            break
        gone = {max(f[0], key=lambda i: (int(lib.size[i]), i)) for f in fresh}
        active = torch.tensor([i for i in active.tolist() if i not in gone], dtype=torch.long)
        if len(active) < 2:
            break
        say(
            f"{len(fresh)} new law(s); searching again without {', '.join(lib.texts[i] for i in gone)}"
        )
    return found, kept


def _independent(found: list, lib: _Library, max_laws: int, torch) -> list:
    """The laws to report, best first, each not a function of the ones before it.

    Order: on canonical data the Hamiltonian first (its symplectic gradient is the velocity: the noise can
    leave another invariant's ratio a little lower), then by ratio within a factor :data:`TIE` (every exact
    law ties), fewer terms, fewer tokens. When the best law is exact, laws
    :data:`GAP` times worse are approximations and left out.
    """
    if not found:
        return []
    best = min(f[2] for f in found)
    limit = max(best * GAP, EXACT)

    def gradient(f):  # (d, N) gradient of the law at the points
        return (lib.grad[f[0]] * torch.as_tensor(f[1]).view(-1, 1, 1)).sum(0)

    candidates = _tied_order(
        [f for f in found if f[2] <= limit],
        lambda f: (len(f[0]), int(lib.size[f[0]].sum()), f[2]),
    )[:MAX_CANDIDATES]
    if lib.canonical:  # the Hamiltonian first (a stable sort keeps the order of the rest)
        candidates.sort(key=lambda f: not _is_hamiltonian(gradient(f), lib.v))
    kept: list[tuple[list[int], np.ndarray, float]] = []
    kept_grads: list = []
    for f in candidates:
        idx, coef, ratio = f
        g = gradient(f)
        if kept_grads and _in_span(g, kept_grads, torch):
            continue
        kept.append((idx, coef, ratio))
        kept_grads.append(g)
        if len(kept) >= max_laws:
            break
    return kept


def _tied_order(found: list, simpler) -> list:
    """``found`` (``(terms, coefficients, ratio)``) by ratio, where a run of ratios each within :data:`TIE`
    of the run's first (exact laws: of :data:`EXACT`) is a tie, ordered by ``simpler`` (fewer terms, fewer
    tokens): the total momentum before its product with another law whose ratio is a hair lower."""
    ordered = sorted(found, key=lambda f: f[2])
    out, start = [], 0
    while start < len(ordered):
        top = max(ordered[start][2], EXACT)
        end = start
        while end < len(ordered) and ordered[end][2] <= TIE * top:
            end += 1
        out += sorted(ordered[start:end], key=simpler)
        start = end
    return out


def _is_hamiltonian(g, v) -> bool:
    """Whether the symplectic gradient of a law (gradient ``g`` (d, N), coordinates then momenta) is, up to
    one scale, the velocity ``v`` (d, N): Hamilton's equations ``dq/dt = dH/dp``, ``dp/dt = -dH/dq``."""
    k = g.shape[0] // 2
    flow = g.new_empty(g.shape)
    flow[:k], flow[k:] = g[k:], -g[:k]
    s = (flow * v).sum() / (flow * flow).sum().clamp_min(1e-300)
    return bool(((v - s * flow) ** 2).sum() <= GENERATOR * (v * v).sum())


def _in_span(g, others, torch) -> bool:
    """Whether ``g`` (d, N) lies, at every point, in the span of the gradients ``others`` (each (d, N)):
    the quantity is then locally a function of the laws already kept."""
    basis = torch.stack(others, 0).permute(2, 1, 0)  # (N, d, m)
    target = g.T.unsqueeze(-1)  # (N, d, 1)
    sol = torch.linalg.lstsq(basis, target).solution
    resid = target - basis @ sol
    return bool((resid**2).sum() <= SPAN_TOL * (target**2).sum())
