"""The counter-based synthesizer noise (:func:`rvclab.models.synth.noise.counter_noise`) drawn
with torch on the synthesizer's device: int64 tensors holding 32-bit values, multiplied in 16-bit
halves so that no product leaves int64's range."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rvclab.models.synth.noise import MASK32, counter_noise


class TorchOps:
    """:class:`rvclab.models.synth.noise.NumpyOps` for torch tensors on ``device``."""

    def __init__(self, device):
        self.device = torch.device(device)

    def arange(self, n: int):
        return torch.arange(n, dtype=torch.int64, device=self.device)

    @staticmethod
    def mul(x, c: int):
        """(x * c) mod 2**32 for 0 <= x < 2**32: x * c_lo + ((x * c_hi) mod 2**16) * 2**16."""
        lo, hi = c & 0xFFFF, c >> 16
        return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK32

    def table(self, values: np.ndarray):
        dtype = torch.float32 if values.dtype == np.float32 else torch.int64
        return torch.from_numpy(np.asarray(values)).to(device=self.device, dtype=dtype)

    @staticmethod
    def to_int32(x):
        return x  # int64 holds every 32-bit value; the arithmetic after this stays below 2**31

    @staticmethod
    def to_float32(x):
        return x.to(torch.float32)

    @staticmethod
    def reshape(x, shape):
        return x.reshape(shape)


def counter_noise_torch(config: Any, batch: int, frames: int, seed: int, device="cpu") -> dict[str, torch.Tensor]:
    """{name: float32 tensor on ``device``}, bit for bit the numpy generator's arrays. On the CPU
    numpy computes them (its uint32 arithmetic needs no int64 halves) and torch shares its memory."""
    if torch.device(device).type == "cpu":
        return {k: torch.from_numpy(v) for k, v in counter_noise(config, batch, frames, seed).items()}
    return counter_noise(config, batch, frames, seed, ops=TorchOps(device))


def counter_noise_torch_kernels(config: Any, batch: int, frames: int, seed: int, device="cpu") -> dict:
    """:func:`counter_noise_torch` computed by torch's own operations on any device (for tests)."""
    return counter_noise(config, batch, frames, seed, ops=TorchOps(device))
