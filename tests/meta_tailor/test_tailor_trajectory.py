"""Per-trajectory tailoring (Algorithm 1): checked against hand-unrolled autograd computations in float64."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mt_helpers import g_pend, hand_states, tiny
from torch.func import functional_call

from meta_tailor._rank import Predictor, evaluate_field, tailored_model
from meta_tailor._rollout import predict_trajectories
from meta_tailor._tailor import (
    batched_forward,
    sequence_noether_loss,
    tailor_trajectories,
    trajectory_rollout,
)
from meta_tailor.advanced import (
    TailorConfig,
    make_mlp,
    meta_tailor,
    rk4_rollout,
    rollout_trajectories,
)


def hand_tailor(model, theta, x0, *, lr, steps, dt, horizon, form, integrator="euler"):
    """Explicit Euler (or RK4) rollout and SGD on the Noether loss with plain autograd, one trajectory."""
    p = {k: v.detach().clone() for k, v in model.named_parameters()}
    for _ in range(steps):
        leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        xs = hand_states(model, leaves, x0, dt=dt, horizon=horizon, integrator=integrator)
        gs = [g_pend(x, theta) for x in xs]
        terms = []
        for t in range(1, horizon + 1):
            ref = gs[0] if form == "a" else gs[t - 1]
            terms.append((gs[t] - ref) ** 2)
        loss = sum(terms) / horizon
        grads = torch.autograd.grad(loss, list(leaves.values()))
        p = {k: p[k] - lr * gr for k, gr in zip(p, grads)}
    return p


@pytest.mark.parametrize("form,integrator", [("a", "euler"), ("b", "euler"), ("a", "rk4")])
def test_one_inner_step_matches_hand_unrolled(form, integrator):
    model = tiny()
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta = torch.tensor([1.7], dtype=torch.float64)
    x0 = torch.tensor([[0.8, -0.3]], dtype=torch.float64)
    lr, dt, horizon = 0.3, 0.1, 4
    got = tailor_trajectories(
        model,
        params,
        g_pend,
        theta,
        x0,
        lrs=torch.tensor([lr], dtype=torch.float64),
        steps=1,
        dt=dt,
        horizon=horizon,
        form=form,
        integrator=integrator,
    )
    want = hand_tailor(
        model,
        theta,
        x0[0],
        lr=lr,
        steps=1,
        dt=dt,
        horizon=horizon,
        form=form,
        integrator=integrator,
    )
    for k in params:
        assert got[k].shape == (1, 1, *params[k].shape)
        torch.testing.assert_close(got[k][0, 0], want[k], rtol=1e-10, atol=1e-12)
        assert not torch.allclose(want[k], params[k])  # the step did change the weights

    # the prediction: RK4 with the tailored weights on the given grid
    t = torch.linspace(0.0, 0.6, 7, dtype=torch.float64)
    pred = trajectory_rollout(
        model,
        params,
        g_pend,
        theta,
        x0,
        t,
        lrs=torch.tensor([lr], dtype=torch.float64),
        steps=1,
        dt=dt,
        horizon=horizon,
        form=form,
        integrator=integrator,
    )
    ref = rk4_rollout(lambda x: functional_call(model, want, (x,)), x0, t)
    torch.testing.assert_close(pred[0], ref, rtol=1e-10, atol=1e-12)


def test_sequence_loss_forms_by_hand():
    xs = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)  # g = p^2 - c
    theta = torch.tensor([0.5], dtype=torch.float64)
    # g = 0.5, 3.5, -0.5: (a) mean(3^2, 1^2) = 5; (b) mean(3^2, 4^2) = 12.5
    assert float(sequence_noether_loss(g_pend, theta, xs, form="a")) == pytest.approx(5.0)
    assert float(sequence_noether_loss(g_pend, theta, xs, form="b")) == pytest.approx(12.5)


def test_batching_over_trajectories_and_rates_equals_single_runs():
    model = tiny(seed=1)
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta = torch.tensor([2.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    lrs = torch.tensor([0.05, 0.4], dtype=torch.float64)
    t = torch.linspace(0.0, 0.5, 6, dtype=torch.float64).expand(3, -1)
    kw = dict(steps=2, dt=0.1, horizon=5, form="a")
    both = trajectory_rollout(model, params, g_pend, theta, x0, t, lrs=lrs, **kw)
    assert both.shape == (2, 3, 6, 2)
    for i in range(2):
        for b in range(3):
            one = trajectory_rollout(
                model, params, g_pend, theta, x0[b : b + 1], t[b : b + 1], lrs=lrs[i : i + 1], **kw
            )
            torch.testing.assert_close(both[i, b], one[0, 0], rtol=1e-10, atol=1e-12)
            p = hand_tailor(model, theta, x0[b], lr=float(lrs[i]), **kw)
            ref = rk4_rollout(lambda x, p=p: functional_call(model, p, (x,)), x0[b : b + 1], t[b])
            torch.testing.assert_close(both[i, b], ref[0], rtol=1e-9, atol=1e-11)


def test_batched_forward_fast_path_equals_functional_call():
    model = tiny(seed=2)
    gen = torch.Generator().manual_seed(1)
    p = {
        k: v.detach() + 0.1 * torch.randn(2, 3, *v.shape, generator=gen, dtype=torch.float64)
        for k, v in model.named_parameters()
    }
    x = torch.randn(2, 3, 2, generator=gen, dtype=torch.float64)
    got = batched_forward(model, p, x)
    for i in range(2):
        for b in range(3):
            pi = {k: v[i, b] for k, v in p.items()}
            torch.testing.assert_close(got[i, b], functional_call(model, pi, (x[i, b],)))


@pytest.mark.parametrize(
    "w_lead,x_shape",
    [
        ((), (4, 2)),
        ((), (3, 4, 2)),
        ((2, 3), (2, 3, 2)),
        ((2, 3), (2, 3, 5, 2)),
        ((1, 3), (2, 3, 2)),
    ],
    ids=["plain", "plain-batched", "per-row", "shared-by-rows", "broadcast-fallback"],
)
def test_mlp_fn_layouts_equal_functional_call(w_lead, x_shape):
    """Every weight layout of the fused rollout MLP (one set, one per row, one shared by the rows of each
    sequence, and broadcasting that takes the per-evaluation path) gives the module's own outputs, and
    records each layer's inputs and pre-activations in the layout ``_mlp_sequence_grads`` reshapes."""
    from meta_tailor._mlp_fast import _mlp_fn

    model = tiny(seed=4)
    gen = torch.Generator().manual_seed(2)
    p = {
        k: v.detach() + 0.1 * torch.randn(*w_lead, *v.shape, generator=gen, dtype=torch.float64)
        for k, v in model.named_parameters()
    }
    x = torch.randn(*x_shape, generator=gen, dtype=torch.float64)
    record = [([], []) for _ in range(3)]
    got = _mlp_fn(p, x, record)(x)
    # the module, evaluated weight set by weight set (broadcasting the weights' leading dims over x's)
    lead = torch.broadcast_shapes(w_lead, x.shape[: len(w_lead)]) if w_lead else ()
    want = torch.empty_like(got)
    for idx in np.ndindex(*lead) if lead else [()]:
        w_idx = tuple(i if n > 1 else 0 for i, n in zip(idx, w_lead))
        pi = {k: v[w_idx] for k, v in p.items()}
        want[idx] = functional_call(model, pi, (x[idx],))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the second layer's input is tanh of the first layer's pre-activation, in the recorded layout
    (h1,), (z0,) = record[1][0], record[0][1]
    shape = (*x.shape[:-1], 1, -1)
    torch.testing.assert_close(h1.reshape(shape), torch.tanh(z0).reshape(shape))
    h0 = record[0][0][0].reshape(shape)
    torch.testing.assert_close(h0, x.reshape(shape))


