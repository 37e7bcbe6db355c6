"""Batched parameter fitting and the variance-ratio filter (``fsearch fit``).

The conservation measure of a formula ``g`` on a set of sequences (see ``docs/fitting.md``)::

    score(g) = sum_sequences sum_i (g_i - mean_sequence(g))^2  /  sum_all_points (g_i - mean_all(g))^2

the fraction of ``g``'s variance that lies *within* sequences. It lies in [0, 1], is 0 for a perfectly
conserved quantity and is unchanged when ``g`` is multiplied by a number or shifted by one, so neither a
parameter that scales the formula nor one driven to zero can make a formula look conserved. A formula whose
variance over all points is negligible next to its magnitude (``q/q``, ``sin(q)^2 + cos(q)^2``) is *trivial*.

Parameters are fitted to minimise ``log(score)`` on the true sequences with a batched, damped Newton method
with a line search (every row of the batch is one formula and one random start), on a subsample of the points
(at most :attr:`FitConfig.max_fit_points`); the scores are then computed on every point. The random score is
the same measure on *random sequences*: the same points, shuffled once with the seed, cut into sequences of the
same lengths. ``ratio = true_score / random_score``; a formula is accepted when ``ratio <= config.ratio``.

Batching: formulas are grouped by tree *topology* (the arities of their nodes in pre-order: 89 groups at size
7) and each group is evaluated as one tensor program; at each node the operators that occur in the group are
all computed and selected per row. This keeps the Python overhead to a few hundred tensor operations per step,
whatever the number of formulas.
"""

from __future__ import annotations

import math
import os
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

import dsl
from formula_search.errors import InputError

#: Columns of the fit table, in order.
COLUMNS = (
    "formula",
    "size",
    "n_params",
    "params",
    "param_units",
    "true_score",
    "random_score",
    "ratio",
    "accepted",
    "status",
)

#: Relative variance under which a formula counts as constant on all data (trivial): ``var(g) <= TRIVIAL *
#: mean(g^2)``, i.e. a relative spread below 1e-9, far above float64 rounding (1e-16) and far below any
#: physical variation.
TRIVIAL = 1e-18

#: Operator codes: unary operators in table order (each row brings its value and slope); the binary
#: operators are the four whose values and tangents are written out below.
_UNARY = dsl.UNARY
_BINARY = ("add", "sub", "mul", "div")


#: Where the derivative measure's velocities come from (:attr:`FitConfig.derivatives`).
DERIVATIVES = ("auto", "spline", "differences", "data")


