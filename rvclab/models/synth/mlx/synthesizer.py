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
