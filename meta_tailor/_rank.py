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
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from formula_search.errors import InputError
from formula_search.io import parse_params
from meta_tailor._config import MLPConfig, RankConfig, TailorConfig, resolve_device
from meta_tailor._hnn import HNN
from meta_tailor._metrics import horizon_errors, rollout_mse, rollout_rmse
from meta_tailor._mlp import make_mlp, train_mlp
from meta_tailor._rollout import predict_trajectories, rk4_rollout, rollout_trajectories
from meta_tailor._tailor import (
    ConservedFn,
    MetaTailorResult,
    _continued_state,
    _is_tanh_mlp,
    meta_tailor,
    meta_tailor_many,
    tailored_field,
    tailored_predict,
    trajectory_predictor,
    trajectory_rollout,
)

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
#: Columns of the comparators table.
COMPARATOR_COLUMNS = [
    "method",
    "description",
    "inner_lr",
    "inner_steps",
    "train_rollout_mse",
    "test_rmse",
]

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


def segment_trajectories(trajectories: Sequence, segments: int) -> list:
    """Cut each trajectory into ``segments`` equally long consecutive pieces (the remainder is dropped).

    The real pendulum's single training recording is cut into 4 pieces, as the paper does (appendix C).
    """
    if segments == 1:
        return list(trajectories)
    out = []
    for tr in trajectories:
        n = len(tr.t) // segments
        for s in range(segments):
            sl = slice(s * n, (s + 1) * n)
            out.append(
                SimpleNamespace(
                    t=np.asarray(tr.t)[sl], x=np.asarray(tr.x)[sl], dxdt=np.asarray(tr.dxdt)[sl]
                )
            )
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
    epochs = max(config.tailor.epochs, 1)
    runs = [
        (
            i,
            replace(
                config.tailor, inner_lr=c["inner_lr"], inner_steps=c["inner_steps"], outer_lr=o
            ),
        )
        for i, c in enumerate(top)
        for o in config.outer_rates
    ]
    total, done = len(runs) * epochs, 0
    out: list[list] = [[] for _ in top]
    if config.tailor.mode == "trajectory" and _is_tanh_mlp(model):
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

                results = meta_tailor_many(
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
                for r, res in zip(batch, results):
                    out[runs[r][0]].append((runs[r][1], res))
        if progress:
            progress("meta-tailor", total, total)
    else:
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
            out[i].append((tcfg, res))
            if progress:
                progress("meta-tailor", (k + 1) * epochs, total)
    return out


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

    missing = {"formula", "params"} - set(survivors.columns)
    if missing:
        raise InputError(f"survivors table lacks column(s) {', '.join(sorted(missing))}")
    rows = survivors
    if "accepted" in rows.columns:
        rows = rows[rows["accepted"].astype(bool)]
    if rows.empty:
        raise InputError("no accepted formula to rank")
    device = resolve_device(config.device)
    compiler = compiler or dsl_compiler(data.var_names)
    dt = float(data.time_step)
    train = _prepare(segment_trajectories(data.train, config.train_segments), device)
    model = model.to(device)
    params = {k: v.detach() for k, v in model.named_parameters()}
    lrs = torch.tensor(config.inner_lrs, dtype=torch.float32, device=device)

    # 1. screen
    candidates, screen_rows = [], []
    total = len(rows)
    for i, (formula, raw) in enumerate(zip(rows["formula"], rows["params"])):
        fitted = parse_params(raw)
        try:
            g, n = compiler(formula)
            if n != len(fitted):
                raise ValueError(f"{n} parameters in the formula, {len(fitted)} given")
            theta = torch.tensor(fitted, dtype=torch.float32, device=device)
            losses = {
                s: _screen_losses(
                    params,
                    g,
                    theta,
                    train,
                    lrs=lrs,
                    steps=s,
                    dt=dt,
                    model=model,
                    tailor=config.tailor,
                ).cpu()
                for s in config.inner_steps
            }
        except (
            ValueError,
            RuntimeError,
            ArithmeticError,
        ):  # one broken formula never stops the run
            g, theta = None, None
            losses = {s: torch.full((len(lrs),), math.inf) for s in config.inner_steps}
        for s, ls in losses.items():
            for lr, val in zip(config.inner_lrs, ls.tolist()):
                screen_rows.append(
                    {"formula": formula, "inner_lr": lr, "inner_steps": s, "screen_loss": val}
                )
        best_s, best_i = min(
            ((s, j) for s in losses for j in range(len(lrs))), key=lambda sj: losses[sj[0]][sj[1]]
        )
        candidates.append(
            {
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
        )
        if progress:
            progress("screen", i + 1, total)

    # 2. long stage on the top k
    order = sorted(range(len(candidates)), key=lambda j: candidates[j]["screen_loss"])
    top = [j for j in order[: config.top_k] if math.isfinite(candidates[j]["screen_loss"])]
    models = {}
    curve_rows: list[dict] = []
    trained = _meta_tailor_top(
        model,
        [candidates[j] for j in top],
        train,
        dt=dt,
        config=config,
        progress=progress,
        outer_state=outer_state,
    )
    for j, per_rate in zip(top, trained):
        c = candidates[j]
        # each outer rate's result, scored like the laws: by training rollouts
        scored = []
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
            evaluate_field(fieldfn, data.test, device=device, method="")[1]
            if data.test
            else math.nan
        )
        c["params"] = res.theta.cpu().tolist()
        models[c["formula"]] = (res.model.cpu(), res.theta.cpu())

    # 3. selection on training rollouts
    ranked = sorted(top, key=lambda j: candidates[j]["train_rollout_mse"])
    for r, j in enumerate(ranked, start=1):
        candidates[j]["rank"] = r
    table = pd.DataFrame(
        [{k: v for k, v in c.items() if not k.startswith("_")} for c in candidates]
    )
    table = table.sort_values(
        ["rank", "screen_loss"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    table = table[RANK_COLUMNS]
    winner = models.get(table["formula"].iloc[0]) if ranked else None
    return RankResult(
        table=table,
        screen=pd.DataFrame(screen_rows, columns=SCREEN_COLUMNS),
        curves=pd.DataFrame(curve_rows, columns=CURVE_COLUMNS),
        winner_model=winner[0] if winner else None,
        winner_theta=winner[1] if winner else None,
        models=models,
    )


def pretrain(
    data,
    *,
    config: MLPConfig = MLPConfig(),
    device: str = "auto",
    progress=None,
    curve: list[float] | None = None,
    adam_state: dict | None = None,
) -> nn.Sequential:
    """Train the vanilla MLP on all training points of ``data`` (returned on the CPU).

    ``curve``, if given, is extended with the training loss before each step and after the last one;
    ``adam_state``, if given, is filled with the optimiser's state of the returned weights (see
    :func:`~meta_tailor._mlp.train_mlp`), for ``TailorConfig(outer_adam="continue")``.
    """
    device = resolve_device(device)
    x, dxdt = data.stacked("train")
    x = torch.as_tensor(x, dtype=torch.float32, device=device)
    dxdt = torch.as_tensor(dxdt, dtype=torch.float32, device=device)
    model = make_mlp(x.shape[1], hidden=config.hidden, seed=config.seed).to(device)
    losses = train_mlp(model, x, dxdt, config=config, progress=progress, adam_state=adam_state)
    if curve is not None:
        curve.extend(losses)
    return model.cpu()


@dataclass(frozen=True)
class ComparatorResult:
    """Outcome of :func:`comparators`: ``table`` (:data:`COMPARATOR_COLUMNS`) and ``horizons`` (per-horizon
    test error of every method, columns of :func:`~meta_tailor._metrics.horizon_errors`)."""

    table: pd.DataFrame
    horizons: pd.DataFrame


def comparators(
    model: nn.Module,
    data,
    *,
    mlp_config: MLPConfig = MLPConfig(),
    rank_config: RankConfig = RankConfig(),
    winner: dict | None = None,
    winner_model: nn.Module | None = None,
    oracle: str | None = None,
    compiler: Compiler | None = None,
    include_hnn: bool = True,
    progress: Progress | None = None,
    outer_state: dict | None = None,
) -> ComparatorResult:
    """Train and evaluate the paper's comparators on the same splits as the ranking.

    Methods: ``vanilla_mlp`` (the pretrained model), ``mlp_more_epochs`` (the same MLP trained
    ``rank_config.tailor.epochs`` more full-batch steps), ``noether`` (the ranking winner, given as a row of
    the rank table and its meta-tailored model), ``oracle`` (the same protocol with the true Hamiltonian
    ``oracle``: screen of rates/steps, then meta-tailoring), and ``hnn`` (a Hamiltonian Neural Network trained
    like the MLP).

    With ``rank_config.tailor.outer_adam == "continue"`` (``outer_state``: the MLP's pretraining Adam
    state), the oracle's meta-tailoring and the MLP's extra epochs both continue the pretraining's Adam.
    """
    device = resolve_device(rank_config.device)
    compiler = compiler or dsl_compiler(data.var_names)
    dt = float(data.time_step)
    trajs = segment_trajectories(data.train, rank_config.train_segments)
    train = _prepare(trajs, device)
    records, horizons = [], []

    def add(method, description, fieldfn, lr=math.nan, steps=0):
        tr_mse = evaluate_field(fieldfn, trajs, device=device, method=method)[0]
        _, rmse, hz = evaluate_field(fieldfn, data.test, device=device, method=method)
        records.append(
            {
                "method": method,
                "description": description,
                "inner_lr": lr,
                "inner_steps": steps,
                "train_rollout_mse": tr_mse,
                "test_rmse": rmse,
            }
        )
        horizons.append(hz)
        if progress:
            progress("comparators", len(records), 5)

    model = model.to(device)
    add("vanilla_mlp", "N/A", tailored_field(model, None, None, lr=0.0, steps=0, dt=dt))

    more = make_mlp(train.x.shape[1], hidden=mlp_config.hidden).to(device)
    more.load_state_dict(model.state_dict())
    resume = _continued_state(rank_config.tailor, outer_state, dict(model.named_parameters()))
    train_mlp(
        more,
        train.x,
        train.dxdt,
        config=mlp_config,
        steps=rank_config.tailor.epochs,
        resume=resume,
    )
    add(
        "mlp_more_epochs",
        f"+{rank_config.tailor.epochs} epochs",
        tailored_field(more, None, None, lr=0.0, steps=0, dt=dt),
    )

    if winner is not None and winner_model is not None:
        g, _ = compiler(winner["formula"])
        theta = torch.tensor(parse_params(winner["params"]), dtype=torch.float32, device=device)
        lr, steps = float(winner["inner_lr"]), int(winner["inner_steps"])
        add(
            "noether",
            winner["formula"],
            tailored_model(
                winner_model.to(device),
                g,
                theta,
                lr=lr,
                steps=steps,
                dt=dt,
                tailor=rank_config.tailor,
            ),
            lr,
            steps,
        )

    if oracle:
        survivors = pd.DataFrame({"formula": [oracle], "params": [[]]})
        oracle_cfg = replace(
            rank_config, top_k=1, tailor=replace(rank_config.tailor, learn_params=False)
        )
        res = rank(
            survivors,
            model,
            data,
            config=oracle_cfg,
            compiler=compiler,
            outer_state=outer_state,
        )
        row = res.table.iloc[0]
        if res.winner_model is not None:
            g, _ = compiler(oracle)
            fieldfn = tailored_model(
                res.winner_model.to(device),
                g,
                torch.zeros(0, device=device),
                lr=float(row["inner_lr"]),
                steps=int(row["inner_steps"]),
                dt=dt,
                tailor=rank_config.tailor,
            )
            add("oracle", oracle, fieldfn, float(row["inner_lr"]), int(row["inner_steps"]))

    if include_hnn and train.x.shape[1] % 2 == 0:
        hnn = HNN(train.x.shape[1], hidden=mlp_config.hidden, seed=mlp_config.seed).to(device)
        train_mlp(hnn, train.x, train.dxdt, config=mlp_config)

        def hnn_field(x: Tensor) -> Tensor:
            with torch.no_grad():
                return hnn(x)

        add("hnn", "learned H", hnn_field)

    return ComparatorResult(
        table=pd.DataFrame(records, columns=COMPARATOR_COLUMNS),
        horizons=pd.concat(horizons, ignore_index=True) if horizons else pd.DataFrame(),
    )
