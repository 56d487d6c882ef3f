"""NSF-HiFiGAN vocoder in MLX: SineGen source, SourceModuleHnNSF, Generator, GeneratorNSF.

Layout ``(B, T, C)``; input z at frame rate, output waveform ``(B, T*hop, 1)`` @ ``sr``.
The SineGen random parts arrive as arrays (shared noise) or are drawn here (independent mode).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from rvclab.models.synth.config import (
    DEFAULT_PHASE_FORM,
    LRELU_SLOPE,
    POST_LRELU_SLOPE,
    SINE_AMP,
    SINE_NOISE_STD,
    VOICED_THRESHOLD,
    check_phase_form,
)
from rvclab.models.synth.mlx.layers import Conv1d, ConvTranspose1d, Linear, leaky_relu
from rvclab.models.synth.mlx.modules import ResBlock1, ResBlock2
from rvclab.models.synth.noise import HARMONIC_NUM
from rvclab.models.synth.window import DECODE_SEGMENT_FRAMES, decode_segments, decoder_context


def _interp_align_corners(x, upp):
    """torch ``F.interpolate(scale_factor=upp, mode='linear', align_corners=True)`` along T of
    (B, T, C), with torch's CPU float32 arithmetic: scale ``(T-1)/(T*upp-1)``, source position
    ``j * scale``, weights ``l1 = pos - floor(pos)``, ``l0 = 1 - l1``; torch's kernel evaluates
    ``x0*l0 + x1*l1`` as ``fma(x0, l0, x1*l1)``, reproduced on the CPU in float64 (exact
    product, one rounding). Off by an ulp, the wrapped phase can flag a wrap one sample apart."""
    n = x.shape[1]
    size = n * upp
    scale = np.float32(n - 1) / np.float32(size - 1) if size > 1 else np.float32(0)
    src = (np.arange(size, dtype=np.float32) * scale).astype(np.float32)
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    lam1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    lam0 = (np.float32(1) - lam1).astype(np.float32)
    x0, x1 = x[:, mx.array(i0)], x[:, mx.array(i1)]
    w0, w1 = mx.array(lam0)[None, :, None], mx.array(lam1)[None, :, None]
    if mx.default_device() == mx.cpu:
        return (x0.astype(mx.float64) * w0 + x1 * w1).astype(x.dtype)
    return x0 * w0 + x1 * w1


def cumsum_acc(x, axis=1):
    """Cumulative sum as torch computes it on the CPU: accumulated in float64, each partial sum
    rounded to float32 (a float32 running sum drifts in phase over long audio: docs/synthesizer.md).
    Devices without float64 (Metal) use a two-level float32 scan (per block of 256, then block
    offsets). ``x`` any shape, summed along ``axis``."""
    if mx.default_device() == mx.cpu:
        return mx.cumsum(x.astype(mx.float64), axis=axis).astype(x.dtype)
    n = x.shape[axis]
    block = 256
    if n <= block:
        return mx.cumsum(x, axis=axis)
    x = mx.moveaxis(x, axis, 1)
    pad = (-n) % block
    xp = mx.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
    xb = xp.reshape(x.shape[0], -1, block, *x.shape[2:])
    inner = mx.cumsum(xb, axis=2)
    offsets = mx.cumsum(inner[:, :, -1:], axis=1) - inner[:, :, -1:]
    out = (inner + offsets).reshape(xp.shape)[:, :n]
    return mx.moveaxis(out, 1, axis)


# --- NSF source -----------------------------------------------------------------------------------
class SineGen(nn.Module):
    """F0 (B, T) Hz at frame rate -> sine excitation (B, T*upp, dim) @ sr, uv, noise.

    The random parts (initial phases of the overtones, Gaussian noise) come in as arrays;
    when absent they are drawn here (independent-noise mode). ``phase_form`` as the torch
    reference's SineGen (rvclab.models.synth.config.PHASE_FORMS)."""

    def __init__(self, samp_rate, harmonic_num=HARMONIC_NUM, sine_amp=SINE_AMP,
                 noise_std=SINE_NOISE_STD, voiced_threshold=VOICED_THRESHOLD):
        super().__init__()
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.harmonic_num = harmonic_num
        self.dim = harmonic_num + 1
        self.sampling_rate = samp_rate
        self.voiced_threshold = voiced_threshold

    def __call__(self, f0, upp, phase0=None, noise=None, phase_form=DEFAULT_PHASE_FORM):
        """f0 (B, T) Hz @ 100 fps; phase0 (B, dim) initial phases in cycles (column 0 is 0);
        noise (B, T*upp, dim) standard normal -> sine (B, T*upp, dim), uv, scaled noise."""
        b, t = f0.shape
        f0 = f0[..., None].astype(mx.float32)  # (B, T, 1)
        harmonics = mx.arange(1, self.dim + 1, dtype=mx.float32)
        if phase0 is None:  # independent mode: draw here; the fundamental starts at phase 0
            phase0 = mx.random.uniform(shape=(b, self.dim)) * (mx.arange(self.dim) > 0)
        phase0 = mx.array(phase0, dtype=mx.float32)
        if check_phase_form(phase_form) == "frame-wrapped":
            sine = mx.sin(2 * math.pi * self._frame_wrapped_phase(f0, upp, harmonics, phase0))
        else:
            sine = mx.sin(cumsum_acc(self._cumsum_increments(f0, upp, harmonics, phase0), axis=1)
                          * 2 * math.pi)
        sine = sine * self.sine_amp
        uv = mx.repeat((f0 > self.voiced_threshold).astype(mx.float32), upp, axis=1)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        if noise is None:
            noise = mx.random.normal(sine.shape)
        noise = noise_amp * mx.array(noise, dtype=mx.float32).reshape(sine.shape)
        return sine * uv + noise, uv, noise

    def _cumsum_increments(self, f0, upp, harmonics, phase0):
        """"interpolated-cumsum": f0 (B, T, 1) -> per-sample phase increments (B, T*upp, dim)."""
        b = f0.shape[0]
        rad_values = mx.remainder(f0 * harmonics / self.sampling_rate, 1.0)  # (B, T, dim)
        rad_values = mx.concatenate([rad_values[:, :1] + phase0[:, None], rad_values[:, 1:]],
                                    axis=1)
        tmp_over_one = cumsum_acc(rad_values, axis=1) * upp
        tmp_over_one = mx.remainder(_interp_align_corners(tmp_over_one, upp), 1.0)
        rad_up = mx.repeat(rad_values, upp, axis=1)  # nearest upsampling
        wrapped = (tmp_over_one[:, 1:] - tmp_over_one[:, :-1]) < 0
        shift = mx.concatenate([mx.zeros((b, 1, self.dim)), wrapped.astype(mx.float32) * -1.0],
                               axis=1)
        return rad_up + shift

    def _frame_wrapped_phase(self, f0, upp, harmonics, phase0):
        """"frame-wrapped": f0 (B, T, 1) -> phase in cycles (B, T*upp, dim); fmod is x - trunc(x)."""
        b = f0.shape[0]
        ramp = f0 / self.sampling_rate * mx.arange(1, upp + 1, dtype=mx.float32)  # (B, T, upp)
        ends = ramp[:, :-1, -1:] + 0.5
        ends = ends - mx.trunc(ends) - 0.5
        offsets = cumsum_acc(ends, axis=1)
        offsets = mx.concatenate([mx.zeros((b, 1, 1)), offsets - mx.trunc(offsets)], axis=1)
        return (ramp + offsets).reshape(b, -1, 1) * harmonics + phase0[:, None]


