"""How reproducible the pretrained MLP is: the same 2,000 Adam steps under other thread counts and precisions.

Usage: ``python benchmarks/pretrain_repro.py [threads|keep] [--dataset ideal_pendulum ...] [--threads 1 2]
[--seeds 0] [--perturb 1e-12]``.

``fsearch pretrain`` trains the vanilla MLP in float32. Its matrix products add their terms in an order that
depends on the number of torch threads, so one seed on one machine gives slightly different weights with
1 and with 2 threads. This script trains the same MLP (the dataset's paper settings) for each precision
(float32, float64) and thread count, and once more in float64 from initial weights perturbed by a relative
``--perturb`` (one thread). It prints, per run, the largest weight difference from the one-thread run of the
same precision (after casting to float32), the training loss after the last step, and the vanilla MLP's
test RMSE (RK4 rollouts in float32, as ``fsearch rank`` evaluates it), with the wall time.

If the float64 runs differed by float64 rounding only (about 1e-16), the difference would come from the sum
order alone and a float64 pretraining would remove it. If they differ by much more, training amplifies any
perturbation, and only a fixed thread count (on one machine and library build) gives the same MLP.

``keep`` mode trains the MLP of each dataset and ``--seeds`` seed (float32, the current thread count, as
``fsearch pretrain``) and prints how the run ends: the training loss after the last step against the
lowest loss of the run (and its step), how many steps the loss stood above twice its running minimum
(spikes of full-batch Adam), and the vanilla MLP's test RMSE with the last weights (the reference
set-up's, ``--pretrain-keep last``) and with the lowest-loss weights (``--pretrain-keep best``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch


def _train(data, mlp_config, *, dtype, threads: int, perturb: float = 0.0):
    from meta_tailor import make_mlp, train_mlp

    torch.set_num_threads(threads)
    x, dxdt = data.stacked("train")
    x = torch.as_tensor(x, dtype=dtype)
    dxdt = torch.as_tensor(dxdt, dtype=dtype)
    model = make_mlp(x.shape[1], hidden=mlp_config.hidden, seed=mlp_config.seed, dtype=dtype)
    if perturb:
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + perturb * torch.randn(p.shape, generator=gen, dtype=dtype))
    t0 = time.perf_counter()
    losses = train_mlp(model, x, dxdt, config=mlp_config)  # the last value: after the last step
    return model.float(), losses[-1], time.perf_counter() - t0


def _test_rmse(model, data) -> float:
    from meta_tailor.advanced import evaluate_field, tailored_field

    field = tailored_field(model, None, None, lr=0.0, steps=0, dt=float(data.time_step))
    return evaluate_field(field, data.test, device="cpu", method="vanilla_mlp")[1]


def _keep_rows(name, data, mlp_config, seeds) -> list[dict]:
    from meta_tailor import make_mlp, train_mlp

    x, dxdt = (torch.as_tensor(a, dtype=torch.float32) for a in data.stacked("train"))
    rows = []
    for seed in seeds:
        models, losses = {}, None
        for keep in ("last", "best"):
            cfg = replace(mlp_config, seed=seed, keep=keep)
            models[keep] = make_mlp(x.shape[1], hidden=cfg.hidden, seed=seed)
            losses = train_mlp(models[keep], x, dxdt, config=cfg)  # the same path for both
        run_min = np.minimum.accumulate(losses)
        best = int(np.argmin(losses))
        rows.append(
            {
                "dataset": name,
                "seed": seed,
                "final loss": losses[-1],
                "lowest loss": losses[best],
                "at step": best,
                "final / lowest": losses[-1] / losses[best],
                "steps above 2x min": int((losses[1:] > 2 * run_min[:-1]).sum()),
                "test RMSE, last": _test_rmse(models["last"], data),
                "test RMSE, best": _test_rmse(models["best"], data),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    from formula_search.data import load_dataset
    from meta_tailor.advanced import paper_configs

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["threads", "keep"], default="threads")
    ap.add_argument("--dataset", nargs="+", default=["ideal_pendulum"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="MLP seeds (--model-seed)")
    ap.add_argument("--perturb", type=float, default=1e-12, help="relative perturbation (0: skip)")
    args = ap.parse_args(argv)
    saved = torch.get_num_threads()
    rows = []
    for name in args.dataset:
        data = load_dataset(name)
        mlp_config, _ = paper_configs(data.protocol)
        if args.mode == "keep":
            rows += _keep_rows(name, data, mlp_config, args.seeds)
            continue
        mlp_config = replace(mlp_config, seed=args.seeds[0])
        runs = [(dt, t, 0.0) for dt in (torch.float32, torch.float64) for t in args.threads]
        if args.perturb:
            runs.append((torch.float64, args.threads[0], args.perturb))
        ref = {}
        for dtype, threads, perturb in runs:
            model, loss, wall = _train(
                data, mlp_config, dtype=dtype, threads=threads, perturb=perturb
            )
            weights = torch.cat([p.detach().flatten() for p in model.parameters()])
            ref.setdefault(dtype, weights)
            rows.append(
                {
                    "dataset": name,
                    "precision": str(dtype).removeprefix("torch."),
                    "threads": threads,
                    "init perturbed": perturb or "",
                    "max |dW| vs 1st": float((weights - ref[dtype]).abs().max()),
                    "final loss": loss,
                    "vanilla test RMSE": _test_rmse(model, data),
                    "wall s": round(wall, 1),
                }
            )
            print(rows[-1], flush=True)
    torch.set_num_threads(saved)
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
