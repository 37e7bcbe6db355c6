"""Ranking protocol on a tiny closed-form oscillator (hand-written formulas, no dataset files needed)."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from formula_search.errors import InputError
from meta_tailor.advanced import (
    HNN,
    RANK_COLUMNS,
    MLPConfig,
    RankConfig,
    TailorConfig,
    pretrain,
    rank,
    rollout_mse,
    rollout_trajectories,
    segment_trajectories,
    tailored_field,
)


def _traj(r, a, n_t=12, dt=0.1):
    t = np.arange(n_t) * dt
    ph = 2 * t + a
    x = np.stack([r * np.cos(ph), -r * np.sin(ph)], -1)
    return SimpleNamespace(t=t, x=x, dxdt=np.stack([2 * x[:, 1], -2 * x[:, 0]], -1))


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    trs = [_traj(rng.uniform(0.2, 1.0), rng.uniform(0, 6.28)) for _ in range(6)]
    train, test = trs[:3], trs[3:]
    data = SimpleNamespace(
        train=train,
        test=test,
        time_step=0.1,
        var_names=("q", "p"),
        stacked=lambda split: (
            np.concatenate([t.x for t in train]),
            np.concatenate([t.dxdt for t in train]),
        ),
    )
    model = pretrain(data, config=MLPConfig(hidden=8, steps=50), device="cpu").model
    return data, model


def _compiler(text):
    table = {
        "q^2 + c_0*p^2": (lambda x, th: x[..., 0] ** 2 + th[..., 0] * x[..., 1] ** 2, 1),
        "q*p + c_0": (lambda x, th: x[..., 0] * x[..., 1] + th[..., 0], 1),
        "broken": (lambda x, th: x[..., 0] / 0.0 * th[..., 0], 1),
    }
    return table[text]


def test_rank_table_and_protocol(tiny):
    data, model = tiny
    surv = pd.DataFrame(
        {
            "formula": ["q^2 + c_0*p^2", "q*p + c_0", "broken", "q*p + c_0"],
            "params": ["[0.9]", "[1.0]", "[1.0]", "[2.0]"],
            "accepted": [True, True, True, False],
        }
    )
    cfg = RankConfig(
        inner_lrs=(0.0, 0.1, 1.0), top_k=2, tailor=TailorConfig(epochs=3), device="cpu"
    )
    res = rank(surv, model, data, config=cfg, compiler=_compiler)
    assert list(res.table.columns) == RANK_COLUMNS
    assert len(res.table) == 3, "the unaccepted row must not be ranked"
    broken = res.table[res.table["formula"] == "broken"].iloc[0]
    assert broken["screen_loss"] == math.inf and math.isnan(broken["rank"])
    ranked = res.table.dropna(subset=["rank"])
    assert sorted(ranked["rank"]) == [1, 2]
    assert ranked.iloc[0]["train_rollout_mse"] <= ranked.iloc[1]["train_rollout_mse"]
    assert len(res.screen) == 3 * 3
    # at inner lr 0 the screen loss is the untailored MLP's training rollout MSE, computed independently
    plain = rollout_mse(
        rollout_trajectories(tailored_field(model, None, None, lr=0, steps=0, dt=0.1), data.train)
    )
    at_zero = res.screen[(res.screen["inner_lr"] == 0.0) & (res.screen["formula"] == "q*p + c_0")]
    assert at_zero["screen_loss"].iloc[0] == pytest.approx(plain, rel=1e-5)
    assert res.winner_model is not None and res.winner_theta.shape == (1,)


@pytest.mark.parametrize("rates", [(3e-2, 1e-3), (1e-3, 3e-2)])
def test_outer_rate_screen_keeps_each_laws_best_rate_by_training_rollouts(tiny, rates):
    # the screen over outer rates must give, per law, the best of the rankings run at each rate alone
    # (here 3e-2 is better for both laws: first in one order, last in the other)
    data, model = tiny
    surv = pd.DataFrame({"formula": ["q^2 + c_0*p^2", "q*p + c_0"], "params": ["[0.9]", "[1.0]"]})
    base = RankConfig(inner_lrs=(0.1, 1.0), top_k=2, tailor=TailorConfig(epochs=4), device="cpu")
    both = rank(surv, model, data, config=replace(base, outer_lrs=rates), compiler=_compiler)
    alone = {
        r: rank(surv, model, data, config=replace(base, outer_lrs=(r,)), compiler=_compiler).table
        for r in rates
    }
    for _, row in both.table.iterrows():
        per_rate = {
            r: t.loc[t["formula"] == row["formula"], "train_rollout_mse"].iloc[0]
            for r, t in alone.items()
        }
        best = min(per_rate, key=per_rate.get)
        assert row["outer_lr"] == best
        assert row["train_rollout_mse"] == pytest.approx(per_rate[best], rel=1e-5)
    assert set(alone[1e-3]["outer_lr"]) == {1e-3}
    # the default is the tailor's own rate
    assert RankConfig(tailor=TailorConfig(outer_lr=2e-4)).outer_rates == (2e-4,)
    for bad in ((), (0.0,), (1e-3, 1e-3)):
        with pytest.raises(ValueError):
            RankConfig(outer_lrs=bad)


def test_rank_rejects_empty_and_malformed_tables(tiny):
    data, model = tiny
    with pytest.raises(InputError):
        rank(pd.DataFrame({"formula": ["x"]}), model, data, compiler=_compiler)
    with pytest.raises(InputError):
        rank(
            pd.DataFrame({"formula": ["q*p + c_0"], "params": ["[1]"], "accepted": [False]}),
            model,
            data,
        )


def test_segment_trajectories_hand_worked():
    tr = SimpleNamespace(t=np.arange(9.0), x=np.arange(18.0).reshape(9, 2), dxdt=np.zeros((9, 2)))
    pieces = segment_trajectories([tr], 4)
    assert [p.t.tolist() for p in pieces] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert pieces[3].x.tolist() == [[12, 13], [14, 15]]


def test_hnn_follows_hamiltons_equations():
    # the HNN field is J grad H of its own scalar: check against a finite-difference gradient of H
    hnn = HNN(2, hidden=8).double()
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    eps = 1e-6
    dh_dq = (
        hnn.hamiltonian(x + torch.tensor([eps, 0.0]).double())
        - hnn.hamiltonian(x - torch.tensor([eps, 0.0]).double())
    ) / (2 * eps)
    dh_dp = (
        hnn.hamiltonian(x + torch.tensor([0.0, eps]).double())
        - hnn.hamiltonian(x - torch.tensor([0.0, eps]).double())
    ) / (2 * eps)
    with torch.no_grad():
        out = hnn(x)
    torch.testing.assert_close(out[0], torch.stack([dh_dp[0], -dh_dq[0]]), rtol=1e-6, atol=1e-8)
    assert not out.requires_grad


# --- the choice of law by cross-validation over the training trajectories ---------------------------


def test_cv_folds_partition_the_training_trajectories():
    from meta_tailor.advanced import cv_folds

    assert cv_folds(5, 2) == [[0, 2, 4], [1, 3]]
    assert cv_folds(3, 3) == [[0], [1], [2]]  # leave one out
    for n, k in ((1, 2), (4, 1), (4, 5)):
        with pytest.raises(InputError):
            cv_folds(n, k)


def _fold_by_hand(data, held: int, cfg, formula):
    """Pretrain and rank without training trajectory ``held``, then roll the law's tailored model out on
    it and return its MSE (numpy), and the fold's ranking row."""
    from meta_tailor._rank import tailored_model

    rest = [tr for j, tr in enumerate(data.train) if j != held]
    fold = SimpleNamespace(
        train=rest,
        test=[],
        time_step=data.time_step,
        var_names=data.var_names,
        stacked=lambda split: (
            np.concatenate([t.x for t in rest]),
            np.concatenate([t.dxdt for t in rest]),
        ),
    )
    model = pretrain(fold, config=MLPConfig(hidden=8, steps=50), device="cpu").model
    surv = pd.DataFrame({"formula": ["q^2 + c_0*p^2", "q*p + c_0"], "params": ["[0.9]", "[1.0]"]})
    res = rank(surv, model, fold, config=replace(cfg, top_k=2), compiler=_compiler)
    row = res.table[res.table["formula"] == formula].iloc[0]
    net, theta = res.models[formula]
    g, _ = _compiler(formula)
    pred = tailored_model(
        net, g, theta, lr=row["inner_lr"], steps=int(row["inner_steps"]), dt=0.1, tailor=cfg.tailor
    )
    tr = data.train[held]
    x0 = torch.as_tensor(tr.x[:1], dtype=torch.float32)
    t = torch.as_tensor(tr.t[None], dtype=torch.float32)
    with torch.no_grad():
        xs = pred.predict(x0, t)[0].numpy()
    return float(np.mean((xs - tr.x) ** 2)), row


