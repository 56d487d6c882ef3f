"""Seeded stand-in for RVC's ``rmvpe.pt``: upstream architecture and keys, random weights.

BatchNorm running statistics are not trivial: first measured on a seeded harmonic glide (one
train-mode pass, so activations stay bounded), then perturbed (means shifted by ~0.3 std,
variances scaled by exp(N(0, 0.3^2))), so batch-statistics BatchNorm (train mode) or a dropped
running statistic gives a visible error. BN gammas are random around 1 (0.3 for the last BN of
each residual branch). The output Linear bias is set per bin from the network's response to silence
(see :func:`_set_voicing_bias`), so silence is unvoiced and speech passes 0.03 on part of
its frames (random weights otherwise pass it always or never).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rvclab import seeding
from rvclab.checkpoints import save_torch_atomic
from rvclab.models.rmvpe import config as rmvpe_config
from rvclab.models.rmvpe.config import RmvpeConfig

FILENAME = "rmvpe.pt"
VOICING_GAIN = 4.0  # logits added along the voicing direction at the glide's median
SILENCE_LENGTHS = (2720, 5000, 8000, 12345, 16000)  # samples: edge effects of every padding
VOICING_MARGIN = 1.0  # logits below logit(0.03) for every bin of a silent frame
RESIDUAL_GAMMA = 0.3


def _is_bn(key: str) -> bool:
    return key.startswith("unet.encoder.bn.") or any(
        p in key for p in (".conv.1.", ".conv.4.", ".conv1.1."))


def _calibration_audio(seed: int, seconds: float = 2.0, sr: int = 16000) -> np.ndarray:
    """A seeded harmonic glide (120-300 Hz, 10 harmonics) plus noise, (N,) @ 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120.0 * (2.5 ** (t / seconds))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 11))
    return (0.3 * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _calibrate(model, seed: int) -> None:
    """Set running statistics to those of one train-mode pass (bounded activations), eval after."""
    import torch

    from rvclab.models.rmvpe.torch import MelSpectrogram, pad_frames

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: one pass = that pass's statistics
    model.train()
    with torch.no_grad():
        mel = MelSpectrogram(model.cfg)(torch.from_numpy(_calibration_audio(seed))[None])
        model.unet(pad_frames(mel).transpose(-1, -2).unsqueeze(1))
    for bn in bns:
        bn.momentum = 0.01
    model.eval()


def seeded_state_dict(seed: int = 0, cfg=None) -> dict:
    """{upstream key: torch tensor} with seeded weights and non-trivial running statistics."""
    import torch

    from rvclab.models.rmvpe.torch import E2E

    cfg = cfg or RmvpeConfig()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # default init of the layers
    model = E2E(cfg)
    with torch.no_grad():  # BN affine first (the last BN of each residual branch small, so
        for key, value in model.state_dict().items():  # the U-Net's residual sums stay moderate)
            if key.endswith("weight") and value.ndim == 1 and _is_bn(key):
                base = RESIDUAL_GAMMA if ".conv.4." in key else 1.0
                value.copy_(base * (1.0 + 0.2 * torch.randn(value.shape, generator=gen)))
            elif key.endswith("bias") and value.ndim == 1 and _is_bn(key):
                value.copy_(0.1 * torch.randn(value.shape, generator=gen))
    _calibrate(model, seed)
    sd = model.state_dict()
    for key, value in sd.items():
        if key.endswith("running_mean"):  # shift by up to ~0.3 std of the calibrated statistic
            std = sd[key.replace("running_mean", "running_var")].sqrt()
            value.add_(0.3 * std * torch.randn(value.shape, generator=gen))
        elif key.endswith("running_var"):  # scale by exp(N(0, 0.3^2))
            value.mul_(torch.exp(0.3 * torch.randn(value.shape, generator=gen)))
        elif key.endswith("num_batches_tracked"):
            value.fill_(1000)
    _set_voicing_bias(model, sd, gen, seed)
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def _gru_out(model, audio: np.ndarray):
    """BiGRU output (T, 512) of the torch model for (N,) audio @ 16 kHz."""
    import torch

    from rvclab.models.rmvpe.torch import MelSpectrogram, pad_frames

    with torch.no_grad():
        mel = MelSpectrogram(model.cfg)(torch.from_numpy(audio)[None])
        x = model.cnn(model.unet(pad_frames(mel).transpose(-1, -2).unsqueeze(1)))
        return model.fc[0](x.transpose(1, 2).flatten(-2))[0]


def _set_voicing_bias(model, sd: dict, gen, seed: int) -> None:
    """Give the output layer a voicing direction and per-bin biases.

    d = mean BiGRU output on a harmonic glide - mean on silence (zeros of several lengths, so
    the U-Net's border responses for each amount of frame padding are included), scaled so that
    the silent maximum of g.d is 0 and the glide's median is 1; every bin's weight gets
    VOICING_GAIN * d.
    Then bias_b = logit(threshold) - VOICING_MARGIN - max over silent frames of (W g)_b, so every
    bin of every silent frame sits VOICING_MARGIN logits under the threshold, and voiced input
    passes it; the random part of W still decides which bin (pitch) wins.
    """
    import torch

    model.load_state_dict(sd)
    model.eval()
    cfg = model.cfg
    with torch.no_grad():
        g_sil = torch.cat([_gru_out(model, np.zeros(n, np.float32)) for n in SILENCE_LENGTHS])
        g_voc = _gru_out(model, _calibration_audio(seed + 1))
        d = g_voc.mean(0) - g_sil.mean(0)
        lo, hi = float((g_sil @ d).max()), float((g_voc @ d).median())
        if hi > lo:
            sd["fc.1.weight"].add_(VOICING_GAIN / (hi - lo) * d[None, :])
        silent_max = (g_sil @ sd["fc.1.weight"].T).amax(dim=0)  # (360,)
        logit_thr = float(np.log(cfg.threshold / (1 - cfg.threshold)))
        jitter = 0.1 * torch.rand(silent_max.shape, generator=gen)
        sd["fc.1.bias"].copy_(logit_thr - VOICING_MARGIN - jitter - silent_max)


def make(out_dir: Path, seed: int = 0, force: bool = False) -> list[Path]:
    """Write ``out_dir/rmvpe.pt`` (plain state dict, upstream format); kept if present, unless ``force``
    or written by older seeding code (:mod:`rvclab.seeding`)."""
    path = Path(out_dir) / FILENAME
    fp = seeding.fingerprint(sys.modules[__name__], rmvpe_config)
    with seeding.exclusive(path.parent):
        if seeding.needs_writing(path.parent, [FILENAME], fp, force):
            save_torch_atomic(seeded_state_dict(seed), path, overwrite=True)
            seeding.record(path.parent, [FILENAME], fp, seed)
    return [path]


def describe(sd: dict) -> dict:
    """Counts for provenance notes: parameters and BatchNorm layers."""
    n = sum(int(np.prod(v.shape)) for v in sd.values())
    bns = sum(1 for k in sd if k.endswith("running_mean"))
    return {"tensors": len(sd), "numbers": n, "batchnorms": bns}
