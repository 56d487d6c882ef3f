"""RVC synthesizer in MLX (inference only): TextEncoder -> reverse flow -> NSF-HiFiGAN.

Same class names and attribute paths as :mod:`rvclab.models.synth.torch.synthesizer`, so a
converted state dict loads by name. Layout ``(B, T, C)``: phone (B, T, 256|768) @ 100 fps ->
waveform (B, T*hop, 1) in [-1, 1] @ sr, hop = prod(upsample_rates).

Randomness: ``infer(..., noise=...)`` takes the arrays of :func:`rvclab.models.synth.noise.make_noise`
(the same ones the torch reference takes); with ``noise=None`` the port draws its own
(``mx.random``): the "independent noise" mode (docs/synthesizer.md).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from rvclab.models.synth.config import (
    DEFAULT_PHASE_FORM,
    FLOW_DILATION_RATE,
    FLOW_KERNEL_SIZE,
    FLOW_LAYERS,
    SYNTH_PHONE_DIMS,
    SYNTHESIZER_CLASSES,
    synth_sr_hz,
    synthesizer_class_name,
)
from rvclab.models.synth.mlx.layers import Embedding
from rvclab.models.synth.mlx.modules import ResidualCouplingBlock, TextEncoder
from rvclab.models.synth.mlx.vocoder import Generator, GeneratorNSF
from rvclab.models.synth.noise import SINE_NOISE, SINE_PHASE, Z_P, Z_P_SCALE
from rvclab.models.synth.window import FLOW_CONTEXT, check_window, linear_resize_weights


# --- whole synthesizers ---------------------------------------------------------------------------
class Synthesizer(nn.Module):
    """Common body of the four upstream classes (no ``enc_q``: inference only).

    Constructor arguments mirror upstream's 18-entry config list; use :func:`build_synthesizer`
    with a :class:`rvclab.models.synth.config.SynthConfig`. Each subclass takes its version and
    F0 flag from :data:`~rvclab.models.synth.config.SYNTHESIZER_CLASSES` by its name.
    """

    VERSION, USE_F0 = "v2", True
    PHONE_DIM = SYNTH_PHONE_DIMS[VERSION]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        spec = SYNTHESIZER_CLASSES[cls.__name__]
        cls.VERSION, cls.USE_F0 = spec["version"], spec["f0"]
        cls.PHONE_DIM = SYNTH_PHONE_DIMS[cls.VERSION]

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
            self.dec = GeneratorNSF(*gen_args, gin_channels=gin_channels, sr=synth_sr_hz(sr))
        else:
            self.dec = Generator(*gen_args, gin_channels=gin_channels)
        self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, FLOW_KERNEL_SIZE,
                                          FLOW_DILATION_RATE, FLOW_LAYERS, gin_channels=gin_channels)
        self.emb_g = Embedding(spk_embed_dim, gin_channels)

    def infer(self, phone, phone_lengths, pitch, nsff0, sid, noise=None, skip_head=None,
              return_length=None, return_length2=None, *, phase_form=DEFAULT_PHASE_FORM):
        """As the torch reference's ``infer``, in (B, T, C) layout.

        phone (B, T, 256|768) float @ 100 fps; phone_lengths (B,) int; pitch (B, T) int coarse
        pitch 1..255 (None for no-F0 models); nsff0 (B, T) F0 in Hz (None for no-F0); sid (B,);
        noise: :func:`rvclab.models.synth.noise.make_noise` output (torch layout, numpy), or None to
        draw every random number here with ``mx.random`` (independent-noise mode).
        Returns (audio (B, T*hop, 1) @ sr, x_mask (B, T, 1), (z, z_p, m_p, logs_p) (B, T, inter)).
        ``skip_head`` / ``return_length`` / ``return_length2``: the streaming window, as the torch
        reference (audio (B, return_length[2]*hop, 1)); the noise, when given, covers all T frames.
        ``phase_form``: the NSF source's phase, as the torch reference.
        """
        if skip_head is not None and return_length is not None:
            return self._infer_window(phone, phone_lengths, pitch, nsff0, sid, noise, int(skip_head),
                                      int(return_length), return_length2, phase_form)
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
            o = self.dec(z * x_mask, nsff0, g=g, phase0=phase0, sine_noise=sine_noise, phase_form=phase_form)
        else:
            o = self.dec(z * x_mask, g=g)
        return o, x_mask, (z, z_p, m_p, logs_p)

    def _infer_window(self, phone, phone_lengths, pitch, nsff0, sid, noise, head, length, length2,
                      phase_form=DEFAULT_PHASE_FORM):
        """``infer`` on frames head .. head+length only (see the torch reference)."""
        t = phone.shape[1]
        check_window(head, length, t)
        flow_head = max(head - FLOW_CONTEXT, 0)
        dec_head = head - flow_head
        g = self.emb_g(sid)[:, None]  # (B, 1, gin)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.USE_F0 else None, phone_lengths)
        m_p, logs_p, x_mask = (a[:, flow_head:] for a in (m_p, logs_p, x_mask))
        if noise is not None:
            z_noise = mx.array(noise[Z_P][:, :, flow_head:], dtype=mx.float32).transpose(0, 2, 1)
        else:
            z_noise = mx.random.normal(m_p.shape)
        z_p = (m_p + mx.exp(logs_p) * z_noise * Z_P_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        z = z[:, dec_head:dec_head + length]
        x_mask = x_mask[:, dec_head:dec_head + length]
        n = length if length2 is None else int(length2)
        x = _resize(z * x_mask, n)
        if not self.USE_F0:
            return self.dec(x, g=g), x_mask, (z, z_p, m_p, logs_p)
        hop = self.dec.upp
        f0 = nsff0[:, head:head + length]
        phase0 = sine_noise = None
        if noise is not None:
            phase0, sine_noise = noise[SINE_PHASE], noise[SINE_NOISE][:, head * hop:(head + length) * hop]
        if n == length:
            o = self.dec(x, f0, g=g, phase0=phase0, sine_noise=sine_noise, phase_form=phase_form)
            return o, x_mask, (z, z_p, m_p, logs_p)
        har = _resize(self.dec.m_source(f0, hop, phase0=phase0, noise=sine_noise, phase_form=phase_form), n * hop)
        return self.dec.body(x, g, har), x_mask, (z, z_p, m_p, logs_p)

    def __call__(self, *args, **kwargs):
        return self.infer(*args, **kwargs)


def _resize(x, n: int):
    """Linear resize along T of (B, T, C) to n frames, as torch's ``F.interpolate(size=n)``."""
    if x.shape[1] == n:
        return x
    i0, i1, w0, w1 = linear_resize_weights(x.shape[1], n)
    return x[:, mx.array(i0)] * mx.array(w0)[None, :, None] + x[:, mx.array(i1)] * mx.array(w1)[None, :, None]


