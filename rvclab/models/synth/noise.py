"""Every random draw of one RVC synthesizer inference, made explicit and shared by both backends.

Upstream draws inside ``infer`` from torch's global RNG; here one seed gives float32 arrays in
torch's layout (the MLX side transposes what it needs):
``z_p`` (B, inter_channels, T) @ 100 fps; ``sine_phase`` (B, dim); ``sine_noise`` (B, T*hop, dim)
@ sr, with dim = HARMONIC_NUM + 1. No-F0 models use only ``z_p``. Table: docs/synthesizer.md.

Two generators (:data:`NOISE_KINDS`): ``"numpy"`` (the default) draws with numpy's PCG64 on the
host; ``"counter"`` hashes (seed, stream, element index) with 32-bit integer operations only and
turns the bits into uniforms and normals by exact integer steps (:func:`counter_noise`), so numpy,
torch and MLX compute the same bits on any device, and each backend draws where it runs
(``rvclab.models.synth.torch.noise``, ``rvclab.models.synth.mlx.noise``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtri

Z_P = "z_p"
SINE_PHASE = "sine_phase"
SINE_NOISE = "sine_noise"

Z_P_SCALE = 0.66666  # upstream's fixed temperature of the prior sample z_p
HARMONIC_NUM = 0  # RVC's GeneratorNSF builds its source module with no overtones
SINE_DIM = HARMONIC_NUM + 1


def noise_shapes(config: Any, batch: int, frames: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays :func:`make_noise` returns for ``config`` (a SynthConfig)."""
    shapes = {Z_P: (batch, int(config.inter_channels), frames)}
    if bool(config.f0):
        shapes[SINE_PHASE] = (batch, SINE_DIM)
        shapes[SINE_NOISE] = (batch, frames * int(config.hop_length), SINE_DIM)
    return shapes


def make_noise(config: Any, batch: int, frames: int, seed: int) -> dict[str, np.ndarray]:
    """Draw the noise of one ``infer`` call: {name: float32 array} (see module docstring).

    ``config`` is a :class:`rvclab.models.synth.config.SynthConfig` (uses ``inter_channels``,
    ``hop_length`` and ``f0``); ``frames`` is T at 100 fps. Draws come from numpy's PCG64
    seeded with ``seed`` in the order z_p, sine_phase, sine_noise, so the result depends only on
    (config shapes, batch, frames, seed).
    """
    if batch < 1 or frames < 1:
        raise ValueError(f"make_noise: batch and frames must be >= 1, got {batch}, {frames}")
    rng = np.random.default_rng(seed)
    shapes = noise_shapes(config, batch, frames)
    out = {Z_P: rng.standard_normal(shapes[Z_P], dtype=np.float32)}
    if SINE_PHASE in shapes:
        phase = rng.random(shapes[SINE_PHASE], dtype=np.float32)
        phase[:, 0] = 0.0  # the fundamental starts at phase 0, as upstream
        out[SINE_PHASE] = phase
        out[SINE_NOISE] = rng.standard_normal(shapes[SINE_NOISE], dtype=np.float32)
    return out


def check_noise(noise: dict, config: Any, batch: int, frames: int) -> None:
    """Raise ValueError naming the key and expected/found shape if ``noise`` does not fit."""
    for key, shape in noise_shapes(config, batch, frames).items():
        if key not in noise:
            raise ValueError(f"noise: missing {key!r} (expected shape {shape})")
        found = tuple(noise[key].shape)
        if found != shape:
            raise ValueError(f"noise: {key!r} expected shape {shape}, found {found}")


# --- the counter-based generator ------------------------------------------------------------------
NOISE_KINDS = ("numpy", "counter")
STREAMS = {Z_P: 1, SINE_PHASE: 2, SINE_NOISE: 3}  # one independent stream per array
MASK32 = 0xFFFFFFFF
GOLDEN32 = 0x9E3779B9  # odd multiplier spreading consecutive indices before the mix
MIX32 = (0x7FEB352D, 0x846CA68B)  # multipliers of the "lowbias32" integer hash (C. Wellons)
UNIFORM_BITS = 24  # uniforms k / 2**24: exact in float32
# normals: sign bit + 23-bit magnitude; the half-normal quantile at QUANTILE_CELLS + 1 evenly spaced
# probabilities, in fixed point (QUANTILE_FRACTION_BITS), interpolated over the low 9 bits
QUANTILE_INDEX_BITS = 14
QUANTILE_INTERP_BITS = 9  # 14 + 9 = 23 magnitude bits
QUANTILE_FRACTION_BITS = 20  # |value| < 2**23 / 2**20 = 8: exact as float32
MAX_ELEMENTS = 1 << 32