def _cross_validate(data, cfg, finalists, **kwargs):
    from meta_tailor import cross_validate

    return cross_validate(
        finalists,
        data,
        mlp_config=MLPConfig(hidden=8, steps=50),
        config=cfg,
        folds=3,
        compiler=_compiler,
        **kwargs,
    )


@pytest.fixture(scope="module")
def cv_run(tiny):
    data, _ = tiny
    cfg = RankConfig(
        inner_lrs=(0.1, 1.0),
        top_k=1,  # cross_validate meta-tailors every finalist whatever the top k
        tailor=TailorConfig(mode="trajectory", epochs=2),
        device="cpu",
    )
    finalists = pd.DataFrame(
        {"formula": ["q^2 + c_0*p^2", "q*p + c_0"], "params": ["[0.9]", "[1.0]"]}
    )
    calls = []
    cv = _cross_validate(data, cfg, finalists, progress=lambda *a: calls.append(a))
    return data, cfg, finalists, cv, calls


def test_cross_validation_scores_each_law_on_a_trajectory_it_never_saw(cv_run):
    from meta_tailor.advanced import CV_COLUMNS

    data, cfg, _, cv, calls = cv_run
    assert list(cv.folds.columns) == CV_COLUMNS
    assert len(cv.folds) == 3 * 2  # leave one out, both laws in every fold
    assert sorted(map(tuple, cv.folds["held_out"])) == [(0,), (0,), (1,), (1,), (2,), (2,)]
    # fold 1's held-out error, rebuilt by hand: pretrain and rank on trajectories 0 and 2, roll out 1
    for formula in ("q^2 + c_0*p^2", "q*p + c_0"):
        want, row = _fold_by_hand(data, 1, cfg, formula)
        got = cv.folds[(cv.folds["fold"] == 1) & (cv.folds["formula"] == formula)].iloc[0]
        assert got["held_out_mse"] == pytest.approx(want, rel=1e-4)
        assert got["train_rollout_mse"] == pytest.approx(row["train_rollout_mse"], rel=1e-5)
    # the score is the mean over the folds, best first
    for formula, score in cv.scores.items():
        per_fold = cv.folds.loc[cv.folds["formula"] == formula, "held_out_mse"].to_numpy()
        assert score == pytest.approx(float(np.mean(per_fold)))
    assert list(cv.scores) == sorted(cv.scores)
    assert ("cross-validate", 3, 3) in calls and any(c[0] == "fold 2: meta-tailor" for c in calls)