class SynthesizerTrnMs256NSFsid(Synthesizer):
    """v1 (256-d features) with F0: NSF-HiFiGAN decoder."""


class SynthesizerTrnMs768NSFsid(Synthesizer):
    """v2 (768-d features) with F0: NSF-HiFiGAN decoder."""


class SynthesizerTrnMs256NSFsid_nono(Synthesizer):  # noqa: N801 (upstream name)
    """v1 (256-d features) without F0: plain HiFi-GAN decoder."""


class SynthesizerTrnMs768NSFsid_nono(Synthesizer):  # noqa: N801 (upstream name)
    """v2 (768-d features) without F0: plain HiFi-GAN decoder."""


_CLASSES = {cls.__name__: cls for cls in (SynthesizerTrnMs256NSFsid, SynthesizerTrnMs768NSFsid,
                                          SynthesizerTrnMs256NSFsid_nono,
                                          SynthesizerTrnMs768NSFsid_nono)}


def synthesizer_class(config) -> type[Synthesizer]:
    """The upstream class for (version, f0) of a :class:`rvclab.models.synth.config.SynthConfig`."""
    return _CLASSES[synthesizer_class_name(config.version, config.f0)]


def build_synthesizer(config) -> Synthesizer:
    """An MLX synthesizer for a SynthConfig, parameters zero (load converted weights next)."""
    return synthesizer_class(config)(*config.to_config_list())
