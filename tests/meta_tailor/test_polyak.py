"""The Polyak inner step rule (``rule="polyak"``): rate ``lr * L / |grad L|^2`` per query, in float64.

Checked against per-query autograd written out by hand, against the generic ``torch.func`` path, and
against two properties that do not depend on the implementation: the step is unchanged when ``g`` is
multiplied by a constant, and a small step of rate ``eta`` removes the fraction ``eta`` of the query's loss.
"""

from __future__ import annotations

import pytest
import torch
from mt_helpers import g_pend, hand_states, tiny
from torch.func import functional_call

from meta_tailor._tailor import (
    tailor_trajectories,
    trajectory_rollout,
)
from meta_tailor.advanced import (
    RankConfig,
    TailorConfig,
    default_inner_lrs,
    paper_configs,
    tailored_predict,
    tailored_predict_func,
)

F64 = dict(dtype=torch.float64)
DT = 0.1


def seq_loss(model, p, g, theta, x0, horizon):
    """eq. 2(a) of one sequence, written out: mean_t (g(x~_t) - g(x_0))^2."""
    xs = torch.stack(hand_states(model, p, x0, dt=DT, horizon=horizon, integrator="rk4"))
    return ((g(xs[1:], theta) - g(x0, theta)) ** 2).mean()


def hand_polyak(model, g, theta, x0, *, lr, steps, horizon):
    """Polyak steps on one sequence with plain autograd."""
    p = {k: v.detach().clone() for k, v in model.named_parameters()}
    for _ in range(steps):
        leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        loss = seq_loss(model, leaves, g, theta, x0, horizon)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        rate = lr * loss.detach() / sum((gr**2).sum() for gr in grads)
        p = {k: p[k] - rate * gr for k, gr in zip(p, grads)}
    return p


@pytest.mark.parametrize("steps", [1, 2])
def test_trajectory_polyak_matches_hand_unrolled_on_both_paths(steps, monkeypatch):
    import meta_tailor._trajectory as tailor_mod

    model = tiny(hidden=6, seed=2)
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta = torch.tensor([1.9], **F64)
    x0 = torch.tensor(
        [[0.8, -0.3], [0.1, 0.05], [-1.2, 0.7]], **F64
    )  # losses of very different size
    lrs = torch.tensor([0.3, 0.9], **F64)
    horizon = 5
    kw = dict(
        lrs=lrs, steps=steps, dt=DT, horizon=horizon, form="a", integrator="rk4", rule="polyak"
    )
    fast = tailor_trajectories(model, params, g_pend, theta, x0, **kw)
    monkeypatch.setattr(tailor_mod, "_is_tanh_mlp", lambda m: False)
    func = tailor_trajectories(model, params, g_pend, theta, x0, **kw)
    moved = 0.0
    for li, lr in enumerate(lrs.tolist()):
        for b in range(x0.shape[0]):
            want = hand_polyak(model, g_pend, theta, x0[b], lr=lr, steps=steps, horizon=horizon)
            for k in want:
                torch.testing.assert_close(fast[k][li, b], want[k], rtol=1e-10, atol=1e-13)
                torch.testing.assert_close(func[k][li, b], want[k], rtol=1e-10, atol=1e-13)
                moved = max(moved, float((want[k] - params[k]).abs().max()))
    assert moved > 1e-3  # the step does something, so the equality is not vacuous


def test_trajectory_rollout_one_step_polyak_equals_rollout_of_tailored_weights(monkeypatch):
    """The factored one-step rollout (W h - lr (G_b h)) with Polyak rates equals the generic rollout."""
    import meta_tailor._trajectory as tailor_mod

    model = tiny(hidden=5, seed=4)
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta = torch.tensor([2.2], **F64)
    x0 = torch.tensor([[0.5, 0.4], [-0.9, -0.2]], **F64)
    t = torch.linspace(0.0, 0.7, 8, **F64)
    kw = dict(lrs=torch.tensor([0.2, 0.7], **F64), steps=1, dt=DT, integrator="rk4", rule="polyak")
    fast = trajectory_rollout(model, params, g_pend, theta, x0, t, **kw)
    monkeypatch.setattr(tailor_mod, "_is_tanh_mlp", lambda m: False)
    ref = trajectory_rollout(model, params, g_pend, theta, x0, t, **kw)
    sgd = trajectory_rollout(model, params, g_pend, theta, x0, t, **{**kw, "rule": "sgd"})
    torch.testing.assert_close(fast, ref, rtol=1e-11, atol=1e-13)
    assert (fast - sgd).abs().max() > 1e-4


