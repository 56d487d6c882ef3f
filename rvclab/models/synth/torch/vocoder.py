"""HiFi-GAN decoders of the RVC synthesizer: ``GeneratorNSF`` (F0 models) and ``Generator``.

The NSF source (``SourceModuleHnNSF`` / ``SineGen``) turns frame-rate F0 into a sine excitation
at the audio rate; its random draws come in as arguments (see :mod:`rvclab.models.synth.noise`).
z (B, inter, T) @ 100 fps -> audio (B, 1, T * hop) @ sr, hop = prod(upsample_rates).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rvclab.models.synth.config import (
    DEFAULT_PHASE_FORM,
    LRELU_SLOPE,
    POST_LRELU_SLOPE,
    SINE_AMP,
    SINE_NOISE_STD,
    VOICED_THRESHOLD,
    check_phase_form,
)
from rvclab.models.synth.noise import HARMONIC_NUM
from rvclab.models.synth.torch.layers import WNConvTranspose1d
from rvclab.models.synth.torch.modules import ResBlock1, ResBlock2
from rvclab.models.synth.window import DECODE_SEGMENT_FRAMES, decode_segments, decoder_context


class SineGen(nn.Module):
    """Sine excitation from F0, as RVC WebUI computes it (no gradients).

    f0 (B, T) Hz @ 100 fps, upp = hop; phase0 (B, dim) initial phases in cycles (column 0 is 0);
    noise (B, T*upp, dim) standard normal -> sine (B, T*upp, dim), uv (B, T*upp, 1),
    scaled noise (B, T*upp, dim).

    ``phase_form`` (rvclab.models.synth.config.PHASE_FORMS) picks how the phase is built:

    - "interpolated-cumsum" (RVC WebUI): per-frame phase increment ``rad = (f0 * h / sr) % 1`` for
      harmonic h; the initial phase is added to frame 0; the cumulative phase at the frame rate
      (times upp) is linearly interpolated (align_corners) to the audio rate and wrapped to
      [0, 1); every place where the wrapped value decreases marks a -1 cycle shift; the sine is
      ``sin(2 pi cumsum(nearest-upsampled rad + shift))``.
    - "frame-wrapped" (Applio): frame t's samples k = 1..upp get ``f0[t] / sr * k`` plus the
      running sum over earlier frames of their end phase ``f0 / sr * upp`` wrapped to
      [-0.5, 0.5), that sum wrapped with fmod; harmonic h multiplies the phase by h and the
      initial phase is added; the sine is ``sin(2 pi phase)``.

    Voiced iff f0 > threshold; output
    ``sine_amp * sine * uv + noise * (uv * noise_std + (1 - uv) * sine_amp / 3)``.
    """

    def __init__(self, samp_rate: int, harmonic_num: int = HARMONIC_NUM,
                 sine_amp: float = SINE_AMP, noise_std: float = SINE_NOISE_STD,
                 voiced_threshold: float = VOICED_THRESHOLD):
        super().__init__()
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.harmonic_num = harmonic_num
        self.dim = harmonic_num + 1
        self.sampling_rate = samp_rate
        self.voiced_threshold = voiced_threshold

    def forward(self, f0: torch.Tensor, upp: int, phase0: torch.Tensor, noise: torch.Tensor,
                phase_form: str = DEFAULT_PHASE_FORM):
        with torch.no_grad():
            f0 = f0.unsqueeze(-1).float()  # (B, T, 1)
            harmonics = torch.arange(1, self.dim + 1, dtype=f0.dtype, device=f0.device)
            if check_phase_form(phase_form) == "frame-wrapped":
                sine = torch.sin(2 * math.pi * self._frame_wrapped_phase(f0, upp, harmonics, phase0))
            else:
                sine = torch.sin(torch.cumsum(self._cumsum_increments(f0, upp, harmonics, phase0), dim=1)
                                 * 2 * math.pi)
            sine = sine * self.sine_amp
            uv = (f0 > self.voiced_threshold).to(f0.dtype)
            uv = F.interpolate(uv.transpose(2, 1), scale_factor=float(upp),
                               mode="nearest").transpose(2, 1)  # (B, T*upp, 1)
            noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
            noise = noise_amp * noise.to(sine)
            sine = sine * uv + noise
        return sine, uv, noise

    def _cumsum_increments(self, f0, upp: int, harmonics, phase0):
        """"interpolated-cumsum": f0 (B, T, 1) -> per-sample phase increments (B, T*upp, dim)."""
        rad = (f0 * harmonics / self.sampling_rate) % 1  # (B, T, dim)
        rad[:, 0, :] = rad[:, 0, :] + phase0.to(rad)
        cum = torch.cumsum(rad, 1) * upp  # (B, T, dim)
        cum = F.interpolate(cum.transpose(2, 1), scale_factor=float(upp), mode="linear",
                            align_corners=True).transpose(2, 1)  # (B, T*upp, dim)
        rad = F.interpolate(rad.transpose(2, 1), scale_factor=float(upp),
                            mode="nearest").transpose(2, 1)
        cum = cum % 1
        wrapped = (cum[:, 1:, :] - cum[:, :-1, :]) < 0
        shift = torch.zeros_like(rad)
        shift[:, 1:, :] = wrapped * -1.0
        return rad + shift

    def _frame_wrapped_phase(self, f0, upp: int, harmonics, phase0):
        """"frame-wrapped": f0 (B, T, 1) -> phase in cycles (B, T*upp, dim)."""
        b = f0.shape[0]
        ramp = f0 / self.sampling_rate * torch.arange(1, upp + 1, dtype=f0.dtype, device=f0.device)
        ends = torch.fmod(ramp[:, :-1, -1:] + 0.5, 1.0) - 0.5  # (B, T-1, 1)
        offsets = torch.fmod(torch.cumsum(ends, dim=1), 1.0)
        ramp = ramp + F.pad(offsets, (0, 0, 1, 0))  # frame 0 starts at 0
        return ramp.reshape(b, -1, 1) * harmonics.reshape(1, 1, -1) + phase0.to(ramp)[:, None, :]


class SourceModuleHnNSF(nn.Module):
    """Harmonic-plus-noise source: SineGen, then ``tanh(l_linear(sines))`` merging harmonics.

    f0 (B, T) Hz, upp -> (B, T*upp, 1) excitation. ``l_linear``: Linear(dim, 1).
    """

    def __init__(self, sampling_rate: int, harmonic_num: int = HARMONIC_NUM,
                 sine_amp: float = SINE_AMP, add_noise_std: float = SINE_NOISE_STD,
                 voiced_threshold: float = VOICED_THRESHOLD):
        super().__init__()
        self.l_sin_gen = SineGen(sampling_rate, harmonic_num, sine_amp, add_noise_std,
                                 voiced_threshold)
        self.l_linear = nn.Linear(harmonic_num + 1, 1)
        self.l_tanh = nn.Tanh()

    def forward(self, f0, upp: int, phase0, noise, phase_form: str = DEFAULT_PHASE_FORM):
        sines, _, _ = self.l_sin_gen(f0, upp, phase0, noise, phase_form)
        sines = sines.to(self.l_linear.weight.dtype)
        return self.l_tanh(self.l_linear(sines))


def _resblock_class(kind: str):
    return ResBlock1 if str(kind) == "1" else ResBlock2


class Generator(nn.Module):
    """Plain HiFi-GAN decoder of the no-F0 models. z (B, C, T), g (B, gin, 1) -> (B, 1, T*hop).

    ``conv_pre`` (512, C, 7) -> per stage: leaky ReLU(0.1), ``ups[i]`` (weight-normed transposed
    conv, stride u, kernel k, padding (k-u)//2), mean of the stage's resblocks -> leaky ReLU(0.01)
    -> ``conv_post`` (1, ch, 7, no bias) -> tanh. ``cond`` (512, gin, 1) adds the speaker.
    """

    def __init__(self, initial_channel, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                 upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
                 gin_channels: int = 0):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.hop = math.prod(upsample_rates)
        self.context = decoder_context(upsample_rates, upsample_kernel_sizes, resblock_kernel_sizes,
                                       resblock_dilation_sizes)
        self.segment_frames = DECODE_SEGMENT_FRAMES  # frames per call on long inputs (set it per model)
        # registered first so the state-dict order matches upstream's (m_source, noise_convs, ...)
        self._build_source(upsample_rates, upsample_initial_channel)
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        block = _resblock_class(resblock)
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            self.ups.append(WNConvTranspose1d(upsample_initial_channel // 2**i,
                                              upsample_initial_channel // 2 ** (i + 1),
                                              k, u, padding=(k - u) // 2))
        self.resblocks = nn.ModuleList()
        for i in range(self.num_upsamples):
            ch = upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        if gin_channels != 0:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def _build_source(self, upsample_rates, upsample_initial_channel) -> None:
        """No excitation source in the plain generator (GeneratorNSF adds one)."""

    def _stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Mean of the resblocks of upsampling stage i."""
        xs = None
        for j in range(self.num_kernels):
            y = self.resblocks[i * self.num_kernels + j](x)
            xs = y if xs is None else xs + y
        return xs / self.num_kernels

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x, g)

    def body(self, x: torch.Tensor, g: torch.Tensor | None = None, har: torch.Tensor | None = None,
             segment: int | None = None) -> torch.Tensor:
        """x (B, C, T), g (B, gin, 1), har (B, 1, T*hop) excitation or None -> (B, 1, T*hop).

        Long inputs run in overlapping segments of ``segment`` frames (default
        ``self.segment_frames``; :func:`rvclab.models.synth.window.decode_segments`)."""
        pieces = []
        for lo, hi, a, b in decode_segments(x.shape[-1], self.context, segment or self.segment_frames):
            y = self._body(x[..., lo:hi], g, None if har is None else har[..., lo * self.hop:hi * self.hop])
            pieces.append(y if (lo, hi) == (a, b) else y[..., (a - lo) * self.hop:(b - lo) * self.hop])
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def _body(self, x, g, har):
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            if har is not None:
                x = x + self.noise_convs[i](har)
            x = self._stage(i, x)
        x = self.conv_post(F.leaky_relu(x, POST_LRELU_SLOPE))
        return torch.tanh(x)


