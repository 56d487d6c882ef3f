"""Seeded RVC voice files: upstream architecture, keys and .pth layout; random (untrained) weights.

Upstream's constructor init, then departures so parity tests exercise every parameter and a wrong
feature, TextEncoder or flow shows in the waveform: flow ``post`` convs N(0, POST_STD^2),
``dec.conv_pre`` scaled by CONV_PRE_GAIN and ``dec.noise_convs`` by SOURCE_GAIN, relative-position
tables scaled by REL_K_GAIN / REL_V_GAIN, input embeddings by EMB_GAIN, ``weight_g`` jittered
by G_JITTER, LayerNorm jittered by LN_JITTER, ``dec.conv_post`` scaled for an output RMS of about
TARGET_RMS (docs/synthesizer.md).
"""

from __future__ import annotations

import copy
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from rvclab import seeding
from rvclab.checkpoints import save_torch_atomic
from rvclab.models.synth import config as synth_config
from rvclab.models.synth.config import SynthConfig, coarse_pitch
from rvclab.models.synth.io import voice_checkpoint
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.torch.attention import LayerNorm
from rvclab.models.synth.torch.synthesizer import build_synthesizer

# (preset, f0) -> file name; v1/v2 x 32k/40k/48k with F0, plus one no-F0 model.
FILES = {
    ("v1-32k", True): "voice_v1_32k.pth",
    ("v1-40k", True): "voice_v1_40k.pth",
    ("v1-48k", True): "voice_v1_48k.pth",
    ("v2-32k", True): "voice_v2_32k.pth",
    ("v2-40k", True): "voice_v2_40k.pth",
    ("v2-48k", True): "voice_v2_48k.pth",
    ("v1-40k", False): "voice_v1_40k_nof0.pth",
}
# Departures from upstream's init. At init the waveform is almost all NSF excitation: the decoder's
# z input, the flow (zero `post` convs: identity) and the TextEncoder's relative positions (attention
# spread evenly over the utterance) barely reach it, so a wrong feature, TextEncoder or flow moved the
# wave by less than the end-to-end goal sees. With the values below, on every seeded preset, z, the
# flow and the relative tables each move it by more than that (figures: docs/synthesizer.md).
POST_STD = 0.3  # flow `post` convs N(0, POST_STD^2): couplings that change z (0 upstream); the
# flow's float32 error grows with it, and 0.5 put v2-48k past the flow's parity goal
CONV_PRE_GAIN = 3.0  # dec.conv_pre (z -> 512 channels) weight and bias scaled: z's share of the wave
SOURCE_GAIN = 0.3  # dec.noise_convs scaled: the sine excitation shares the wave instead of filling it
EMB_GAIN = 0.125  # enc_p.emb_phone and emb_pitch scaled: upstream multiplies the embedding sum by
# sqrt(hidden), which at init puts the first attention layer's logits in the hundreds, a one-hot
# softmax whose near-ties flip with float32 rounding (TextEncoder errors past its parity goal)
REL_K_GAIN = 20.0  # emb_rel_k scaled: attention concentrates within the +-10-frame window
REL_V_GAIN = 6.0  # emb_rel_v scaled: the relative-value table is a fair share of attention's output
G_JITTER = 0.1
LN_JITTER = 0.1
TARGET_RMS = 0.1
CALIBRATION_FRAMES = 20
SENSITIVITY_FRAMES = 100


def file_seed(seed: int, config: SynthConfig) -> int:
    """Per-file seed, independent of which other files are made."""
    return (int(seed) * 1_000_003 + zlib.crc32(config.name.encode())) % (2**31)


