"""Per-step image metrics: MSE, PSNR and SSIM (scikit-image's implementation)."""

from __future__ import annotations

import numpy as np
import torch

from formula_search.errors import InputError
from meta_tailor.video._data import VIDEO_EXTRA_HINT


def _ssim_fn():  # noqa: ANN202
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise InputError(f"SSIM needs scikit-image: {VIDEO_EXTRA_HINT}") from None
    return structural_similarity


def frame_metrics(preds: torch.Tensor, target: torch.Tensor) -> dict[str, np.ndarray]:
    """MSE, PSNR (dB, peak 1) and SSIM of every predicted frame.

    Args:
        preds, target: (B, T, C, H, W) in [0, 1].

    Returns:
        ``{"mse", "psnr", "ssim"}`` -> float64 arrays (B, T). PSNR is 10 log10(1 / MSE) per frame (capped at
        100 dB for identical frames); SSIM uses a 7x7 window over each channel, averaged.
    """
    if preds.shape != target.shape or preds.ndim != 5:
        raise InputError(
            f"metrics: shapes differ or are not (B, T, C, H, W): {preds.shape} vs {target.shape}"
        )
    p = preds.detach().clamp(0, 1).double().cpu()
    t = target.detach().double().cpu()
    mse = (p - t).pow(2).mean(dim=(2, 3, 4)).numpy()
    psnr = np.where(mse > 0, 10 * np.log10(1.0 / np.maximum(mse, 1e-10)), 100.0)
    ssim_fn = _ssim_fn()
    pn, tn = p.numpy(), t.numpy()
    b, n = mse.shape
    ssim = np.empty((b, n))
    win = min(7, pn.shape[-1] - (1 - pn.shape[-1] % 2))
    for i in range(b):
        for j in range(n):
            ssim[i, j] = ssim_fn(tn[i, j], pn[i, j], data_range=1.0, channel_axis=0, win_size=win)
    return {"mse": mse, "psnr": psnr, "ssim": ssim}
