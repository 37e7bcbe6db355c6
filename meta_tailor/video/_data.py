"""Video datasets as arrays: the controlled pixel pendulum (gymnasium) and sequence windows over episodes.

A :class:`VideoData` holds whole episodes; models see fixed-length windows cut from them
(:func:`window_starts`, :func:`gather_windows`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from formula_search.errors import InputError
from formula_search.io import atomic_path

VIDEO_EXTRA_HINT = "pip install 'formula-search[video]'"


@dataclass(frozen=True, slots=True)
class PendulumVideoConfig:
    """Controlled pixel pendulum data set (paper appendix D).

    Attributes:
        episodes: number of episodes; the first ``n_train`` are for training, the rest for testing.
        steps: frames (and actions) per episode.
        n_train: training episodes (paper: 5 of 200).
        size: frame side in pixels after resizing (paper: 64).
        seed: seeds the actions and the initial states.
        omega_low, omega_high: range of w in u_t = 2 sin(w t + a), a ~ U[0, 2 pi] (radians per step).
    """

    episodes: int = 200
    steps: int = 200
    n_train: int = 5
    size: int = 64
    seed: int = 0
    omega_low: float = 0.05
    omega_high: float = 0.15

    def __post_init__(self) -> None:
        if self.episodes < 2 or self.steps < 2 or self.size < 8:
            raise InputError("pendulum video: need at least 2 episodes, 2 steps and 8-pixel frames")
        if not 0 < self.n_train < self.episodes:
            raise InputError(
                f"pendulum video: n_train must be in 1..{self.episodes - 1}, got {self.n_train}"
            )
        if not 0 <= self.omega_low <= self.omega_high:
            raise InputError("pendulum video: need 0 <= omega_low <= omega_high")


@dataclass(frozen=True, slots=True)
class VideoData:
    """Episodes of frames with their actions.

    Attributes:
        frames: uint8 array (episodes, steps, channels, height, width).
        actions: float32 array (episodes, steps, action_dim); action t moves frame t to frame t + 1
            (``action_dim`` is 0 for videos without actions).
        n_train: the first ``n_train`` episodes are the training split.
        states: float32 array (episodes, steps, state_dim) of simulator states, or an empty array.
        name: a short description.
    """

    frames: np.ndarray
    actions: np.ndarray
    n_train: int
    states: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.float32))
    name: str = "video"

    def __post_init__(self) -> None:
        if self.frames.ndim != 5 or self.frames.dtype != np.uint8:
            raise InputError(f"{self.name}: frames must be uint8 (episodes, steps, C, H, W)")
        if self.actions.shape[:2] != self.frames.shape[:2] or self.actions.ndim != 3:
            raise InputError(
                f"{self.name}: actions must be (episodes, steps, action_dim) matching the frames"
            )
        if not 0 <= self.n_train <= self.frames.shape[0] or self.frames.shape[0] == 0:
            raise InputError(
                f"{self.name}: n_train must be in 0..episodes and there must be episodes"
            )

    @property
    def train(self) -> VideoData:
        """The training episodes (all of them count as training in the result)."""
        n = self.n_train
        return VideoData(self.frames[:n], self.actions[:n], n, self._states(slice(0, n)), self.name)

    @property
    def test(self) -> VideoData:
        """The test episodes (``n_train`` is 0 in the result)."""
        n = self.n_train
        return VideoData(
            self.frames[n:], self.actions[n:], 0, self._states(slice(n, None)), self.name
        )

    def _states(self, sl: slice) -> np.ndarray:
        return self.states[sl] if self.states.ndim == 3 else self.states


def save_video_data(data: VideoData, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` atomically as a compressed ``.npz`` archive (rendered frames compress about 40x)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                frames=data.frames,
                actions=data.actions,
                states=data.states,
                n_train=np.int64(data.n_train),
                name=np.str_(data.name),
            )
    return Path(path)


def load_video_data(path: str | os.PathLike[str]) -> VideoData:
    """Read a data set written by :func:`save_video_data`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such data file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return VideoData(
                frames=z["frames"],
                actions=z["actions"].astype(np.float32),
                n_train=int(z["n_train"]),
                states=z["states"],
                name=str(z["name"]),
            )
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"{path}: not a video data file ({exc})") from None


def config_key(config: object) -> str:
    """A short stable hash of a frozen config, used to name cache files."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True)  # type: ignore[call-overload]
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _import_gym():  # noqa: ANN202
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import gymnasium
        import pygame  # noqa: F401
    except ImportError:
        raise InputError(
            f"the pixel pendulum needs gymnasium and pygame: {VIDEO_EXTRA_HINT}"
        ) from None
    return gymnasium


def resize_frames(frames: np.ndarray, size: int, *, chunk: int = 16) -> np.ndarray:
    """Resize frames with antialiasing.

    Args:
        frames: uint8 (n, H, W, C).
        size: output side.

    Returns:
        uint8 (n, C, size, size).
    """
    out = []
    for i in range(0, len(frames), chunk):
        x = (
            torch.from_numpy(np.ascontiguousarray(frames[i : i + chunk]))
            .permute(0, 3, 1, 2)
            .float()
        )
        y = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out.append(y.round().clamp(0, 255).to(torch.uint8).numpy())
    return np.concatenate(out)


def pendulum_actions(steps: int, omega: float, phase: float) -> np.ndarray:
    """The paper's scripted policy u_t = 2 sin(w t + a) for t = 0..steps-1, shape (steps,)."""
    return 2.0 * np.sin(omega * np.arange(steps) + phase)