def calibration_inputs(config: SynthConfig, seed: int, frames: int = CALIBRATION_FRAMES):
    """Seeded (phone, lengths, pitch, nsff0, sid) for one utterance: (1, T, D) features ~ N(0,1),
    an F0 glide 120 -> 240 Hz with an unvoiced gap, coarse pitch from it as upstream's mel bins."""
    rng = np.random.default_rng(seed)
    phone = torch.from_numpy(rng.standard_normal((1, frames, config.phone_dim), np.float32))
    f0 = 120.0 * 2.0 ** (np.arange(frames) / frames)
    f0[frames // 3: frames // 3 + 4] = 0.0
    coarse = coarse_pitch(f0)
    return (phone, torch.tensor([frames]), torch.from_numpy(coarse)[None],
            torch.from_numpy(f0.astype(np.float32))[None], torch.tensor([0]))


@torch.no_grad()
def seeded_model(config: SynthConfig, seed: int):
    """A torch synthesizer for ``config`` with the seeded init described in the module doc."""
    s = file_seed(seed, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s)
        model = build_synthesizer(config)
        gen = torch.Generator().manual_seed(s + 1)
        for i in range(0, len(model.flow.flows), 2):
            post = model.flow.flows[i].post
            post.weight.normal_(0.0, POST_STD, generator=gen)
            post.bias.normal_(0.0, POST_STD, generator=gen)
        model.dec.conv_pre.weight.mul_(CONV_PRE_GAIN)
        model.dec.conv_pre.bias.mul_(CONV_PRE_GAIN)
        for conv in getattr(model.dec, "noise_convs", ()):
            conv.weight.mul_(SOURCE_GAIN)
            conv.bias.mul_(SOURCE_GAIN)
        model.enc_p.emb_phone.weight.mul_(EMB_GAIN)
        model.enc_p.emb_phone.bias.mul_(EMB_GAIN)
        if config.f0:
            model.enc_p.emb_pitch.weight.mul_(EMB_GAIN)
        for layer in model.enc_p.encoder.attn_layers:
            layer.emb_rel_k.mul_(REL_K_GAIN)
            layer.emb_rel_v.mul_(REL_V_GAIN)
        for name, p in model.named_parameters():
            if name.endswith(".weight_g"):
                p.mul_(1.0 + G_JITTER * torch.randn(p.shape, generator=gen))
        for mod in model.modules():
            if isinstance(mod, LayerNorm):
                mod.gamma.copy_(1.0 + LN_JITTER * torch.randn(mod.gamma.shape, generator=gen))
                mod.beta.copy_(LN_JITTER * torch.randn(mod.beta.shape, generator=gen))
    phone, lengths, pitch, f0, sid = calibration_inputs(config, s)
    noise = make_noise(config, 1, phone.shape[1], s)
    audio = model.infer(phone, lengths, pitch if config.f0 else None,
                        f0 if config.f0 else None, sid, noise)[0]
    # tanh is near-linear at this level, so one rescale of the last conv lands close to target
    rms = float(torch.atanh(audio.clamp(-0.999, 0.999)).pow(2).mean().sqrt())
    if rms > 0:
        model.dec.conv_post.weight.mul_(TARGET_RMS / rms)
    return model


def _perturbed(model, part: str):
    """A copy of ``model`` with one part changed (see :func:`sensitivity`)."""
    model = copy.deepcopy(model)
    if part == "z_zeroed":  # conv_pre(z) = its bias: the decoder sees z = 0
        model.dec.conv_pre.weight.zero_()
    elif part == "flow_bypassed":  # zero `post` convs: identity couplings, the flips cancel
        for i in range(0, len(model.flow.flows), 2):
            model.flow.flows[i].post.weight.zero_()
            model.flow.flows[i].post.bias.zero_()
    elif part == "rel_v_shifted":  # the relative-value table read one position off
        for layer in model.enc_p.encoder.attn_layers:
            layer.emb_rel_v.copy_(torch.roll(layer.emb_rel_v, 1, dims=1))
    elif part == "layernorm_init":
        for mod in model.modules():
            if isinstance(mod, LayerNorm):
                mod.gamma.fill_(1.0)
                mod.beta.zero_()
    elif part == "source_off":
        for conv in model.dec.noise_convs:
            conv.weight.zero_()
    return model


@torch.no_grad()
def sensitivity(config: SynthConfig, seed: int = 0, frames: int = SENSITIVITY_FRAMES) -> dict:
    """How far each part of the seeded model for ``config`` reaches its waveform: 1 - corr between
    the wave and the wave with z zeroed, the flow bypassed, the relative-value tables shifted by one
    position, LayerNorm at its init, the excitation removed (F0 models); plus the wave's rms and
    peak. Inputs: :func:`calibration_inputs` of ``frames`` frames and noise, seeded by ``seed``."""
    model = seeded_model(config, seed)
    phone, lengths, pitch, f0, sid = calibration_inputs(config, seed + 1, frames)
    noise = make_noise(config, 1, frames, seed + 1)

    def wave(m):
        out = m.infer(phone, lengths, pitch if config.f0 else None, f0 if config.f0 else None,
                      sid, noise)[0]
        return out.flatten().double()

    base = wave(model)
    row = {"rms": float(base.pow(2).mean().sqrt()), "peak": float(base.abs().max())}
    parts = ("z_zeroed", "flow_bypassed", "rel_v_shifted", "layernorm_init")
    for part in parts + (("source_off",) if config.f0 else ()):
        other = wave(_perturbed(model, part))
        row[part] = 1.0 - float(torch.corrcoef(torch.stack([base, other]))[0, 1])
    return row


def make_one(path: Path, config: SynthConfig, seed: int, force: bool = False) -> Path:
    """Write one seeded voice file (fp16 weights, upstream layout) atomically; an existing one is kept
    unless ``force`` or written by older seeding code (:mod:`rvclab.seeding`)."""
    path = Path(path)
    fp = seeding.fingerprint(sys.modules[__name__], synth_config, config=repr(config))
    with seeding.exclusive(path.parent):
        if seeding.needs_writing(path.parent, [path.name], fp, force):
            model = seeded_model(config, seed)
            ckpt = voice_checkpoint(model, info=f"rvclab seeded (untrained) {config.name}, seed={seed}")
            save_torch_atomic(ckpt, path, overwrite=True)
            seeding.record(path.parent, [path.name], fp, seed)
    return path


def make(out_dir: Path, seed: int, force: bool) -> list[Path]:
    """Seeded voices for every entry of FILES in ``out_dir``; existing files kept as :func:`make_one` says."""
    out_dir = Path(out_dir)
    paths = []
    for (preset, f0), filename in FILES.items():
        config = SynthConfig.preset(preset, f0=f0)
        paths.append(make_one(out_dir / filename, config, seed, force))
    return paths
