"""Models and Algorithm 1: shapes, the inner step against a hand-unrolled step, and that learning works."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from formula_search.errors import InputError
from meta_tailor.video import (
    FrameEmbedding,
    LatentEmbedding,
    ModelConfig,
    NoetherConfig,
    SVGPredictor,
    VideoConfig,
    conservation_loss,
    frame_metrics,
    predict_sequence,
    task_loss,
)
from meta_tailor.video._train import build_models

TINY = ModelConfig(
    channels=3,
    size=16,
    nf=4,
    g_dim=6,
    rnn_size=8,
    rnn_layers=2,
    action_dim=1,
    emb_hidden=16,
    emb_out=5,
)
TINY_CN = dataclasses.replace(TINY, norm="layer", cn=True, action_dim=0, emb_conv_out=4)


def _batch(b=3, t=7, action_dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, t, 3, 16, 16, generator=g)
    actions = torch.randn(b, t, action_dim, generator=g)
    return frames, actions


def test_shapes_of_every_network():
    torch.manual_seed(0)
    for cfg in (TINY, dataclasses.replace(TINY, size=64, nf=2), TINY_CN):
        model = SVGPredictor(
            cfg
        ).eval()  # batch norm uses running statistics, the same for any batching
        frames, actions = _batch(action_dim=cfg.action_dim)
        if cfg.size != 16:
            frames = torch.rand(3, 7, 3, 64, 64)
        cn = model.identity_cn(3) if cfg.cn else None
        with torch.no_grad():
            r = model.rollout(frames, actions, n_past=3, n_future=4, cn=cn)
        assert r.outputs.shape == (3, 6, cfg.g_dim)
        assert r.preds.shape == (3, 4, 3, cfg.size, cfg.size)
        assert float(r.preds.min()) >= 0 and float(r.preds.max()) <= 1
        # decoding the prediction outputs again gives the same frames
        with torch.no_grad():
            torch.testing.assert_close(model.decode(r.outputs[:, 2:], r.skips, cn), r.preds)
    assert LatentEmbedding(TINY)(torch.randn(2, 4, 2 * 6 + 1)).shape == (2, 4, 5)
    assert FrameEmbedding(TINY_CN)(torch.randn(5, 6, 16, 16)).shape == (5, 4)


def test_identity_cn_changes_nothing():
    torch.manual_seed(1)
    model = SVGPredictor(TINY_CN).eval()
    frames, actions = _batch(action_dim=0)
    a = model.rollout(frames, actions, n_past=2, n_future=3).preds
    b = model.rollout(frames, actions, n_past=2, n_future=3, cn=model.identity_cn(3)).preds
    torch.testing.assert_close(a, b)


def test_conservation_loss_forms_by_hand():
    ref = torch.tensor([[0.0, 1.0]])
    emb = torch.tensor([[[1.0, 1.0], [1.0, 3.0]]])
    # (a): |(1,0)|^2 + |(1,2)|^2 = 1 + 5;  (b): |(1,0)|^2 + |(0,2)|^2 = 1 + 4
    assert conservation_loss(ref, emb, "a").item() == pytest.approx(6.0)
    assert conservation_loss(ref, emb, "b").item() == pytest.approx(5.0)
    # mean over the k = 2 embedding dimensions: the same distances halved
    assert conservation_loss(ref, emb, "a", "mean").item() == pytest.approx(3.0)
    assert conservation_loss(ref, emb, "b", "mean").item() == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("form", "reduction", "optimizer"),
    [("a", "sum", "sgd"), ("b", "sum", "sgd"), ("a", "mean", "sgd"), ("a", "sum", "polyak"),
     ("b", "mean", "polyak")],
)  # fmt: skip
def test_latent_inner_step_equals_hand_unrolled_step(form, reduction, optimizer):
    # With a linear embedding e = W z, z_k = [o_{k-1}, o_k, a_k], the gradient of the loss with respect to the
    # predicted outputs is written out by hand in numpy and compared with one inner step of predict_sequence.
    # The Polyak step's rate per example is lr * L / |grad L|^2, with L and the gradient also by hand.
    torch.manual_seed(2)
    model = SVGPredictor(TINY).double().eval()
    emb = nn.Linear(2 * 6 + 1, 4, bias=False).double()
    frames, actions = (t.double() for t in _batch())
    n_past, n_future, lr = 4, 3, 0.3
    cfg = NoetherConfig(
        tailor="latent",
        loss_form=form,
        inner_lr=lr,
        inner_steps=1,
        reduction=reduction,
        inner_optimizer=optimizer,
    )
    out = predict_sequence(
        model,
        emb,
        frames,
        actions,
        config=cfg,
        n_past=n_past,
        n_future=n_future,
        create_graph=False,
    )
    r = model.rollout(frames, actions, n_past=n_past, n_future=n_future)
    o = r.outputs.detach().numpy()
    a = actions.numpy()
    w = emb.weight.detach().numpy()
    g = o.shape[2]
    grad = np.zeros_like(o)
    loss = np.zeros(o.shape[0])
    for b in range(o.shape[0]):
        # embeddings for output indices k = n_past-2 (reference) .. n_past+n_future-2
        ks = list(range(n_past - 2, n_past + n_future - 1))
        e = {k: w @ np.concatenate([o[b, k - 1], o[b, k], a[b, k]]) for k in ks}
        for i, k in enumerate(ks[1:]):
            other = ks[0] if form == "a" else ks[i]
            d = 2 * (e[k] - e[other])  # d loss / d e_k, and minus it for e_other
            sq = np.sum((e[k] - e[other]) ** 2)
            if reduction == "mean":  # mean over the embedding dimensions
                d, sq = d / len(d), sq / len(d)
            loss[b] += sq
            for kk, sign in ((k, 1.0), (other, -1.0)):
                dz = sign * (w.T @ d)
                grad[b, kk - 1] += dz[:g]
                grad[b, kk] += dz[g : 2 * g]
    grad[:, : n_past - 1] = 0  # only the predicted outputs are adapted
    rate = np.full(o.shape[0], lr)
    if optimizer == "polyak":
        rate = lr * loss / (grad**2).sum(axis=(1, 2))
    adapted = o - rate[:, None, None] * grad
    # only the predicted outputs are adapted
    expect = model.decode(torch.from_numpy(adapted[:, n_past - 1 :]), r.skips)
    torch.testing.assert_close(out.preds, expect)
    np.testing.assert_allclose(out.inner_losses[0].numpy(), loss)
    assert not np.allclose(adapted[:, n_past - 1 :], o[:, n_past - 1 :])


def _tailored(emb, optimizer, lr, mcfg=TINY, steps=1):
    torch.manual_seed(6)
    model = SVGPredictor(mcfg).double().eval()
    frames, actions = (t.double() for t in _batch(action_dim=mcfg.action_dim))
    cfg = NoetherConfig(inner_lr=lr, inner_steps=steps, inner_optimizer=optimizer)
    return predict_sequence(
        model, emb, frames, actions, config=cfg, n_past=4, n_future=3, create_graph=False
    )


def test_polyak_step_ignores_the_embeddings_scale_and_removes_its_share_of_the_loss():
    # Scaling g_phi by c scales L by c^2 and its gradient by c^2, so L / |grad L|^2 scales by 1 / c^2 and
    # the Polyak step is unchanged; the SGD step grows c^2-fold. To first order a step of fraction lr
    # removes lr * L of each example's loss.
    torch.manual_seed(7)
    emb = LatentEmbedding(TINY).double()

    class Scaled(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c

        def forward(self, z):
            return self.c * emb(z)

    torch.testing.assert_close(
        _tailored(Scaled(30.0), "polyak", 0.4).preds,
        _tailored(Scaled(1.0), "polyak", 0.4).preds,
        rtol=1e-9,
        atol=1e-12,
    )
    assert not torch.allclose(
        _tailored(Scaled(30.0), "sgd", 0.4).preds,
        _tailored(Scaled(1.0), "sgd", 0.4).preds,
        atol=1e-6,
    )
    small = _tailored(emb, "polyak", 1e-4).inner_losses
    removed = (small[0] - small[1]) / small[0]
    np.testing.assert_allclose(removed.numpy(), 1e-4, rtol=1e-3)
    # and a larger share, 0.5, lowers every example's loss (the embedding is smooth)
    half = _tailored(emb, "polyak", 0.5).inner_losses
    assert torch.all(half[1] < half[0])


@pytest.mark.slow
def test_cn_inner_step_matches_finite_differences():
    torch.manual_seed(3)
    small = dataclasses.replace(TINY_CN, nf=2, g_dim=3, rnn_size=4, rnn_layers=1)
    model = SVGPredictor(small).double().eval()
    emb = FrameEmbedding(small).double()
    frames, actions = (t.double() for t in _batch(b=2, action_dim=0))
    cfg = NoetherConfig(tailor="cn", loss_form="b", inner_lr=0.05, inner_steps=1)
    out = predict_sequence(
        model, emb, frames, actions, config=cfg, n_past=2, n_future=3, create_graph=False
    )

    def noether(cn):
        from meta_tailor.video import frame_noether_loss

        p = model.rollout(frames, actions, n_past=2, n_future=3, cn=cn).preds
        return frame_noether_loss(emb, frames[:, :2], p, form="b").sum()

    # central finite differences for the gradient of every CN parameter
    base = model.identity_cn(2)
    base = [(g.double(), b.double()) for g, b in base]
    adapted = []
    eps = 1e-6
    with torch.no_grad():
        for li, (gam, bet) in enumerate(base):
            new_pair = []
            for which, t in enumerate((gam, bet)):
                grad = torch.zeros_like(t)
                for idx in np.ndindex(*t.shape):
                    for sgn in (1, -1):
                        pert = [(x.clone(), y.clone()) for x, y in base]
                        pert[li][which][idx] += sgn * eps
                        grad[idx] += sgn * noether(pert) / (2 * eps)
                new_pair.append(t - 0.05 * grad)
            adapted.append(tuple(new_pair))
        expect = model.rollout(frames, actions, n_past=2, n_future=3, cn=adapted).preds
    torch.testing.assert_close(out.preds, expect, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("tailor", ["latent", "cn"])
def test_inner_step_lowers_the_noether_loss(tailor):
    torch.manual_seed(4)
    mcfg = TINY if tailor == "latent" else TINY_CN
    model = SVGPredictor(mcfg).eval()
    emb = LatentEmbedding(mcfg) if tailor == "latent" else FrameEmbedding(mcfg)
    frames, actions = _batch(action_dim=mcfg.action_dim)
    cfg = NoetherConfig(tailor=tailor, loss_form="a", inner_lr=1e-2, inner_steps=3)
    out = predict_sequence(
        model, emb, frames, actions, config=cfg, n_past=4, n_future=3, create_graph=False
    )
    losses = out.inner_losses.numpy()
    assert losses.shape == (4, 3)
    assert np.all(np.diff(losses, axis=0) < 0), (
        f"Noether loss did not decrease along the inner steps: {losses}"
    )


@pytest.mark.parametrize(
    ("tailor", "optimizer", "lr"),
    [("latent", "sgd", 0.1), ("cn", "sgd", 1e-2), ("latent", "polyak", 0.5)],
)
def test_meta_training_lowers_the_task_loss_on_a_fixed_batch(tailor, optimizer, lr):
    base = TINY if tailor == "latent" else TINY_CN
    cfg = VideoConfig(
        model=base,
        noether=NoetherConfig(tailor=tailor, inner_lr=lr, inner_optimizer=optimizer),
        seed=5,
    )
    model, emb = build_models(cfg)
    # a learnable target: a moving stripe pattern, frames (4, 7, 3, 16, 16)
    x = torch.linspace(0, 6.28, 16)
    phase = (
        torch.arange(4.0)[:, None, None, None, None]
        + 0.5 * torch.arange(7.0)[None, :, None, None, None]
    )
    frames = (
        (0.5 + 0.4 * torch.sin(x[None, None, None, None, :] + phase))
        .expand(4, 7, 3, 16, 16)
        .contiguous()
    )
    actions = torch.ones(4, 7, base.action_dim)
    opt = torch.optim.Adam([*model.parameters(), *emb.parameters()], lr=1e-2)
    losses = []
    for _ in range(15):
        out = predict_sequence(
            model, emb, frames, actions, config=cfg.noether, n_past=4, n_future=3, create_graph=True
        )
        loss = task_loss(out.preds, frames[:, 4:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (
        f"task loss did not fall: {losses[0]:.4f} -> {losses[-1]:.4f}"
    )
    # and the embedding receives a gradient through the inner step (second order)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in emb.parameters())


def test_metrics_against_definitions():
    t = torch.rand(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    p = (t + 0.1).clamp(0, 1)
    m = frame_metrics(p, t)
    mse = ((p - t) ** 2).mean(dim=(2, 3, 4)).numpy()
    np.testing.assert_allclose(m["mse"], mse, rtol=1e-6)
    np.testing.assert_allclose(m["psnr"], -10 * np.log10(mse), rtol=1e-6)
    same = frame_metrics(t, t)
    np.testing.assert_allclose(same["ssim"], 1.0)
    assert np.all(m["ssim"] < 1.0)


def test_bad_configs_are_input_errors():
    with pytest.raises(InputError):
        ModelConfig(size=48)
    with pytest.raises(InputError):
        NoetherConfig(loss_form="c")
    with pytest.raises(InputError):
        NoetherConfig(reduction="max")
    with pytest.raises(InputError, match="polyak"):
        NoetherConfig(inner_optimizer="lbfgs")
    model = SVGPredictor(TINY)
    frames, actions = _batch()
    with pytest.raises(InputError):  # latent tailoring needs 3 history frames
        predict_sequence(
            model,
            LatentEmbedding(TINY),
            frames,
            actions,
            config=NoetherConfig(),
            n_past=2,
            n_future=2,
            create_graph=False,
        )


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    from meta_tailor.video import VideoData, train_stage

    rng = np.random.default_rng(0)
    data = VideoData(
        rng.integers(0, 256, (2, 9, 3, 16, 16), dtype=np.uint8),
        rng.normal(size=(2, 9, 1)).astype(np.float32),
        2,
    )
    cfg = VideoConfig(
        model=TINY,
        n_past=4,
        train_future=3,
        batch_size=2,
        steps_per_epoch=2,
        svg_epochs=2,
        device="cpu",
    )
    straight = train_stage(data, config=cfg, stage="svg", path=tmp_path / "a.pt")
    # "interrupt" after one epoch, then run the full length on the same checkpoint
    train_stage(
        data, config=dataclasses.replace(cfg, svg_epochs=1), stage="svg", path=tmp_path / "b.pt"
    )
    resumed = train_stage(data, config=cfg, stage="svg", path=tmp_path / "b.pt")
    assert resumed["epoch"] == 2 and len(resumed["losses"]) == 2
    torch.testing.assert_close(resumed["model"], straight["model"])


def test_inner_adam_matches_torch_adam():
    """The written-out Adam of the figure-6 study takes torch.optim.Adam's steps on the same loss."""
    from meta_tailor.video._noether import _InnerOpt

    target = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(3, 4)

    def loss_fn(x):
        return ((x - target) ** 2 * torch.arange(1, 13, dtype=torch.float64).reshape(3, 4)).sum()

    x0 = torch.zeros(3, 4, dtype=torch.float64)
    ref = x0.clone().requires_grad_(True)
    torch_opt = torch.optim.Adam([ref], lr=0.05)
    ours, inner = x0.clone().requires_grad_(True), _InnerOpt("adam", 0.05)
    for _ in range(25):
        torch_opt.zero_grad()
        loss_fn(ref).backward()
        torch_opt.step()
        (g,) = torch.autograd.grad(loss_fn(ours), ours)
        (ours,) = inner.step([ours], (g,))
        ours = ours.detach().requires_grad_(True)
        torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-10, atol=1e-12)
    assert loss_fn(ours) < 0.5 * loss_fn(x0)