def test_meta_gradient_gradcheck_and_gradgradcheck():
    model = make_mlp(2, hidden=3, seed=0).double()
    names = [k for k, _ in model.named_parameters()]
    init = [v.detach().clone().requires_grad_(True) for _, v in model.named_parameters()]
    theta = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor([[0.5, 0.2], [-0.4, 0.6]], dtype=torch.float64)
    t = torch.linspace(0.0, 0.3, 4, dtype=torch.float64).expand(2, -1)
    target = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def outer(*args):
        params = dict(zip(names, args[:-1]))
        pred = trajectory_rollout(
            model,
            params,
            g_pend,
            args[-1],
            x0,
            t,
            lrs=torch.tensor([0.5], dtype=torch.float64),
            steps=1,
            dt=0.1,
            horizon=3,
        )
        return ((pred[0] - target) ** 2).mean()

    assert torch.autograd.gradcheck(outer, (*init, theta))
    assert torch.autograd.gradgradcheck(outer, (*init, theta))


def test_zero_rate_is_the_plain_model_and_unequal_lengths_are_grouped():
    model = tiny(seed=4)
    trajs = [
        SimpleNamespace(t=torch.linspace(0, 0.4, 5), x=torch.randn(5, 2)),
        SimpleNamespace(t=torch.linspace(0, 0.6, 7), x=torch.randn(7, 2)),
        SimpleNamespace(t=torch.linspace(0, 0.4, 5), x=torch.randn(5, 2)),
    ]
    model_f = model.float()
    pred = tailored_model(
        model_f,
        g_pend,
        torch.tensor([1.0]),
        lr=0.0,
        steps=1,
        dt=0.1,
        tailor=TailorConfig(mode="trajectory"),
    )
    assert isinstance(pred, Predictor)
    got = predict_trajectories(pred.predict, trajs)
    want = rollout_trajectories(lambda x: model_f(x).detach(), trajs)
    for (_, _, a), (_, _, b), tr in zip(got, want, trajs):
        assert a.shape == tr.x.shape
        torch.testing.assert_close(a, b)
    # a nonzero rate tailors each trajectory from its own first state
    pred2 = tailored_model(
        model_f,
        g_pend,
        torch.tensor([1.0]),
        lr=0.5,
        steps=1,
        dt=0.1,
        tailor=TailorConfig(mode="trajectory"),
    )
    mse, rmse, hz = evaluate_field(pred2, trajs, device="cpu", method="x")
    assert math.isfinite(mse) and rmse == pytest.approx(math.sqrt(mse))
    assert hz["n_trajectories"].tolist() == [3] * 5 + [1] * 2