def _half_normal_table() -> np.ndarray:
    """(2**14 + 1,) int32: round(2**20 * ndtri(0.5 + v / 2)) at v = k / 2**14; v = 1 is the
    quantile of 1 - 2**-25 (the generator's last representable probability)."""
    v = np.arange((1 << QUANTILE_INDEX_BITS) + 1, dtype=np.float64) / (1 << QUANTILE_INDEX_BITS)
    v[-1] = 1 - 2.0**-(QUANTILE_INDEX_BITS + QUANTILE_INTERP_BITS + 1)
    return np.round(ndtri(0.5 + v / 2) * (1 << QUANTILE_FRACTION_BITS)).astype(np.int32)


HALF_NORMAL_TABLE = _half_normal_table()


def _splitmix64(x: int) -> int:
    """One step of SplitMix64 on a Python int (the host side: stream keys)."""
    x = (x + 0x9E3779B97F4A7C15) & (2**64 - 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return x ^ (x >> 31)


def stream_key(seed: int, name: str) -> int:
    """The 32-bit key of one array's stream, from the seed (any int) and the array's name."""
    return _splitmix64(_splitmix64(int(seed) & (2**64 - 1)) ^ STREAMS[name]) & MASK32


class NumpyOps:
    """The array operations :func:`counter_bits` needs, on numpy (uint32 arithmetic wraps)."""

    @staticmethod
    def arange(n: int):
        return np.arange(n, dtype=np.uint32)

    @staticmethod
    def mul(x, c: int):
        return x * np.uint32(c)

    @staticmethod
    def table(values: np.ndarray):
        return values

    @staticmethod
    def to_int32(x):
        return x.astype(np.int32)

    @staticmethod
    def to_float32(x):
        return x.astype(np.float32)

    @staticmethod
    def reshape(x, shape):
        return x.reshape(shape)


def counter_bits(ops, n: int, key: int):
    """(n,) 32-bit hashes of element indices 0..n-1 under ``key``: a bijection of the index
    (multiply by an odd constant, xor the key, then lowbias32), in ``ops``' integer type."""
    if n > MAX_ELEMENTS:
        raise ValueError(f"counter noise: {n} elements exceed one stream's {MAX_ELEMENTS} indices")
    x = ops.mul(ops.arange(n), GOLDEN32) ^ key
    x = x ^ (x >> 16)
    x = ops.mul(x, MIX32[0])
    x = x ^ (x >> 15)
    x = ops.mul(x, MIX32[1])
    return x ^ (x >> 16)


def bits_to_uniform(ops, bits):
    """32-bit hashes -> float32 uniforms in [0, 1): the top 24 bits / 2**24 (exact)."""
    return ops.to_float32(bits >> (32 - UNIFORM_BITS)) * np.float32(2.0**-UNIFORM_BITS)


def bits_to_normal(ops, bits, table):
    """32-bit hashes -> float32 standard normals: the top bit is the sign, the next 23 bits a
    probability whose half-normal quantile is read from ``table`` (:data:`HALF_NORMAL_TABLE` in
    ``ops``' array type) with integer linear interpolation; |value| <= 5.6, steps of 2**-20."""
    magnitude = ops.to_int32((bits >> 8) & 0x7FFFFF)
    cell = magnitude >> QUANTILE_INTERP_BITS
    frac = magnitude & ((1 << QUANTILE_INTERP_BITS) - 1)
    lo = table[cell]
    q = lo + (((table[cell + 1] - lo) * frac) >> QUANTILE_INTERP_BITS)
    sign = 1 - 2 * ops.to_int32(bits >> 31)
    return ops.to_float32(q * sign) * np.float32(2.0**-QUANTILE_FRACTION_BITS)


def counter_noise(config: Any, batch: int, frames: int, seed: int, ops=NumpyOps) -> dict:
    """:func:`make_noise`'s arrays from the counter-based generator, in ``ops``' array type (numpy
    here; the backends pass their own ops and get arrays on their device). Element j of each array
    (flat index in torch's layout) depends only on (seed, array name, j)."""
    if batch < 1 or frames < 1:
        raise ValueError(f"counter_noise: batch and frames must be >= 1, got {batch}, {frames}")
    out = {}
    for name, shape in noise_shapes(config, batch, frames).items():
        n = int(np.prod(shape))
        bits = counter_bits(ops, n, stream_key(seed, name))
        if name == SINE_PHASE:
            phase = ops.reshape(bits_to_uniform(ops, bits), shape)
            out[name] = ops.reshape(phase * ops.table(_not_first(shape)), shape)
        else:
            out[name] = ops.reshape(bits_to_normal(ops, bits, ops.table(HALF_NORMAL_TABLE)), shape)
    return out


def _not_first(shape: tuple[int, ...]) -> np.ndarray:
    """(B, dim) float32 mask with column 0 zero: the fundamental starts at phase 0."""
    mask = np.ones(shape, np.float32)
    mask[:, 0] = 0
    return mask
