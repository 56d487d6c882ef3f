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

Attribute paths equal the checkpoint's keys (``input_stack.{0,1,3}``,
``net.encoder_layers.N.conformer.net.{0,2,4.conv,6}``, ``net.encoder_layers.N.norm``, ``norm``,
``output_proj.weight_{g,v}``, ``cent_table``, ``gaussian_blurred_cent_mask``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from rvclab.models.f0_packages import WeightFileError, asset_path, check_state_dict

SAMPLE_RATE = 16000
HOP = 160
N_FFT = 1024
WIN = 1024
N_MELS = 128
FMIN, FMAX = 0.0, 8000.0
LOG_CLAMP = 1e-5
# Model sizes of the bundled checkpoint (its config_dict: hidden 512, 6 layers, conv-only).
HIDDEN, N_LAYERS, OUT_DIMS = 512, 6, 360
DW_KERNEL = 31
DEFAULT_THRESHOLD = 0.006  # RVC / Applio pass this to torchfcpe


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
                 f0_min=32.7, f0_max=1975.5):
        super().__init__()
        self.out_dims = out_dims
        self.input_stack = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 3, 1, 1), nn.GroupNorm(4, hidden), nn.LeakyReLU(),
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
        win = (idx + torch.arange(-4, 5)).clamp(0, latent.shape[-1] - 1)
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


@lru_cache(maxsize=2)
def mel_basis() -> np.ndarray:
    """(128, 513) Slaney mel filterbank, 0-8000 Hz (librosa's default norm), float32."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN,
                               fmax=FMAX).astype(np.float32)


def log_mel(audio: np.ndarray) -> torch.Tensor:
    """(T,) audio @ 16 kHz -> (1, T // 160 + 1, 128) log-mel, as torchfcpe's Wav2MelModule."""
    y = torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32))[None]
    n = y.shape[-1]
    left = (WIN - HOP) // 2
    right = max((WIN - HOP + 1) // 2, WIN - n - left)
    y = F.pad(y[:, None], (left, right), mode="reflect" if right < n else "constant")[:, 0]
    spec = torch.stft(y, N_FFT, hop_length=HOP, win_length=WIN, window=torch.hann_window(WIN),
                      center=False, normalized=False, onesided=True, return_complex=True)
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    mel = torch.log(torch.clamp(torch.from_numpy(mel_basis()) @ mag, min=LOG_CLAMP))
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


def load_state_dict(path: str | Path | None = None) -> tuple[dict, dict]:
    """(model state dict, config dict) of ``path`` (default: the installed torchfcpe's asset)."""
    from rvclab.checkpoints import load_checkpoint, to_plain

    path = Path(path) if path is not None else asset_path("fcpe")
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightFileError(f"{path}: expected a dict with key 'model' (and 'config_dict'), "
                              f"found {found}")
    config = to_plain(ckpt.get("config_dict", {}))
    model_cfg = config.get("model", {}) if isinstance(config, dict) else {}
    if model_cfg and not model_cfg.get("conv_only", False):
        raise WeightFileError(f"{path}: key 'config_dict.model.conv_only' is "
                              f"{model_cfg.get('conv_only')}; only the conv-only FCPE is supported")
    check_state_dict(ckpt["model"], expected_shapes(), path, "fcpe")
    return ckpt["model"], config


def load_fcpe(path: str | Path | None = None) -> CFNaiveMelPE:
    """FCPE with torchfcpe's bundled weights (or ``path``), eval mode, CPU."""
    sd, _ = load_state_dict(path)
    model = CFNaiveMelPE()
    model.load_state_dict(sd)
    return model.eval()


@torch.no_grad()
def infer(model: CFNaiveMelPE, audio: np.ndarray, mode: str = "local_argmax",
          threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(T,) audio @ 16 kHz -> (f0 Hz, confidence), each (T // 160 + 1,) float32."""
    latent = model(log_mel(audio))
    f0, conf = decode(latent, model.cent_table, mode, threshold)
    return f0[0].numpy(), conf[0].numpy()