class SourceModuleHnNSF(nn.Module):
    """Harmonic-plus-noise source: SineGen then Linear(dim -> 1) and tanh -> (B, T*upp, 1)."""

    def __init__(self, sampling_rate, harmonic_num=HARMONIC_NUM, sine_amp=SINE_AMP,
                 add_noise_std=SINE_NOISE_STD, voiced_threshold=VOICED_THRESHOLD):
        super().__init__()
        self.l_sin_gen = SineGen(sampling_rate, harmonic_num, sine_amp, add_noise_std,
                                 voiced_threshold)
        self.l_linear = Linear(harmonic_num + 1, 1)

    def __call__(self, f0, upp, phase0=None, noise=None, phase_form=DEFAULT_PHASE_FORM):
        sine, _, _ = self.l_sin_gen(f0, upp, phase0=phase0, noise=noise, phase_form=phase_form)
        return mx.tanh(self.l_linear(sine))


# --- vocoders -------------------------------------------------------------------------------------
class Generator(nn.Module):
    """HiFi-GAN without a source (the *_nono models): z (B, T, C) -> wave (B, T*hop, 1)."""

    def __init__(self, initial_channel, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                 upsample_rates, upsample_initial_channel, upsample_kernel_sizes, gin_channels=0):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.hop = math.prod(upsample_rates)
        self.context = decoder_context(upsample_rates, upsample_kernel_sizes, resblock_kernel_sizes,
                                       resblock_dilation_sizes)
        self.segment_frames = DECODE_SEGMENT_FRAMES  # frames per call on long inputs (set it per model)
        self.conv_pre = Conv1d(initial_channel, upsample_initial_channel, 7, padding=3)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups, self.resblocks = [], []
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            self.ups.append(ConvTranspose1d(upsample_initial_channel // (2**i),
                                            upsample_initial_channel // (2 ** (i + 1)), k, u,
                                            padding=(k - u) // 2))
        for i in range(len(self.ups)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, d))
        self.conv_post = Conv1d(ch, 1, 7, padding=3, bias=False)
        if gin_channels:
            self.cond = Conv1d(gin_channels, upsample_initial_channel, 1)

    def _stage(self, i, x):
        xs = None
        for j in range(self.num_kernels):
            y = self.resblocks[i * self.num_kernels + j](x)
            xs = y if xs is None else xs + y
        return xs / self.num_kernels

    def _post(self, x):
        return mx.tanh(self.conv_post(leaky_relu(x, POST_LRELU_SLOPE)))

    def __call__(self, x, g=None):  # x (B, T, C), g (B, 1, gin) -> (B, T*hop, 1)
        return self.body(x, g)

    def body(self, x, g=None, har=None, segment: int | None = None):
        """x (B, T, C), g (B, 1, gin), har (B, T*hop, 1) excitation or None -> (B, T*hop, 1).

        Long inputs run in overlapping segments of ``segment`` frames (default
        ``self.segment_frames``; :func:`rvclab.models.synth.window.decode_segments`), each
        evaluated before the next so that one segment's activations are alive at a time."""
        plan = decode_segments(x.shape[1], self.context, segment or self.segment_frames)
        if len(plan) == 1:
            return self._body(x, g, har)
        pieces = []
        for lo, hi, a, b in plan:
            y = self._body(x[:, lo:hi], g, None if har is None else har[:, lo * self.hop:hi * self.hop])
            pieces.append(y[:, (a - lo) * self.hop:(b - lo) * self.hop])
            mx.eval(pieces[-1])
        return mx.concatenate(pieces, axis=1)

    def _body(self, x, g, har):
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i in range(self.num_upsamples):
            x = self.ups[i](leaky_relu(x, LRELU_SLOPE))
            if har is not None:
                x = x + self.noise_convs[i](har)
            x = self._stage(i, x)
        return self._post(x)


class GeneratorNSF(Generator):
    """NSF-HiFiGAN: z (B, T, C), f0 (B, T) Hz -> wave (B, T*upp, 1) @ sr."""

    def __init__(self, initial_channel, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                 upsample_rates, upsample_initial_channel, upsample_kernel_sizes, gin_channels,
                 sr):
        super().__init__(initial_channel, resblock, resblock_kernel_sizes,
                         resblock_dilation_sizes, upsample_rates, upsample_initial_channel,
                         upsample_kernel_sizes, gin_channels)
        self.upp = self.hop  # upstream's name for the samples per frame
        self.m_source = SourceModuleHnNSF(sampling_rate=sr, harmonic_num=HARMONIC_NUM)
        self.noise_convs = []
        for i in range(len(upsample_rates)):
            c_cur = upsample_initial_channel // (2 ** (i + 1))
            if i + 1 < len(upsample_rates):
                s = math.prod(upsample_rates[i + 1:])
                self.noise_convs.append(Conv1d(1, c_cur, s * 2, stride=s, padding=s // 2))
            else:
                self.noise_convs.append(Conv1d(1, c_cur, 1))

    def __call__(self, x, f0, g=None, *, phase0=None, sine_noise=None, phase_form=DEFAULT_PHASE_FORM):
        """x (B, T, C), f0 (B, T) Hz, g (B, 1, gin); phase0 / sine_noise / phase_form as SineGen
        (None: drawn here) -> (B, T*upp, 1)."""
        har = self.m_source(f0, self.upp, phase0=phase0, noise=sine_noise, phase_form=phase_form)  # (B, T*upp, 1)
        return self.body(x, g, har)