def test_polyak_step_is_invariant_to_the_scale_of_g():
    """g and 7 g give the same Polyak step (L scales by 49, |grad L|^2 by 49^2); a fixed rate does not."""
    model = tiny(hidden=6, seed=2)
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta = torch.tensor([2.0], **F64)
    x0 = torch.tensor([[0.6, -0.4], [1.0, 0.3]], **F64)

    def g7(x, th):
        return 7.0 * g_pend(x, th)

    kw = dict(lrs=torch.tensor([0.5], **F64), steps=2, dt=DT, horizon=4, form="a", integrator="rk4")
    a = tailor_trajectories(model, params, g_pend, theta, x0, rule="polyak", **kw)
    b = tailor_trajectories(model, params, g7, theta, x0, rule="polyak", **kw)
    c = tailor_trajectories(model, params, g_pend, theta, x0, rule="sgd", **kw)
    d = tailor_trajectories(model, params, g7, theta, x0, rule="sgd", **kw)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-9, atol=1e-12)
    assert max(float((c[k] - d[k]).detach().abs().max()) for k in c) > 1e-3


def test_small_polyak_step_removes_that_fraction_of_the_loss():
    """To first order one step of rate eta lowers the sequence's loss from L to (1 - eta) L."""
    model = tiny(hidden=8, seed=5)
    params = {k: v.detach() for k, v in model.named_parameters()}
    theta = torch.tensor([2.4], **F64)
    x0 = torch.tensor([[0.9, 0.2], [-0.3, 0.6]], **F64)
    eta, horizon = 1e-4, 6
    p = tailor_trajectories(
        model,
        params,
        g_pend,
        theta,
        x0,
        lrs=torch.tensor([eta], **F64),
        steps=1,
        dt=DT,
        horizon=horizon,
        form="a",
        integrator="rk4",
        rule="polyak",
    )
    for b in range(x0.shape[0]):
        before = seq_loss(model, params, g_pend, theta, x0[b], horizon)
        after = seq_loss(model, {k: v[0, b] for k, v in p.items()}, g_pend, theta, x0[b], horizon)
        removed = float(((before - after) / (eta * before)).detach())
        assert removed == pytest.approx(1.0, abs=1e-2)


def hand_state_polyak(model, theta, x, lr, steps):
    """Per-state Polyak steps on (g(x + f dt) - g(x))^2, one model copy per state."""
    outs = []
    for xi in x:
        p = {k: v.detach().clone() for k, v in model.named_parameters()}
        for _ in range(steps):
            leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
            f = functional_call(model, leaves, (xi,))
            loss = (g_pend(xi + f * DT, theta) - g_pend(xi, theta)) ** 2
            grads = torch.autograd.grad(loss, list(leaves.values()))
            rate = lr * loss.detach() / sum((gr**2).sum() for gr in grads)
            p = {k: p[k] - rate * gr for k, gr in zip(p, grads)}
        outs.append(functional_call(model, p, (xi,)).detach())
    return torch.stack(outs)


