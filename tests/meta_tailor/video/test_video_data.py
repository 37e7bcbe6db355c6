"""Data: the pixel pendulum generator, cache round trip, windows, synthetic ramp and the Physics 101 loader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from formula_search.errors import InputError
from meta_tailor.video import (
    PendulumVideoConfig,
    generate_pendulum_video,
    load_or_generate_pendulum,
)
from meta_tailor.video._data import eval_windows, gather_windows
from meta_tailor.video._ramp import RampConfig, generate_ramp_video, load_physics101_ramp


@pytest.fixture(scope="module")
def pend():
    pytest.importorskip("gymnasium")
    return generate_pendulum_video(
        PendulumVideoConfig(episodes=3, steps=12, n_train=1, size=64, seed=3)
    )


def test_parallel_rendering_gives_the_same_episodes(pend):
    # each episode depends only on its own draws, so two processes give the sequential data exactly
    two = generate_pendulum_video(
        PendulumVideoConfig(episodes=3, steps=12, n_train=1, size=64, seed=3), n_jobs=2
    )
    for name in ("frames", "actions", "states"):
        np.testing.assert_array_equal(getattr(two, name), getattr(pend, name))


def test_pendulum_shapes_and_actions_follow_the_schedule(pend):
    assert pend.frames.shape == (3, 12, 3, 64, 64) and pend.frames.dtype == np.uint8
    assert pend.actions.shape == (3, 12, 1) and pend.states.shape == (3, 12, 2)
    t = np.arange(12)
    for ep in range(3):
        u = pend.actions[ep, :, 0]
        # 2 sin(w t + a) = 2 sin(a) cos(w t) + 2 cos(a) sin(w t): linear in (sin a, cos a) for each w
        fits = []
        for w in np.linspace(0.05, 0.15, 401):
            basis = np.stack([np.cos(w * t), np.sin(w * t)], 1)
            coef, *_ = np.linalg.lstsq(basis, u, rcond=None)
            fits.append((np.abs(basis @ coef - u).max(), np.hypot(*coef)))
        resid, amp = min(fits)
        assert resid < 1e-3, (
            f"episode {ep}: actions are not a sinusoid with w in [0.05, 0.15] ({resid:.4f})"
        )
        assert amp == pytest.approx(2.0, abs=1e-2), f"episode {ep}: amplitude {amp:.3f}, expected 2"
        assert np.abs(u).max() <= 2.0


def test_rod_in_the_frame_points_along_theta(pend):
    # The red rod's centroid relative to the pivot gives the angle: theta = 0 upright, image angle = -theta.
    f = pend.frames.astype(float)
    red = (f[:, :, 0] > 150) & (f[:, :, 1] < 130) & (f[:, :, 2] < 130)
    ys, xs = np.mgrid[0:64, 0:64]
    for ep, t in [(0, 0), (1, 5), (2, 11)]:
        m = red[ep, t]
        assert m.sum() > 5
        dx, dy = xs[m].mean() - 31.5, ys[m].mean() - 31.5
        ang = np.arctan2(dx, -dy)
        theta = pend.states[ep, t, 0]
        err = np.angle(np.exp(1j * (ang + theta)))
        assert abs(err) < 0.25, f"rod angle {ang:.2f} vs theta {theta:.2f}"


def test_cache_round_trip(tmp_path):
    pytest.importorskip("gymnasium")
    cfg = PendulumVideoConfig(episodes=2, steps=5, n_train=1, size=16, seed=1)
    a, path = load_or_generate_pendulum(cfg, cache_dir=tmp_path)
    b, path2 = load_or_generate_pendulum(cfg, cache_dir=tmp_path)
    assert path == path2 and path.is_file()
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert b.n_train == 1 and b.train.frames.shape[0] == 1 and b.test.frames.shape[0] == 1


def test_windows_cut_the_right_frames(pend):
    eps, starts = eval_windows(pend, 5, max_per_episode=2)
    assert list(starts) == [0, 5] * 3 and list(eps) == [0, 0, 1, 1, 2, 2]
    frames, actions = gather_windows(pend, eps, starts, 5)
    assert frames.shape == (6, 5, 3, 64, 64)
    np.testing.assert_allclose(frames[3].numpy() * 255, pend.frames[1, 5:10], atol=1e-3)
    np.testing.assert_allclose(actions[3, :, 0].numpy(), pend.actions[1, 5:10, 0])


def test_bad_pendulum_config_is_an_input_error():
    with pytest.raises(InputError):
        PendulumVideoConfig(episodes=5, n_train=5)


def test_synthetic_ramp_object_slides_down_and_pushes_the_other():
    d = generate_ramp_video(RampConfig(sequences=3, n_train=2, size=32, seed=0))
    assert d.frames.shape == (3, 22, 3, 32, 32) and d.actions.shape == (3, 22, 0)
    for i in range(3):
        sa, sb = d.states[i, :, 0], d.states[i, :, 1]
        assert sa[5] > sa[0], "the sliding object must move down the incline"
        assert sb[-1] > sb[0], "the struck object must be pushed"
        assert np.all(np.diff(sb) >= -1e-6), "the struck object only moves forward"
    # frames change where the objects move
    assert np.abs(d.frames[0, -1].astype(int) - d.frames[0, 0].astype(int)).mean() > 0.5


def _write_clip(folder, n, h, w):
    folder.mkdir(parents=True)
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :, 1] = i  # frame index in the green channel
        img[:, : (w - h) // 2, 0] = 255  # red borders, removed by the centre crop
        img[:, w - (w - h) // 2 :, 0] = 255
        Image.fromarray(img).save(folder / f"{i:04d}.png")


def test_physics101_loader_on_published_layout(tmp_path):
    root = tmp_path / "phys101" / "scenarios" / "ramp"
    for k in range(3):
        _write_clip(root / "wood" / f"wood_block_{k}" / "20_01" / "Kinect_RGB_1", 60, 24, 40)
    _write_clip(
        root / "wood" / "wood_block_0" / "10_01" / "Kinect_RGB_1", 60, 24, 40
    )  # 10 degrees: skipped
    _write_clip(
        root / "metal" / "short" / "20_02" / "Kinect_RGB_1", 20, 24, 40
    )  # 10 frames at 15 fps: skipped
    d = load_physics101_ramp(tmp_path, size=16, frames=22, train_fraction=0.67)
    assert d.frames.shape == (3, 22, 3, 16, 16)
    assert d.n_train == 2
    # 60 frames at 30 fps -> 30 at 15 fps (indices 0, 2, ..., 58); the middle 22 start at 4 -> source frame 8
    green = d.frames[0, :, 1].mean(axis=(1, 2))
    np.testing.assert_allclose(green, 8 + 2 * np.arange(22), atol=1)
    assert d.frames[:, :, 0].max() == 0, "the centre crop must remove the side borders"


def test_physics101_loader_errors(tmp_path):
    with pytest.raises(InputError):
        load_physics101_ramp(tmp_path)
    with pytest.raises(InputError):
        load_physics101_ramp(tmp_path / "missing")