@pytest.mark.parametrize("outer", ["rollout", "derivative"])
def test_meta_tailor_trajectory_mode_lowers_the_outer_loss(outer):
    # harmonic oscillator trajectories, H = q^2 + p^2 (x = (q, p), dq/dt = p, dp/dt = -q)
    torch.manual_seed(0)
    t = torch.linspace(0.0, 1.0, 11)
    phase = torch.tensor([0.0, 1.0, 2.0])[:, None]
    xs = torch.stack([torch.sin(t + phase), torch.cos(t + phase)], dim=-1)  # (3, 11, 2)
    dx = torch.stack([torch.cos(t + phase), -torch.sin(t + phase)], dim=-1)
    model = make_mlp(2, hidden=16, seed=0)
    g = lambda x, th: th[..., 0] * x[..., 0] ** 2 + x[..., 1] ** 2  # noqa: E731
    cfg = TailorConfig(mode="trajectory", epochs=15, inner_lr=0.1, outer_lr=1e-2, outer_loss=outer)
    res = meta_tailor(
        model,
        g,
        torch.tensor([1.2]),
        xs.reshape(-1, 2),
        xs.reshape(-1, 2),
        dt=0.1,
        config=cfg,
        trajectories=[(t.expand(3, -1), xs, dx)],
    )
    assert len(res.losses) == 15 and all(math.isfinite(v) for v in res.losses)
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert float(res.theta[0]) != pytest.approx(1.2, abs=1e-9)  # the parameter was meta-learned
    with pytest.raises(ValueError):
        meta_tailor(model, g, torch.tensor([1.0]), xs[0], xs[0], dt=0.1, config=cfg)


