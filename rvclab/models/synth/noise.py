"""Every random draw of one RVC synthesizer inference, made explicit and shared by both backends.

Upstream draws three things inside ``infer`` (torch's global RNG, so backends can never agree):

* ``z_p``: ``randn_like(m_p)`` in ``z_p = (m_p + exp(logs_p) * noise * 0.66666) * mask``;
  (B, inter_channels, T) standard normal at the frame rate (100 fps).
* ``sine_phase``: SineGen's random initial phase per harmonic, ``rand(B, dim)`` uniform [0, 1)
  with column 0 (the fundamental) forced to 0. RVC uses ``harmonic_num = 0`` so dim = 1 and this
  array is all zeros; it is kept so the interface covers the general source module.
* ``sine_noise``: SineGen's ``randn_like(sine_waves)``; (B, T * hop, dim) standard normal at the
  audio rate, scaled inside SineGen by 0.003 on voiced and 0.1 / 3 on unvoiced samples.

No-F0 ("nono") models only use ``z_p``. Arrays are float32 numpy, layout as in torch
(channels-first); the MLX side transposes what it needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Z_P = "z_p"
SINE_PHASE = "sine_phase"
SINE_NOISE = "sine_noise"

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