def test_cross_validation_never_trains_on_the_held_out_trajectory(tiny, cv_run):
    # changing the held-out trajectory changes its score but nothing the fold learned
    from meta_tailor.advanced import cv_fold

    data, cfg, finalists, cv, _ = cv_run
    moved = SimpleNamespace(**vars(data))
    moved.train = list(data.train)
    tr = data.train[0]
    moved.train[0] = SimpleNamespace(t=tr.t, x=1.5 * tr.x, dxdt=1.5 * tr.dxdt)
    rows = cv_fold(
        finalists,
        moved,
        [0],
        mlp_config=MLPConfig(hidden=8, steps=50),
        config=replace(cfg, top_k=2),
        compiler=_compiler,
    )
    for r in rows:
        before = cv.folds[(cv.folds["fold"] == 0) & (cv.folds["formula"] == r["formula"])].iloc[0]
        assert r["params"] == before["params"]
        assert r["train_rollout_mse"] == before["train_rollout_mse"]
        assert r["held_out_mse"] != pytest.approx(before["held_out_mse"], rel=1e-3)


def test_cross_validation_in_processes_gives_the_same_folds(cv_run):
    data, cfg, finalists, cv, _ = cv_run
    par = _cross_validate(data, cfg, finalists, jobs=2)
    assert list(par.folds["formula"]) == list(cv.folds["formula"])
    np.testing.assert_allclose(par.folds["held_out_mse"], cv.folds["held_out_mse"], rtol=1e-4)


