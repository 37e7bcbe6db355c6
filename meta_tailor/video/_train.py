"""Training (SVG, SVG with more steps, Noether Network by Algorithm 1), evaluation and the inner-steps study.

Every stage writes a checkpoint after each epoch and resumes from it. Checkpoints hold only tensors, numbers
and lists, and load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from formula_search.errors import InputError
from formula_search.io import atomic_path
from meta_tailor.video._data import VideoData, eval_windows, gather_windows
from meta_tailor.video._metrics import frame_metrics
from meta_tailor.video._models import FrameEmbedding, LatentEmbedding, ModelConfig, SVGPredictor
from meta_tailor.video._noether import NoetherConfig, predict_sequence, task_loss

METHODS = ("svg", "svg_more", "noether")
METHOD_LABELS = {"svg": "SVG", "svg_more": "SVG (more steps)", "noether": "Noether Network"}


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """Everything a video run needs besides the data.

    Attributes:
        model: predictor and embedding sizes.
        noether: inner loop.
        n_past: history frames (pendulum 4, ramp 2).
        train_future: frames predicted during training (pendulum 10, ramp 20).
        eval_future: frames predicted at evaluation (pendulum 26, ramp 20).
        batch_size: sequences per batch (pendulum 32, ramp 2).
        lr: Adam learning rate of the outer loop, for theta and phi (pendulum 1e-3, ramp 1e-4).
        svg_epochs: epochs of plain SVG training (pendulum 50).
        meta_epochs: epochs of Algorithm 1, and extra epochs of the "more steps" baseline (pendulum 20).
        steps_per_epoch: batches per epoch (an epoch is a fixed number of random batches, as in SVG's code).
        teacher_forcing: feed true frames after the history during training (ramp).
        freeze_predictor: keep theta fixed during meta-training (the paper's pendulum variant); by default
            Algorithm 1 updates both theta and phi.
        flip: random horizontal flips of training sequences (ramp).
        seed: seeds initialisation and batch sampling.
        device: "auto", "cpu" or "cuda".
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    noether: NoetherConfig = field(default_factory=NoetherConfig)
    n_past: int = 4
    train_future: int = 10
    eval_future: int = 26
    batch_size: int = 32
    lr: float = 1e-3
    svg_epochs: int = 50
    meta_epochs: int = 20
    steps_per_epoch: int = 600
    teacher_forcing: bool = False
    freeze_predictor: bool = False
    flip: bool = False
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.n_past < 2 or self.train_future < 1 or self.eval_future < 1:
            raise InputError("need n_past >= 2 and at least one predicted frame")
        if (
            self.batch_size < 1
            or self.steps_per_epoch < 1
            or self.svg_epochs < 0
            or self.meta_epochs < 0
        ):
            raise InputError("batch size and steps per epoch must be positive, epochs non-negative")
        if self.lr <= 0:
            raise InputError("learning rate must be positive")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict) -> VideoConfig:
        d = dict(d)
        d["model"] = ModelConfig(**d["model"])
        d["noether"] = NoetherConfig(**d["noether"])
        return VideoConfig(**d)


def pendulum_config(**overrides: object) -> VideoConfig:
    """The paper's controlled-pendulum set-up (latent tailoring, loss 2(a)); keyword overrides allowed."""
    return dataclasses.replace(VideoConfig(), **overrides)  # type: ignore[arg-type]


def ramp_config(**overrides: object) -> VideoConfig:
    """The paper's ramp set-up: CNGRAD with layer norm, frame-pair CNN embedding, loss 2(b), 2 -> 20 frames."""
    base = VideoConfig(
        model=ModelConfig(size=128, action_dim=0, norm="layer", cn=True, rnn_size=128),
        noether=NoetherConfig(tailor="cn", loss_form="b", inner_lr=1e-4),
        n_past=2,
        train_future=20,
        eval_future=20,
        batch_size=2,
        lr=1e-4,
        svg_epochs=50,
        meta_epochs=400,
        steps_per_epoch=100,
        teacher_forcing=True,
        flip=True,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available")
    return torch.device(name)


def build_models(config: VideoConfig) -> tuple[SVGPredictor, torch.nn.Module]:
    """Fresh predictor and embedding, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    model = SVGPredictor(config.model)
    emb = (
        LatentEmbedding(config.model)
        if config.noether.tailor == "latent"
        else FrameEmbedding(config.model)
    )
    return model, emb


def _check_data(data: VideoData, config: VideoConfig, length: int) -> None:
    _, steps, c, h, w = data.frames.shape
    m = config.model
    if (c, h, w) != (m.channels, m.size, m.size):
        raise InputError(
            f"data frames are {c}x{h}x{w} but the model expects {m.channels}x{m.size}x{m.size}"
        )
    if data.actions.shape[2] != m.action_dim:
        raise InputError(
            f"data actions have size {data.actions.shape[2]} but the model expects {m.action_dim}"
        )
    if steps < length:
        raise InputError(f"episodes have {steps} frames, fewer than the {length} a sequence needs")


def _sample_batch(
    data: VideoData, rng: np.random.Generator, config: VideoConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    length = config.n_past + config.train_future
    eps = rng.integers(0, data.frames.shape[0], config.batch_size)
    starts = rng.integers(0, data.frames.shape[1] - length + 1, config.batch_size)
    frames, actions = gather_windows(data, eps, starts, length, device=device)
    if config.flip:
        flip = torch.from_numpy(rng.random(config.batch_size) < 0.5).to(device)
        frames = torch.where(flip[:, None, None, None, None], frames.flip(-1), frames)
    return frames, actions


def _save(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Read a checkpoint written by the training stages (tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise InputError(f"{path}: not a checkpoint ({type(exc).__name__})") from None


ProgressFn = Callable[[str, int, int, float], None]


def _train_step(model, emb, opt, frames, actions, config: VideoConfig):
    """One outer step of Algorithm 1 (or of plain SVG when ``emb`` is None); returns the task loss.

    Shared by training and by :func:`time_meta_epoch`, so the benchmark times exactly what training runs.
    """
    out = predict_sequence(
        model,
        emb,
        frames,
        actions,
        config=config.noether,
        n_past=config.n_past,
        n_future=config.train_future,
        create_graph=True,
        teacher_forcing=config.teacher_forcing,
    )
    loss = task_loss(out.preds, frames[:, config.n_past :])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def train_stage(
    data: VideoData,
    *,
    config: VideoConfig,
    stage: str,
    path: str | os.PathLike[str],
    init_from: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> dict:
    """Train one method to its final epoch, resuming from ``path`` when it holds an unfinished run.

    Args:
        data: training episodes (all episodes of ``data`` are used).
        config: the run settings.
        stage: "svg" (``svg_epochs`` of SVG), "svg_more" (``meta_epochs`` more SVG epochs continuing
            ``init_from``) or "noether" (``meta_epochs`` of Algorithm 1 starting from ``init_from``).
        path: checkpoint file, written after every epoch.
        init_from: the SVG checkpoint the second-stage methods start from.
        progress: called after every batch as (stage, batches done, total batches, mean training loss of the
            current epoch so far); a resumed run starts counting at the batches already done.

    Returns:
        The final checkpoint dictionary (model, embedding, optimizer, epoch, losses).
    """
    if stage not in METHODS:
        raise InputError(f"unknown stage {stage!r}; choose from {', '.join(METHODS)}")
    device = resolve_device(config.device)
    _check_data(data, config, config.n_past + config.train_future)
    total = config.svg_epochs if stage == "svg" else config.meta_epochs
    model, emb = build_models(config)
    path = Path(path)
    noether = stage == "noether"
    ckpt = _starting_checkpoint(path, stage, model, emb, init_from)
    opt = _restore(ckpt, model, emb if noether else None, config, device)
    losses = list(ckpt["losses"])
    stage_id = METHODS.index(stage)
    for epoch in range(int(ckpt["epoch"]), total):
        rng = np.random.default_rng([config.seed, stage_id, epoch])
        model.train(not (noether and config.freeze_predictor))
        running = 0.0
        for i in range(config.steps_per_epoch):
            frames, actions = _sample_batch(data, rng, config, device)
            loss = _train_step(model, emb if noether else None, opt, frames, actions, config)
            running += float(loss.detach())
            if progress is not None:
                done = epoch * config.steps_per_epoch + i + 1
                progress(stage, done, total * config.steps_per_epoch, running / (i + 1))
        losses.append(running / config.steps_per_epoch)
        ckpt = {
            "model": model.state_dict(),
            "embedding": emb.state_dict() if noether else None,
            "opt": opt.state_dict(),
            "epoch": epoch + 1,
            "losses": losses,
        }
        _save(path, ckpt)
    if not path.is_file():  # zero epochs: still leave a checkpoint for the later stages
        _save(path, ckpt)
    return ckpt


def _starting_checkpoint(
    path: Path,
    stage: str,
    model: SVGPredictor,
    emb: torch.nn.Module,
    init_from: str | os.PathLike[str] | None,
) -> dict:
    """The checkpoint :func:`train_stage` starts from: ``path``'s, fresh SVG, or ``init_from``'s SVG."""
    noether = stage == "noether"
    if path.is_file():
        return load_checkpoint(path)
    if stage == "svg":
        return {
            "model": model.state_dict(),
            "embedding": None,
            "opt": None,
            "epoch": 0,
            "losses": [],
        }
    if init_from is None:
        raise InputError(f"stage {stage} needs the SVG checkpoint to start from")
    base = load_checkpoint(init_from)
    return {
        "model": base["model"],
        "embedding": emb.state_dict() if noether else None,
        "opt": None if noether else base["opt"],
        "epoch": 0,
        "losses": [],
    }


def _restore(
    ckpt: dict,
    model: SVGPredictor,
    emb: torch.nn.Module | None,
    config: VideoConfig,
    device: torch.device,
) -> torch.optim.Adam:
    """Load ``ckpt``'s weights onto ``device`` and return the Adam optimizer of the trained parameters.

    ``emb`` is the embedding when it is trained (the Noether Network), else None.
    """
    model.load_state_dict(ckpt["model"])
    model.to(device)
    params = [] if (emb is not None and config.freeze_predictor) else list(model.parameters())
    if emb is not None:
        emb.load_state_dict(ckpt["embedding"])
        emb.to(device)
        params += list(emb.parameters())
    opt = torch.optim.Adam(params, lr=config.lr)
    if ckpt["opt"] is not None:
        opt.load_state_dict(ckpt["opt"])
    return opt


def train_all(
    data: VideoData,
    *,
    config: VideoConfig,
    out_dir: str | os.PathLike[str],
    methods: tuple[str, ...] = METHODS,
    progress: ProgressFn | None = None,
) -> dict[str, Path]:
    """Train SVG, then "SVG (more steps)" and the Noether Network from it, in ``out_dir``; resumable.

    Returns:
        method -> checkpoint path. The config is written to ``out_dir/config.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        # through from_dict, so that a run written before an option existed compares with its default
        old = json.loads(
            json.dumps(VideoConfig.from_dict(json.loads(cfg_path.read_text())).to_dict())
        )
        new = json.loads(json.dumps(config.to_dict()))
        old.pop("device", None), new.pop("device", None)  # a run may resume on another device
        if old != new:
            raise InputError(
                f"{out}: holds a run with a different configuration; use another --out"
            )
    else:
        with atomic_path(cfg_path) as tmp:
            tmp.write_text(json.dumps(config.to_dict(), indent=2))
    paths = {m: out / f"{m}.pt" for m in METHODS}
    train_stage(data, config=config, stage="svg", path=paths["svg"], progress=progress)
    for m in methods:
        if m != "svg":
            train_stage(
                data,
                config=config,
                stage=m,
                path=paths[m],
                init_from=paths["svg"],
                progress=progress,
            )
    return {m: paths[m] for m in methods}


def load_models(
    path: str | os.PathLike[str], config: VideoConfig
) -> tuple[SVGPredictor, torch.nn.Module | None]:
    """Predictor and embedding (None for the SVG baselines) from a checkpoint, in evaluation mode."""
    ckpt = load_checkpoint(path)
    model, emb = build_models(config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    if ckpt.get("embedding") is None:
        return model, None
    emb.load_state_dict(ckpt["embedding"])
    emb.eval()
    return model, emb


def evaluate(
    model: SVGPredictor,
    embedding: torch.nn.Module | None,
    data: VideoData,
    *,
    config: VideoConfig,
    noether: NoetherConfig | None = None,
    max_windows_per_episode: int | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Per-step metrics on non-overlapping held-out windows of ``data``.

    Returns:
        One row per predicted step: ``step`` (1 = first predicted frame), ``mse``, ``psnr`` (dB), ``ssim``
        (means over sequences), their standard errors over sequences ``mse_se``, ``psnr_se``, ``ssim_se``,
        ``noether_before``/``noether_after`` (mean inner loss, equal when not tailoring) and ``n`` (sequences).
    """
    device = resolve_device(config.device)
    length = config.n_past + config.eval_future
    _check_data(data, config, length)
    model.to(device).eval()
    if embedding is not None:
        embedding.to(device).eval()
    eps, starts = eval_windows(data, length, max_per_episode=max_windows_per_episode)
    acc: dict[str, list[np.ndarray]] = {"mse": [], "psnr": [], "ssim": []}
    inner_before, inner_after = [], []
    for i in range(0, len(eps), batch_size):
        frames, actions = gather_windows(
            data, eps[i : i + batch_size], starts[i : i + batch_size], length, device=device
        )
        with torch.no_grad():
            out = predict_sequence(
                model,
                embedding,
                frames[:, : config.n_past],
                actions,
                config=noether or config.noether,
                n_past=config.n_past,
                n_future=config.eval_future,
                create_graph=False,
            )
        for k, v in frame_metrics(out.preds, frames[:, config.n_past :]).items():
            acc[k].append(v)
        inner_before.append(out.inner_losses[0].cpu().numpy())
        inner_after.append(out.inner_losses[-1].cpu().numpy())
        if progress is not None:
            progress(len(frames))
    res = {k: np.concatenate(v) for k, v in acc.items()}
    n = res["mse"].shape[0]
    df = pd.DataFrame({"step": np.arange(1, config.eval_future + 1)})
    for k, v in res.items():
        df[k] = v.mean(0)
        df[f"{k}_se"] = v.std(0, ddof=1) / np.sqrt(n) if n > 1 else 0.0
    df["noether_before"] = float(np.concatenate(inner_before).mean())
    df["noether_after"] = float(np.concatenate(inner_after).mean())
    df["n"] = n
    return df


def inner_steps_study(
    model: SVGPredictor,
    embedding: torch.nn.Module,
    data: VideoData,
    *,
    config: VideoConfig,
    steps: tuple[int, ...],
    optimizer: str = "sgd",
    lr: float | None = None,
    max_windows_per_episode: int | None = None,
) -> pd.DataFrame:
    """Task MSE and Noether loss after k inner steps, for each k in ``steps`` (the paper's figure 6).

    Returns:
        Columns ``inner_steps``, ``mse`` (mean over steps and sequences), ``psnr``, ``ssim``, ``noether_loss``.
    """
    if any(k < 0 for k in steps):
        raise InputError(f"inner-step counts must be >= 0, got {steps}")
    rows = []
    for k in steps:
        nc = dataclasses.replace(
            config.noether,
            inner_steps=k,
            inner_optimizer=optimizer,
            inner_lr=config.noether.inner_lr if lr is None else lr,
        )
        df = evaluate(
            model,
            embedding,
            data,
            config=config,
            noether=nc,
            max_windows_per_episode=max_windows_per_episode,
        )
        rows.append(
            {
                "inner_steps": k,
                "mse": df["mse"].mean(),
                "psnr": df["psnr"].mean(),
                "ssim": df["ssim"].mean(),
                "noether_loss": df["noether_after"].iloc[0],
            }
        )
    return pd.DataFrame(rows)


def time_meta_epoch(
    data: VideoData, *, config: VideoConfig, stage: str = "noether", n_steps: int = 3
) -> tuple[float, float]:
    """Seconds per training step (after one warm-up step) and the implied seconds per epoch."""
    device = resolve_device(config.device)
    model, emb = build_models(config)
    model.to(device).train()
    emb.to(device)
    params = list(model.parameters()) + (list(emb.parameters()) if stage == "noether" else [])
    opt = torch.optim.Adam(params, lr=config.lr)
    rng = np.random.default_rng(0)
    times = []
    for i in range(n_steps + 1):
        frames, actions = _sample_batch(data, rng, config, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        _train_step(model, emb if stage == "noether" else None, opt, frames, actions, config)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    per_step = float(np.mean(times))
    return per_step, per_step * config.steps_per_epoch