@pytest.mark.parametrize("steps", [1, 2])
def test_state_mode_polyak_matches_hand_unrolled(steps):
    model = tiny(hidden=7, seed=1)
    params = dict(model.named_parameters())
    theta = torch.tensor([3.0], **F64)
    x = torch.tensor([[0.3, 0.8], [-1.0, 0.1], [2.0, -0.5], [0.05, 0.02]], **F64)
    lr = 0.8
    want = hand_state_polyak(model, theta, x, lr, steps)
    fast = tailored_predict(params, g_pend, theta, x, lr=lr, steps=steps, dt=DT, rule="polyak")
    func = tailored_predict_func(
        model,
        params,
        g_pend,
        theta,
        x,
        lrs=torch.tensor([lr], **F64),
        steps=steps,
        dt=DT,
        rule="polyak",
    )[0]
    with torch.no_grad():
        assert (want - model(x)).abs().max() > 1e-4
    torch.testing.assert_close(fast, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(func, want, rtol=1e-10, atol=1e-12)


def test_polyak_meta_gradient_gradcheck():
    """Meta-gradients through a Polyak step (its rate depends on the weights and on c) are exact."""
    model = tiny(hidden=3, seed=0)
    names = [k for k, _ in model.named_parameters()]
    x0 = torch.tensor([[0.7, -0.2], [0.2, 0.5]], **F64)
    t = torch.linspace(0, 0.3, 4, **F64)

    def fn(theta, *ws):
        params = dict(zip(names, ws))
        return trajectory_rollout(
            model,
            params,
            g_pend,
            theta,
            x0,
            t,
            lrs=torch.tensor([0.6], **F64),
            steps=2,
            dt=DT,
            integrator="rk4",
            rule="polyak",
        )

    inputs = (
        torch.tensor([2.1], **F64, requires_grad=True),
        *[v.detach().clone().requires_grad_(True) for v in model.parameters()],
    )
    assert torch.autograd.gradcheck(fn, inputs)


def test_zero_loss_takes_no_step():
    """A formula every model conserves (identically 0) has L = 0 and grad 0: no NaN, no step."""
    model = tiny(hidden=6, seed=2)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def g_const(x, th):
        return 0.0 * x[..., 0]

    p = tailor_trajectories(
        model,
        params,
        g_const,
        torch.zeros(0, **F64),
        torch.tensor([[0.3, 0.2]], **F64),
        lrs=torch.tensor([1.0], **F64),
        steps=2,
        dt=DT,
        horizon=3,
        rule="polyak",
    )
    for k, v in p.items():
        torch.testing.assert_close(v[0, 0], params[k], rtol=0, atol=0)
    out = tailored_predict(
        params,
        g_const,
        torch.zeros(0, **F64),
        torch.tensor([[0.3, 0.2]], **F64),
        lr=1.0,
        steps=1,
        dt=DT,
        rule="polyak",
    )
    torch.testing.assert_close(out, model(torch.tensor([[0.3, 0.2]], **F64)).detach())


def test_rule_configuration():
    assert RankConfig().inner_lrs == default_inner_lrs("sgd")
    assert len(RankConfig().inner_lrs) == 9
    polyak = RankConfig(tailor=TailorConfig(inner_rule="polyak"))
    assert polyak.inner_lrs == default_inner_lrs("polyak")
    assert max(polyak.inner_lrs) == pytest.approx(1.0) and min(polyak.inner_lrs) == pytest.approx(
        0.1
    )
    from formula_search.data import load_dataset

    protocol = load_dataset("real_pendulum").protocol  # the card's [protocol] (appendix C)
    _, real = paper_configs(protocol, inner_rule="polyak")
    assert real.inner_steps == (1, 2, 3) and real.inner_lrs == default_inner_lrs("polyak")
    assert real.tailor.inner_rule == "polyak"
    _, real_sgd = paper_configs(protocol)
    assert real_sgd.inner_lrs == (1e-3, 1e-2, 1e-1, 1.0)
    # the command line's configurations warm the outer rates up over 10 steps; the Python API's do not
    for p in ({}, protocol):
        for rule in ("sgd", "polyak"):
            assert paper_configs(p, inner_rule=rule)[1].tailor.outer_warmup == 10
    assert TailorConfig().outer_warmup == 0 and TailorConfig().outer_decay == "none"
    with pytest.raises(ValueError, match="inner_rule"):
        TailorConfig(inner_rule="adam")
    with pytest.raises(ValueError, match="rule"):
        tailor_trajectories(
            tiny(hidden=6, seed=2),
            {k: v.detach() for k, v in tiny(hidden=6, seed=2).named_parameters()},
            g_pend,
            torch.tensor([1.0], **F64),
            torch.zeros(1, 2, **F64),
            lrs=torch.ones(1, **F64),
            steps=1,
            dt=DT,
            horizon=2,
            rule="newton",
        )
