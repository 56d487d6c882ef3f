"""Every random draw of one RVC synthesizer inference, made explicit and shared by both backends.

Upstream draws inside ``infer`` from torch's global RNG; here numpy's PCG64 draws, from one seed,
float32 arrays in torch's layout (the MLX side transposes what it needs):
``z_p`` (B, inter_channels, T) @ 100 fps; ``sine_phase`` (B, dim); ``sine_noise`` (B, T*hop, dim)
@ sr, with dim = HARMONIC_NUM + 1. No-F0 models use only ``z_p``. Table: docs/synthesizer.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