def test_inner_steps_summary_pairs_each_seed_with_its_own_zero_steps(tmp_path):
    from meta_tailor.video._plots import inner_steps_summary, plot_inner_steps

    ks = (0, 1, 10, 100, 500)
    rows = []
    for m, scale in (("b", 2000.0), ("a", 0.06)):
        for s, base in zip((0, 1, 2), (3.0e-3, 3.2e-3, 2.9e-3), strict=True):
            for k in ks:
                # every seed loses k/100 percent of its own MSE; the seeds' levels differ by far more
                rows.append({"method": m, "seed": s, "inner_steps": k,
                             "mse": base * (1 - k / 1e4), "noether_loss": scale * (1 - k / 1e3) + s})  # fmt: skip
    summ = inner_steps_summary(pd.DataFrame(rows))
    assert list(pd.unique(summ["method"])) == ["b", "a"]  # first-seen order, steps ascending
    assert summ.groupby("method")["inner_steps"].apply(list).to_dict() == {"a": [*ks], "b": [*ks]}
    a = summ[summ.method == "a"].set_index("inner_steps")
    np.testing.assert_allclose(a["mse_change"], [-k / 100 for k in ks], atol=1e-9)
    np.testing.assert_allclose(a["mse_change_se"], 0.0, atol=1e-9)  # paired: no seed spread left
    np.testing.assert_allclose(a["mse"], [3.0333333e-3 * (1 - k / 1e4) for k in ks], rtol=1e-6)
    assert (a["mse_se"] > 5e-5).all()  # unpaired, the seeds' levels dominate
    np.testing.assert_allclose(a["noether_loss"], [0.06 * (1 - k / 1e3) + 1 for k in ks])
    np.testing.assert_allclose(a["noether_loss_se"], 1 / np.sqrt(3))
    path = plot_inner_steps(pd.DataFrame(rows), tmp_path / "f6.png", labels={"a": "variant a"})
    assert path.read_bytes()[:4] == b"\x89PNG"
    # the `fsearch video evaluate --study` table: no method, no seed, no 0 steps
    one = pd.DataFrame(rows[1:5]).drop(columns=["method", "seed"])
    only = inner_steps_summary(one)
    assert "mse_change" not in only.columns and (only["mse_se"] == 0).all()
    assert plot_inner_steps(one, tmp_path / "one.png").is_file()
