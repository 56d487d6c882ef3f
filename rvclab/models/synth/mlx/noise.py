"""The counter-based synthesizer noise (:func:`rvclab.models.synth.noise.counter_noise`) drawn
with MLX on its default device: uint32 arithmetic, which wraps as numpy's does."""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from rvclab.models.synth.noise import counter_noise


class MlxOps:
    """:class:`rvclab.models.synth.noise.NumpyOps` for MLX arrays."""

    @staticmethod
    def arange(n: int):
        return mx.arange(n, dtype=mx.uint32)

    @staticmethod
    def mul(x, c: int):
        return x * mx.array(c, dtype=mx.uint32)

    @staticmethod
    def table(values: np.ndarray):
        return mx.array(values)

    @staticmethod
    def to_int32(x):
        return x.astype(mx.int32)

    @staticmethod
    def to_float32(x):
        return x.astype(mx.float32)

    @staticmethod
    def reshape(x, shape):
        return x.reshape(shape)


def counter_noise_mlx(config: Any, batch: int, frames: int, seed: int) -> dict:
    """{name: float32 mx.array}, bit for bit the numpy generator's arrays. With MLX on the CPU,
    numpy computes them (faster there) and MLX takes them as they are."""
    if mx.default_device() == mx.cpu:
        return {k: mx.array(v) for k, v in counter_noise(config, batch, frames, seed).items()}
    return counter_noise(config, batch, frames, seed, ops=MlxOps)


def counter_noise_mlx_kernels(config: Any, batch: int, frames: int, seed: int) -> dict:
    """:func:`counter_noise_mlx` computed by MLX's own operations whatever the device (for tests)."""
    return counter_noise(config, batch, frames, seed, ops=MlxOps)