def test_choose_by_cv_reranks_the_finalists_and_swaps_the_winner(tiny):
    from meta_tailor.advanced import CVResult, choose_by_cv

    data, model = tiny
    surv = pd.DataFrame(
        {"formula": ["q^2 + c_0*p^2", "q*p + c_0", "broken"], "params": ["[0.9]", "[1.0]", "[1.0]"]}
    )
    cfg = RankConfig(inner_lrs=(0.1, 1.0), top_k=3, tailor=TailorConfig(epochs=2), device="cpu")
    res = rank(surv, model, data, config=cfg, compiler=_compiler)
    first, second = res.table["formula"].iloc[:2]
    assert res.table["cv_mse"].isna().all()
    # the in-sample runner-up has the lower held-out error in both folds
    folds = pd.DataFrame(
        [
            {"fold": k, "formula": f, "held_out_mse": v}
            for k in (0, 1)
            for f, v in ((first, 0.5 + k), (second, 0.1 + k))
        ]
    )
    chosen = choose_by_cv(res, CVResult(folds=folds))
    assert list(chosen.table["formula"].iloc[:2]) == [second, first]
    assert list(chosen.table["rank"].iloc[:2]) == [1, 2]
    assert list(chosen.table["cv_mse"].iloc[:2]) == pytest.approx([0.6, 1.0])
    broken = chosen.table[chosen.table["formula"] == "broken"].iloc[0]
    assert math.isnan(broken["rank"]) and math.isnan(broken["cv_mse"])
    assert chosen.winner_model is res.models[second][0]
    assert torch.equal(chosen.winner_theta, res.models[second][1])
    # a law without a score in every fold (or with a diverged one) is scored inf and ranked last
    partial = CVResult(folds=folds[~((folds["fold"] == 1) & (folds["formula"] == second))])
    assert partial.scores[second] == math.inf
    assert choose_by_cv(res, partial).table["formula"].iloc[0] == first


def test_cv_fold_wins_count_the_folds_each_law_is_best_in():
    """A hand-worked table where one fold with large errors decides the mean against the other three."""
    from meta_tailor.advanced import CVResult

    mse = {
        "A": [1.0, 0.01, 0.01, 0.01],
        "B": [0.5, 0.02, 0.02, 0.02],
        "C": [2.0, 0.03, 0.01, math.nan],
    }
    folds = pd.DataFrame(
        [{"fold": k, "formula": f, "held_out_mse": v[k]} for f, v in mse.items() for k in range(4)]
    )
    cv = CVResult(folds=folds)
    # means: B 0.14, A 0.2575; C has a NaN fold, so it scores inf and comes last
    assert list(cv.scores.index) == ["B", "A", "C"]
    assert cv.scores["B"] == pytest.approx(0.14)
    # B is lowest in fold 0 only; A in folds 1, 2 and 3, sharing fold 2 with C
    assert cv.fold_wins.to_dict() == {"B": 1, "A": 3, "C": 1}
    # a fold where every rollout diverged gives no win to anyone
    diverged = folds.assign(held_out_mse=folds["held_out_mse"].where(folds["fold"] != 0, math.inf))
    assert CVResult(folds=diverged).fold_wins.to_dict() == {"A": 3, "B": 0, "C": 1}


