"""Networks: a deterministic action-conditioned SVG predictor (DCGAN encoder/decoder, LSTM) with optional
conditional-normalisation (CN) layers, and the two Noether embeddings g_phi.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from formula_search.errors import InputError

#: per-example CN parameters: one (gamma, beta) pair of shape (batch, channels) per CN layer
CNParams = list[tuple[Tensor, Tensor]]


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Sizes of the predictor and the embedding.

    Attributes:
        channels: image channels.
        size: frame side (a power of two, at least 16; the paper's DCGAN-64 uses 64).
        nf: filters of the first encoder layer (DCGAN: 64), doubled at each downsampling.
        g_dim: frame-encoding size and LSTM output size (SVG: 128).
        rnn_size: LSTM hidden units (paper: 256).
        rnn_layers: stacked LSTM cells (paper: 2).
        action_dim: size of the action concatenated to the encoding (0 for no actions).
        norm: "batch" (DCGAN) or "layer" (the paper's ramp model: layer norm, computed per example).
        cn: add conditional-normalisation layers after every normalisation layer (CNGRAD).
        emb_hidden, emb_out: latent embedding MLP width (512) and output size (100).
        emb_conv_out: output size of the convolutional frame-pair embedding (64).
    """

    channels: int = 3
    size: int = 64
    nf: int = 64
    g_dim: int = 128
    rnn_size: int = 256
    rnn_layers: int = 2
    action_dim: int = 1
    norm: str = "batch"
    cn: bool = False
    emb_hidden: int = 512
    emb_out: int = 100
    emb_conv_out: int = 64

    def __post_init__(self) -> None:
        if self.size < 16 or self.size & (self.size - 1):
            raise InputError(f"frame size must be a power of two >= 16, got {self.size}")
        if self.norm not in ("batch", "layer"):
            raise InputError(f"norm must be 'batch' or 'layer', got {self.norm!r}")
        if (
            min(self.channels, self.nf, self.g_dim, self.rnn_size, self.rnn_layers) < 1
            or self.action_dim < 0
        ):
            raise InputError("model sizes must be positive")

    @property
    def n_down(self) -> int:
        """Stride-2 layers from ``size`` down to 4x4."""
        return int(math.log2(self.size)) - 2


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.GroupNorm(1, channels)


def _apply_cn(x: Tensor, cn: tuple[Tensor, Tensor]) -> Tensor:
    gamma, beta = cn
    return x * gamma[:, :, None, None] + beta[:, :, None, None]


