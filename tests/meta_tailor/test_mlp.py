"""Training of the vanilla MLP: which weights ``train_mlp`` returns (``MLPConfig.keep``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from meta_tailor._config import MLPConfig
from meta_tailor._mlp import load_mlp, make_mlp, save_mlp, train_mlp


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    return x, torch.stack([x[:, 1], -torch.sin(x[:, 0])], -1)


def _loss(model, x, y) -> float:
    with torch.no_grad():
        return float(torch.mean((model(x) - y) ** 2))


def test_keep_best_returns_the_lowest_loss_weights_of_the_same_run():
    # A large Adam rate makes the full-batch loss spike, so the last step is not the best one.
    x, y = _data()
    config = MLPConfig(hidden=16, steps=40, lr=0.05)
    last = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    best = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    losses_last = train_mlp(last, x, y, config=config)
    losses_best = train_mlp(best, x, y, config=replace(config, keep="best"))

    # The same optimisation path: "best" only chooses which weights to return.
    assert losses_best == losses_last and len(losses_last) == 41
    final = _loss(last, x, y)
    assert losses_last[40] == pytest.approx(final, rel=1e-12)  # the loss after the last step
    assert min(losses_last) < final, "the set-up must end above its best step for this test to bite"
    # The returned weights have the lowest loss of the run, checked by evaluating them again.
    assert _loss(best, x, y) == pytest.approx(min(losses_last), rel=1e-12)
    assert _loss(best, x, y) < _loss(last, x, y)


def test_keep_best_keeps_the_last_weights_when_they_are_best():
    x, y = _data()
    config = MLPConfig(hidden=16, steps=30, lr=1e-3, keep="best")
    model = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    losses = train_mlp(model, x, y, config=config)
    assert all(b < a for a, b in zip(losses, losses[1:])), (
        "a small rate descends monotonically here"
    )
    reference = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    train_mlp(reference, x, y, config=MLPConfig(hidden=16, steps=30, lr=1e-3))
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_keep_is_validated_and_saved(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        MLPConfig(keep="first")
    config = MLPConfig(hidden=4, keep="best")
    save_mlp(make_mlp(2, hidden=4), tmp_path / "m.pt", config=config, n_vars=2)
    assert load_mlp(tmp_path / "m.pt")[1] == config


def test_adam_state_of_the_best_step_continues_the_same_run():
    """The Adam state returned with the lowest-loss weights belongs to them: resuming training from those
    weights and that state retraces the original run's losses from that step on, step for step."""
    x, y = _data()
    config = MLPConfig(hidden=16, steps=40, lr=0.05, keep="best")
    model = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    state: dict = {}
    losses = train_mlp(model, x, y, config=config, adam_state=state)
    k = min(range(len(losses)), key=losses.__getitem__)
    assert 0 < k < 40, "the best step must lie inside the run for this test to bite"
    assert state["step"] == k  # the weights before step k have taken k Adam steps
    assert set(state["moments"]) == {n for n, _ in model.named_parameters()}
    resumed = train_mlp(
        model, x, y, config=replace(config, keep="last"), steps=40 - k, resume=state
    )
    assert resumed == pytest.approx(losses[k:], rel=1e-10)
    # a fresh Adam from the same weights takes another path
    fresh = make_mlp(2, hidden=16, seed=0, dtype=torch.float64)
    train_mlp(fresh, x, y, config=config)
    other = train_mlp(fresh, x, y, config=replace(config, keep="last"), steps=40 - k)
    assert other[1] != pytest.approx(losses[k + 1], rel=1e-6)


def test_resuming_adam_equals_one_uninterrupted_run():
    """Training 12 steps, then 18 more resuming the returned Adam state, gives the weights of 30 steps of
    one optimiser (torch's Adam, uninterrupted)."""
    x, y = _data()
    config = MLPConfig(hidden=16, steps=30, lr=0.01)
    whole = make_mlp(2, hidden=16, seed=2, dtype=torch.float64)
    train_mlp(whole, x, y, config=config)
    split = make_mlp(2, hidden=16, seed=2, dtype=torch.float64)
    state: dict = {}
    train_mlp(split, x, y, config=config, steps=12, adam_state=state)
    assert state["step"] == 12
    train_mlp(split, x, y, config=config, steps=18, resume=state)
    for a, b in zip(whole.parameters(), split.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_adam_state_is_saved_with_the_model(tmp_path):
    from meta_tailor._mlp import load_adam_state

    x, y = _data()
    model = make_mlp(2, hidden=4, dtype=torch.float64)
    config = MLPConfig(hidden=4, steps=3)
    state: dict = {}
    train_mlp(model, x, y, config=config, adam_state=state)
    save_mlp(model.float(), tmp_path / "m.pt", config=config, n_vars=2, adam_state=state)
    loaded = load_adam_state(tmp_path / "m.pt")
    assert loaded["step"] == 3 and loaded["moments"].keys() == state["moments"].keys()
    for name, (m, v) in state["moments"].items():
        assert torch.equal(loaded["moments"][name][0], m) and torch.equal(
            loaded["moments"][name][1], v
        )
    save_mlp(model.float(), tmp_path / "old.pt", config=config, n_vars=2)
    assert load_adam_state(tmp_path / "old.pt") is None
