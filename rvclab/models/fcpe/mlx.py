"""FCPE pitch estimator in MLX; mirrors :mod:`rvclab.models.fcpe.torch` (same attribute paths).

Activations are (B, T, C) throughout (the torch net transposes to (B, C, T) around its convs).
Weight layouts: Conv1d (O, k, I); the depthwise conv (C, 31, 1); the output Linear holds the
weight-norm product g * v / ||v|| fused at conversion.

    audio (T,) -> log-mel (1, T // 160 + 1, 128)   same STFT/mel/log as the torch side, with
                                                    mx.fft.rfft and the same Slaney filterbank
    -> input_stack -> 6 x (x + conformer conv module) -> LayerNorm -> Linear -> sigmoid
    -> latent (1, T', 360) -> local-argmax / argmax decoder, threshold -> F0 Hz (0 unvoiced)

The depthwise k=31 conv is 31 shifted multiply-adds (cheap, exact order per tap); 1x1 convs
are matmuls.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from rvclab.mlx.activations import glu, silu
from rvclab.models.fcpe.config import (
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
)

LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default


class Identity(nn.Module):
    """Parameter-free placeholder keeping the torch Sequential's indices (Transpose, Dropout)."""

    def __call__(self, x):
        return x


class GLU(nn.Module):
    """a * sigmoid(b) with (a, b) the two halves of the channel axis."""

    def __call__(self, x):
        a, b = mx.split(x, 2, axis=-1)
        return glu(a, b)


class SiLU(nn.Module):
    def __call__(self, x):
        return silu(x)


class LeakyReLU(nn.Module):
    def __call__(self, x):
        return nn.leaky_relu(x, LEAKY_SLOPE)


