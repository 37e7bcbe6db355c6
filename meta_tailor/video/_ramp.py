"""Ramp videos: a built-in synthetic ramp (objects sliding down a 20 degree incline into a second object) and a
loader for the Physics 101 ramp scenario in its published layout.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from formula_search.errors import InputError
from meta_tailor.video._data import VideoData, resize_frames

G = 9.81  # m / s^2


@dataclass(frozen=True, slots=True)
class RampConfig:
    """Synthetic ramp videos.

    Attributes:
        sequences: number of videos; the first ``n_train`` are the training split (paper: 311 / 78).
        n_train: training videos.
        size: frame side in pixels (paper: 128).
        frames: frames per video (paper: 2 history + 20 predicted).
        fps: frame rate (paper: 15).
        angle_deg: incline angle (paper: 20).
        seed: seeds every random choice.
    """

    sequences: int = 389
    n_train: int = 311
    size: int = 128
    frames: int = 22
    fps: float = 15.0
    angle_deg: float = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.n_train < self.sequences:
            raise InputError(f"ramp: n_train must be in 1..{self.sequences - 1}")
        if self.size < 16 or self.frames < 3 or not 0 < self.angle_deg < 60:
            raise InputError("ramp: need size >= 16, frames >= 3 and an angle in (0, 60) degrees")


def _simulate(
    rng: np.random.Generator, cfg: RampConfig, ramp_len: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Arc-length positions (m) of the sliding object A and the resting object B at each frame.

    A starts at rest at the top of the ramp, slides with Coulomb friction, continues on the floor and hits B
    (a 1-D collision with restitution); both then slow down by friction.
    """
    th = math.radians(cfg.angle_deg)
    mu_a = rng.uniform(0.05, 0.25)  # below tan(20 deg) = 0.36 so that A slides
    mu_b = rng.uniform(0.2, 0.5)
    m_a, m_b = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0)
    e = rng.uniform(0.1, 0.6)
    gap = rng.uniform(0.25, 0.4)  # floor distance from the foot of the ramp to B
    dt_sim = 1e-3
    n_sim = int(4.0 / dt_sim)
    sa, va, sb, vb = 0.0, 0.0, ramp_len + gap, 0.0
    pa, pb = np.empty(n_sim), np.empty(n_sim)
    hit = False
    for i in range(n_sim):
        pa[i], pb[i] = sa, sb
        acc_a = (
            G * (math.sin(th) - mu_a * math.cos(th))
            if sa < ramp_len
            else -math.copysign(mu_a * G, va) * (va != 0)
        )
        va_new = va + acc_a * dt_sim
        if sa >= ramp_len and va * va_new <= 0:
            va_new = 0.0
        va = va_new
        if vb != 0:
            vb_new = vb - math.copysign(mu_b * G, vb) * dt_sim
            vb = 0.0 if vb * vb_new <= 0 else vb_new
        sa += va * dt_sim
        sb += vb * dt_sim
        if not hit and sa >= sb - 0.2:  # A's front reaches B (about the summed half-widths)
            hit = True
            va, vb = (
                (m_a * va + m_b * vb - m_b * e * (va - vb)) / (m_a + m_b),
                (m_a * va + m_b * vb + m_a * e * (va - vb)) / (m_a + m_b),
            )
    # show the interesting part: a window of frames that ends well after the collision
    step = int(round(1.0 / (cfg.fps * dt_sim)))
    idx = np.arange(0, n_sim, step)
    n_avail = len(idx) - cfg.frames
    start = int(rng.integers(0, max(1, min(n_avail, int(0.6 * cfg.fps)))))
    sel = idx[start : start + cfg.frames]
    return pa[sel], pb[sel], th


