"""FCPE pitch estimator (torchfcpe's bundled ``fcpe_c_v001``), PyTorch reference.

Pipeline at 16 kHz, 10 ms hop:

    audio (T,) -> log-mel (1, T // 160 + 1, 128)   reflect pad 432|432, 1024-point Hann STFT
                                                    (not centred), |X| = sqrt(re^2 + im^2 + 1e-9),
                                                    128 Slaney mel bins 0-8000 Hz, log(clamp(1e-5)),
                                                    last frame repeated to T // 160 + 1 frames
    -> input_stack: Conv1d(128, 512, 3) GroupNorm(4) LeakyReLU Conv1d(512, 512, 3)
    -> 6 x CFNEncoderLayer: x + ConformerConvModule(x)    (the bundled model is conv-only)
         LayerNorm -> 1x1 conv 512->2048 -> GLU -> depthwise conv k31 -> SiLU -> 1x1 conv 1024->512
    -> LayerNorm -> weight-normed Linear(512, 360) -> sigmoid: latent (1, T', 360)
    -> decoder: "local_argmax" (weighted mean of cents over the 9 bins around the argmax, indices
       clamped to [0, 359]) or "argmax" (weighted mean over all bins); frames whose max latent is
       <= threshold (0.006 in RVC/Applio) -> F0 0. Cents over 10 Hz: f0 = 10 * 2^(cents / 1200).

Attribute paths equal the checkpoint's keys; loading is in :mod:`rvclab.models.fcpe.io`, sizes
and the filterbank in :mod:`rvclab.models.fcpe.config`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from rvclab.models.fcpe.config import (
    CENT_F0_MAX,
    CENT_F0_MIN,
    DEFAULT_THRESHOLD,
    DW_KERNEL,
    GROUPS,
    HIDDEN,
    HOP,
    LOCAL_HALF,
    LOG_CLAMP,
    MAG_EPS,
    N_FFT,
    N_LAYERS,
    N_MELS,
    OUT_DIMS,
    WIN,
    mel_basis,
)


class Transpose(nn.Module):
    """Swap axes 1 and 2 (keeps the checkpoint's Sequential indices)."""

    def forward(self, x):
        return x.transpose(1, 2)


class DepthWiseConv1d(nn.Module):
    """Depthwise Conv1d, k=31, 'same' padding 15: (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel: int = DW_KERNEL):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)

    def forward(self, x):
        return self.conv(x)


class ConformerConvModule(nn.Module):
    """(B, T, C) -> (B, T, C): LN, 1x1 conv to 4C, GLU, depthwise conv, SiLU, 1x1 conv to C."""

    def __init__(self, dim: int):
        super().__init__()
        inner = dim * 2
        self.net = nn.Sequential(
            nn.LayerNorm(dim), Transpose(), nn.Conv1d(dim, inner * 2, 1), nn.GLU(dim=1),
            DepthWiseConv1d(inner), nn.SiLU(), nn.Conv1d(inner, dim, 1), Transpose(),
            nn.Dropout(0.0),
        )

    def forward(self, x):
        return self.net(x)


class CFNEncoderLayer(nn.Module):
    """Conv-only conformer layer: x + conv_module(x); ``norm`` exists (attention's, unused)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conformer = ConformerConvModule(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return x + self.conformer(x)


class ConformerNaiveEncoder(nn.Module):
    def __init__(self, n_layers: int, dim: int):
        super().__init__()
        self.encoder_layers = nn.ModuleList([CFNEncoderLayer(dim) for _ in range(n_layers)])

    def forward(self, x):
        for layer in self.encoder_layers:
            x = layer(x)
        return x


class CFNaiveMelPE(nn.Module):
    """(B, T, 128) log-mel -> (B, T, 360) latent in [0, 1]."""

    def __init__(self, n_mels=N_MELS, out_dims=OUT_DIMS, hidden=HIDDEN, n_layers=N_LAYERS,
                 f0_min=CENT_F0_MIN, f0_max=CENT_F0_MAX):
        super().__init__()
        self.out_dims = out_dims
        self.input_stack = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 3, 1, 1), nn.GroupNorm(GROUPS, hidden), nn.LeakyReLU(),
            nn.Conv1d(hidden, hidden, 3, 1, 1),
        )
        self.net = ConformerNaiveEncoder(n_layers, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.output_proj = weight_norm(nn.Linear(hidden, out_dims))
        cents = 1200.0 * torch.log2(torch.tensor([f0_min, f0_max]) / 10.0)
        self.register_buffer("cent_table", torch.linspace(cents[0], cents[1], out_dims))
        self.register_buffer("gaussian_blurred_cent_mask", cents[1].clone())

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.input_stack(mel.transpose(1, 2)).transpose(1, 2)
        x = self.norm(self.net(x))
        return torch.sigmoid(self.output_proj(x))


def decode(latent: torch.Tensor, cent_table: torch.Tensor, mode: str = "local_argmax",
           threshold: float = DEFAULT_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 360) latent -> (f0 Hz (B, T), confidence (B, T)); f0 0 where
    confidence <= threshold."""
    conf, idx = latent.max(dim=-1, keepdim=True)
    if mode == "local_argmax":
        win = (idx + torch.arange(-LOCAL_HALF, LOCAL_HALF + 1, device=idx.device)).clamp(0, latent.shape[-1] - 1)
        y = latent.gather(-1, win)
        c = cent_table[win]
    elif mode == "argmax":
        y, c = latent, cent_table.expand_as(latent)
    else:
        raise ValueError(f"FCPE decoder '{mode}' unknown; expected 'local_argmax' or 'argmax'")
    cents = (c * y).sum(-1, keepdim=True) / y.sum(-1, keepdim=True)
    f0 = 10.0 * 2 ** (cents / 1200.0)
    f0 = torch.where(conf > threshold, f0, torch.zeros_like(f0))
    return f0[..., 0], conf[..., 0]


def log_mel(audio: np.ndarray) -> torch.Tensor:
    """(T,) audio @ 16 kHz -> (1, T // 160 + 1, 128) log-mel, as torchfcpe's Wav2MelModule."""
    y = torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32))[None]
    n = y.shape[-1]
    left = (WIN - HOP) // 2
    right = max((WIN - HOP + 1) // 2, WIN - n - left)
    y = F.pad(y[:, None], (left, right), mode="reflect" if right < n else "constant")[:, 0]
    spec = torch.stft(y, N_FFT, hop_length=HOP, win_length=WIN, window=torch.hann_window(WIN),
                      center=False, normalized=False, onesided=True, return_complex=True)
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + MAG_EPS)
    mel = torch.log(torch.clamp(torch.tensor(mel_basis()) @ mag, min=LOG_CLAMP))
    mel = mel.transpose(1, 2)  # (1, frames, 128)
    frames = n // HOP + 1
    if mel.shape[1] < frames:
        mel = torch.cat([mel, mel[:, -1:].expand(1, frames - mel.shape[1], N_MELS)], 1)
    return mel[:, :frames]


def expected_shapes() -> dict[str, tuple]:
    """{key: shape} of the bundled checkpoint's ``model`` state dict (weight-norm g/v form)."""
    with torch.device("meta"):
        model = CFNaiveMelPE()
    out = {}
    for k, v in model.state_dict().items():
        k = k.replace("parametrizations.weight.original0", "weight_g")
        k = k.replace("parametrizations.weight.original1", "weight_v")
        out[k] = tuple(v.shape)
    return out


@torch.no_grad()
def infer(model: CFNaiveMelPE, audio: np.ndarray, mode: str = "local_argmax",
          threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(T,) audio @ 16 kHz -> (f0 Hz, confidence), each (T // 160 + 1,) float32. The log-mel is
    made on the CPU and moved to the model's device (``model.cent_table``'s)."""
    latent = model(log_mel(audio).to(model.cent_table.device))
    f0, conf = decode(latent, model.cent_table, mode, threshold)
    return f0[0].cpu().numpy(), conf[0].cpu().numpy()
