"""Seeded stand-in for RVC's ``rmvpe.pt``: upstream architecture and keys, random weights.

BatchNorm running statistics are not trivial: first measured on a seeded harmonic glide (one
train-mode pass, so activations stay bounded), then perturbed (means shifted by ~0.3 std,
variances scaled by exp(N(0, 0.3^2))), so batch-statistics BatchNorm (train mode) or a dropped
running statistic gives a visible error. BN gammas are random around 1 (0.3 for the last BN of
each residual branch). The output Linear bias is shifted so that the per-frame peak salience of
speech straddles the 0.03 threshold (else seeded weights pass it always or never).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FILENAME = "rmvpe.pt"
LINEAR_GAIN = 1.0
LINEAR_BIAS = -5.4  # puts the per-frame peak logit near logit(0.03) = -3.48 on speech
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

    from rvclab.torch.rmvpe import MelSpectrogram, pad_frames

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

    from rvclab.config import RmvpeConfig
    from rvclab.torch.rmvpe import E2E

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
    # a spread of salience around the 0.03 threshold: logits centred a little above logit(0.03)
    with torch.no_grad():
        sd["fc.1.weight"].mul_(LINEAR_GAIN)
        sd["fc.1.bias"].copy_(LINEAR_BIAS + 0.5 * torch.randn(sd["fc.1.bias"].shape, generator=gen))
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def make(out_dir: Path, seed: int = 0, force: bool = False) -> list[Path]:
    """Write ``out_dir/rmvpe.pt`` (plain state dict, upstream format); skip if present."""
    from rvclab.checkpoints import save_torch_atomic

    path = Path(out_dir) / FILENAME
    if path.exists() and not force:
        return [path]
    save_torch_atomic(seeded_state_dict(seed), path, overwrite=True)
    return [path]


def describe(sd: dict) -> dict:
    """Counts for provenance notes: parameters and BatchNorm layers."""
    n = sum(int(np.prod(v.shape)) for v in sd.values())
    bns = sum(1 for k in sd if k.endswith("running_mean"))
    return {"tensors": len(sd), "numbers": n, "batchnorms": bns}