@dataclass(frozen=True, slots=True)
class FitConfig:
    """Options of the fitting stage.

    Attributes:
        ratio: accept a formula when ``true_score / random_score <= ratio`` (paper: two orders of magnitude).
        window: cut every sequence into consecutive windows of this many points (``None``: whole sequences).
        n_starts: random starts per formula with parameters (the first start sets every parameter to 1).
        steps: Newton iterations.
        lr: size of the fallback gradient step, relative to ``1 + |theta|``.
        jobs: worker processes (joblib); 1 runs in this process.
        backend: ``"loky"`` (local processes) or ``"dask"`` (an existing Dask cluster, see ``scheduler``).
        scheduler: address of the Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"`` (``backend="dask"``).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        seed: seed of the random starts and of the random sequences.
        chunk_size: formulas per chunk (the unit of parallel work and of checkpoints).
        max_fit_points: points used while fitting (each sequence is subsampled evenly); scores always use all.
        fit_random: also fit the parameters on the random sequences (the paper's protocol) instead of scoring
            the random sequences with the parameters fitted on the true ones.
        smooth: moving-average width (points) applied to ``g`` along each sequence before scoring, which
            averages out measurement noise (1: none).
        detrend: remove a straight-line drift of ``g`` inside each window before measuring, on true and random
            sequences alike. For dissipative recordings, whose energy decays slowly: a law then counts as
            conserved up to a slow drift. ``None``: the dataset card's default (off unless it says so).
        measure: ``"derivative"`` (default): the share of ``g``'s possible rate of change realised along the
            data, against velocities paired at random (:mod:`formula_search._measure`; works on one
            trajectory); ``"paper"``: the Noether paper's within-sequence share of the variance against
            shuffled sequences (needs sequences at different energies). ``window``, ``detrend`` and
            ``smooth`` belong to ``paper``, ``smoothing`` and ``closed_form`` to ``derivative``.
        smoothing: how states and velocities are smoothed for the derivative measure: ``"auto"`` (a
            smoothing spline per variable, its weight chosen by cross-validation), ``"off"`` or a weight.
        closed_form: solve parameters that enter the formula linearly exactly (a generalised eigenproblem)
            instead of iterating (derivative measure).
        derivatives: where the derivative measure takes velocities from: ``"spline"`` (the smoothing
            spline of the states), ``"differences"`` (the recorded states ``stride`` samples apart: a
            formula's exact change between them, :func:`formula_search._measure.differences`; the term
            search only, see :func:`check_enumeration`), ``"data"`` (the data's own time derivatives, e.g. a
            simulation's exact ones) or ``"auto"`` (the data's when they are exact, else the spline for
            enumerated formulas and differences for the term search: :func:`velocity_source`).
        stride: samples between the two states of a difference; ``None``: the smallest whose typical step
            is one standard deviation of the variables (:func:`formula_search._measure.auto_stride`).
    """

    ratio: float = 0.01
    window: int | None = None
    n_starts: int = 4
    steps: int = 30
    lr: float = 0.1
    jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    device: str = "auto"
    seed: int = 0
    chunk_size: int = 2048
    max_fit_points: int = 100
    fit_random: bool = False
    smooth: int = 1
    detrend: bool | None = None
    measure: str = "derivative"
    smoothing: str | float = "auto"
    closed_form: bool = True
    derivatives: str = "auto"
    stride: int | None = None

    def __post_init__(self) -> None:
        from formula_search._measure import MEASURES, parse_smoothing

        if self.measure not in MEASURES:
            raise InputError(f"unknown measure {self.measure!r}; use {' or '.join(MEASURES)}")
        object.__setattr__(self, "smoothing", parse_smoothing(self.smoothing))
        if self.derivatives not in DERIVATIVES:
            raise InputError(
                f"unknown derivatives {self.derivatives!r}; use {', '.join(DERIVATIVES)}"
            )
        if self.stride is not None and not (
            isinstance(self.stride, int | np.integer) and self.stride >= 1
        ):
            raise InputError(f"stride must be a whole number of samples >= 1, got {self.stride!r}")
        if self.stride is not None and self.derivatives in ("spline", "data"):
            raise InputError(
                f"--stride is the step of differences; it does not apply to --derivatives "
                f"{self.derivatives}"
            )
        if not (self.ratio > 0):
            raise InputError(f"--ratio must be positive, got {self.ratio}")
        if self.window is not None and self.window < 2:
            raise InputError(f"--window must be at least 2 points, got {self.window}")
        for name in ("n_starts", "jobs", "chunk_size", "smooth"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise InputError(f"steps must be >= 0, got {self.steps}")
        if self.max_fit_points < 4:
            raise InputError(f"max_fit_points must be at least 4, got {self.max_fit_points}")
        if self.backend not in ("loky", "dask"):
            raise InputError(f"unknown backend {self.backend!r}; use loky or dask")
        if self.backend == "dask" and not self.scheduler:
            raise InputError("--backend dask needs --scheduler tcp://HOST:PORT")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise InputError(f"unknown device {self.device!r}; use auto, cpu or cuda")


@dataclass(frozen=True)
class FitData:
    """The sequences a formula is fitted on.

    Attributes:
        var_names: variable names, in column order.
        sequences: one ``(T, n_vars)`` float64 array per sequence (trajectory).
        variables: the variables with units (optional; used to report parameter units).
        times: one (T,) array of increasing times per sequence (optional; unit steps when missing). The
            derivative measure is unchanged when time is rescaled, so only uneven steps matter.
        derivatives: one (T, n_vars) array of time derivatives per sequence (optional).
        exact_derivatives: whether ``derivatives`` are exact (a simulation's), not estimated from the
            states; ``FitConfig(derivatives="auto")`` uses them only then.
        canonical: coordinates then momenta (:attr:`formula_search.data.Dataset.canonical`).
    """

    var_names: tuple[str, ...]
    sequences: tuple[np.ndarray, ...]
    variables: tuple[dsl.Variable, ...] | None = field(default=None)
    times: tuple[np.ndarray, ...] | None = field(default=None)
    derivatives: tuple[np.ndarray, ...] | None = field(default=None)
    exact_derivatives: bool = False
    canonical: bool = False

    @classmethod
    def from_dataset(cls, dataset, split: str = "train") -> FitData:
        """The ``split`` trajectories of a :class:`formula_search.data.Dataset`."""
        trajs = dataset.trajectories(split)
        return cls(
            tuple(dataset.var_names),
            tuple(tr.x for tr in trajs),
            tuple(dataset.variables),
            tuple(tr.t for tr in trajs),
            tuple(tr.dxdt for tr in trajs),
            getattr(dataset, "derivative", "") == "exact",
            bool(getattr(dataset, "canonical", False)),
        )


# ---------------------------------------------------------------------------------------------------------
# Sequences, windows and the measure


def _segments(lengths: Sequence[int], window: int | None) -> list[np.ndarray]:
    """Index arrays of the scoring segments (windows of each sequence; segments of < 2 points dropped)."""
    out: list[np.ndarray] = []
    start = 0
    for n in lengths:
        w = n if window is None else window
        for a in range(0, n, w):
            b = min(a + w, n)
            if b - a >= 2:
                out.append(np.arange(start + a, start + b))
        start += n
    return out


class _Layout:
    """Points and segment membership for one scoring problem (true or random sequences).

    ``x``: (n_vars, N) the points of the segments, segment after segment; ``seg``: (N,) each point's
    segment. ``smooth`` > 1: a moving average over that many neighbours inside the segment (fewer at the
    ends); ``detrend``: each segment's best straight line is removed. Memory is O(N): segment sums by
    ``index_add``, the moving average by shifted copies (never an (N, segments) or (N, N) matrix).
    """

    def __init__(
        self,
        x: np.ndarray,
        segments: list[np.ndarray],
        torch,
        device,
        smooth: int,
        detrend: bool = False,
    ):
        self.torch = torch
        used = np.concatenate(segments) if segments else np.zeros(0, dtype=int)
        lengths = np.array([len(s) for s in segments], dtype=np.int64)
        self.n = len(used)
        self.m = len(segments)
        seg = np.repeat(np.arange(self.m), lengths)
        pos = np.arange(self.n) - np.repeat(
            np.cumsum(lengths) - lengths, lengths
        )  # within the segment
        size = np.repeat(lengths, lengths)  # of the point's segment
        self.x = torch.as_tensor(x[used].T.copy(), dtype=torch.float64, device=device)
        self.seg = torch.as_tensor(seg, device=device)
        self.sizes = torch.as_tensor(np.maximum(lengths, 1), dtype=torch.float64, device=device)
        self.ramp = None
        if detrend:
            # per segment, the centred position scaled to unit norm: orthogonal to the segment's mean, so
            # removing the projection on it removes the best straight-line drift
            r = pos - (size - 1) / 2.0
            norm = np.sqrt(np.bincount(seg, weights=r * r, minlength=self.m))[seg]
            ramp = np.where(norm > 0, r / np.where(norm > 0, norm, 1.0), 0.0)
            self.ramp = torch.as_tensor(ramp, dtype=torch.float64, device=device)
        self.shifts: list = []
        if smooth > 1:
            # point at position k averages positions k - h ... k - h + smooth - 1 that lie in its segment
            h = smooth // 2
            count = np.zeros(self.n)
            for o in range(-h, smooth - h):
                inside = (pos + o >= 0) & (pos + o < size)
                count += inside
                idx = np.where(inside, np.arange(self.n) + o, np.arange(self.n))
                self.shifts.append(
                    (
                        torch.as_tensor(idx, device=device),
                        torch.as_tensor(inside.astype(np.float64), device=device),
                    )
                )
            self.inv_count = torch.as_tensor(1.0 / count, dtype=torch.float64, device=device)

    def _segment_sums(self, g):
        t = self.torch
        out = t.zeros(*g.shape[:-1], self.m, dtype=g.dtype, device=g.device)
        return out.index_add(-1, self.seg, g)

    def within_total(self, g):
        """Within-segment and total sums of squares of ``g`` (..., N) over the points."""
        if self.shifts:
            g = (
                sum(g.index_select(-1, idx) * inside for idx, inside in self.shifts)
                * self.inv_count
            )
        mean = self._segment_sums(g) / self.sizes
        centred = g - mean.index_select(-1, self.seg)
        if self.ramp is not None:
            proj = self._segment_sums(centred * self.ramp)
            centred = centred - proj.index_select(-1, self.seg) * self.ramp
        within = (centred * centred).sum(-1)
        dev = g - g.mean(-1, keepdim=True)
        total = (dev * dev).sum(-1)
        return within, total


def _shuffled(layout_x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return layout_x[rng.permutation(layout_x.shape[0])]


# ---------------------------------------------------------------------------------------------------------
# Batched evaluation of many formulas of one topology


@dataclass
class _Group:
    """Formulas of one topology: per-node arrays of shape (B,)."""

    arity: tuple[int, ...]
    rows: list[int]  # positions in the chunk
    codes: list[
        np.ndarray
    ]  # per node: op code (unary/binary) or leaf kind (0 input, 1 param, 2 const)
    leaf_var: dict[int, np.ndarray]
    leaf_param: dict[int, np.ndarray]
    leaf_const: dict[int, np.ndarray]
    n_params: np.ndarray
    nonlinear: bool = False
    param_affine: np.ndarray | None = (
        None  # (B, max params): the parameter stands in an affine position
    )


def _flatten(expr: dsl.Expr, var_index: dict[str, int]):
    """Pre-order node list ``(arity, code, var, param, const)``, number of parameters, whether some
    parameter enters nonlinearly (under a square, sin, cos or in a denominator), and per parameter whether
    it stands where the formula is affine in it (only ``+ - *`` and numerators above it)."""
    nodes = []
    counter = 0
    nonlinear = False
    affine_params: list[bool] = []
    stack: list = [(expr, True)]  # (node, every ancestor keeps the formula affine in this node)
    while stack:
        node, affine = stack.pop()
        if isinstance(node, dsl.Op):
            kids = [affine and node.name in ("add", "sub", "mul", "div")] * len(node.args)
            if node.name == "div":
                kids[1] = False
            stack.extend(reversed(list(zip(node.args, kids))))
        elif isinstance(node, dsl.Param) and not affine:
            nonlinear = True
        if isinstance(node, dsl.Op):
            ops = _UNARY if len(node.args) == 1 else _BINARY
            nodes.append((len(node.args), ops.index(node.name), 0, 0, 0.0))
        elif isinstance(node, dsl.Input):
            nodes.append((0, 0, var_index[node.name], 0, 0.0))
        elif isinstance(node, dsl.Param):
            nodes.append((0, 1, 0, counter, 0.0))
            affine_params.append(affine)
            counter += 1
        else:
            nodes.append((0, 2, 0, 0, float(node.value)))
    return nodes, counter, nonlinear, affine_params


def _group(
    exprs: Sequence[dsl.Expr], var_names: Sequence[str], memo: dict | None = None
) -> list[_Group]:
    """Formulas grouped by topology; ``memo`` (keyed by ``id``) keeps flattened trees between calls on
    the same expression objects."""
    var_index = {v: i for i, v in enumerate(var_names)}
    by_topo: dict[tuple, list] = defaultdict(list)
    for row, e in enumerate(exprs):
        if memo is None:
            nodes, k, nonlin, aff = _flatten(e, var_index)
        else:
            if id(e) not in memo:
                memo[id(e)] = _flatten(e, var_index)
            nodes, k, nonlin, aff = memo[id(e)]
        by_topo[(tuple(n[0] for n in nodes), nonlin)].append((row, nodes, k, aff))
    groups = []
    for (arity, nonlin), items in by_topo.items():
        rows = [it[0] for it in items]
        nodes_of = [it[1] for it in items]
        table = np.array([[n[1] for n in nodes] for nodes in nodes_of], dtype=np.int64)
        leaves = [j for j, a in enumerate(arity) if a == 0]
        pmax = max(it[2] for it in items)
        affine = np.zeros((len(items), pmax), dtype=bool)
        for r, it in enumerate(items):
            affine[r, : it[2]] = it[3]
        groups.append(
            _Group(
                arity=arity,
                rows=rows,
                codes=[table[:, j] for j in range(len(arity))],
                leaf_var={j: np.array([nodes[j][2] for nodes in nodes_of]) for j in leaves},
                leaf_param={j: np.array([nodes[j][3] for nodes in nodes_of]) for j in leaves},
                leaf_const={j: np.array([nodes[j][4] for nodes in nodes_of]) for j in leaves},
                n_params=np.array([it[2] for it in items]),
                nonlinear=nonlin,
                param_affine=affine,
            )
        )
    return groups


class _Program:
    """One topology group (or a slice of it) compiled to tensors: ``g = program(x, theta)``."""

    def __init__(self, group: _Group, sl: slice, torch, device):
        self.torch = torch
        self.arity = group.arity
        self.steps: list = []
        t = torch
        for j, a in enumerate(group.arity):
            codes = group.codes[j][sl]
            present = sorted(set(codes.tolist()))
            entry: dict = {"present": present}
            entry["masks"] = {
                c: t.as_tensor(codes == c, device=device).view(-1, 1, 1) for c in present
            }
            if a == 0:
                entry["var"] = t.as_tensor(group.leaf_var[j][sl], device=device)
                entry["param"] = t.as_tensor(group.leaf_param[j][sl], device=device)
                entry["const"] = t.as_tensor(
                    group.leaf_const[j][sl], dtype=t.float64, device=device
                ).view(-1, 1, 1)
            self.steps.append(entry)
        self.b = len(group.codes[0][sl])

    def subset(self, idx) -> _Program:
        """The program restricted to rows ``idx`` (a LongTensor)."""
        new = object.__new__(_Program)
        new.torch, new.arity, new.b = self.torch, self.arity, len(idx)
        new.steps = []
        for e in self.steps:
            f = {"present": e["present"], "masks": {c: m[idx] for c, m in e["masks"].items()}}
            for key in ("var", "param", "const"):
                if key in e:
                    f[key] = e[key][idx]
            new.steps.append(f)
        return new

    def __call__(self, x, theta):
        """Evaluate: ``x`` (n_vars, N), ``theta`` (B, S, P) -> (B, S, N)."""
        t = self.torch
        stack: list = []
        for a, e in zip(reversed(self.arity), reversed(self.steps)):
            present, masks = e["present"], e["masks"]
            if a == 0:
                vals = {}
                if 0 in present:
                    vals[0] = x[e["var"]].unsqueeze(1)  # (B, 1, N)
                if 1 in present:
                    idx = e["param"].view(-1, 1, 1).expand(theta.shape[0], theta.shape[1], 1)
                    vals[1] = theta.gather(2, idx)  # (B, S, 1)
                if 2 in present:
                    vals[2] = e["const"]
                stack.append(_select(t, present, masks, vals))
            elif a == 1:
                u = stack.pop()
                vals = {c: dsl.PRIMITIVES[_UNARY[c]].torch_fn(u) for c in present}
                stack.append(_select(t, present, masks, vals))
            else:
                left = stack.pop()
                right = stack.pop()
                vals = {}
                for c in present:
                    if c == 0:
                        vals[c] = left + right
                    elif c == 1:
                        vals[c] = left - right
                    elif c == 2:
                        vals[c] = left * right
                    else:
                        den = right if len(present) == 1 else t.where(masks[3], right, 1.0)
                        vals[c] = left / den
                stack.append(_select(t, present, masks, vals))
        (out,) = stack
        return out

    def with_gradient(self, x, theta):
        """Evaluate with the gradient in the state, in one pass (forward-mode by hand).

        Args:
            x: (n_vars, N) states; theta: (B, S, P) parameters.

        Returns:
            ``g`` broadcastable to (B, S, N) and ``J`` broadcastable to (B, S, n_vars, N), with
            ``J[..., k, i] = d g(x_i) / d x_k``; both differentiable with respect to ``theta``.
        """
        t = self.torch
        d = x.shape[0]
        unit = t.eye(d, dtype=x.dtype, device=x.device).view(d, d, 1)
        zero = x.new_zeros(1, 1, 1, 1)
        stack: list = []
        for a, e in zip(reversed(self.arity), reversed(self.steps)):
            if a == 0:
                stack.append(self._leaf_tangent(e, x, theta, unit, zero))
            elif a == 1:
                stack.append(self._unary_tangent(e, *stack.pop()))
            else:
                left, right = stack.pop(), stack.pop()
                stack.append(self._binary_tangent(e, left, right))
        ((g, jac),) = stack
        return g, jac

    def _leaf_tangent(self, e, x, theta, unit, zero):
        """:meth:`with_gradient` at a leaf: its values and their gradient in the state."""
        t = self.torch
        present, masks = e["present"], e["masks"]
        masks4 = {c: m.unsqueeze(-1) for c, m in masks.items()}
        vals, tans = {}, {}
        if 0 in present:
            vals[0] = x[e["var"]].unsqueeze(1)  # (B, 1, N)
            tans[0] = unit[e["var"]].unsqueeze(1)  # (B, 1, d, 1)
        if 1 in present:
            idx = e["param"].view(-1, 1, 1).expand(theta.shape[0], theta.shape[1], 1)
            vals[1] = theta.gather(2, idx)  # (B, S, 1)
            tans[1] = zero
        if 2 in present:
            vals[2] = e["const"]
            tans[2] = zero
        return _select(t, present, masks, vals), _select(t, present, masks4, tans)

    def _unary_tangent(self, e, u, du):
        """:meth:`with_gradient` at a unary operator applied to ``u`` with tangent ``du``."""
        t = self.torch
        present, masks = e["present"], e["masks"]
        # the tangent is du * f'(u): the derivative is selected per row on values, so the
        # (variables x points) tangent is multiplied once whatever the operators present
        vals, slopes = {}, {}
        for c in present:
            vals[c], slopes[c] = dsl.PRIMITIVES[_UNARY[c]].value_slope(u)
        return (
            _select(t, present, masks, vals),
            du * _select(t, present, masks, slopes).unsqueeze(-2),
        )

    def _binary_tangent(self, e, left, right):
        """:meth:`with_gradient` at a binary operator on ``(value, tangent)`` pairs ``left`` and ``right``."""
        t = self.torch
        present, masks = e["present"], e["masks"]
        # every operator's tangent is ld * alpha + rd * beta, alpha and beta selected per row on
        # values: add (1, 1), sub (1, -1), mul (r, l), div (1/r, -q/r)
        (lv, ld), (rv, rd) = left, right
        one = lv.new_ones(())
        vals, alpha, beta = {}, {}, {}
        for c in present:
            if c == 0:
                vals[c], alpha[c], beta[c] = lv + rv, one, one
            elif c == 1:
                vals[c], alpha[c], beta[c] = lv - rv, one, -one
            elif c == 2:
                vals[c], alpha[c], beta[c] = lv * rv, rv, lv
            else:
                den = rv if len(present) == 1 else t.where(masks[3], rv, 1.0)
                inv = 1.0 / den
                q = lv / den
                vals[c], alpha[c], beta[c] = q, inv, -q * inv
        val = _select(t, present, masks, vals)
        if present == [0]:
            tan = ld + rd
        elif present == [1]:
            tan = ld - rd
        else:
            b = _select(t, present, masks, beta)
            tan = rd * b.unsqueeze(-2)
            if any(c >= 2 for c in present):
                tan = tan + ld * _select(t, present, masks, alpha).unsqueeze(-2)
            else:
                tan = tan + ld
        return val, tan


def _select(t, present, masks, vals):
    out = vals[present[-1]]
    for c in reversed(present[:-1]):
        out = t.where(masks[c], vals[c], out)
    return out


# ---------------------------------------------------------------------------------------------------------
# Batched damped Newton on log(score)


def _loss(program, layout, theta):
    t = program.torch
    g = program(layout.x, theta)
    g = g.expand(theta.shape[0], theta.shape[1], layout.x.shape[-1])
    within, total = layout.within_total(g)
    # the score itself (not its log): near an exactly conserved formula it is a quadratic in the
    # parameters, where Newton's method converges in one step; log(score) has negative curvature there
    loss = within / total
    # where g's spread is below a millionth of its size, float64 keeps too few digits of it for the score to
    # be trusted (``q + c`` with c = 1e14): such parameters are out of bounds
    loss = t.where(total / g.shape[-1] > 1e-12 * (g * g).mean(-1), loss, math.inf)
    return t.where(t.isfinite(loss), loss, t.full_like(loss, math.inf))


#: Iterations after which :func:`_optimise` drops the formulas above its ``give_up`` score. 1, 2 and 4 accept
#: the same 16 formulas on the ideal pendulum at depth 7 (commutative level) and the same laws in
#: ``benchmarks/fit_recordings.py``; the formulas whose score 1 changes all score above 0.19 (chance is about
#: 0.5, acceptance 0.01); 1 is 14% faster than 2.
GIVE_UP_AFTER = 1


def _variance_loss(layout):
    return lambda program, theta: _loss(program, layout, theta)


def _optimise(program, loss_fn, theta, pmask, config: FitConfig, give_up: float | None = None):
    """Minimise ``loss_fn(program, theta)`` (B, S) for every row of ``theta`` (B, S, P); ``pmask`` (B, 1, P)
    marks used slots. With ``give_up``, a formula none of whose starts is below it after
    :data:`GIVE_UP_AFTER` iterations leaves the batch (a screen: it cannot be accepted).

    Each iteration tries a damped Newton step (Hessian by double back-propagation: at most 4 parameters at
    size 7) at two lengths and a gradient step at three lengths, batched as extra rows, and keeps the best
    candidate if it lowers the score. A formula leaves the batch once no start has improved for two
    iterations, so most of the work goes to the formulas that still move.
    """
    t = program.torch
    theta = theta.detach().clone()
    with t.no_grad():
        best = loss_fn(program, theta)
    stall = t.zeros(theta.shape[0], dtype=t.int64, device=theta.device)
    active = t.arange(theta.shape[0], device=theta.device)
    prog, n_active = program, theta.shape[0]
    for it in range(config.steps):
        if give_up is not None and it == GIVE_UP_AFTER:
            stall = t.where((best > give_up).all(-1), 2, stall)
        active = (stall < 2).nonzero().squeeze(-1)
        if len(active) == 0:
            break
        if len(active) != n_active:
            prog, n_active = program.subset(active), len(active)
        th0, pm, b0 = theta[active], pmask[active], best[active]
        derivatives = _gradient_hessian(t, prog, loss_fn, th0)
        if derivatives is None:  # no finite row depends on its parameters: nothing to improve
            break
        with t.no_grad():
            theta[active], nb = _best_step(t, prog, loss_fn, th0, pm, b0, *derivatives, config.lr)
            best[active] = nb
            gain = ((b0 - nb) > 1e-6 * b0 + 1e-15).any(-1)
            stall[active] = t.where(gain, 0, stall[active] + 1)
    return theta


def _gradient_hessian(t, prog, loss_fn, th0):
    """Gradient and Hessian rows of the summed finite losses at ``th0``; None if none depends on it."""
    P = th0.shape[-1]
    with t.enable_grad():
        th = th0.clone().requires_grad_(True)
        loss = loss_fn(prog, th)
        finite = t.isfinite(loss)
        total = t.where(finite, loss, 0.0).sum()
        if not total.requires_grad:
            return None
        (grad,) = t.autograd.grad(total, th, create_graph=True)
        rows = []
        for k in range(P):
            if not grad.requires_grad:
                rows.append(t.zeros_like(th0))
                continue
            (h,) = t.autograd.grad(
                grad[..., k].sum(), th, retain_graph=k < P - 1, allow_unused=True
            )
            rows.append(t.zeros_like(th0) if h is None else h)
    return grad, rows


def _best_step(t, prog, loss_fn, th0, pm, b0, grad, rows, lr):
    """One iteration of :func:`_optimise`: the best Newton or gradient candidate, ``(theta, loss)``."""
    P = th0.shape[-1]
    alphas_newton = (1.0, 0.25)
    alphas_grad = (1.0, 0.1, 0.01)
    grad = t.nan_to_num(grad.detach(), nan=0.0, posinf=0.0, neginf=0.0) * pm
    hess = t.nan_to_num(t.stack(rows, -2), nan=0.0, posinf=0.0, neginf=0.0)
    hess = hess * pm.unsqueeze(-1) * pm.unsqueeze(-2)
    eye = t.eye(P, dtype=hess.dtype, device=hess.device)
    scale = hess.diagonal(dim1=-2, dim2=-1).abs().amax(-1, keepdim=True).clamp_min(1e-300)
    damped = hess + (1e-10 * scale).unsqueeze(-1) * eye + (1 - pm).unsqueeze(-1) * eye
    newton = -t.linalg.solve_ex(damped, grad.unsqueeze(-1))[0].squeeze(-1)
    newton = t.nan_to_num(newton, nan=0.0, posinf=0.0, neginf=0.0) * pm
    gnorm = grad.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    gdir = -grad / gnorm * (1 + th0.abs()) * lr * 10
    cands = [th0 + a * newton for a in alphas_newton]
    cands += [th0 + a * gdir for a in alphas_grad]
    stacked = t.cat(cands, 1)  # (b, S*J, P)
    losses = loss_fn(prog, stacked).view(th0.shape[0], len(cands), -1)
    lbest, j = losses.min(1)  # (b, S)
    # a step must beat rounding noise: otherwise a parameter the score does not depend on
    # (``q + c``) would drift without bound and make the formula look constant
    improve = lbest < b0 * (1 - 1e-6)
    picked = stacked.view(th0.shape[0], len(cands), th0.shape[1], P)
    picked = picked.gather(1, j.view(j.shape[0], 1, j.shape[1], 1).expand(-1, 1, -1, P))
    return t.where(improve.unsqueeze(-1), picked.squeeze(1), th0), t.where(improve, lbest, b0)


# ---------------------------------------------------------------------------------------------------------
# One chunk


def _resolve_device(device: str, torch) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return device


@dataclass(frozen=True)
class _Problem:
    """Everything a worker needs to score formulas (picklable)."""

    var_names: tuple[str, ...]
    x: np.ndarray  # (N, n_vars) all points of the split, sequences concatenated
    lengths: tuple[int, ...]
    config: FitConfig
    prepared: object = None  # _measure.Prepared for the derivative measure


def _prepare(problem: _Problem, torch, device):
    cfg = problem.config
    rng = np.random.default_rng(cfg.seed)
    segs = _segments(problem.lengths, cfg.window)
    if not segs:
        raise InputError("no sequence (or window) has at least 2 points to measure conservation on")
    x = problem.x
    full_true = _Layout(x, segs, torch, device, cfg.smooth, bool(cfg.detrend))
    used = np.concatenate(segs)
    perm = rng.permutation(len(used))
    # random sequences: the used points shuffled, cut into segments of the same sizes
    xr = x[used][perm]
    sizes = [len(s) for s in segs]
    rsegs, start = [], 0
    for n in sizes:
        rsegs.append(np.arange(start, start + n))
        start += n
    full_rand = _Layout(xr, rsegs, torch, device, cfg.smooth, bool(cfg.detrend))
    # fitting subsample: every k-th point of each segment
    n_used = len(used)
    stride = max(1, math.ceil(n_used / cfg.max_fit_points))
    fsegs = [s[::stride] for s in segs if len(s[::stride]) >= 2]
    if not fsegs:
        fsegs = segs
    fit_true = _Layout(x, fsegs, torch, device, 1 if stride > 1 else cfg.smooth, bool(cfg.detrend))
    fr_sizes = [len(s) for s in fsegs]
    fused = np.concatenate(fsegs)
    xfr = x[fused][rng.permutation(len(fused))]
    frsegs, start = [], 0
    for n in fr_sizes:
        frsegs.append(np.arange(start, start + n))
        start += n
    fit_rand = _Layout(xfr, frsegs, torch, device, 1, bool(cfg.detrend))
    return full_true, full_rand, fit_true, fit_rand


def _fit_chunk(problem: _Problem, texts: Sequence[str], chunk_id: int) -> pd.DataFrame:
    """Fit and score one chunk of formula texts; returns the fit table rows for it (no I/O)."""
    if problem.config.measure == "derivative":
        from formula_search._fit_derivative import fit_chunk

        return fit_chunk(problem, texts)
    return _fit_chunk_paper(problem, texts, chunk_id)


def _fit_chunk_paper(problem: _Problem, texts: Sequence[str], chunk_id: int) -> pd.DataFrame:
    """:func:`_fit_chunk` for the paper's variance measure."""
    import torch

    cfg = problem.config
    if cfg.jobs > 1 or cfg.backend == "dask":
        torch.set_num_threads(1)
    device = _resolve_device(cfg.device, torch)
    full_true, full_rand, fit_true, fit_rand = _prepare(problem, torch, device)
    n = len(texts)
    params: list = [()] * n
    true_s = np.full(n, np.nan)
    rand_s = np.full(n, np.nan)
    status = ["failed"] * n
    exprs, good = _parse_chunk(texts, problem.var_names, status)
    budget = 4_000_000  # elements of one (B, S, N) tensor during the line search
    for group in _group(exprs, problem.var_names):
        pmax = int(group.n_params.max())
        starts = cfg.n_starts if group.nonlinear else min(2, cfg.n_starts) if pmax else 1
        per = max(1, budget // max(1, starts * 7 * fit_true.n))
        for lo in range(0, len(group.rows), per):
            sl = slice(lo, lo + per)
            prog = _Program(group, sl, torch, device)
            k = group.n_params[sl]
            b = len(k)
            pdim = max(1, pmax)
            pmask = torch.as_tensor(
                (np.arange(pdim)[None, :] < k[:, None]).astype(np.float64), device=device
            ).view(b, 1, pdim)
            # starts drawn from the formula's text and the seed: chunk size and jobs never change a result
            rows_text = [texts[good[r]] for r in group.rows[lo : lo + per]]
            theta = (
                torch.as_tensor(row_starts(rows_text, starts, pdim, cfg.seed), device=device)
                * pmask
            )
            with torch.no_grad():
                if pmax and cfg.steps:
                    theta = _optimise(prog, _variance_loss(fit_true), theta, pmask, cfg)
                theta_r = theta
                if pmax and cfg.steps and cfg.fit_random:
                    theta_r = _optimise(prog, _variance_loss(fit_rand), theta, pmask, cfg)
                ts, tt, tr, finite, trivial, best = _score_all(
                    prog, full_true, full_rand, theta, budget
                )
                if cfg.fit_random:
                    _, _, tr2, _, _, _ = _score_all(prog, full_true, full_rand, theta_r, budget)
                    tr = torch.minimum(tr, tr2)
            ts, tr = ts.cpu().numpy(), tr.cpu().numpy()
            finite, trivial = finite.cpu().numpy(), trivial.cpu().numpy()
            thb = best.cpu().numpy()
            for r in range(b):
                i = good[group.rows[lo + r]]
                params[i] = tuple(float(v) for v in thb[r, : k[r]])
                if not finite[r]:
                    status[i] = "failed"
                    continue
                true_s[i], rand_s[i] = ts[r], tr[r]
                status[i] = "trivial" if trivial[r] else "ok"
    return _chunk_table(texts, params, true_s, rand_s, status, cfg.ratio)


def _parse_chunk(texts, var_names, status: list) -> tuple[list, list[int]]:
    """Trees of the formula texts that parse, and their positions; ``status`` says ``unparsable`` for the
    others (also a formula nested too deep for the parser)."""
    exprs, good = [], []
    for i, text in enumerate(texts):
        try:
            expr = dsl.parse(text, var_names)
        except (InputError, RecursionError):
            status[i] = "unparsable"
            continue
        exprs.append(expr)
        good.append(i)
    return exprs, good


def _chunk_table(texts, params, true_s, rand_s, status, threshold: float) -> pd.DataFrame:
    """One chunk's rows of the fit table: ratio, acceptance and the parameters as text."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rand_s > 0, true_s / rand_s, np.nan)
    st = np.array(status)
    return pd.DataFrame(
        {
            "formula": list(texts),
            "params": ["; ".join(f"{v:.8g}" for v in p) for p in params],
            "true_score": true_s,
            "random_score": rand_s,
            "ratio": ratio,
            "accepted": (st == "ok") & (ratio <= threshold),
            "status": st,
        }
    )


def row_starts(texts: Sequence[str], s: int, p: int, seed: int) -> np.ndarray:
    """(B, S, P) starts: the first sets every parameter to 1, the others draw a random sign and a magnitude
    log-uniform in [0.1, 10], from a stream seeded by the formula's text."""
    out = np.empty((len(texts), s, p))
    width = max(16, p)
    for r, text in enumerate(texts):
        rng = np.random.default_rng([seed, zlib.crc32(text.encode())])
        mag = np.exp(rng.uniform(-1, 1, (s, width)) * math.log(10))
        sign = np.where(rng.random((s, width)) < 0.5, -1.0, 1.0)
        out[r] = (mag * sign)[:, :p]
    out[:, 0, :] = 1.0
    return out


def _score_all(prog, full_true, full_rand, theta, budget: int):
    """:func:`_score` over slices of formulas, each holding at most about ``budget`` values of ``g``."""
    t = prog.torch
    b, s = theta.shape[0], theta.shape[1]
    per = max(1, budget // max(1, s * max(full_true.n, full_rand.n)))
    if per >= b:
        return _score(prog, full_true, full_rand, theta)
    parts = []
    for lo in range(0, b, per):
        idx = t.arange(lo, min(lo + per, b), device=theta.device)
        parts.append(_score(prog.subset(idx), full_true, full_rand, theta[idx]))
    return tuple(t.cat(cols) for cols in zip(*parts))


def _score(prog, full_true, full_rand, theta):
    """Scores on all points for every start; returns the best start's scores per formula."""
    t = prog.torch
    g = prog(full_true.x, theta).expand(theta.shape[0], theta.shape[1], full_true.x.shape[-1])
    finite = t.isfinite(g).all(-1)
    w, tot = full_true.within_total(g)
    mean_sq = (g * g).mean(-1)
    trivial = finite & (tot / full_true.n <= TRIVIAL * mean_sq)
    score = t.where(trivial, t.ones_like(w), w / tot)
    ok = finite & t.isfinite(score) & ~trivial
    key = t.where(ok, score, t.where(finite & t.isfinite(score), 2.0 + score, 10.0))
    key = t.where(t.isfinite(key), key, t.full_like(key, 20.0))
    j = key.argmin(1)  # (B,)
    ar = t.arange(theta.shape[0], device=theta.device)
    best = theta[ar, j]
    gb = prog(full_rand.x, best.unsqueeze(1)).expand(theta.shape[0], 1, full_rand.x.shape[-1])
    wr, totr = full_rand.within_total(gb)
    rscore = (wr / totr).squeeze(1)
    triv = trivial[ar, j]
    rscore = t.where(triv, t.ones_like(rscore), rscore)
    fin = finite[ar, j] & t.isfinite(score[ar, j]) & t.isfinite(rscore)
    return score[ar, j], tot[ar, j], rscore, fin, trivial[ar, j], best


# ---------------------------------------------------------------------------------------------------------
# Public entry point and orchestration


def _texts(formulas) -> tuple[list[str], pd.DataFrame]:
    """Formula texts and the descriptive columns (size, n_params, param_units) of the input."""
    if isinstance(formulas, pd.DataFrame):
        if "formula" not in formulas.columns:
            raise InputError("the formula table has no 'formula' column")
        meta = formulas.reset_index(drop=True)
        return [str(s) for s in meta["formula"]], meta
    rows = []
    for f in formulas:
        if isinstance(f, str):
            rows.append({"formula": f})
        elif hasattr(f, "formula"):
            rows.append(
                {
                    "formula": f.formula,
                    "size": f.size,
                    "n_params": f.n_params,
                    "param_units": f.param_units,
                }
            )
        else:  # an expression tree
            rows.append({"formula": dsl.to_text(f)})
    meta = pd.DataFrame(rows, columns=["formula"] if not rows else None)
    return [r["formula"] for r in rows], meta


def _fill_meta(meta: pd.DataFrame, data: FitData) -> pd.DataFrame:
    meta = meta.copy()
    need = [c for c in ("size", "n_params", "param_units") if c not in meta.columns]
    if not need:
        return meta
    sizes, nps, units = [], [], []
    for text in meta["formula"]:
        try:
            e = dsl.parse(str(text), data.var_names)
            size, k, unit = dsl.size(e), dsl.n_params(e), ""
            if data.variables is not None and k:
                try:
                    unit = "; ".join(d.to_units() for d in dsl.param_units(e, data.variables))
                except dsl.UnitError:
                    unit = "invalid"
        except InputError:
            size, k, unit = 0, 0, ""
        sizes.append(size)
        nps.append(k)
        units.append(unit)
    for name, vals in (("size", sizes), ("n_params", nps), ("param_units", units)):
        if name in need:
            meta[name] = vals
    return meta


def _as_fitdata(data) -> FitData:
    if isinstance(data, FitData):
        return data
    if hasattr(data, "trajectories") and hasattr(data, "var_names"):
        return FitData.from_dataset(data, "train")
    raise InputError(f"cannot fit on {type(data).__name__}: pass a Dataset or a FitData")


def _problem(data: FitData, config: FitConfig) -> _Problem:
    seqs = [np.asarray(s, dtype=np.float64) for s in data.sequences]
    if not seqs:
        raise InputError("no sequences to fit on")
    for s in seqs:
        if s.ndim != 2 or s.shape[1] != len(data.var_names):
            raise InputError(f"a sequence has shape {s.shape}; expected (T, {len(data.var_names)})")
    prepared = None
    if config.measure == "derivative":
        from formula_search._measure import prepare

        source, stride = velocity_source(config, data)
        prepared = prepare(
            seqs,
            data.times,
            smoothing=config.smoothing,
            seed=config.seed,
            derivatives=data.derivatives if source == "data" else None,
            stride=stride,
        )
    return _Problem(
        tuple(data.var_names),
        np.concatenate(seqs, 0),
        tuple(len(s) for s in seqs),
        config,
        prepared,
    )


def fit_formulas(
    formulas: Iterable | pd.DataFrame,
    data,
    *,
    config: FitConfig = FitConfig(),
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    report: Callable[[str], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Fit every formula's parameters on true sequences and apply the variance-ratio filter.

    Args:
        formulas: :class:`~formula_search._enumerate.Formula` rows, formula texts, trees, or a table with a
            ``formula`` column (e.g. written by ``fsearch enumerate``).
        data: a :class:`formula_search.data.Dataset` (its training split is used) or a :class:`FitData`.
        config: the options.
        checkpoint_dir: when given, every finished chunk is written there (atomically) as it is produced.
        resume: reuse the chunks already in ``checkpoint_dir`` (written with the same formulas and options).
        report: called with a line saying what ``resume`` reuses, or why it reuses nothing.
        progress: called with the number of formulas of each finished chunk.

    Returns:
        One row per formula, in input order, with columns :data:`COLUMNS`: ``formula`` (text), ``size``
        (tokens), ``n_params``, ``params`` (fitted values of ``c_0; c_1; ...``), ``param_units`` (their SI
        units), ``true_score`` (within-sequence share of the variance on true sequences, in [0, 1]),
        ``random_score`` (the same on random sequences), ``ratio`` (true / random), ``accepted``
        (``ratio <= config.ratio`` and status ok) and ``status`` (``ok``, ``trivial``: constant on all data,
        ``failed``: not finite, ``unparsable``).
    """
    config = resolve_defaults(config, data)
    data = _as_fitdata(data)
    texts, meta = _texts(formulas)
    problem = _problem(data, config)
    chunks = [texts[i : i + config.chunk_size] for i in range(0, len(texts), config.chunk_size)]
    ckpt, results = _open_checkpoints(
        checkpoint_dir, texts, problem, chunks, resume=resume, report=report, progress=progress
    )
    todo = [i for i in range(len(chunks)) if i not in results]
    for i, df in _run_chunks(problem, chunks, todo, config):
        results[i] = df
        if ckpt is not None:
            ckpt.save(i, df)
        if progress is not None:
            progress(len(df))
    return _assemble([results[i] for i in range(len(chunks))], meta, data)


def _open_checkpoints(checkpoint_dir, texts, problem, chunks, *, resume, report, progress):
    """``(checkpoints or None, chunk tables reused by resume)`` for :func:`fit_formulas`."""
    results: dict[int, pd.DataFrame] = {}
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = _Checkpoints(Path(checkpoint_dir), texts, problem)
        if resume:
            reused, line = ckpt.load()
            results.update(reused)
            if report is not None:
                report(line)
        else:
            ckpt.clear()
        for i in results:
            if progress is not None:
                progress(len(chunks[i]))
    return ckpt, results


def _assemble(parts: list[pd.DataFrame], meta, data) -> pd.DataFrame:
    """The fit table of :func:`fit_formulas` from its chunks' tables, in order, and the formulas' metadata."""
    body = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(
            columns=[
                "formula",
                "params",
                "true_score",
                "random_score",
                "ratio",
                "accepted",
                "status",
            ]
        )
    )
    meta = _fill_meta(meta, data)
    out = body.drop(columns=["formula"]).join(meta[["formula", "size", "n_params", "param_units"]])
    out["accepted"] = out["accepted"].astype(bool)
    return out[list(COLUMNS)]


def _run_chunks(problem: _Problem, chunks, todo: list[int], config: FitConfig):
    """Yield ``(chunk index, table)`` as chunks finish (in order)."""
    if not todo:
        return
    if config.jobs == 1 and config.backend == "loky":
        for i in todo:
            yield i, _fit_chunk(problem, chunks[i], i)
        return
    yield from _parallel_chunks(problem, chunks, todo, config)


def check_enumeration(config: FitConfig) -> None:
    """Refuse options that only the term search may use over an enumeration of formulas.

    Differences (``derivatives="differences"``) take a formula's gradient at the midpoint of two states and
    its exact change between them; a fitted formula with a pole or a fast oscillation between the two
    (``q/p^16``, ``sin(((q + c)^2)^4)``) has a small change and a huge gradient there, so it looks conserved:
    on one simulated pendulum recording about 1,580 of 6,976 formulas were accepted (the spline: 14), such
    formulas first (docs/experiments/2026-12-07-differences.md). A sum of parameter-free terms has no such
    freedom (its coefficients are a linear solve)."""
    if config.derivatives == "differences" or config.stride is not None:
        raise InputError(
            "--derivatives differences and --stride are for the term search (--terms): over enumerated "
            "formulas, ones with a pole between two states look conserved; use auto or spline"
        )


def velocity_source(
    config: FitConfig, data: FitData, *, terms: bool = False
) -> tuple[str, int | None]:
    """Where the derivative measure's velocities come from for ``config`` on ``data``: ``("data", None)``,
    ``("spline", None)`` or ``("differences", stride)``, ``"auto"`` resolved (the data's derivatives when
    they are exact, else the spline, or differences for the term search: ``terms``) and the stride chosen."""
    from formula_search._measure import auto_stride

    source = config.derivatives
    if source == "auto":
        exact = data.exact_derivatives and data.derivatives is not None
        source = "data" if exact else "differences" if terms else "spline"
    if source == "data" and data.derivatives is None:
        raise InputError("derivatives='data': these data carry no time derivatives")
    if source != "differences":
        return source, None
    return source, config.stride or auto_stride(data.sequences)


def describe_velocities(source: str, stride: int | None) -> str:
    """One line on where the velocities come from (:func:`velocity_source`'s answer)."""
    if source == "differences":
        return f"velocities: differences of the recorded states {stride} samples apart"
    return {"data": "velocities: the data's exact derivatives"}.get(
        source, "velocities: the smoothing spline's derivative"
    )


def resolve_defaults(config: FitConfig, data) -> FitConfig:
    """Fill the options left unset (``window``, ``detrend``) from the dataset card's defaults."""
    changes = {}
    if config.window is None and getattr(data, "default_window", None) is not None:
        changes["window"] = int(data.default_window)
    if config.detrend is None:
        changes["detrend"] = bool(getattr(data, "default_detrend", False))
    return replace(config, **changes) if changes else config


def explain_empty(table: pd.DataFrame, ratio: float) -> str:
    """One line on why a fit table accepted nothing: what failed, or the best candidates' ratios."""
    st = table["status"]
    ok = table[st == "ok"].sort_values("ratio", kind="stable")
    counts = ", ".join(f"{int(n)} {s}" for s, n in st.value_counts().items() if s != "ok")
    tail = f" ({counts})" if counts else ""
    if ok.empty:
        return f"no formula could be scored{tail}; check the data and the variables' units"
    r = ok["ratio"].to_numpy()
    if np.quantile(r, 0.1) > 0.9:
        return (
            f"every formula scores about the same (ratio {np.quantile(r, 0.1):.2f} or more): the data "
            "cannot tell a conserved quantity from any other under this measure (the paper measure needs "
            "sequences at different energies; the derivative measure needs samples close enough to follow "
            f"the motion){tail}"
        )
    best = ", ".join(f"{f} {v:.3g}" for f, v in zip(ok["formula"][:3], ok["ratio"][:3]))
    return (
        f"the best ratios are {best}, above {ratio:g}{tail}; try a larger --depth, a looser --ratio, "
        "or --explain FORMULA for a law you expect"
    )


#: Ratios within this factor of each other are not told apart by :func:`survivors`: the simpler formula
#: comes first. On one recording every formula constant along the orbit scores at the same floor
#: (``y^2/(c_0 + x^2)`` and ``x^2 + y^2`` on a circle: 4.1e-8 and 5.4e-8).
TIE = 2.0


def survivors(table: pd.DataFrame) -> pd.DataFrame:
    """Accepted formulas, best ratio first; ratios within :data:`TIE` of the first of their run count as
    tied, and a tie puts the smaller formula (fewer tokens, then fewer parameters) first. A pure
    ``df -> df`` view of the fit table."""
    best = table[table["accepted"]].sort_values("ratio", kind="stable").reset_index(drop=True)
    if best.empty:
        return best
    tie, start = [], None
    for r in best["ratio"].to_numpy():
        if start is None or not (r <= TIE * start):
            start = r
        tie.append(start)
    order = best.assign(_tie=tie).sort_values(["_tie", "size", "n_params", "ratio"], kind="stable")
    return order.drop(columns="_tie").reset_index(drop=True)


def with_config(config: FitConfig, **changes) -> FitConfig:
    """A copy of ``config`` with ``changes`` (validated)."""
    return replace(config, **changes)


class _Checkpoints:
    """Finished chunks of one run, one Parquet file each, written atomically.

    A fingerprint of the formulas, the data and the options that change results is stored beside them
    (``--jobs``, the backend and the scheduler do not change a result, so they are not in it); chunks
    written under another fingerprint are never reused, and :meth:`load` says why.
    """

    #: Options that never change a result.
    NEUTRAL = ("jobs", "backend", "scheduler")

    def __init__(self, root: Path, texts: Sequence[str], problem: _Problem):
        import hashlib
        import json

        self.root = root

        def digest(*parts) -> str:
            h = hashlib.sha256()
            for part in parts:
                h.update(part if isinstance(part, bytes) else str(part).encode())
            return h.hexdigest()[:16]

        data = [
            np.ascontiguousarray(problem.x).tobytes(),
            repr((problem.lengths, problem.var_names)),
        ]
        if (
            problem.prepared is not None
        ):  # the measure's states and velocities (they depend on times)
            data.append(np.ascontiguousarray(problem.prepared.v).tobytes())
        options = {k: repr(v) for k, v in asdict(problem.config).items() if k not in self.NEUTRAL}
        if (
            problem.config.stride is None
        ):  # the automatic stride: earlier checkpoints keep their keys
            options.pop("stride")
        self.parts = {
            "formulas": digest("\n".join(texts)),
            "data": digest(*data),
            "options": options,
        }
        self.key = digest(json.dumps(self.parts, sort_keys=True))

    def _path(self, i: int) -> Path:
        return self.root / f"chunk-{i:06d}.parquet"

    def clear(self) -> None:
        import json

        if self.root.exists():
            for f in self.root.glob("chunk-*.parquet"):
                f.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "fingerprint").write_text(json.dumps({"key": self.key, **self.parts}))

    def load(self) -> tuple[dict[int, pd.DataFrame], str]:
        """The chunks that can be reused, and a line saying what is reused or why nothing is."""
        import json

        fp = self.root / "fingerprint"
        try:
            saved = json.loads(fp.read_text()) if fp.exists() else None
        except (json.JSONDecodeError, OSError):
            saved = None
        if not isinstance(saved, dict) or saved.get("key") != self.key:
            if not isinstance(saved, dict):
                why = "no fingerprint of an earlier fit there"
            else:
                changed = [k for k in ("formulas", "data") if saved.get(k) != self.parts[k]]
                old = saved.get("options") or {}
                changed += [
                    f"--{k.replace('_', '-')}"
                    for k, v in self.parts["options"].items()
                    if old.get(k) != v
                ]
                why = f"they were fitted with other {', '.join(changed) or 'settings'}"
            self.clear()
            return {}, f"resume: nothing reused from {self.root} ({why}); fitting from the start"
        out = {}
        for f in sorted(self.root.glob("chunk-*.parquet")):
            out[int(f.stem.split("-")[1])] = pd.read_parquet(f)
        return out, f"resume: reusing {len(out)} finished chunk(s) from {self.root}"

    def save(self, i: int, df: pd.DataFrame) -> None:
        from formula_search.io import atomic_path

        with atomic_path(self._path(i)) as tmp:
            df.to_parquet(tmp, index=False)


def _parallel_chunks(problem: _Problem, chunks, todo: list[int], config: FitConfig):
    from joblib import Parallel, delayed, parallel_config

    tasks = (delayed(_fit_chunk)(problem, chunks[i], i) for i in todo)
    if config.backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise InputError("--backend dask needs the 'distributed' package") from exc
        try:
            client = Client(config.scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {config.scheduler}: {exc}"
            ) from None
        try:
            # joblib uses this client: given only the address it would open a second one that is
            # never closed (it then tries to reconnect for 30 s when the scheduler goes away)
            with parallel_config(backend="dask", client=client):
                runner = Parallel(n_jobs=-1, return_as="generator")
                for i, df in zip(todo, runner(tasks)):
                    yield i, df
        finally:
            client.close()
        return
    with parallel_config(backend="loky", inner_max_num_threads=1):
        runner = Parallel(n_jobs=config.jobs, return_as="generator")
        for i, df in zip(todo, runner(tasks)):
            yield i, df