def _render(
    cfg: RampConfig,
    rng: np.random.Generator,
    sa: np.ndarray,
    sb: np.ndarray,
    th: float,
    ramp_len: float,
) -> np.ndarray:
    """Frames (T, 3, size, size) uint8, drawn at twice the size and downsampled."""
    s = 2 * cfg.size
    scale = s / 1.6  # pixels per metre: the scene is 1.6 m wide
    x0, y0 = 0.02 * s, 0.3 * s  # top of the ramp (pixels, y down)
    foot = np.array([x0 + ramp_len * math.cos(th) * scale, y0 + ramp_len * math.sin(th) * scale])
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    bg = rng.uniform(0.55, 0.85, 3)
    shade = 1.0 - 0.15 * (yy / s)  # soft lighting gradient
    base = bg[:, None, None] * shade[None]
    # ramp and floor: below the surface line is the (darker) wooden ramp / table
    surf_y = np.where(xx < foot[0], y0 + (xx - x0) * math.tan(th), foot[1])
    solid = (yy > surf_y) & (xx >= x0)
    wood = rng.uniform(0.25, 0.45, 3)
    base = np.where(solid[None], wood[:, None, None] * (0.9 + 0.1 * shade[None]), base)
    col_a, col_b = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
    wa, ha = rng.uniform(0.14, 0.24) * scale, rng.uniform(0.08, 0.16) * scale
    wb, hb = rng.uniform(0.1, 0.2) * scale, rng.uniform(0.12, 0.24) * scale
    round_a = rng.random() < 0.5  # a cylinder seen from the side rolls as a disc-like ellipse

    def place(arc: float, h: float) -> tuple[np.ndarray, float]:
        if arc < ramp_len:
            p = np.array([x0 + arc * math.cos(th) * scale, y0 + arc * math.sin(th) * scale])
            ang = th
        else:
            p = foot + np.array([(arc - ramp_len) * scale, 0.0])
            ang = 0.0
        normal = np.array([math.sin(ang), -math.cos(ang)])
        return p + normal * h / 2, ang

    def mask(center: np.ndarray, ang: float, w: float, h: float, ellipse: bool) -> np.ndarray:
        dx, dy = xx - center[0], yy - center[1]
        u = dx * math.cos(ang) + dy * math.sin(ang)
        v = -dx * math.sin(ang) + dy * math.cos(ang)
        if ellipse:
            return (u / (w / 2)) ** 2 + (v / (h / 2)) ** 2 <= 1
        return (np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)

    out = np.empty((len(sa), s, s, 3), np.uint8)
    for t in range(len(sa)):
        img = base.copy()
        cb, angb = place(sb[t], hb)
        img = np.where(mask(cb, angb, wb, hb, False)[None], col_b[:, None, None], img)
        ca, anga = place(sa[t], ha)
        img = np.where(mask(ca, anga, wa, ha, round_a)[None], col_a[:, None, None], img)
        img = img + rng.normal(0.0, 0.01, img.shape)  # sensor noise
        out[t] = (np.clip(img, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    return resize_frames(out, cfg.size)


def generate_ramp_video(
    config: RampConfig, *, progress: Callable[[int], None] | None = None
) -> VideoData:
    """Render the synthetic ramp data set: frames (sequences, frames, 3, size, size), no actions.

    States hold the arc-length positions (m) of the sliding and the struck object at each frame.
    """
    rng = np.random.default_rng(config.seed)
    frames = np.empty((config.sequences, config.frames, 3, config.size, config.size), np.uint8)
    states = np.empty((config.sequences, config.frames, 2), np.float32)
    for i in range(config.sequences):
        ramp_len = rng.uniform(0.8, 1.0)
        sa, sb, th = _simulate(rng, config, ramp_len)
        frames[i] = _render(config, rng, sa, sb, th, ramp_len)
        states[i, :, 0], states[i, :, 1] = sa, sb
        if progress is not None:
            progress(1)
    actions = np.zeros((config.sequences, config.frames, 0), np.float32)
    return VideoData(frames, actions, config.n_train, states, name="synthetic ramp")


# --------------------------------------------------------------------------------------------- Physics 101

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def find_physics101_clips(
    root: str | os.PathLike[str], *, angle: int = 20, camera: str = "Kinect_RGB_1"
) -> list[Path]:
    """Clips of the ramp scenario at ``angle`` degrees in the published Physics 101 layout.

    The layout is ``phys101/scenarios/ramp/<material>/<object>/<angle>_<trial>/<camera>.mp4``; ``root`` may be
    any folder above the clips. A clip may also be a folder ``<camera>/`` of extracted frames (PNG or JPEG,
    sorted by name), which is read without a video decoder.

    Returns:
        Sorted paths of the ``.mp4`` files or frame folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    clips = []
    for p in sorted(root.rglob(f"{camera}*")):
        trial = p.parent.name
        if "ramp" not in p.parts or not trial.startswith(f"{angle}_"):
            continue
        if (p.is_file() and p.name == f"{camera}.mp4") or (p.is_dir() and p.name == camera):
            clips.append(p)
    return clips


def _read_clip(path: Path) -> np.ndarray:
    """All frames of a clip as uint8 (T, H, W, 3)."""
    if path.is_dir():
        from PIL import Image

        files = sorted(f for f in path.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path}: no PNG or JPEG frames")
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    try:
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001 - missing decoder plugins raise many different errors
        raise InputError(
            f"{path}: cannot decode the video ({type(exc).__name__}); install a decoder "
            f"(pip install imageio[ffmpeg] or av) or extract its frames to a folder "
            f"'{path.with_suffix('')}/' (e.g. ffmpeg -i {path.name} {path.stem}/%04d.png)"
        ) from None


def load_physics101_ramp(
    root: str | os.PathLike[str],
    *,
    size: int = 128,
    frames: int = 22,
    angle: int = 20,
    camera: str = "Kinect_RGB_1",
    source_fps: float = 30.0,
    fps: float = 15.0,
    min_seconds: float = 2.0,
    train_fraction: float = 0.8,
    seed: int = 1612,
    progress: Callable[[int], None] | None = None,
) -> VideoData:
    """Physics 101 ramp videos prepared as in the paper's appendix.

    Clips at ``angle`` degrees recorded by ``camera``, resampled from ``source_fps`` to ``fps``, kept if at
    least ``min_seconds`` long; the middle ``frames`` frames, centre-cropped at full height and resized to
    ``size``; shuffled with ``seed`` and split ``train_fraction`` / rest.

    Returns:
        Frames (clips, frames, 3, size, size), no actions; the first ``n_train`` clips are the training split.
    """
    clips = find_physics101_clips(root, angle=angle, camera=camera)
    if not clips:
        raise InputError(f"{root}: no Physics 101 ramp clips at {angle} degrees from {camera}")
    stride = max(1, int(round(source_fps / fps)))
    videos = []
    for clip in clips:
        raw = _read_clip(clip)[::stride]
        if progress is not None:
            progress(1)
        if len(raw) < max(frames, math.ceil(min_seconds * fps)):
            continue
        off = (len(raw) - frames) // 2
        raw = raw[off : off + frames]
        h, w = raw.shape[1:3]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        videos.append(resize_frames(raw[:, top : top + side, left : left + side], size))
    if len(videos) < 2:
        raise InputError(f"{root}: fewer than two ramp clips are long enough ({min_seconds} s)")
    order = list(range(len(videos)))
    random.Random(seed).shuffle(order)
    n_train = min(max(1, int(len(videos) * train_fraction)), len(videos) - 1)
    stacked = np.stack([videos[i] for i in order])
    actions = np.zeros((len(videos), frames, 0), np.float32)
    return VideoData(stacked, actions, n_train, name="Physics 101 ramp")
