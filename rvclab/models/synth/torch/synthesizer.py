"""PyTorch reference of the RVC synthesizer (voice model), faithful to RVC WebUI's inference.

One implementation behind the four upstream classes (:data:`rvclab.models.synth.config.SYNTHESIZER_CLASSES`):
phone (B, T, 256|768) @ 100 fps (+ coarse pitch and F0 for the NSF models) -> audio (B, 1, T*hop) @ sr.

Submodules and state-dict keys as in upstream voice files: ``enc_p`` (TextEncoder),
``dec`` (decoder), ``flow`` (4 couplings at ``flow.flows.{0,2,4,6}``, Flip in between),
``emb_g`` (speaker embedding). ``enc_q`` (posterior encoder, training only) is absent by
default because upstream strips every ``enc_q.*`` key when it saves a voice and deletes the
module before loading; pass ``with_enc_q=True`` to build it (its keys then follow upstream's).

Inference takes its noise explicitly (see :mod:`rvclab.models.synth.noise`):
``infer(phone, phone_lengths, pitch, nsff0, sid, noise)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rvclab.models.synth.config import (
    DEFAULT_PHASE_FORM,
    FLOW_DILATION_RATE,
    FLOW_KERNEL_SIZE,
    FLOW_LAYERS,
    SYNTH_PHONE_DIMS,
    SYNTHESIZER_CLASSES,
    SynthConfig,
    synthesizer_class_name,
)
from rvclab.models.synth.noise import SINE_NOISE, SINE_PHASE, Z_P, Z_P_SCALE, check_noise
from rvclab.models.synth.torch.attention import FFN, Encoder, LayerNorm, MultiHeadAttention
from rvclab.models.synth.torch.layers import WNConv1d, WNConvTranspose1d
from rvclab.models.synth.torch.modules import (
    WN,
    Flip,
    PosteriorEncoder,
    ResBlock1,
    ResBlock2,
    ResidualCouplingBlock,
    ResidualCouplingLayer,
    TextEncoder,
)
from rvclab.models.synth.torch.vocoder import Generator, GeneratorNSF, SineGen, SourceModuleHnNSF
from rvclab.models.synth.window import FLOW_CONTEXT, check_window

__all__ = [
    "FFN", "WN", "Encoder", "Flip", "Generator", "GeneratorNSF", "LayerNorm",
    "MultiHeadAttention", "PosteriorEncoder", "ResBlock1", "ResBlock2", "ResidualCouplingBlock",
    "ResidualCouplingLayer", "SineGen", "SourceModuleHnNSF", "SynthConfig", "Synthesizer",
    "SynthesizerTrnMs256NSFsid", "SynthesizerTrnMs256NSFsid_nono", "SynthesizerTrnMs768NSFsid",
    "SynthesizerTrnMs768NSFsid_nono", "TextEncoder", "WNConv1d", "WNConvTranspose1d",
    "build_synthesizer", "noise_to_torch", "synthesizer_class",
]


def noise_to_torch(noise: Mapping[str, Any], device=None) -> dict[str, torch.Tensor]:
    """numpy (or torch) noise arrays -> float32 torch tensors on ``device``."""
    out = {}
    for k, v in noise.items():
        t = torch.from_numpy(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
        out[k] = t.to(device=device, dtype=torch.float32)
    return out


class Synthesizer(nn.Module):
    """Common body of the four upstream classes; build it from a :class:`SynthConfig`.

    Constructor arguments mirror upstream's positional config list, so
    ``SynthesizerTrnMs768NSFsid(*ckpt["config"])`` works as upstream's does. Each subclass
    takes its version and F0 flag from :data:`SYNTHESIZER_CLASSES` by its name.
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
                 sr=None, *, with_enc_q: bool = False, **kwargs):
        super().__init__()
        self.config = SynthConfig.from_config_list(
            [spec_channels, segment_size, inter_channels, hidden_channels, filter_channels,
             n_heads, n_layers, kernel_size, p_dropout, resblock, resblock_kernel_sizes,
             resblock_dilation_sizes, upsample_rates, upsample_initial_channel,
             upsample_kernel_sizes, spk_embed_dim, gin_channels, sr if sr is not None else 0],
            version=self.VERSION, f0=self.USE_F0)
        c = self.config
        self.enc_p = TextEncoder(self.PHONE_DIM, c.inter_channels, c.hidden_channels,
                                 c.filter_channels, c.n_heads, c.n_layers, c.kernel_size,
                                 c.p_dropout, f0=self.USE_F0)
        gen_args = (c.inter_channels, c.resblock, c.resblock_kernel_sizes,
                    c.resblock_dilation_sizes, c.upsample_rates, c.upsample_initial_channel,
                    c.upsample_kernel_sizes)
        if self.USE_F0:
            if not c.sr:
                raise ValueError(f"{type(self).__name__}: an F0 model needs sr (Hz or '48k')")
            self.dec = GeneratorNSF(*gen_args, gin_channels=c.gin_channels, sr=c.sr)
        else:
            self.dec = Generator(*gen_args, gin_channels=c.gin_channels)
        if with_enc_q:
            self.enc_q = PosteriorEncoder(c.spec_channels, c.inter_channels, c.hidden_channels,
                                          5, 1, 16, gin_channels=c.gin_channels)
        self.flow = ResidualCouplingBlock(c.inter_channels, c.hidden_channels, FLOW_KERNEL_SIZE,
                                          FLOW_DILATION_RATE, FLOW_LAYERS,
                                          gin_channels=c.gin_channels)
        self.emb_g = nn.Embedding(c.spk_embed_dim, c.gin_channels)

    def infer(self, phone, phone_lengths, pitch, nsff0, sid, noise: Mapping[str, Any],
              skip_head: int | None = None, return_length: int | None = None,
              return_length2: int | None = None, *, phase_form: str = DEFAULT_PHASE_FORM):
        """One inference pass, as upstream's ``infer`` with the noise given explicitly.

        phone (B, T, 256|768) float @ 100 fps; phone_lengths (B,) int; pitch (B, T) int coarse
        pitch 1..255 (None for no-F0 models); nsff0 (B, T) float F0 in Hz (None for no-F0);
        sid (B,) int speaker id; noise: :func:`rvclab.models.synth.noise.make_noise` output (numpy or
        torch). Returns (audio (B, 1, T*hop) in [-1, 1] @ sr, x_mask (B, 1, T),
        (z, z_p, m_p, logs_p) each (B, inter, T)), as upstream.

        Streaming (upstream's realtime arguments, frames @ 100 fps): with ``skip_head`` and
        ``return_length`` the TextEncoder still reads all T frames, the flow runs from
        ``skip_head - FLOW_CONTEXT`` on and only ``return_length`` frames from ``skip_head`` are
        decoded: audio (B, 1, return_length*hop). ``return_length2`` (formant shift) stretches the
        decoder input and excitation linearly to that many frames first: audio
        (B, 1, return_length2*hop). The noise is still drawn for all T frames and sliced at the
        same positions, so the kept frames see the draws a full ``infer`` gives them. Defaults
        (None) leave the call as above.

        ``phase_form``: how the NSF source builds its phase (a reference profile's ``sine_phase``;
        :data:`rvclab.models.synth.config.PHASE_FORMS`); no-F0 models ignore it.
        """
        if skip_head is not None and return_length is not None:
            return self._infer_window(phone, phone_lengths, pitch, nsff0, sid, noise, int(skip_head),
                                      int(return_length), return_length2, phase_form)
        b, t = phone.shape[0], phone.shape[1]
        check_noise(noise, self.config, b, t)
        nz = noise_to_torch(noise, phone.device)
        g = self.emb_g(sid).unsqueeze(-1)  # (B, gin, 1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.USE_F0 else None, phone_lengths)
        z_p = (m_p + torch.exp(logs_p) * nz[Z_P].to(m_p) * Z_P_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        if self.USE_F0:
            o = self.dec(z * x_mask, nsff0, g=g, phase0=nz[SINE_PHASE],
                         sine_noise=nz[SINE_NOISE], phase_form=phase_form)
        else:
            o = self.dec(z * x_mask, g=g)
        return o, x_mask, (z, z_p, m_p, logs_p)

    def _infer_window(self, phone, phone_lengths, pitch, nsff0, sid, noise, head: int, length: int,
                      length2: int | None, phase_form: str = DEFAULT_PHASE_FORM):
        """``infer`` on frames head .. head+length only (see ``infer``)."""
        b, t = phone.shape[0], phone.shape[1]
        check_window(head, length, t)
        check_noise(noise, self.config, b, t)
        nz = noise_to_torch(noise, phone.device)
        flow_head = max(head - FLOW_CONTEXT, 0)
        dec_head = head - flow_head
        g = self.emb_g(sid).unsqueeze(-1)  # (B, gin, 1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.USE_F0 else None, phone_lengths)
        m_p, logs_p, x_mask = (a[:, :, flow_head:] for a in (m_p, logs_p, x_mask))
        z_p = (m_p + torch.exp(logs_p) * nz[Z_P][:, :, flow_head:].to(m_p) * Z_P_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        z = z[:, :, dec_head:dec_head + length]
        x_mask = x_mask[:, :, dec_head:dec_head + length]
        n = length if length2 is None else int(length2)
        x = z * x_mask
        if n != length:
            x = F.interpolate(x, size=n, mode="linear")
        if not self.USE_F0:
            return self.dec(x, g=g), x_mask, (z, z_p, m_p, logs_p)
        hop = self.dec.upp
        f0 = nsff0[:, head:head + length]
        sine_noise = nz[SINE_NOISE][:, head * hop:(head + length) * hop]
        if n == length:
            o = self.dec(x, f0, g=g, phase0=nz[SINE_PHASE], sine_noise=sine_noise, phase_form=phase_form)
            return o, x_mask, (z, z_p, m_p, logs_p)
        har = self.dec.m_source(f0, hop, nz[SINE_PHASE], sine_noise, phase_form).transpose(1, 2)  # (B, 1, L*hop)
        har = F.interpolate(har, size=n * hop, mode="linear")
        return self.dec.body(x, g, har), x_mask, (z, z_p, m_p, logs_p)

    def forward(self, *args, **kwargs):
        """Inference only (training's forward needs the posterior encoder and slicing)."""
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


def synthesizer_class(config: SynthConfig) -> type[Synthesizer]:
    """The upstream class for the config's (version, f0)."""
    return _CLASSES[synthesizer_class_name(config.version, config.f0)]


def build_synthesizer(config: SynthConfig, with_enc_q: bool = False) -> Synthesizer:
    """Model for ``config`` in eval mode, freshly initialised as upstream's constructors do."""
    model = synthesizer_class(config)(*config.to_config_list(), with_enc_q=with_enc_q)
    return model.eval()