def _render_episodes(
    params: list[tuple[float, float, int]],
    steps: int,
    size: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Record one episode per (omega, phase, reset seed) with one environment; frames, actions, states.

    ``progress`` is called with 1 after each episode."""
    gym = _import_gym()
    env = gym.make("Pendulum-v1", render_mode="rgb_array")
    n = len(params)
    frames = np.empty((n, steps, 3, size, size), np.uint8)
    actions = np.empty((n, steps, 1), np.float32)
    states = np.empty((n, steps, 2), np.float32)
    try:
        for i, (omega, phase, seed) in enumerate(params):
            u = pendulum_actions(steps, omega, phase)
            env.reset(seed=seed)
            raw = []
            for t in range(steps):
                raw.append(env.render())
                states[i, t] = env.unwrapped.state
                env.step(np.array([u[t]], np.float32))
            frames[i] = resize_frames(np.stack(raw), size)
            actions[i, :, 0] = u
            if progress is not None:
                progress(1)
    finally:
        env.close()
    return frames, actions, states


def generate_pendulum_video(
    config: PendulumVideoConfig,
    *,
    progress: Callable[[int], None] | None = None,
    n_jobs: int = 1,
) -> VideoData:
    """Record gymnasium ``Pendulum-v1`` episodes driven by u_t = 2 sin(w t + a), rendered headless.

    Frame t is rendered before action t is applied. States are (theta, theta_dot) at each frame, with
    theta = 0 upright. Each episode depends only on its own (w, a, reset seed), drawn in order from
    ``config.seed``, so the data do not depend on ``n_jobs``.

    Args:
        config: sizes and seed.
        progress: called with the number of episodes finished, after each episode (``n_jobs=1``) or each
            chunk of episodes.
        n_jobs: processes rendering episodes side by side (joblib; -1 for every core). Rendering is
            bound by one core per process.

    Returns:
        The data set; frames (episodes, steps, 3, size, size), actions (episodes, steps, 1).
    """
    _import_gym()  # a clear error before any work
    rng = np.random.default_rng(config.seed)
    params = []
    for _ in range(config.episodes):
        omega = rng.uniform(config.omega_low, config.omega_high)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        params.append((float(omega), float(phase), int(rng.integers(2**31))))
    from joblib import cpu_count

    workers = min(cpu_count() if n_jobs < 0 else max(n_jobs, 1), len(params))
    if workers == 1:
        parts = [_render_episodes(params, config.steps, config.size, progress)]
    else:
        from joblib import Parallel, delayed

        per = max(1, -(-len(params) // (4 * workers)))  # about four chunks per worker
        chunks = [params[i : i + per] for i in range(0, len(params), per)]
        parts = []
        results = Parallel(n_jobs=workers, return_as="generator")(
            delayed(_render_episodes)(c, config.steps, config.size) for c in chunks
        )
        for c, part in zip(chunks, results, strict=True):
            parts.append(part)
            if progress is not None:
                progress(len(c))
    # one part (sequential rendering) is the data set already: no copy of its frames
    frames, actions, states = (
        parts[0] if len(parts) == 1 else (np.concatenate(x) for x in zip(*parts, strict=True))
    )
    return VideoData(frames, actions, config.n_train, states, name="pixel pendulum")


def load_or_generate_pendulum(
    config: PendulumVideoConfig,
    *,
    cache_dir: str | os.PathLike[str],
    progress: Callable[[int], None] | None = None,
    n_jobs: int = 1,
) -> tuple[VideoData, Path]:
    """Return the cached data set for ``config``, generating (``n_jobs`` processes) and caching it if needed."""
    path = Path(cache_dir) / f"pendulum-{config_key(config)}.npz"
    if path.is_file():
        return load_video_data(path), path
    data = generate_pendulum_video(config, progress=progress, n_jobs=n_jobs)
    save_video_data(data, path)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(dataclasses.asdict(config), indent=2))
    return data, path


def window_starts(steps: int, length: int, *, stride: int) -> np.ndarray:
    """Start indices of windows of ``length`` frames inside an episode of ``steps`` frames."""
    if length > steps:
        raise InputError(f"windows of {length} frames do not fit in episodes of {steps} steps")
    return np.arange(0, steps - length + 1, stride)


def gather_windows(
    data: VideoData,
    episodes: np.ndarray,
    starts: np.ndarray,
    length: int,
    *,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut windows out of episodes.

    Args:
        data: the episodes.
        episodes, starts: int arrays (n,) of episode index and first frame.
        length: frames per window.

    Returns:
        frames float32 in [0, 1], (n, length, C, H, W), and actions (n, length, action_dim).
    """
    idx = starts[:, None] + np.arange(length)[None, :]
    fr = data.frames[episodes[:, None], idx]
    ac = data.actions[episodes[:, None], idx]
    frames = torch.from_numpy(np.ascontiguousarray(fr)).to(device).float().div_(255.0)
    return frames, torch.from_numpy(np.ascontiguousarray(ac)).to(device).float()


def eval_windows(
    data: VideoData, length: int, *, max_per_episode: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping evaluation windows over all episodes of ``data``: (episodes, starts) int arrays."""
    starts = window_starts(data.frames.shape[1], length, stride=length)
    if max_per_episode is not None:
        starts = starts[:max_per_episode]
    eps = np.repeat(np.arange(data.frames.shape[0]), len(starts))
    return eps, np.tile(starts, data.frames.shape[0])
