"""Ranking of conserved formulas by meta-tailoring a pretrained MLP (Noether Networks, section 4.2).

Protocol (:func:`rank`):

1. **Screen.** For every survivor and every (inner learning rate, inner steps) pair, tailor the pretrained
   MLP (no outer training) and roll the tailored field out from the first state of every training
   trajectory. ``screen_loss`` is that rollout's MSE on training data. All learning rates of one formula are
   one batched tensor program (:func:`~meta_tailor._tailor.tailored_predict` with ``lr`` of shape (L, 1, 1)).
2. **Long stage.** The ``top_k`` survivors with the lowest screen loss (each at its best rate/steps) are
   meta-tailored for ``epochs`` full-batch epochs; the formula's parameters are meta-learned too.
3. **Selection.** The winner has the lowest long-term rollout MSE on *training* trajectories
   (``train_rollout_mse``). ``test_rmse`` is reported but never used to choose.

The comparators of the paper's tables (:func:`comparators`) are trained and evaluated on the same splits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from formula_search.errors import InputError
from formula_search.io import parse_params
from meta_tailor._config import MLPConfig, RankConfig, TailorConfig, resolve_device
from meta_tailor._losses import ConservedFn
from meta_tailor._metrics import horizon_errors, rollout_mse, rollout_rmse
from meta_tailor._mlp import make_mlp, train_mlp
from meta_tailor._outer import MetaTailorResult, can_stack, meta_tailor, meta_tailor_many
from meta_tailor._per_state import tailored_field, tailored_predict
from meta_tailor._rollout import predict_trajectories, rk4_rollout, rollout_trajectories
from meta_tailor._trajectory import trajectory_predictor, trajectory_rollout

#: Columns of the table returned by :func:`rank`.
RANK_COLUMNS = [
    "formula",
    "fitted_params",
    "params",
    "inner_lr",
    "inner_steps",
    "outer_lr",
    "screen_loss",
    "train_rollout_mse",
    "test_rmse",
    "rank",
    "cv_mse",
]
#: Columns of the screen table (one row per formula, learning rate and number of inner steps).
SCREEN_COLUMNS = ["formula", "inner_lr", "inner_steps", "screen_loss"]
#: Columns of the long stage's epoch-by-epoch table (:attr:`RankResult.curves`).
CURVE_COLUMNS = ["formula", "outer_lr", "epoch", "outer_loss", "score"]
Compiler = Callable[[str], tuple[ConservedFn, int]]
Progress = Callable[[str, int, int], None]


def dsl_compiler(var_names: Sequence[str]) -> Compiler:
    """Compile DSL text with :mod:`dsl` into ``(g, n_params)``."""
    import dsl

    names = list(var_names)

    def compile_(text: str) -> tuple[ConservedFn, int]:
        expr = dsl.parse(text, names)
        return dsl.compile_torch(expr, names), dsl.n_params(expr)

    return compile_


@dataclass(frozen=True, slots=True)
class TrajectorySegment:
    """A piece of a trajectory cut by :func:`segment_trajectories`.

    Attributes:
        t: times, shape (T,).
        x: states, shape (T, n_vars).
        dxdt: time derivatives of the states, shape (T, n_vars).
    """

    t: np.ndarray
    x: np.ndarray
    dxdt: np.ndarray


def segment_trajectories(trajectories: Sequence, segments: int) -> list:
    """Cut each trajectory into ``segments`` equally long consecutive pieces (the remainder is dropped).

    The real pendulum's single training recording is cut into 4 pieces, as the paper does (appendix C).
    With ``segments == 1`` the trajectories themselves are returned, else :class:`TrajectorySegment` objects.
    """
    if segments == 1:
        return list(trajectories)
    out = []
    for tr in trajectories:
        n = len(tr.t) // segments
        t, x, dxdt = np.asarray(tr.t), np.asarray(tr.x), np.asarray(tr.dxdt)
        for s in range(segments):
            sl = slice(s * n, (s + 1) * n)
            out.append(TrajectorySegment(t=t[sl], x=x[sl], dxdt=dxdt[sl]))
    return out


@dataclass(frozen=True)
class _Split:
    """Training data on the device: points for meta-tailoring, trajectories for rollouts."""

    x: Tensor
    dxdt: Tensor
    trajectories: list
    groups: list[tuple[Tensor, Tensor, Tensor]]  # per equal length: t (B, T), x and dx/dt (B, T, n)


def _prepare(trajectories: Sequence, device: str, dtype=torch.float32) -> _Split:
    x = torch.cat([torch.as_tensor(np.array(tr.x), dtype=dtype) for tr in trajectories]).to(device)
    dxdt = torch.cat([torch.as_tensor(np.array(tr.dxdt), dtype=dtype) for tr in trajectories]).to(
        device
    )
    by_len: dict[int, list] = {}
    for tr in trajectories:
        by_len.setdefault(len(tr.t), []).append(tr)
    groups = []
    for trs in by_len.values():
        t = torch.stack([torch.as_tensor(np.array(tr.t), dtype=dtype) for tr in trs]).to(device)
        xs = torch.stack([torch.as_tensor(np.array(tr.x), dtype=dtype) for tr in trs]).to(device)
        dx = torch.stack([torch.as_tensor(np.array(tr.dxdt), dtype=dtype) for tr in trs]).to(device)
        groups.append((t, xs, dx))
    return _Split(x=x, dxdt=dxdt, trajectories=list(trajectories), groups=groups)


def _screen_losses(
    params: dict[str, Tensor],
    g: ConservedFn,
    theta: Tensor,
    split: _Split,
    *,
    lrs: Tensor,
    steps: int,
    dt: float,
    model: nn.Module | None = None,
    tailor: TailorConfig = TailorConfig(),
) -> Tensor:
    """Training rollout MSE of the tailored pretrained model for every learning rate at once, shape (L,).

    ``tailor.mode`` chooses per-state tailoring (the field is tailored at every RK4 stage) or per-trajectory
    tailoring (Algorithm 1; needs ``model``); ``tailor.loss_form``/``tailor.horizon`` apply to the latter.
    """
    lr = lrs[:, None, None]

    def field(x: Tensor) -> Tensor:
        return tailored_predict(
            params, g, theta, x, lr=lr, steps=steps, dt=dt, rule=tailor.inner_rule
        )

    total = torch.zeros(len(lrs), device=lrs.device, dtype=lrs.dtype)
    count = 0
    for t, xs, _ in split.groups:
        if tailor.mode == "trajectory":
            with torch.no_grad():
                pred = trajectory_rollout(
                    model,
                    params,
                    g,
                    theta,
                    xs[:, 0],
                    t,
                    lrs=lrs,
                    steps=steps,
                    dt=dt,
                    horizon=tailor.horizon,
                    form=tailor.loss_form,
                    integrator=tailor.inner_integrator,
                    rule=tailor.inner_rule,
                )
        else:
            x0 = xs[:, 0].expand(len(lrs), -1, -1)
            pred = rk4_rollout(field, x0, t)  # (L, B, T, n)
        total = total + ((pred - xs) ** 2).sum(dim=(1, 2, 3))
        count += xs.numel()
    loss = total / count
    return torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf))


@dataclass(frozen=True)
class RankResult:
    """Outcome of :func:`rank`.

    Attributes:
        table: one row per survivor (columns :data:`RANK_COLUMNS`): ``formula`` (DSL text), ``fitted_params``
            (parameters from the fitter), ``params`` (after meta-learning; the fitted ones if not in the long
            stage), ``inner_lr``/``inner_steps`` (best of the screen), ``screen_loss`` (training rollout MSE
            of the tailored pretrained MLP), ``train_rollout_mse`` (after meta-tailoring; NaN outside the
            top k), ``test_rmse`` (reported, never used to choose), ``rank`` (1 = winner; NaN outside the
            top k), ``cv_mse`` (the law's cross-validation score when the ranking was re-ranked by
            :func:`~meta_tailor._cv.choose_by_cv`, else NaN). Sorted by rank, then screen loss.
        screen: every screened (formula, inner_lr, inner_steps) with its ``screen_loss``.
        curves: the long stage epoch by epoch (columns :data:`CURVE_COLUMNS`): per finalist and outer rate,
            ``outer_loss`` (before each outer step) and ``score`` (what the returned epoch is chosen by:
            the training rollout MSE with ``select="rollout"``; epoch 0 is the tailored pretrained MLP,
            the last epoch the weights after the final step; NaN in state mode, which keeps the last
            step's weights).
        winner_model: the meta-tailored MLP of the winner.
        winner_theta: its meta-learned formula parameters.
    """

    table: pd.DataFrame
    screen: pd.DataFrame
    curves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CURVE_COLUMNS))
    winner_model: nn.Module | None = None
    winner_theta: Tensor | None = None
    models: dict = field(default_factory=dict, repr=False)


def evaluate_field(
    fieldfn: Callable[[Tensor], Tensor] | Predictor,
    trajectories: Sequence,
    *,
    device: str,
    method: str,
) -> tuple[float, float, pd.DataFrame]:
    """Rollouts of a field, or predictions of a :class:`Predictor`: (MSE, RMSE, per-horizon table)."""
    if isinstance(fieldfn, Predictor):
        rolls = predict_trajectories(fieldfn.predict, trajectories, device=device)
    else:
        rolls = rollout_trajectories(fieldfn, trajectories, device=device)
    return rollout_mse(rolls), rollout_rmse(rolls), horizon_errors(rolls, method=method)


@dataclass(frozen=True)
class Predictor:
    """A sequence predictor ``predict(x0 (B, n), t (B, T)) -> (B, T, n)`` (per-trajectory tailoring)."""

    predict: Callable[[Tensor, Tensor], Tensor]


def tailored_model(
    model: nn.Module,
    g: ConservedFn | None,
    theta: Tensor | None,
    *,
    lr: float,
    steps: int,
    dt: float,
    tailor: TailorConfig = TailorConfig(),
) -> Callable[[Tensor], Tensor] | Predictor:
    """The tailored model to evaluate: a vector field (state mode) or a :class:`Predictor` (trajectory)."""
    if tailor.mode == "trajectory" and g is not None and steps > 0:
        return Predictor(
            trajectory_predictor(
                model,
                g,
                theta,
                lr=lr,
                steps=steps,
                dt=dt,
                horizon=tailor.horizon,
                form=tailor.loss_form,
                integrator=tailor.inner_integrator,
                rule=tailor.inner_rule,
            )
        )
    return tailored_field(model, g, theta, lr=lr, steps=steps, dt=dt, rule=tailor.inner_rule)


#: Largest number of stacked tailored weights (candidates x training sequences x MLP parameters) that
#: :func:`_meta_tailor_top` puts in one batch of :func:`meta_tailor_many`.
STACK_BUDGET = 40_000_000


def _curve_rows(formula: str, tcfg: TailorConfig, res: MetaTailorResult) -> list[dict]:
    """The long stage of one finalist at one outer rate, one row per epoch (:data:`CURVE_COLUMNS`)."""
    scores = dict(res.scores)
    epochs = range(max(len(res.losses), max(scores, default=-1) + 1))
    return [
        {
            "formula": formula,
            "outer_lr": tcfg.outer_lr,
            "epoch": e,
            "outer_loss": res.losses[e] if e < len(res.losses) else math.nan,
            "score": scores.get(e, math.nan),
        }
        for e in epochs
    ]


def _runs(top: list[dict], config: RankConfig) -> list[tuple[int, TailorConfig]]:
    """The long stage's runs: (candidate index, settings) for every candidate of ``top`` and outer rate."""
    return [
        (
            i,
            replace(
                config.tailor, inner_lr=c["inner_lr"], inner_steps=c["inner_steps"], outer_lr=o
            ),
        )
        for i, c in enumerate(top)
        for o in config.outer_rates
    ]


def _meta_tailor_top(
    model: nn.Module,
    top: list[dict],
    train: _Split,
    *,
    dt: float,
    config: RankConfig,
    progress: Progress | None,
    outer_state: dict | None = None,
) -> list[list[tuple[TailorConfig, MetaTailorResult]]]:
    """The long stage: meta-tailor each candidate of ``top`` with its screened rate and steps, at every
    outer rate of ``config.outer_rates``.

    In trajectory mode with the tanh MLP, runs with the same number of inner steps are meta-tailored
    together (:func:`meta_tailor_many`, one outer rate per stacked copy), in batches that keep the stacked
    per-sequence weights under :data:`STACK_BUDGET` numbers; otherwise one at a time. Progress is reported
    in run-epochs.

    Returns:
        Per candidate of ``top``, one ``(config, result)`` per outer rate, in the order of ``outer_rates``
        (a candidate's runs share its inner steps, so they land in one group, in the order of ``runs``).
    """
    runs = _runs(top, config)
    out: list[list] = [[] for _ in top]
    kw = dict(dt=dt, train=train, progress=progress, outer_state=outer_state)
    if can_stack(model, config.tailor):
        results = _stacked_runs(model, top, runs, epochs=max(config.tailor.epochs, 1), **kw)
    else:
        results = _single_runs(model, top, runs, epochs=max(config.tailor.epochs, 1), **kw)
    for r, res in results:
        out[runs[r][0]].append((runs[r][1], res))
    return out


def _stacked_runs(
    model: nn.Module,
    top: list[dict],
    runs: list[tuple[int, TailorConfig]],
    *,
    epochs: int,
    dt: float,
    train: _Split,
    progress: Progress | None,
    outer_state: dict | None,
) -> list[tuple[int, MetaTailorResult]]:
    """The runs with :func:`meta_tailor_many`, by number of inner steps, in batches under the budget."""
    total, done, results = len(runs) * epochs, 0, []
    n_seq = sum(xs.shape[0] for _, xs, _ in train.groups)
    n_par = sum(v.numel() for v in model.parameters())
    size = max(1, STACK_BUDGET // max(1, n_seq * n_par))
    for steps in sorted({c.inner_steps for _, c in runs}):
        idx = [r for r, (_, c) in enumerate(runs) if c.inner_steps == steps]
        for start in range(0, len(idx), size):
            batch = idx[start : start + size]

            def tick(epoch: int, k: int = len(batch), base: int = done) -> None:
                if progress:
                    progress("meta-tailor", base + (epoch + 1) * k, total)

            batch_results = meta_tailor_many(
                model,
                [
                    (top[runs[r][0]]["_g"], top[runs[r][0]]["_theta"], runs[r][1].inner_lr)
                    for r in batch
                ],
                dt=dt,
                config=runs[batch[0]][1],
                trajectories=train.groups,
                progress=tick,
                outer_lrs=[runs[r][1].outer_lr for r in batch],
                outer_state=outer_state,
            )
            done += len(batch) * epochs
            results.extend(zip(batch, batch_results))
    if progress:
        progress("meta-tailor", total, total)
    return results


def _single_runs(
    model: nn.Module,
    top: list[dict],
    runs: list[tuple[int, TailorConfig]],
    *,
    epochs: int,
    dt: float,
    train: _Split,
    progress: Progress | None,
    outer_state: dict | None,
) -> list[tuple[int, MetaTailorResult]]:
    """The runs one at a time with :func:`meta_tailor`."""
    results = []
    for k, (i, tcfg) in enumerate(runs):
        c = top[i]
        res = meta_tailor(
            model,
            c["_g"],
            c["_theta"],
            train.x,
            train.dxdt,
            dt=dt,
            config=tcfg,
            trajectories=train.groups,
            outer_state=outer_state,
        )
        results.append((k, res))
        if progress:
            progress("meta-tailor", (k + 1) * epochs, len(runs) * epochs)
    return results


def _accepted(survivors: pd.DataFrame) -> pd.DataFrame:
    """The rows of the survivors table to rank; a clear error for a malformed or empty table."""
    missing = {"formula", "params"} - set(survivors.columns)
    if missing:
        raise InputError(f"survivors table lacks column(s) {', '.join(sorted(missing))}")
    rows = survivors
    if "accepted" in rows.columns:
        rows = rows[rows["accepted"].astype(bool)]
    if rows.empty:
        raise InputError("no accepted formula to rank")
    return rows


def _screen_one(
    formula: str,
    raw,
    model: nn.Module,
    train: _Split,
    *,
    lrs: Tensor,
    dt: float,
    config: RankConfig,
    compiler: Compiler,
) -> tuple[dict, list[dict]]:
    """Screen one formula at every inner rate and number of steps: its candidate row and screen rows."""
    fitted = parse_params(raw)
    params = {k: v.detach() for k, v in model.named_parameters()}
    try:
        g, n = compiler(formula)
        if n != len(fitted):
            raise ValueError(f"{n} parameters in the formula, {len(fitted)} given")
        theta = torch.tensor(fitted, dtype=torch.float32, device=lrs.device)
        losses = {
            s: _screen_losses(
                params, g, theta, train, lrs=lrs, steps=s, dt=dt, model=model, tailor=config.tailor
            ).cpu()
            for s in config.inner_steps
        }
    except (ValueError, RuntimeError, ArithmeticError):  # one broken formula never stops the run
        g, theta = None, None
        losses = {s: torch.full((len(lrs),), math.inf) for s in config.inner_steps}
    rows = [
        {"formula": formula, "inner_lr": lr, "inner_steps": s, "screen_loss": val}
        for s, ls in losses.items()
        for lr, val in zip(config.inner_lrs, ls.tolist())
    ]
    best_s, best_i = min(
        ((s, j) for s in losses for j in range(len(lrs))), key=lambda sj: losses[sj[0]][sj[1]]
    )
    candidate = {
        "formula": formula,
        "fitted_params": fitted,
        "params": fitted,
        "inner_lr": config.inner_lrs[best_i],
        "inner_steps": best_s,
        "outer_lr": math.nan,
        "screen_loss": float(losses[best_s][best_i]),
        "train_rollout_mse": math.nan,
        "test_rmse": math.nan,
        "rank": math.nan,
        "cv_mse": math.nan,
        "_g": g,
        "_theta": theta,
    }
    return candidate, rows


def _screen(
    rows: pd.DataFrame,
    model: nn.Module,
    train: _Split,
    *,
    dt: float,
    config: RankConfig,
    compiler: Compiler,
    progress: Progress | None,
    device: str,
) -> tuple[list[dict], list[dict]]:
    """Screen every formula of ``rows`` (:func:`_screen_one`): the candidates and all screen rows."""
    lrs = torch.tensor(config.inner_lrs, dtype=torch.float32, device=device)
    candidates, screen_rows = [], []
    for i, (formula, raw) in enumerate(zip(rows["formula"], rows["params"])):
        c, screened = _screen_one(
            formula, raw, model, train, lrs=lrs, dt=dt, config=config, compiler=compiler
        )
        candidates.append(c)
        screen_rows.extend(screened)
        if progress:
            progress("screen", i + 1, len(rows))
    return candidates, screen_rows


def _finish_finalist(
    c: dict,
    per_rate: list[tuple[TailorConfig, MetaTailorResult]],
    data,
    train: _Split,
    *,
    dt: float,
    device: str,
) -> tuple[list[dict], tuple[nn.Module, Tensor]]:
    """Score a finalist's result at each outer rate by training rollouts, keep the best in ``c`` (rate,
    rollout MSE, test RMSE, parameters); return its curve rows and its (model, parameters)."""
    scored, curve_rows = [], []
    for tcfg, res in per_rate:
        fieldfn = tailored_model(
            res.model,
            c["_g"],
            res.theta,
            lr=tcfg.inner_lr,
            steps=tcfg.inner_steps,
            dt=dt,
            tailor=tcfg,
        )
        mse = evaluate_field(fieldfn, train.trajectories, device=device, method="")[0]
        curve_rows.extend(_curve_rows(c["formula"], tcfg, res))
        scored.append((mse if math.isfinite(mse) else math.inf, tcfg, res, fieldfn))
    mse, tcfg, res, fieldfn = min(scored, key=lambda s: s[0])
    c["train_rollout_mse"] = mse
    c["outer_lr"] = tcfg.outer_lr
    c["test_rmse"] = (
        evaluate_field(fieldfn, data.test, device=device, method="")[1] if data.test else math.nan
    )
    c["params"] = res.theta.cpu().tolist()
    return curve_rows, (res.model.cpu(), res.theta.cpu())


def _rank_table(candidates: list[dict], top: list[int]) -> pd.DataFrame:
    """Rank the finalists by training rollout MSE; the table of :data:`RANK_COLUMNS`, winner first."""
    ranked = sorted(top, key=lambda j: candidates[j]["train_rollout_mse"])
    for r, j in enumerate(ranked, start=1):
        candidates[j]["rank"] = r
    table = pd.DataFrame(
        [{k: v for k, v in c.items() if not k.startswith("_")} for c in candidates]
    )
    table = table.sort_values(
        ["rank", "screen_loss"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    return table[RANK_COLUMNS]


def rank(
    survivors: pd.DataFrame,
    model: nn.Module,
    data,
    *,
    config: RankConfig = RankConfig(),
    compiler: Compiler | None = None,
    progress: Progress | None = None,
    outer_state: dict | None = None,
) -> RankResult:
    """Rank conserved formulas by how much meta-tailoring with them improves long-term prediction.

    Args:
        survivors: fitter output with columns ``formula`` (DSL text with ``c_0, c_1, ...``), ``params``
            (list or JSON text) and optionally ``accepted`` (only accepted rows are ranked).
        model: pretrained MLP (:func:`~meta_tailor._mlp.make_mlp`), not modified.
        data: a dataset with ``train``/``test`` trajectories, ``time_step`` and ``var_names``.
        config: the protocol (learning rates, steps, top k, epochs, device).
        compiler: maps formula text to ``(g, n_params)``; default: :func:`dsl_compiler`.
        progress: optional ``progress(stage, done, total)`` callback.
        outer_state: the MLP's pretraining Adam state (``adam_state`` of :func:`pretrain`), needed by
            ``config.tailor.outer_adam == "continue"``.

    Returns:
        A :class:`RankResult`.

    Raises:
        InputError: the table lacks the needed columns or has no accepted formula.
    """
    rows = _accepted(survivors)
    device = resolve_device(config.device)
    compiler = compiler or dsl_compiler(data.var_names)
    dt = float(data.time_step)
    train = _prepare(segment_trajectories(data.train, config.train_segments), device)
    model = model.to(device)
    kw = dict(dt=dt, config=config, progress=progress)

    # 1. screen
    candidates, screen_rows = _screen(rows, model, train, compiler=compiler, device=device, **kw)

    # 2. long stage on the top k
    order = sorted(range(len(candidates)), key=lambda j: candidates[j]["screen_loss"])
    top = [j for j in order[: config.top_k] if math.isfinite(candidates[j]["screen_loss"])]
    finalists = [candidates[j] for j in top]
    trained = _meta_tailor_top(model, finalists, train, outer_state=outer_state, **kw)
    models, curve_rows = {}, []
    for j, per_rate in zip(top, trained):
        curves, models[candidates[j]["formula"]] = _finish_finalist(
            candidates[j], per_rate, data, train, dt=dt, device=device
        )
        curve_rows.extend(curves)

    # 3. selection on training rollouts
    table = _rank_table(candidates, top)
    winner = models.get(table["formula"].iloc[0]) if top else None
    return RankResult(
        table=table,
        screen=pd.DataFrame(screen_rows, columns=SCREEN_COLUMNS),
        curves=pd.DataFrame(curve_rows, columns=CURVE_COLUMNS),
        winner_model=winner[0] if winner else None,
        winner_theta=winner[1] if winner else None,
        models=models,
    )


class Pretrained(NamedTuple):
    """What :func:`pretrain` returns: ``model, curve, adam_state = pretrain(data)``."""

    #: the trained MLP, on the CPU
    model: nn.Sequential
    #: the full-batch training loss before each step and after the last one
    curve: list[float]
    #: the optimiser's state of the returned weights (see :func:`~meta_tailor._mlp.train_mlp`), for
    #: ``TailorConfig(outer_adam="continue")``
    adam_state: dict


def pretrain(
    data,
    *,
    config: MLPConfig = MLPConfig(),
    device: str = "auto",
    progress=None,
) -> Pretrained:
    """Train the vanilla MLP on all training points of ``data``: the model (on the CPU), its loss curve and
    its optimiser's state."""
    device = resolve_device(device)
    x, dxdt = data.stacked("train")
    x = torch.as_tensor(x, dtype=torch.float32, device=device)
    dxdt = torch.as_tensor(dxdt, dtype=torch.float32, device=device)
    model = make_mlp(x.shape[1], hidden=config.hidden, seed=config.seed).to(device)
    adam_state: dict = {}
    losses = train_mlp(model, x, dxdt, config=config, progress=progress, adam_state=adam_state)
    return Pretrained(model.cpu(), list(losses), adam_state)