def test_config_validation():
    with pytest.raises(ValueError):
        TailorConfig(mode="sequence")
    with pytest.raises(ValueError):
        TailorConfig(loss_form="c")
    with pytest.raises(ValueError):
        TailorConfig(horizon=0)
    with pytest.raises(ValueError):
        TailorConfig(inner_integrator="midpoint")


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_mlp_fast_path_equals_torch_func_path(steps, monkeypatch):
    """The tanh-MLP path (pre-activation adjoints, factored one-step rollout) gives the generic torch.func numbers,
    values and meta-gradients into the weights and the formula parameter."""
    import meta_tailor._trajectory as tailor_mod

    model = tiny(hidden=7, seed=3)
    params = dict(model.named_parameters())
    theta = torch.tensor([2.5], dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor([[0.4, -0.3], [1.1, 0.2], [-0.7, 0.9]], dtype=torch.float64)
    lrs = torch.tensor([0.01, 0.2], dtype=torch.float64)
    t = torch.linspace(0.0, 0.6, 7, dtype=torch.float64)

    def run():
        p = tailor_trajectories(
            model,
            params,
            g_pend,
            theta,
            x0,
            lrs=lrs,
            steps=steps,
            dt=0.1,
            horizon=5,
            form="b",
            integrator="rk4",
        )
        xs = trajectory_rollout(
            model, params, g_pend, theta, x0, t, lrs=lrs, steps=steps, dt=0.1, integrator="rk4"
        )
        scalar = sum((v**2).sum() for v in p.values()) + (xs**2).sum()
        return p, xs, torch.autograd.grad(scalar, [*params.values(), theta])

    fast = run()
    monkeypatch.setattr(tailor_mod, "_is_tanh_mlp", lambda m: False)
    ref = run()
    for k in fast[0]:
        torch.testing.assert_close(fast[0][k], ref[0][k], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast[1], ref[1], rtol=1e-12, atol=1e-12)
    for a, b in zip(fast[2], ref[2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _assert_equal_to_separate_runs(model, cands, many, cfg, x, dxdt, trajectories, rates=None):
    """Each stacked result equals meta_tailor run alone with that candidate's inner (and outer) rate."""
    from dataclasses import replace

    rates = rates or [cfg.outer_lr] * len(cands)
    for (g, theta, lr), rate, got in zip(cands, rates, many):
        want = meta_tailor(
            model,
            g,
            theta,
            x.reshape(-1, 2),
            dxdt.reshape(-1, 2),
            dt=0.2,
            config=replace(cfg, inner_lr=lr, outer_lr=rate),
            trajectories=trajectories,
        )
        for a, b in zip(got.model.parameters(), want.model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(got.theta, want.theta, rtol=1e-9, atol=1e-12)
        assert np.allclose(got.losses, want.losses, rtol=1e-7)
        assert [e for e, _ in got.scores] == [e for e, _ in want.scores]
        assert np.allclose([v for _, v in got.scores], [v for _, v in want.scores], rtol=1e-7)


@pytest.mark.parametrize(
    "outer,steps,rule,warmup,decay",
    [(o, s, "sgd", 0, "none") for o in ("derivative", "rollout") for s in (0, 1, 2)]
    + [("derivative", 1, "polyak", 0, "none"), ("derivative", 2, "polyak", 0, "none")]
    + [("derivative", 1, "sgd", 3, "none"), ("rollout", 1, "polyak", 2, "none")]
    + [("derivative", 1, "sgd", 2, "cosine"), ("rollout", 2, "polyak", 0, "cosine")],
)
def test_meta_tailor_many_equals_one_at_a_time(outer, steps, rule, warmup, decay):
    """Stacked meta-tailoring of several candidates (own formula, parameters and inner rate each, one that
    gives NaN losses) reproduces meta_tailor run separately on each, with either inner step rule and with an
    outer warm-up and cosine decay."""

    from meta_tailor._tailor import meta_tailor_many

    def g_quad(x, th):
        return x[..., 0] ** 2 + th[..., 0] * x[..., 1] ** 2 + th[..., 1] * x[..., 0]

    def g_free(x, th):
        return x[..., 1] ** 2 + torch.cos(x[..., 0])

    def g_nan(x, th):
        return torch.log(x[..., 1]) + th[..., 0]  # p < 0 somewhere: NaN loss, never a step

    f64 = dict(dtype=torch.float64)
    cands = [
        (g_pend, torch.tensor([2.0], **f64), 0.05),
        (g_quad, torch.tensor([0.5, 0.1], **f64), 0.2),
        (g_free, torch.zeros(0, **f64), 3.0),
        (g_nan, torch.tensor([1.0], **f64), 0.1),
    ]
    model = tiny(hidden=9, seed=1)
    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 6, **f64).expand(3, -1)
    xs = torch.randn(3, 6, 2, generator=gen, **f64)
    dx = torch.randn(3, 6, 2, generator=gen, **f64)
    cfg = TailorConfig(
        mode="trajectory",
        epochs=5,
        outer_lr=1e-2,
        param_lr=1e-2,
        inner_steps=steps,
        outer_loss=outer,
        inner_rule=rule,
        outer_warmup=warmup,
        outer_decay=decay,
    )
    many = meta_tailor_many(model, cands, dt=0.2, config=cfg, trajectories=[(t, xs, dx)])
    _assert_equal_to_separate_runs(model, cands, many, cfg, xs, dx, [(t, xs, dx)])
    if steps:  # with no inner step the formula is never evaluated
        assert all(math.isinf(v) for v in many[-1].losses)
    assert not all(math.isinf(v) for v in many[0].losses)


def test_meta_tailor_many_with_an_outer_rate_per_candidate():
    """Per-candidate outer Adam rates (the same law at two rates, another law at a third) give what
    meta_tailor gives at each rate separately."""
    from dataclasses import replace

    from meta_tailor._tailor import meta_tailor_many

    f64 = dict(dtype=torch.float64)
    model = tiny(hidden=9, seed=1)
    gen = torch.Generator().manual_seed(4)
    t = torch.linspace(0, 1, 6, **f64).expand(3, -1)
    xs = torch.randn(3, 6, 2, generator=gen, **f64)
    cands = [
        (g_pend, torch.tensor([2.0], **f64), 0.05),
        (g_pend, torch.tensor([2.0], **f64), 0.05),
        (g_pend, torch.tensor([1.0], **f64), 0.2),
    ]
    rates = [1e-2, 1e-3, 3e-2]
    cfg = TailorConfig(mode="trajectory", epochs=5, param_lr=1e-2, outer_loss="rollout")
    many = meta_tailor_many(
        model, cands, dt=0.2, config=cfg, trajectories=[(t, xs)], outer_lrs=rates
    )
    _assert_equal_to_separate_runs(model, cands, many, cfg, xs, xs, [(t, xs)], rates)
    # equal per-copy rates are the same run as that rate in the config, to the last bit
    same = meta_tailor_many(
        model, cands, dt=0.2, config=cfg, trajectories=[(t, xs)], outer_lrs=[3e-2] * 3
    )
    plain = meta_tailor_many(
        model, cands, dt=0.2, config=replace(cfg, outer_lr=3e-2), trajectories=[(t, xs)]
    )
    for a, b in zip(same, plain):
        assert all(torch.equal(u, v) for u, v in zip(a.model.parameters(), b.model.parameters()))
    # the two copies of one law part ways only through their outer rates
    assert not torch.allclose(next(many[0].model.parameters()), next(many[1].model.parameters()))
    with pytest.raises(ValueError):
        meta_tailor_many(model, cands, dt=0.2, config=cfg, trajectories=[(t, xs)], outer_lrs=[1e-2])


def test_select_by_rollout_never_returns_worse_training_rollouts():
    """With select="rollout" the returned weights predict the training trajectories at least as well as the
    tailored starting model (epoch 0 is a candidate), measured by an independent RK4 rollout; with
    select="outer" that is not guaranteed."""
    from dataclasses import replace

    from meta_tailor._tailor import meta_tailor_many

    f64 = dict(dtype=torch.float64)
    model = tiny(hidden=9, seed=2)
    # rotating states; the outer targets are a wrong field (1.5 times too fast)
    t = torch.linspace(0, 2, 11, **f64).expand(4, -1)
    q0 = torch.tensor([0.3, -0.5, 0.8, 1.0], **f64)
    xs = torch.stack([q0[:, None] * torch.cos(t), -q0[:, None] * torch.sin(t)], -1)
    dx = torch.stack([xs[..., 1], -xs[..., 0]], -1) * 1.5
    cfg = TailorConfig(mode="trajectory", epochs=15, outer_lr=3e-2, inner_lr=0.05, select="rollout")

    def rollout_mse(m, theta):
        pred = trajectory_rollout(
            m,
            dict(m.named_parameters()),
            g_pend,
            theta,
            xs[:, 0],
            t,
            lrs=torch.tensor([0.05], **f64),
            steps=1,
            dt=0.2,
            form=cfg.loss_form,
            integrator=cfg.inner_integrator,  # the tailoring that cfg describes (RK4 inner rollout)
        )[0]
        return float(((pred - xs) ** 2).mean().detach())

    # first fit the true field, so that the wrong targets below can only make the rollouts worse
    true_dx = torch.stack([xs[..., 1], -xs[..., 0]], -1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        ((model(xs) - true_dx) ** 2).mean().backward()
        opt.step()
    theta0 = torch.tensor([1.0], **f64)
    start = rollout_mse(model, theta0)

    def run(config):
        return meta_tailor(
            model,
            g_pend,
            theta0,
            xs.reshape(-1, 2),
            dx.reshape(-1, 2),
            dt=0.2,
            config=config,
            trajectories=[(t, xs, dx)],
        )

    res = run(cfg)
    many = meta_tailor_many(
        model, [(g_pend, theta0, 0.05)], dt=0.2, config=cfg, trajectories=[(t, xs, dx)]
    )[0]
    for r in (res, many):
        assert rollout_mse(r.model, r.theta) <= start + 1e-12
        # the recorded scores are the curve the choice is made from: every epoch and the last step's
        # weights, epoch 0 being the tailored starting model, and the returned weights are the minimum
        assert [e for e, _ in r.scores] == list(range(cfg.epochs + 1))
        assert r.scores[0][1] == pytest.approx(start, rel=1e-10)
        assert min(v for _, v in r.scores) == pytest.approx(
            rollout_mse(r.model, r.theta), rel=1e-10
        )
    assert np.allclose([v for _, v in res.scores], [v for _, v in many.scores], rtol=1e-9)
    every5 = run(replace(cfg, select_every=5)).scores
    assert [e for e, _ in every5] == [0, 5, 10, 15]
    outer = run(replace(cfg, select="outer"))
    assert [v for _, v in outer.scores][:-1] == pytest.approx(outer.losses, rel=1e-12)
    assert rollout_mse(outer.model, outer.theta) > start  # the derivative loss alone moved away


def _state_problem():
    """A tiny float64 MLP, 12 random states and targets, and a pendulum-law parameter, for state mode."""
    f64 = dict(dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(12, 2, generator=gen, **f64)
    dx = torch.randn(12, 2, generator=gen, **f64)
    return tiny(hidden=7, seed=4), x, dx, torch.tensor([1.3], **f64)


def test_outer_warmup_scales_the_first_steps():
    """Adam's first step is the rate times m^ / (sqrt(v^) + eps), linear in the rate, so one outer step with
    a warm-up of 4 steps equals one step of plain Adam at a quarter of both rates; a warm-up of 1 step is no
    warm-up at all. (State mode returns the last weights, so the step itself is compared.)"""
    from dataclasses import replace

    from meta_tailor._outer_adam import _outer_factor

    model, x, dx, theta = _state_problem()
    cfg = TailorConfig(epochs=1, outer_lr=1e-2, param_lr=1e-2, inner_lr=0.05)

    def run(config):
        return meta_tailor(model, g_pend, theta, x, dx, dt=0.2, config=config)

    def assert_same(a, b):
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(a.theta, b.theta, rtol=1e-12, atol=1e-15)

    warm = run(replace(cfg, outer_warmup=4))
    assert_same(warm, run(replace(cfg, outer_lr=cfg.outer_lr / 4, param_lr=cfg.param_lr / 4)))
    plain = run(cfg)
    assert not torch.allclose(warm.theta, plain.theta)
    assert_same(run(replace(cfg, epochs=6, outer_warmup=1)), run(replace(cfg, epochs=6)))
    factors = [float(_outer_factor(k, replace(cfg, epochs=6, outer_warmup=4))) for k in range(1, 7)]
    assert factors == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert float(_outer_factor(1, cfg)) == 1.0
    with pytest.raises(ValueError):
        TailorConfig(outer_warmup=-1)


@pytest.mark.parametrize("epochs,warmup", [(6, 2), (5, 0), (9, 4), (3, 3)])
def test_outer_cosine_decay_follows_torch_schedulers(epochs, warmup):
    """The outer rates' factor with ``outer_decay="cosine"`` is torch's LinearLR warm-up followed by
    CosineAnnealingLR over the remaining steps (a separate implementation), step by step."""
    from dataclasses import replace

    from meta_tailor._outer_adam import _outer_factor

    cfg = TailorConfig(epochs=epochs, outer_warmup=warmup, outer_decay="cosine")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    lrs = torch.optim.lr_scheduler
    phases = [lrs.LinearLR(opt, start_factor=1 / warmup, total_iters=warmup - 1)] if warmup else []
    phases += [lrs.CosineAnnealingLR(opt, T_max=epochs - warmup)] if epochs > warmup else []
    sched = lrs.SequentialLR(opt, phases, milestones=[warmup]) if len(phases) == 2 else phases[0]
    want = []
    for _ in range(epochs):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    got = [float(_outer_factor(k, cfg)) for k in range(1, epochs + 1)]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert all(a > b for a, b in zip(got[warmup:], got[warmup + 1 :]))
    with pytest.raises(ValueError):
        replace(cfg, outer_decay="linear")


def test_meta_tailor_steps_with_the_cosine_decay():
    """meta_tailor with ``outer_decay="cosine"`` takes the steps of torch's Adam under CosineAnnealingLR on the
    same loss (the tailored prediction's MSE, written out here), in state mode, which returns the last
    weights; without the decay it ends elsewhere."""
    from dataclasses import replace

    from meta_tailor._tailor import tailored_predict

    model, x, dx, theta = _state_problem()
    cfg = TailorConfig(epochs=4, outer_lr=1e-2, param_lr=2e-2, inner_lr=0.05, outer_decay="cosine")
    got = meta_tailor(model, g_pend, theta, x, dx, dt=0.2, config=cfg)

    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    th = theta.clone().requires_grad_()
    opt = torch.optim.Adam(
        [
            {"params": list(params.values()), "lr": 1e-2, "weight_decay": cfg.weight_decay},
            {"params": [th], "lr": 2e-2, "weight_decay": 0.0},
        ]
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    for _ in range(cfg.epochs):
        opt.zero_grad()
        pred = tailored_predict(params, g_pend, th, x, lr=0.05, steps=1, dt=0.2, create_graph=True)
        torch.mean((pred - dx) ** 2).backward()
        opt.step()
        sched.step()
    for name, p in got.model.named_parameters():
        torch.testing.assert_close(p, params[name], rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(got.theta, th.detach(), rtol=1e-10, atol=1e-13)
    plain = meta_tailor(
        model, g_pend, theta, x, dx, dt=0.2, config=replace(cfg, outer_decay="none")
    )
    assert not torch.allclose(plain.theta, got.theta)


def _pretraining_state(model, x, dx, steps=6):
    """Train a copy of ``model`` a few Adam steps; return the copy and its Adam state."""
    import copy

    from meta_tailor import MLPConfig, train_mlp

    trained = copy.deepcopy(model)
    state: dict = {}
    train_mlp(trained, x, dx, config=MLPConfig(hidden=7, steps=steps, lr=1e-2), adam_state=state)
    return trained, state


def test_continued_outer_adam_with_no_tailoring_is_continued_pretraining():
    """With an inner rate of 0 the state-mode outer loss is the MLP's own training loss, so meta-tailoring
    that continues the pretraining Adam (same rate and weight decay, no warm-up) takes exactly the steps
    that resuming ``train_mlp`` takes; a fresh outer Adam does not."""
    import copy
    from dataclasses import replace

    from meta_tailor import MLPConfig, train_mlp

    model, x, dx, theta = _state_problem()
    trained, state = _pretraining_state(model, x, dx)
    cfg = TailorConfig(
        epochs=5, outer_lr=1e-2, inner_lr=0.0, weight_decay=1e-4, outer_adam="continue"
    )
    res = meta_tailor(trained, g_pend, theta, x, dx, dt=0.2, config=cfg, outer_state=state)
    resumed = copy.deepcopy(trained)
    train_mlp(resumed, x, dx, config=MLPConfig(hidden=7, lr=1e-2), steps=5, resume=state)
    for a, b in zip(res.model.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    fresh = meta_tailor(
        trained, g_pend, theta, x, dx, dt=0.2, config=replace(cfg, outer_adam="fresh")
    )
    assert not torch.allclose(fresh.model[0].weight, res.model[0].weight, rtol=1e-6)
    # the state of an MLP trained 0 steps is a fresh Adam's
    _, empty = _pretraining_state(model, x, dx, steps=0)
    assert empty["step"] == 0
    zero = meta_tailor(model, g_pend, theta, x, dx, dt=0.2, config=cfg, outer_state=empty)
    new = meta_tailor(model, g_pend, theta, x, dx, dt=0.2, config=replace(cfg, outer_adam="fresh"))
    for a, b in zip(zero.model.parameters(), new.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="pretraining Adam state"):
        meta_tailor(trained, g_pend, theta, x, dx, dt=0.2, config=cfg)
    with pytest.raises(ValueError, match="outer_adam"):
        TailorConfig(outer_adam="warm")


@pytest.mark.parametrize("rule,warmup", [("sgd", 0), ("polyak", 3)])
def test_meta_tailor_many_continues_the_pretraining_adam_like_one_at_a_time(rule, warmup):
    """Stacked meta-tailoring with ``outer_adam="continue"`` (hand-written Adam, bias corrections at the
    pretraining's step count plus this run's) equals meta_tailor run alone on each candidate (torch's Adam
    given the pretraining state), and differs from a fresh outer Adam."""
    from dataclasses import replace

    from meta_tailor._tailor import meta_tailor_many

    model, x, dx, _ = _state_problem()
    trained, state = _pretraining_state(model, x, dx)
    f64 = dict(dtype=torch.float64)
    gen = torch.Generator().manual_seed(5)
    t = torch.linspace(0, 1, 6, **f64).expand(3, -1)
    xs = torch.randn(3, 6, 2, generator=gen, **f64)
    dxs = torch.randn(3, 6, 2, generator=gen, **f64)
    cands = [(g_pend, torch.tensor([2.0], **f64), 0.05), (g_pend, torch.tensor([0.7], **f64), 0.3)]
    cfg = TailorConfig(
        mode="trajectory",
        epochs=5,
        outer_lr=1e-2,
        param_lr=1e-2,
        inner_rule=rule,
        outer_warmup=warmup,
        outer_adam="continue",
    )
    groups = [(t, xs, dxs)]
    many = meta_tailor_many(
        trained, cands, dt=0.2, config=cfg, trajectories=groups, outer_state=state
    )
    for (g, theta, lr), got in zip(cands, many):
        want = meta_tailor(
            trained,
            g,
            theta,
            xs.reshape(-1, 2),
            dxs.reshape(-1, 2),
            dt=0.2,
            config=replace(cfg, inner_lr=lr),
            trajectories=groups,
            outer_state=state,
        )
        for a, b in zip(got.model.parameters(), want.model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(got.theta, want.theta, rtol=1e-9, atol=1e-12)
        assert np.allclose(got.losses, want.losses, rtol=1e-7)
    fresh = meta_tailor_many(
        trained, cands, dt=0.2, config=replace(cfg, outer_adam="fresh"), trajectories=groups
    )
    assert not np.allclose(fresh[0].losses, many[0].losses, rtol=1e-6)
