"""Seeded RVC voice files: upstream architecture, keys and .pth layout; random (untrained) weights.

Upstream's constructor init, then departures so parity tests exercise every parameter: flow
``post`` convs N(0, POST_STD^2), ``weight_g`` jittered by G_JITTER, LayerNorm jittered by
LN_JITTER, ``dec.conv_post`` scaled for an output RMS of about TARGET_RMS (docs/synthesizer.md).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from rvclab.checkpoints import save_torch_atomic
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
POST_STD = 0.02
G_JITTER = 0.1
LN_JITTER = 0.1
TARGET_RMS = 0.1
CALIBRATION_FRAMES = 20


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


def make_one(path: Path, config: SynthConfig, seed: int, force: bool = False) -> Path:
    """Write one seeded voice file (fp16 weights, upstream layout) atomically."""
    path = Path(path)
    if path.exists() and not force:
        return path
    model = seeded_model(config, seed)
    ckpt = voice_checkpoint(model, info=f"rvclab seeded (untrained) {config.name}, seed={seed}")
    return save_torch_atomic(ckpt, path, overwrite=True)


def make(out_dir: Path, seed: int, force: bool) -> list[Path]:
    """Seeded voices for every entry of FILES in ``out_dir``; existing files kept unless force."""
    out_dir = Path(out_dir)
    paths = []
    for (preset, f0), filename in FILES.items():
        config = SynthConfig.preset(preset, f0=f0)
        paths.append(make_one(out_dir / filename, config, seed, force))
    return paths
