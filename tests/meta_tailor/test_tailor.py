"""Tailoring and meta-tailoring: checked against hand-unrolled steps, finite differences and a known law."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from meta_tailor._config import MLPConfig, TailorConfig
from meta_tailor._mlp import make_mlp, train_mlp
from meta_tailor._tailor import meta_tailor, noether_loss, tailored_predict, tailored_predict_func

DT = 0.1


def pendulum_g(x, theta):
    # p^2 - c cos q, with x = (q, p)
    return x[..., 1] ** 2 - theta[..., 0] * torch.cos(x[..., 0])


def oscillator_data(n_traj=8, n_t=20, seed=0):
    """H = q^2 + p^2 in closed form: q = r cos(2t + a), p = -r sin(2t + a)."""
    gen = torch.Generator().manual_seed(seed)
    r = torch.rand(n_traj, generator=gen, dtype=torch.float64) * 0.9 + 0.1
    a = torch.rand(n_traj, generator=gen, dtype=torch.float64) * 2 * math.pi
    t = torch.arange(n_t, dtype=torch.float64) * DT
    phase = 2 * t[None] + a[:, None]
    x = torch.stack([r[:, None] * torch.cos(phase), -r[:, None] * torch.sin(phase)], -1).reshape(
        -1, 2
    )
    dxdt = torch.stack([2 * x[:, 1], -2 * x[:, 0]], -1)
    return x, dxdt


def hand_unrolled(model, g, theta, x, lr, steps):
    """Tailor a separate copy of the model for every state with explicit SGD on the explicit loss."""
    outs = []
    for xi in x:
        m = copy.deepcopy(model)
        for _ in range(steps):
            f = m(xi)
            x_next = xi + f * DT
            loss = (g(x_next, theta) - g(xi, theta)) ** 2
            grads = torch.autograd.grad(loss, list(m.parameters()))
            with torch.no_grad():
                for p, gr in zip(m.parameters(), grads):
                    p -= lr * gr
        with torch.no_grad():
            outs.append(m(xi))
    return torch.stack(outs)


@pytest.mark.parametrize("steps", [1, 2])
def test_tailoring_equals_hand_unrolled_step(steps):
    torch.manual_seed(1)
    model = make_mlp(2, hidden=8, seed=3, dtype=torch.float64)
    theta = torch.tensor([3.0], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    lr = 0.7
    expected = hand_unrolled(model, pendulum_g, theta, x, lr, steps)
    params = dict(model.named_parameters())
    fast = tailored_predict(params, pendulum_g, theta, x, lr=lr, steps=steps, dt=DT)
    func = tailored_predict_func(
        model,
        params,
        pendulum_g,
        theta,
        x,
        lrs=torch.tensor([lr], dtype=torch.float64),
        steps=steps,
        dt=DT,
    )[0]
    with torch.no_grad():
        untailored = model(x)
    # the step must do something measurable, otherwise equality would be vacuous
    assert (expected - untailored).abs().max() > 1e-3
    torch.testing.assert_close(fast, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(func, expected, rtol=1e-10, atol=1e-12)


def test_batched_learning_rates_match_one_at_a_time():
    model = make_mlp(2, hidden=8, seed=0, dtype=torch.float64)
    params = dict(model.named_parameters())
    theta = torch.tensor([2.0], dtype=torch.float64)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lrs = torch.tensor([0.01, 0.3, 3.0], dtype=torch.float64)
    batched = tailored_predict(params, pendulum_g, theta, x, lr=lrs[:, None, None], steps=1, dt=DT)
    assert batched.shape == (3, 6, 2)
    for i, lr in enumerate(lrs.tolist()):
        single = tailored_predict(params, pendulum_g, theta, x, lr=lr, steps=1, dt=DT)
        torch.testing.assert_close(batched[i], single)


def test_zero_learning_rate_is_the_plain_model():
    model = make_mlp(2, hidden=8, seed=0, dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64)
    out = tailored_predict(
        dict(model.named_parameters()),
        pendulum_g,
        torch.tensor([3.0]).double(),
        x,
        lr=0.0,
        steps=2,
        dt=DT,
    )
    torch.testing.assert_close(out, model(x).detach())


def test_noether_loss_hand_worked():
    # g = q^2 + p^2, x = (1, 0), dxdt = (0, 2), dt = 0.5: x~ = (1, 1); (2 - 1)^2 = 1
    g = lambda x, th: x[..., 0] ** 2 + x[..., 1] ** 2  # noqa: E731
    loss = noether_loss(g, torch.zeros(0), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), 0.5)
    assert loss.item() == pytest.approx(1.0)


def _outer_loss_fn(model, x, dxdt, lr):
    names = [n for n, _ in model.named_parameters()]

    def fn(w_last, theta):
        params = {n: p.detach() for n, p in model.named_parameters()}
        params[names[-1]] = w_last
        pred = tailored_predict(
            params, pendulum_g, theta, x, lr=lr, steps=1, dt=DT, create_graph=True
        )
        return ((pred - dxdt) ** 2).mean()

    return fn


def test_meta_gradients_gradcheck_and_gradgradcheck():
    # The outer loss depends on theta only through the inner gradient step, so its first derivative in
    # theta is already a second-order derivative of the Noether loss; gradgradcheck checks one more order.
    model = make_mlp(2, hidden=3, seed=0, dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    dxdt = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    fn = _outer_loss_fn(model, x, dxdt, lr=0.5)
    w_last = model[4].weight.detach().clone().requires_grad_(True)
    theta = torch.tensor([2.5], dtype=torch.float64, requires_grad=True)
    grad_theta = torch.autograd.grad(fn(w_last, theta), theta)[0]
    assert grad_theta.abs().item() > 1e-6
    assert torch.autograd.gradcheck(fn, (w_last, theta))
    assert torch.autograd.gradgradcheck(fn, (w_last, theta))


def test_meta_tailoring_matches_hand_unrolled_outer_gradient():
    # gradient of the outer loss through the fast path equals the one through the torch.func path
    model = make_mlp(2, hidden=6, seed=1, dtype=torch.float64)
    x, dxdt = oscillator_data(n_traj=2, n_t=3)
    theta = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    params = dict(model.named_parameters())
    lrs = torch.tensor([0.4], dtype=torch.float64)
    fast = tailored_predict(params, pendulum_g, theta, x, lr=0.4, steps=1, dt=DT, create_graph=True)
    ref = tailored_predict_func(model, params, pendulum_g, theta, x, lrs=lrs, steps=1, dt=DT)[0]
    g_fast = torch.autograd.grad(((fast - dxdt) ** 2).mean(), [theta, *params.values()])
    g_ref = torch.autograd.grad(((ref - dxdt) ** 2).mean(), [theta, *params.values()])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("c0", [0.5, 2.0])
def test_meta_learning_moves_wrong_parameter_toward_true_value(c0):
    # Oscillator H = q^2 + p^2 conserves q^2 + c p^2 only for c = 1. Start from a wrong c, keep the
    # (deliberately under-trained) MLP fixed and meta-learn c alone.
    torch.manual_seed(0)
    x, dxdt = oscillator_data()
    model = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    train_mlp(model, x, dxdt, config=MLPConfig(hidden=16, steps=100, lr=1e-2))
    g = lambda x, th: x[..., 0] ** 2 + th[..., 0] * x[..., 1] ** 2  # noqa: E731
    config = TailorConfig(inner_lr=1.0, epochs=100, outer_lr=0.0, param_lr=0.02, weight_decay=0.0)
    res = meta_tailor(
        model, g, torch.tensor([c0], dtype=torch.float64), x, dxdt, dt=DT, config=config
    )
    c = res.theta.item()
    assert abs(c - 1.0) < 0.5 * abs(c0 - 1.0), f"c moved from {c0} to {c}, not toward 1"
    assert res.losses[-1] < res.losses[0]
