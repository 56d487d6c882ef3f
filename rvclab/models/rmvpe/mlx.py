"""RMVPE pitch estimator, MLX port of :mod:`rvclab.models.rmvpe.torch`.

Same class names and attribute paths as the torch reference, so converted weights load by
name. Layout: torch (B, C, T, F) is MLX (B, T, F, C); the salience is (B, T, 360) on both.
The layers (padding, convs, BatchNorm and its folding) are in :mod:`rvclab.models.rmvpe.mlx_layers`.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from rvclab.audio import HOP_16K, mel_filterbank
from rvclab.mlx import ops
from rvclab.models.rmvpe.config import DEFAULT_PAD_MODE, RmvpeConfig, check_rmvpe_framing, unet_segments
from rvclab.models.rmvpe.gru import GRU
from rvclab.models.rmvpe.mlx_layers import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    ReLU,
    Sigmoid,
    _bn_src,
    _Derived,
    avg_pool2,
    fold_batchnorm,
    reflect_pad,
)


# --- network ---------------------------------------------------------------------------------
class ConvBlockRes(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = [
            Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            BatchNorm2d(out_channels),
            ReLU(),
            Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            BatchNorm2d(out_channels),
            ReLU(),
        ]
        self.is_shortcut = in_channels != out_channels
        if self.is_shortcut:
            self.shortcut = Conv2d(in_channels, out_channels, 1)  # no BatchNorm here
        self._derived = _Derived()

    def folded(self):
        """((w1, b1), (w2, b2)): both 3x3 convs with their eval-mode BatchNorm folded in."""
        c1, bn1, _, c2, bn2, _ = self.conv
        src = (c1.weight, c2.weight) + _bn_src(bn1) + _bn_src(bn2)
        return self._derived.get(src, lambda: (fold_batchnorm(c1.weight, c1.get("bias"), bn1),
                                               fold_batchnorm(c2.weight, c2.get("bias"), bn2)))

    def __call__(self, x):
        skip = self.shortcut(x) if self.is_shortcut else x
        c1, bn1, _, c2, bn2, _ = self.conv
        if bn1.train_mode or bn2.train_mode:
            y = x
            for layer in self.conv:
                y = layer(y)
            return y + skip
        (w1, b1), (w2, b2) = self.folded()  # conv + BatchNorm = one conv with a bias
        y = nn.relu(ops.conv2d(x, w1, b1, padding=c1.padding))
        y = nn.relu(ops.conv2d(y, w2, b2, padding=c2.padding))
        return y + skip


class ResEncoderBlock(nn.Module):
    def __init__(self, in_channels, out_channels, pool, n_blocks):
        super().__init__()
        chans = [in_channels] + [out_channels] * n_blocks
        self.conv = [ConvBlockRes(chans[i], chans[i + 1]) for i in range(n_blocks)]
        self.pool = pool

    def __call__(self, x):
        for block in self.conv:
            x = block(x)
        return (x, avg_pool2(x)) if self.pool else x


class Encoder(nn.Module):
    def __init__(self, in_channels, n_encoders, n_blocks, out_channels=16):
        super().__init__()
        self.bn = BatchNorm2d(in_channels)
        self.layers = []
        for _ in range(n_encoders):
            self.layers.append(ResEncoderBlock(in_channels, out_channels, True, n_blocks))
            in_channels, out_channels = out_channels, out_channels * 2
        self.out_channel = out_channels

    def __call__(self, x):
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            skip, x = layer(x)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, in_channels, out_channels, n_inters, n_blocks):
        super().__init__()
        chans = [in_channels] + [out_channels] * n_inters
        self.layers = [ResEncoderBlock(chans[i], chans[i + 1], False, n_blocks)
                       for i in range(n_inters)]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    def __init__(self, in_channels, out_channels, n_blocks):
        super().__init__()
        self.conv1 = [ConvTranspose2d(in_channels, out_channels, 3, 2, 1, 1),
                      BatchNorm2d(out_channels), ReLU()]
        chans = [out_channels * 2] + [out_channels] * n_blocks
        self.conv2 = [ConvBlockRes(chans[i], chans[i + 1]) for i in range(n_blocks)]

    def __call__(self, x, skip):
        up, bn, relu = self.conv1
        x = relu(up(x, bn))  # BatchNorm folded into the upsampling conv (eval mode)
        x = mx.concatenate([x, skip], axis=-1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels, n_decoders, n_blocks):
        super().__init__()
        self.layers = []
        for _ in range(n_decoders):
            self.layers.append(ResDecoderBlock(in_channels, in_channels // 2, n_blocks))
            in_channels //= 2

    def __call__(self, x, skips):
        for i, layer in enumerate(self.layers):
            x = layer(x, skips[-1 - i])
        return x


class DeepUnet(nn.Module):
    def __init__(self, cfg: RmvpeConfig):
        super().__init__()
        if tuple(cfg.kernel_size) != (2, 2):
            raise ValueError(f"the MLX port supports kernel_size (2, 2); got {cfg.kernel_size}")
        self.encoder = Encoder(cfg.in_channels, cfg.en_de_layers, cfg.n_blocks,
                               cfg.en_out_channels)
        top = self.encoder.out_channel
        self.intermediate = Intermediate(top // 2, top, cfg.inter_layers, cfg.n_blocks)
        self.decoder = Decoder(top, cfg.en_de_layers, cfg.n_blocks)

    def __call__(self, x):
        """(B, T, 128, 1) -> (B, T, 128, en_out_channels)."""
        x, skips = self.encoder(x)
        x = self.intermediate(x)
        return self.decoder(x, skips)


class BiGRU(nn.Module):
    def __init__(self, input_features, hidden_features, num_layers):
        super().__init__()
        self.gru = GRU(input_features, hidden_features, num_layers, bidirectional=True)

    def __call__(self, x):
        return self.gru(x)[0]


class Linear(nn.Module):
    def __init__(self, in_f, out_f):
        super().__init__()
        self.weight = mx.zeros((out_f, in_f))
        self.bias = mx.zeros((out_f,))

    def __call__(self, x):
        return mx.addmm(self.bias, x, self.weight.T)


class E2E(nn.Module):
    def __init__(self, cfg: RmvpeConfig | None = None):
        super().__init__()
        cfg = cfg or RmvpeConfig()
        self.cfg = cfg
        self.unet = DeepUnet(cfg)
        self.cnn = Conv2d(cfg.en_out_channels, 3, 3, padding=1)
        self.fc = [BiGRU(3 * cfg.n_mels, cfg.gru_hidden, cfg.n_gru),
                   Linear(2 * cfg.gru_hidden, cfg.n_classes), Dropout(), Sigmoid()]

    def features(self, mel: mx.array, segment_frames: int | None = None) -> mx.array:
        """mel (B, T, 128) -> BiGRU input (B, T, 384) (torch order: channel-major, then mel).

        Long inputs run in overlapping time segments as in the torch reference
        (:func:`unet_segments`); each segment's kept frames are evaluated before the next
        segment is built, so the lazy graph never holds two segments' activations.
        """
        segments = unet_segments(mel.shape[1], self.cfg, segment_frames)
        if len(segments) == 1:
            return self._features(mel)
        parts = []
        for lo, hi, keep_lo, keep_hi in segments:
            part = self._features(mel[:, lo:hi])[:, keep_lo - lo:keep_hi - lo]
            mx.eval(part)
            parts.append(part)
        return mx.concatenate(parts, axis=1)

    def _features(self, mel: mx.array) -> mx.array:
        """One call of the U-Net + cnn: (B, T, 128) -> (B, T, 384)."""
        x = self.cnn(self.unet(mel[..., None]))  # (B, T, 128, 3)
        b, t = x.shape[:2]
        return mx.swapaxes(x, -1, -2).reshape(b, t, -1)

    def __call__(self, mel: mx.array) -> mx.array:
        """mel (B, T, 128), T a multiple of 32 -> salience (B, T, 360)."""
        x = self.features(mel)
        for layer in self.fc:
            x = layer(x)
        return x


# --- front end and framing -------------------------------------------------------------------
class MelSpectrogram:
    """audio (B, N) @ 16 kHz -> log-mel (B, N // 160 + 1, 128)."""

    def __init__(self, cfg: RmvpeConfig | None = None):
        cfg = cfg or RmvpeConfig()
        self.cfg = cfg
        fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, htk=True)
        self.mel_basis_t = mx.array(np.ascontiguousarray(fb.T))  # (513, 128)
        n = np.arange(cfg.win_length)
        win = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.win_length)  # periodic Hann
        lpad = (cfg.n_fft - cfg.win_length) // 2
        win = np.pad(win, (lpad, cfg.n_fft - cfg.win_length - lpad))
        self.window = mx.array(win.astype(np.float32))

    def spectrogram(self, audio: mx.array) -> mx.array:
        """(B, N) -> magnitude (B, T, n_fft // 2 + 1); centred, reflect-padded frames."""
        c = self.cfg
        half = c.n_fft // 2
        x = reflect_pad(audio, -1, half, half)
        b, n = x.shape
        t = 1 + (n - c.n_fft) // c.hop_length
        frames = mx.as_strided(x, (b, t, c.n_fft), (n, c.hop_length, 1))
        spec = mx.fft.rfft(frames * self.window, axis=-1)
        return mx.abs(spec)

    def __call__(self, audio: mx.array) -> mx.array:
        mel = self.spectrogram(audio) @ self.mel_basis_t
        return mx.log(mx.maximum(mel, self.cfg.clamp))