class Encoder(nn.Module):
    """DCGAN discriminator-style encoder: (N, C, S, S) -> (N, g_dim) and skip features per scale."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        chans = [cfg.nf * 2**i for i in range(cfg.n_down)]
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c_in = cfg.channels
        for i, c in enumerate(chans):
            self.convs.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0))
            # DCGAN has no normalisation on its first layer
            self.norms.append(nn.Identity() if i == 0 else _norm(cfg.norm, c))
            c_in = c
        self.out = nn.Conv2d(c_in, cfg.g_dim, 4, 1, 0, bias=False)
        self.out_norm = _norm(cfg.norm, cfg.g_dim)
        self.skip_channels = chans
        #: channel counts of the layers that take CN parameters, in order
        self.cn_channels = [*chans[1:], cfg.g_dim]

    def forward(self, x: Tensor, cn: CNParams | None = None) -> tuple[Tensor, list[Tensor]]:
        skips = []
        j = 0
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = norm(conv(x))
            if cn is not None and i > 0:
                x = _apply_cn(x, cn[j])
                j += 1
            x = nn.functional.leaky_relu(x, 0.2)
            skips.append(x)
        x = self.out_norm(self.out(x))
        if cn is not None:
            x = _apply_cn(x, cn[j])
        return torch.tanh(x).flatten(1), skips


class Decoder(nn.Module):
    """DCGAN generator-style decoder with skip connections: (N, g_dim) -> (N, C, S, S) in [0, 1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        chans = [cfg.nf * 2**i for i in range(cfg.n_down)][::-1]  # e.g. 8nf, 4nf, 2nf, nf
        self.inp = nn.ConvTranspose2d(cfg.g_dim, chans[0], 4, 1, 0, bias=False)
        self.inp_norm = _norm(cfg.norm, chans[0])
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(len(chans) - 1):
            self.ups.append(nn.ConvTranspose2d(chans[i] * 2, chans[i + 1], 4, 2, 1, bias=False))
            self.norms.append(_norm(cfg.norm, chans[i + 1]))
        self.out = nn.ConvTranspose2d(chans[-1] * 2, cfg.channels, 4, 2, 1)
        self.cn_channels = chans

    def forward(self, h: Tensor, skips: list[Tensor], cn: CNParams | None = None) -> Tensor:
        x = self.inp_norm(self.inp(h[:, :, None, None]))
        if cn is not None:
            x = _apply_cn(x, cn[0])
        x = nn.functional.leaky_relu(x, 0.2)
        for i, (up, norm) in enumerate(zip(self.ups, self.norms, strict=True)):
            x = norm(up(torch.cat([x, skips[-1 - i]], 1)))
            if cn is not None:
                x = _apply_cn(x, cn[i + 1])
            x = nn.functional.leaky_relu(x, 0.2)
        return torch.sigmoid(self.out(torch.cat([x, skips[0]], 1)))


class LSTMPredictor(nn.Module):
    """SVG's latent frame predictor: linear embed, stacked LSTM cells, linear + tanh output."""

    def __init__(self, n_in: int, n_out: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, hidden)
        self.cells = nn.ModuleList([nn.LSTMCell(hidden, hidden) for _ in range(layers)])
        self.out = nn.Linear(hidden, n_out)
        self.hidden = hidden

    def init_state(
        self, batch: int, device: torch.device, dtype: torch.dtype
    ) -> list[tuple[Tensor, Tensor]]:
        z = torch.zeros(batch, self.hidden, device=device, dtype=dtype)
        return [(z, z) for _ in self.cells]

    def forward(
        self, x: Tensor, state: list[tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        h = self.embed(x)
        new = []
        for cell, hc in zip(self.cells, state, strict=True):
            hc = cell(h, hc)
            new.append(hc)
            h = hc[0]
        return torch.tanh(self.out(h)), new


@dataclass(frozen=True, slots=True)
class Rollout:
    """Result of :meth:`SVGPredictor.rollout`.

    Attributes:
        outputs: LSTM outputs (B, n_past + n_future - 1, g_dim); ``outputs[:, k]`` predicts frame k + 1.
        preds: predicted frames (B, n_future, C, S, S), frames n_past .. n_past + n_future - 1.
        skips: decoder skip features of the last history frame.
    """

    outputs: Tensor
    preds: Tensor
    skips: list[Tensor]


class SVGPredictor(nn.Module):
    """Deterministic action-conditioned SVG: x_{k+1} = dec(LSTM([enc(x_k), a_k]), skips of x_{n_past-1})."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.lstm = LSTMPredictor(
            cfg.g_dim + cfg.action_dim, cfg.g_dim, cfg.rnn_size, cfg.rnn_layers
        )

    @property
    def cn_channels(self) -> list[int]:
        """Channel count of every CN layer: encoder layers first, then decoder layers."""
        return [*self.encoder.cn_channels, *self.decoder.cn_channels]

    def identity_cn(self, batch: int, device: torch.device | str = "cpu") -> CNParams:
        """Per-example CN parameters at the identity (gamma = 1, beta = 0), each (batch, channels)."""
        return [
            (torch.ones(batch, c, device=device), torch.zeros(batch, c, device=device))
            for c in self.cn_channels
        ]

    def _split_cn(self, cn: CNParams | None) -> tuple[CNParams | None, CNParams | None]:
        if cn is None:
            return None, None
        n = len(self.encoder.cn_channels)
        return cn[:n], cn[n:]

    def decode(self, outputs: Tensor, skips: list[Tensor], cn: CNParams | None = None) -> Tensor:
        """Decode LSTM outputs (B, T, g_dim) into frames (B, T, C, S, S) with fixed skips.

        ``cn`` is the full list of CN parameters (encoder and decoder), as for :meth:`rollout`.
        """
        cn = self._split_cn(cn)[1]
        b, t = outputs.shape[:2]
        sk = [
            s.unsqueeze(1).expand(-1, t, *s.shape[1:]).reshape(b * t, *s.shape[1:]) for s in skips
        ]
        cn_rep = None
        if cn is not None:
            cn_rep = [(g.repeat_interleave(t, 0), bb.repeat_interleave(t, 0)) for g, bb in cn]
        x = self.decoder(outputs.reshape(b * t, -1), sk, cn_rep)
        return x.reshape(b, t, *x.shape[1:])

    def rollout(
        self,
        frames: Tensor,
        actions: Tensor,
        *,
        n_past: int,
        n_future: int,
        teacher_forcing: bool = False,
        cn: CNParams | None = None,
    ) -> Rollout:
        """Predict ``n_future`` frames after ``n_past`` history frames.

        Args:
            frames: (B, T, C, S, S) in [0, 1], T >= n_past (T >= n_past + n_future with teacher forcing).
            actions: (B, T', action_dim), T' >= n_past + n_future - 1; action k moves frame k to k + 1.
            teacher_forcing: feed true frames instead of predictions to the encoder after the history.
            cn: per-example CN parameters (see :meth:`identity_cn`), or None.

        Returns:
            The LSTM outputs, the predicted frames and the skips.
        """
        cn_enc, cn_dec = self._split_cn(cn)
        b = frames.shape[0]
        state = self.lstm.init_state(b, frames.device, frames.dtype)
        outputs, preds = [], []
        x = frames[:, 0]
        skips: list[Tensor] = []
        for k in range(n_past + n_future - 1):
            h, sk = self.encoder(x, cn_enc)
            if k == n_past - 1:
                skips = sk  # SVG: skips come from the last history frame
            inp = torch.cat([h, actions[:, k]], 1) if self.cfg.action_dim else h
            o, state = self.lstm(inp, state)
            outputs.append(o)
            if k >= n_past - 1:
                pred = self.decoder(o, skips, cn_dec)
                preds.append(pred)
            if k + 1 < n_past or teacher_forcing:
                x = frames[:, k + 1]
            else:
                x = pred
        return Rollout(torch.stack(outputs, 1), torch.stack(preds, 1), skips)


class LatentEmbedding(nn.Module):
    """g_phi for latent tailoring: MLP of [o_{k-1}, o_k, a_k] (two LSTM outputs and the latest action)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n_in = 2 * cfg.g_dim + cfg.action_dim
        self.net = nn.Sequential(
            nn.Linear(n_in, cfg.emb_hidden),
            nn.ReLU(),
            nn.Linear(cfg.emb_hidden, cfg.emb_hidden),
            nn.ReLU(),
            nn.Linear(cfg.emb_hidden, cfg.emb_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(..., 2 g_dim + action_dim) -> (..., emb_out)."""
        return self.net(x)


class FrameEmbedding(nn.Module):
    """g_phi for CN tailoring: two 5x5 conv layers (32, 64 filters, ReLU, 2x2 max-pool), linear to 64.

    Input is two consecutive frames stacked on the channel axis: (N, 2C, S, S) -> (N, emb_conv_out).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * cfg.channels, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (cfg.size // 4) ** 2, cfg.emb_conv_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