def test_cv_summary_says_when_the_vote_disagrees_with_the_mean():
    """The command's lines for a CV choice, hand-worked: the mean picks B (0.14 against 0.2575, so the
    runner-up is 83.9% higher) though A is best in 3 of 4 folds; without the large fold they agree."""
    from formula_search.runs import cv_summary
    from meta_tailor.advanced import CVResult

    mse = {"A": [1.0, 0.01, 0.01, 0.01], "B": [0.5, 0.02, 0.02, 0.02]}
    rows = [
        {"fold": k, "formula": f, "held_out_mse": v[k]} for f, v in mse.items() for k in range(4)
    ]
    listed, margin = cv_summary(CVResult(folds=pd.DataFrame(rows)))
    assert listed == (
        "law choice by 4-fold CV (mean held-out rollout MSE): "
        "B: 0.14 (lowest in 1 of 4 folds), A: 0.2575 (lowest in 3 of 4 folds)"
    )
    assert margin == (
        "CV margin: the runner-up's mean is 83.9% higher; the folds' vote disagrees with the mean"
    )
    agree = pd.DataFrame([r for r in rows if r["fold"] != 0])  # A: 0.01 in every fold, B: 0.02
    assert (
        cv_summary(CVResult(folds=agree))[1] == "CV margin: the runner-up's mean is 100.0% higher"
    )


def test_cross_validation_fold_continues_its_own_pretraining_adam(cv_run):
    """With ``outer_adam="continue"`` each fold's meta-tailoring continues the Adam of the MLP pretrained
    on that fold (rebuilt here by hand), not a fresh one."""
    from meta_tailor.advanced import cv_fold

    data, cfg, finalists, _, _ = cv_run
    cont = replace(cfg, top_k=2, tailor=replace(cfg.tailor, outer_adam="continue"))
    mlp = MLPConfig(hidden=8, steps=50)
    rows = cv_fold(finalists, data, [1], mlp_config=mlp, config=cont, compiler=_compiler)
    rest = [tr for j, tr in enumerate(data.train) if j != 1]
    fold = SimpleNamespace(
        train=rest,
        test=[data.train[1]],
        time_step=data.time_step,
        var_names=data.var_names,
        stacked=lambda split: (
            np.concatenate([t.x for t in rest]),
            np.concatenate([t.dxdt for t in rest]),
        ),
    )
    model, curve, state = pretrain(fold, config=mlp, device="cpu")
    assert len(curve) == 51  # the loss before each of the 50 steps and after the last
    assert state["step"] == 50
    want = rank(finalists, model, fold, config=cont, compiler=_compiler, outer_state=state).table
    fresh = rank(finalists, model, fold, config=replace(cfg, top_k=2), compiler=_compiler).table
    for r in rows:
        w = want[want["formula"] == r["formula"]].iloc[0]
        assert r["params"] == pytest.approx(list(w["params"]), rel=1e-6)
        assert r["train_rollout_mse"] == pytest.approx(w["train_rollout_mse"], rel=1e-6)
        assert r["held_out_mse"] == pytest.approx(w["test_rmse"] ** 2, rel=1e-6)
    assert not np.allclose(
        sorted(want["train_rollout_mse"]), sorted(fresh["train_rollout_mse"]), rtol=1e-6
    )
    with pytest.raises(ValueError, match="pretraining Adam state"):
        rank(finalists, model, fold, config=cont, compiler=_compiler)