def pad_frames(mel: mx.array, multiple: int = RmvpeConfig.pad_multiple, mode: str = DEFAULT_PAD_MODE) -> mx.array:
    """Pad the frame axis of (B, T, 128) at the end to a multiple of ``multiple``: "reflect" or
    "constant" (zeros); see the torch reference for the reflect minimum."""
    n = mel.shape[1]
    pad = multiple * ((n - 1) // multiple + 1) - n
    if mode == "reflect" and pad >= n:
        raise ValueError(
            f"RMVPE needs at least {pad + 1} mel frames to reflect-pad {n} frames to a multiple "
            f"of {multiple}; got {n} (audio too short: at least ~{(pad + 1) * HOP_16K} samples)"
        )
    if not pad:
        return mel
    return reflect_pad(mel, 1, 0, pad) if mode == "reflect" else mx.pad(mel, [(0, 0), (0, pad), (0, 0)])


def mel_to_salience(model: E2E, mel: mx.array, chunk_frames: int | None = RmvpeConfig.chunk_frames,
                    pad_mode: str = DEFAULT_PAD_MODE) -> mx.array:
    """(B, T, 128) -> (B, T, 360): pad to 32 frames, independent chunks (None: one call), as torch."""
    check_rmvpe_framing(pad_mode, chunk_frames, model.cfg.pad_multiple)
    n = mel.shape[1]
    padded = pad_frames(mel, model.cfg.pad_multiple, pad_mode)
    chunk = chunk_frames or padded.shape[1]
    outs = []
    for s in range(0, padded.shape[1], chunk):
        out = model(padded[:, s:s + chunk])
        mx.eval(out)  # bound memory: one chunk's activations at a time
        outs.append(out)
    return mx.concatenate(outs, axis=1)[:, :n]


class RMVPE:
    """Audio -> F0 with the MLX port; decoding is shared with the torch reference (numpy)."""

    def __init__(self, model: E2E):
        self.model = model
        self.cfg = model.cfg
        self.mel = MelSpectrogram(model.cfg)

    def salience(self, audio: np.ndarray, chunk_frames: int | None = RmvpeConfig.chunk_frames,
                 pad_mode: str = DEFAULT_PAD_MODE) -> np.ndarray:
        """(N,) float audio @ 16 kHz -> (N // 160 + 1, 360) float32."""
        x = mx.array(np.asarray(audio, dtype=np.float32))[None]
        sal = mel_to_salience(self.model, self.mel(x), chunk_frames, pad_mode)
        return np.array(sal[0])

    def infer(self, audio: np.ndarray, threshold: float | None = None,
              chunk_frames: int | None = RmvpeConfig.chunk_frames, pad_mode: str = DEFAULT_PAD_MODE) -> np.ndarray:
        """(N,) audio @ 16 kHz -> (N // 160 + 1,) F0 Hz, 0 = unvoiced."""
        thr = self.cfg.threshold if threshold is None else threshold
        return np.array(decode(mx.array(self.salience(audio, chunk_frames, pad_mode)), thr, self.cfg))


# --- decoding (MLX) --------------------------------------------------------------------------
def to_local_average_cents(salience: mx.array, threshold: float = RmvpeConfig.threshold,
                           cfg: RmvpeConfig | None = None) -> mx.array:
    """(T, 360) -> (T,) cents: salience-weighted mean over 9 bins around the argmax; 0 if the
    peak is <= threshold. Bins past either edge count as zero salience."""
    cfg = cfg or RmvpeConfig()
    half = cfg.decode_window // 2
    mapping = mx.array(np.pad(cfg.bin_cents(), (half, half)).astype(np.float32))
    padded = mx.pad(salience, [(0, 0), (half, half)])
    centre = mx.argmax(salience, axis=1) + half
    idx = centre[:, None] + mx.arange(-half, half + 1)[None, :]
    local = mx.take_along_axis(padded, idx, axis=1)
    weights = local.sum(axis=1)
    out = (local * mapping[idx]).sum(axis=1) / mx.where(weights > 0, weights, 1.0)
    return mx.where(salience.max(axis=1) > threshold, out, 0.0)


def decode(salience: mx.array, threshold: float = RmvpeConfig.threshold, cfg: RmvpeConfig | None = None):
    """(T, 360) salience -> (T,) F0 Hz; 0 = unvoiced."""
    cents = to_local_average_cents(salience, threshold, cfg)
    return mx.where(cents > 0, 10.0 * mx.power(2.0, cents / 1200.0), 0.0)