class PointwiseConv1d(nn.Module):
    """k=1 Conv1d as a matmul: (B, T, I) -> (B, T, O); weight (O, 1, I)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.weight = mx.zeros((out_ch, 1, in_ch))
        self.bias = mx.zeros((out_ch,))

    def __call__(self, x):
        return x @ self.weight[:, 0, :].T + self.bias


class DepthWiseConv1d(nn.Module):
    """Depthwise k=31 conv, zero 'same' padding: (B, T, C) -> (B, T, C); ``conv`` weight
    (C, k, 1)."""

    def __init__(self, channels: int, kernel: int = DW_KERNEL):
        super().__init__()
        self.conv = {"weight": mx.zeros((channels, kernel, 1)), "bias": mx.zeros((channels,))}

    def __call__(self, x):
        return depthwise_conv(x, self.conv["weight"][:, :, 0], self.conv["bias"])


@mx.compile
def _two_taps(acc, x0, x1, w0, w1):
    return acc + x0 * w0 + x1 * w1


def depthwise_conv(x, w, bias):
    """(B, T, C) -> (B, T, C): sum_j x[t + j - k//2] * w[:, j] + bias, zero padding, taps added
    in order. The taps are row ranges of the padded input (free views) and the weights are laid
    out (k, C), so every operand is contiguous; taps go two per compiled kernel. Bit-identical to
    one multiply-add per tap (timings: docs/f0_methods.md)."""
    k = w.shape[1]
    t = x.shape[1]
    wt = mx.contiguous(w.T)  # (k, C)
    xp = mx.pad(x, [(0, 0), (k // 2, k // 2), (0, 0)])
    acc = xp[:, 0:t] * wt[0]
    j = 1
    while j + 1 < k:
        acc = _two_taps(acc, xp[:, j:j + t], xp[:, j + 1:j + 1 + t], wt[j], wt[j + 1])
        j += 2
    if j < k:
        acc = acc + xp[:, j:j + t] * wt[j]
    return acc + bias


class ConformerConvModule(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        inner = dim * 2
        self.net = [nn.LayerNorm(dim), Identity(), PointwiseConv1d(dim, inner * 2), GLU(),
                    DepthWiseConv1d(inner), SiLU(), PointwiseConv1d(inner, dim), Identity(),
                    Identity()]

    def __call__(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class CFNEncoderLayer(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conformer = ConformerConvModule(dim)
        self.norm = nn.LayerNorm(dim)  # the attention branch's norm; unused (conv-only model)

    def __call__(self, x):
        return x + self.conformer(x)


class ConformerNaiveEncoder(nn.Module):
    def __init__(self, n_layers: int, dim: int):
        super().__init__()
        self.encoder_layers = [CFNEncoderLayer(dim) for _ in range(n_layers)]

    def __call__(self, x):
        for layer in self.encoder_layers:
            x = layer(x)
        return x


class CFNaiveMelPE(nn.Module):
    """(B, T, 128) log-mel -> (B, T, 360) latent in [0, 1]."""

    def __init__(self, n_mels=N_MELS, out_dims=OUT_DIMS, hidden=HIDDEN, n_layers=N_LAYERS):
        super().__init__()
        self.input_stack = [nn.Conv1d(n_mels, hidden, 3, padding=1),
                            nn.GroupNorm(GROUPS, hidden, pytorch_compatible=True), LeakyReLU(),
                            nn.Conv1d(hidden, hidden, 3, padding=1)]
        self.net = ConformerNaiveEncoder(n_layers, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.output_proj = nn.Linear(hidden, out_dims)
        self.cent_table = mx.zeros((out_dims,))
        self.gaussian_blurred_cent_mask = mx.zeros(())

    def __call__(self, mel: mx.array) -> mx.array:
        x = mel
        for layer in self.input_stack:
            x = layer(x)
        x = self.norm(self.net(x))
        return mx.sigmoid(self.output_proj(x))


def decode(latent: mx.array, cent_table: mx.array, mode: str = "local_argmax",
           threshold: float = DEFAULT_THRESHOLD) -> tuple[mx.array, mx.array]:
    """(B, T, 360) latent -> (f0 Hz (B, T), confidence (B, T)); 0 Hz where
    confidence <= threshold."""
    conf = latent.max(axis=-1)
    if mode == "local_argmax":
        idx = mx.argmax(latent, axis=-1)[..., None]
        win = mx.clip(idx + mx.arange(-LOCAL_HALF, LOCAL_HALF + 1), 0, latent.shape[-1] - 1)
        y = mx.take_along_axis(latent, win, axis=-1)
        c = cent_table[win]
    elif mode == "argmax":
        y, c = latent, mx.broadcast_to(cent_table, latent.shape)
    else:
        raise ValueError(f"FCPE decoder '{mode}' unknown; expected 'local_argmax' or 'argmax'")
    cents = (c * y).sum(axis=-1) / y.sum(axis=-1)
    f0 = 10.0 * mx.power(2.0, cents / 1200.0)
    return mx.where(conf > threshold, f0, 0.0), conf


def log_mel(audio: np.ndarray, mel_basis: np.ndarray) -> mx.array:
    """(T,) audio @ 16 kHz -> (1, T // 160 + 1, 128) log-mel (see rvclab.models.fcpe.torch.log_mel)."""
    y = mx.array(np.ascontiguousarray(audio, dtype=np.float32))
    n = y.shape[0]
    left = (WIN - HOP) // 2
    right = max((WIN - HOP + 1) // 2, WIN - n - left)
    if right < n:  # reflect padding (no edge repeat), as torch's 'reflect'
        y = mx.concatenate([y[1:left + 1][::-1], y, y[n - 1 - right:n - 1][::-1]])
    else:
        y = mx.pad(y, [(left, right)])
    n_stft = (y.shape[0] - N_FFT) // HOP + 1
    frames = mx.as_strided(y, (n_stft, N_FFT), (HOP, 1))
    window = mx.array(np.hanning(WIN + 1)[:-1].astype(np.float32))  # periodic Hann
    spec = mx.fft.rfft(frames * window, axis=-1)  # (frames, 513)
    mag = mx.sqrt(mx.real(spec) ** 2 + mx.imag(spec) ** 2 + MAG_EPS)
    mel = mx.log(mx.maximum(mag @ mx.array(mel_basis).T, LOG_CLAMP))  # (frames, 128)
    want = n // HOP + 1
    if mel.shape[0] < want:
        mel = mx.concatenate([mel, mx.repeat(mel[-1:], want - mel.shape[0], axis=0)])
    return mel[:want][None]


def infer(model: CFNaiveMelPE, audio: np.ndarray, mel_basis: np.ndarray,
          mode: str = "local_argmax", threshold: float = DEFAULT_THRESHOLD):
    """(T,) audio @ 16 kHz -> (f0 Hz, confidence) MLX arrays, each (T // 160 + 1,)."""
    latent = model(log_mel(audio, mel_basis))
    f0, conf = decode(latent, model.cent_table, mode, threshold)
    return f0[0], conf[0]