class GeneratorNSF(Generator):
    """NSF-HiFiGAN decoder of the F0 models: Generator plus the sine source injected per stage.

    ``noise_convs[i]`` downsample the (B, 1, T*hop) excitation to stage i's rate: kernel
    2*s, stride s, padding s//2 with s = prod(upsample_rates[i+1:]); the last is a 1x1 conv.
    forward(z (B, C, T), f0 (B, T) Hz, g (B, gin, 1), phase0, sine_noise, phase_form) -> (B, 1, T*hop).
    """

    def __init__(self, initial_channel, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                 upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
                 gin_channels: int, sr: int):
        self.sr = sr
        super().__init__(initial_channel, resblock, resblock_kernel_sizes,
                         resblock_dilation_sizes, upsample_rates, upsample_initial_channel,
                         upsample_kernel_sizes, gin_channels)

    def _build_source(self, upsample_rates, upsample_initial_channel) -> None:
        self.upp = self.hop  # upstream's name for the samples per frame
        self.m_source = SourceModuleHnNSF(sampling_rate=self.sr, harmonic_num=HARMONIC_NUM)
        self.noise_convs = nn.ModuleList()
        for i in range(len(upsample_rates)):
            c_cur = upsample_initial_channel // 2 ** (i + 1)
            if i + 1 < len(upsample_rates):
                s = math.prod(upsample_rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(1, c_cur, kernel_size=2 * s, stride=s,
                                                  padding=s // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_cur, kernel_size=1))

    def forward(self, x, f0, g=None, *, phase0: torch.Tensor, sine_noise: torch.Tensor,
                phase_form: str = DEFAULT_PHASE_FORM):
        har = self.m_source(f0, self.upp, phase0, sine_noise, phase_form).transpose(1, 2)  # (B, 1, T*hop)
        return self.body(x, g, har)
