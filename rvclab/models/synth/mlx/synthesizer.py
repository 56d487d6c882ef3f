"""RVC synthesizer in MLX (inference only): TextEncoder -> reverse flow -> NSF-HiFiGAN.

Same class names and attribute paths as :mod:`rvclab.models.synth.torch.synthesizer`, so a converted state dict
loads by name. Layout ``(B, T, C)``: frames ``T`` at 100 fps (hop = prod(upsample_rates) samples
at the model rate ``sr``), output waveform ``(B, T*hop, 1)`` in [-1, 1] @ ``sr``.

Randomness: ``infer(..., noise=...)`` takes the arrays from :func:`rvclab.models.synth.noise.make_noise`
(the same ones the torch reference takes), so both backends see the same z_p noise and the same
SineGen noise. With ``noise=None`` the port draws its own (``mx.random``): the "independent
noise" mode, which is what the seed project measured (waveform corr ~0.4).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from rvclab.models.synth.mlx.attention import Encoder
from rvclab.models.synth.mlx.modules import (
    Conv1d,
    Embedding,
    Flip,
    Linear,
    ResidualCouplingLayer,
    leaky_relu,
    sequence_mask,
)
from rvclab.models.synth.mlx.vocoder import Generator, GeneratorNSF
from rvclab.models.synth.noise import SINE_NOISE, SINE_PHASE, Z_P

Z_P_SCALE = 0.66666  # noise temperature on z_p at inference, as upstream
SR_NAMES = {"32k": 32000, "40k": 40000, "48k": 48000}


# --- TextEncoder ----------------------------------------------------------------------------------
class TextEncoder(nn.Module):
    """phone (B, T, in) + coarse pitch (B, T) int -> m, logs (B, T, out), mask (B, T, 1)."""

    def __init__(self, in_channels, out_channels, hidden_channels, filter_channels, n_heads,
                 n_layers, kernel_size, p_dropout=0.0, f0=True):
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = Linear(in_channels, hidden_channels)
        if f0:
            self.emb_pitch = Embedding(256, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = Conv1d(hidden_channels, out_channels * 2, 1)

    def __call__(self, phone, pitch, lengths):
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = leaky_relu(x * math.sqrt(self.hidden_channels), 0.1)  # (B, T, H)
        x_mask = sequence_mask(lengths, x.shape[1])
        x = self.encoder(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        return stats[..., :self.out_channels], stats[..., self.out_channels:], x_mask


class ResidualCouplingBlock(nn.Module):
    """``n_flows`` coupling layers interleaved with Flip: flows = [coupling, Flip, coupling, ...],
    so parameters sit at even indices exactly as in torch (flows.0, flows.2, ...)."""

    def __init__(self, channels, hidden_channels, kernel_size, dilation_rate, n_layers, n_flows=4,
                 gin_channels=0):
        super().__init__()
        self.flows = []
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size,
                                                    dilation_rate, n_layers, gin_channels,
                                                    mean_only=True))
            self.flows.append(Flip())

    def __call__(self, x, x_mask, g=None, reverse=True):
        """Inference: ``reverse=True``, last module first, so each Flip precedes its coupling."""
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x



# --- whole synthesizers ---------------------------------------------------------------------------
class Synthesizer(nn.Module):
    """Common body of the four upstream classes (no ``enc_q``: inference only).

    Constructor arguments mirror upstream's 18-entry config list; use :func:`build_synthesizer`
    with a :class:`rvclab.models.synth.config.SynthConfig`.
    """

    PHONE_DIM = 768
    USE_F0 = True

    def __init__(self, spec_channels, segment_size, inter_channels, hidden_channels,
                 filter_channels, n_heads, n_layers, kernel_size, p_dropout, resblock,
                 resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates,
                 upsample_initial_channel, upsample_kernel_sizes, spk_embed_dim, gin_channels,
                 sr=None, **kwargs):
        super().__init__()
        self.enc_p = TextEncoder(self.PHONE_DIM, inter_channels, hidden_channels,
                                 filter_channels, n_heads, n_layers, kernel_size, p_dropout,
                                 f0=self.USE_F0)
        gen_args = (inter_channels, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                    upsample_rates, upsample_initial_channel, upsample_kernel_sizes)
        if self.USE_F0:
            if not sr:
                raise ValueError(f"{type(self).__name__}: an F0 model needs sr (Hz or '48k')")
            sr = SR_NAMES.get(sr, sr) if isinstance(sr, str) else sr
            self.dec = GeneratorNSF(*gen_args, gin_channels=gin_channels, sr=int(sr))
        else:
            self.dec = Generator(*gen_args, gin_channels=gin_channels)
        self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, 5, 1, 3,
                                          gin_channels=gin_channels)
        self.emb_g = Embedding(spk_embed_dim, gin_channels)

    def infer(self, phone, phone_lengths, pitch, nsff0, sid, noise=None):
        """As the torch reference's ``infer``, in (B, T, C) layout.

        phone (B, T, 256|768) float @ 100 fps; phone_lengths (B,) int; pitch (B, T) int coarse
        pitch 1..255 (None for no-F0 models); nsff0 (B, T) F0 in Hz (None for no-F0); sid (B,);
        noise: :func:`rvclab.models.synth.noise.make_noise` output (torch layout, numpy), or None to
        draw every random number here with ``mx.random`` (independent-noise mode).
        Returns (audio (B, T*hop, 1) @ sr, x_mask (B, T, 1), (z, z_p, m_p, logs_p) (B, T, inter)).
        """
        z_noise = phase0 = sine_noise = None
        if noise is not None:
            z_noise = mx.array(noise[Z_P], dtype=mx.float32).transpose(0, 2, 1)
            if self.USE_F0:
                phase0, sine_noise = noise[SINE_PHASE], noise[SINE_NOISE]
        g = self.emb_g(sid)[:, None]  # (B, 1, gin)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.USE_F0 else None, phone_lengths)
        if z_noise is None:
            z_noise = mx.random.normal(m_p.shape)
        z_p = (m_p + mx.exp(logs_p) * z_noise * Z_P_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        if self.USE_F0:
            o = self.dec(z * x_mask, nsff0, g=g, phase0=phase0, sine_noise=sine_noise)
        else:
            o = self.dec(z * x_mask, g=g)
        return o, x_mask, (z, z_p, m_p, logs_p)

    def __call__(self, *args, **kwargs):
        return self.infer(*args, **kwargs)


class SynthesizerTrnMs256NSFsid(Synthesizer):
    """v1 (256-d features) with F0: NSF-HiFiGAN decoder."""

    PHONE_DIM, USE_F0 = 256, True


class SynthesizerTrnMs768NSFsid(Synthesizer):
    """v2 (768-d features) with F0: NSF-HiFiGAN decoder."""

    PHONE_DIM, USE_F0 = 768, True


class SynthesizerTrnMs256NSFsid_nono(Synthesizer):  # noqa: N801 (upstream name)
    """v1 (256-d features) without F0: plain HiFi-GAN decoder."""

    PHONE_DIM, USE_F0 = 256, False


class SynthesizerTrnMs768NSFsid_nono(Synthesizer):  # noqa: N801 (upstream name)
    """v2 (768-d features) without F0: plain HiFi-GAN decoder."""

    PHONE_DIM, USE_F0 = 768, False


_CLASSES = {
    ("v1", True): SynthesizerTrnMs256NSFsid,
    ("v2", True): SynthesizerTrnMs768NSFsid,
    ("v1", False): SynthesizerTrnMs256NSFsid_nono,
    ("v2", False): SynthesizerTrnMs768NSFsid_nono,
}


def synthesizer_class(config) -> type[Synthesizer]:
    """The upstream class for (version, f0) of a :class:`rvclab.models.synth.config.SynthConfig`."""
    key = (str(config.version), bool(config.f0))
    if key not in _CLASSES:
        raise ValueError(f"unknown synthesizer version/f0 {key}; expected v1|v2 with f0 0|1")
    return _CLASSES[key]


def build_synthesizer(config) -> Synthesizer:
    """An MLX synthesizer for a SynthConfig, parameters zero (load converted weights next)."""
    return synthesizer_class(config)(*config.to_config_list())
