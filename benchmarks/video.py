"""Seconds per training epoch of the video models: SVG and the Noether Network (Algorithm 1).

Usage: python benchmarks/video.py [--device cpu|cuda|auto] [--full] [--steps N] [--threads N]

--full uses the paper's controlled-pendulum sizes (64x64 RGB, DCGAN-64 with 64 filters, 2-layer LSTM of 256,
embedding MLP 512 -> 100, batch 32, 4 history + 10 predicted frames, 600 batches per epoch); the default is
a quick reduced size (the pendulum's is that of `--preset cpu`). Frames are random (timing does not depend on content). Prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from formula_search.cli.video_cmd import PRESETS
from meta_tailor.video import (
    ModelConfig,
    VideoData,
    pendulum_config,
    ramp_config,
    resolve_device,
    time_meta_epoch,
)


def _data(cfg, episodes: int = 4, steps: int = 40) -> VideoData:
    rng = np.random.default_rng(0)
    m = cfg.model
    frames = rng.integers(0, 256, (episodes, steps, m.channels, m.size, m.size), dtype=np.uint8)
    actions = rng.uniform(-2, 2, (episodes, steps, m.action_dim)).astype(np.float32)
    return VideoData(frames, actions, episodes, name="random")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    ap.add_argument("--full", action="store_true", help="paper sizes instead of the quick default")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument(
        "--setup", choices=["all", "pendulum", "ramp"], default="all", help="set-ups to time"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.full:
        setups = {
            "pendulum (paper: 64x64, batch 32)": pendulum_config(),
            "ramp CNGRAD (paper: 128x128, batch 2)": ramp_config(),
        }
    else:
        cpu = PRESETS["cpu"]  # the sizes of `fsearch video ... --preset cpu`
        small = ModelConfig(
            size=cpu["size"], nf=cpu["nf"], g_dim=cpu["g_dim"], rnn_size=cpu["rnn_size"]
        )
        ramp_small = dataclasses.replace(ramp_config().model, size=32, nf=16, g_dim=64)
        setups = {
            "pendulum (quick: --preset cpu)": pendulum_config(
                model=small, batch_size=cpu["batch_size"], steps_per_epoch=cpu["steps_per_epoch"]
            ),
            "ramp CNGRAD (quick: 32x32, nf 16)": ramp_config(model=ramp_small, steps_per_epoch=100),
        }
    head = f"{'set-up':<40} {'method':<8} {'device':<6} {'batch':>5} {'steps/ep':>8} {'s/step':>8} {'s/epoch':>9}"
    print(head)
    print("-" * len(head), flush=True)
    for name, cfg in setups.items():
        if args.setup != "all" and not name.startswith(args.setup):
            continue
        cfg = dataclasses.replace(cfg, device=args.device)
        data = _data(cfg, steps=cfg.n_past + cfg.train_future + 2)
        dev = str(resolve_device(args.device))
        for stage in ("svg", "noether"):
            ps, pe = time_meta_epoch(data, config=cfg, stage=stage, n_steps=args.steps)
            b, spe = cfg.batch_size, cfg.steps_per_epoch
            print(
                f"{name:<40} {stage:<8} {dev:<6} {b:>5} {spe:>8} {ps:>8.3f} {pe:>9.1f}", flush=True
            )
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} CPU threads; epochs extrapolated from {args.steps} timed steps"
    )


if __name__ == "__main__":
    main()
