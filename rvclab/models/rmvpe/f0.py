"""RMVPE F0 per 10 ms frame on either backend: ``estimate(audio_16k, backend, f0_min, f0_max)``.

Returns ``(f0_hz, voiced)``, both (N // 160 + 1,): F0 in Hz (0 where unvoiced) and a bool mask.
Models are cached per (path, backend). Weights default to weights/rmvpe.pt (written by the
seeded maker when missing); pass ``model_path=`` for RVC's real ``rmvpe.pt``.

``f0_min``/``f0_max``: RVC WebUI's pipeline does not limit RMVPE's range (its bins span
31.7-2006 Hz), so by default they are ignored, as upstream; ``apply_range=True`` marks frames
outside [f0_min, f0_max] unvoiced. ``pad_mode`` ("reflect" | "constant") and ``chunk_frames``
(padded frames per network call, None: one call) frame the log-mel as a release does
(:mod:`rvclab.profiles`: ``rmvpe_pad_mode``, ``rmvpe_chunk_frames``); their defaults are the
model's (reflect, 32000). With reflect padding, audio shorter than 2720 samples (17 frames,
~0.17 s) cannot be padded to 32 frames: ValueError (upstream fails there too); zero padding has
no minimum. Empty audio gives empty arrays.
"""

from __future__ import annotations

import numpy as np

from rvclab.f0 import F0_MAX, F0_MIN, check_audio_16k
from rvclab.models.rmvpe.config import DEFAULT_PAD_MODE, RmvpeConfig
from rvclab.models.rmvpe.io import ensure_default_weights, load_rmvpe

_MODELS: dict = {}


def get_estimator(backend: str = "torch", model_path=None):
    """Cached ``RMVPE`` wrapper (torch or MLX) for ``model_path`` (default weights/rmvpe.pt)."""
    path = str(ensure_default_weights(model_path))
    key = (path, backend)
    if key not in _MODELS:
        model = load_rmvpe(path, backend)
        if backend == "torch":
            from rvclab.models.rmvpe.torch import RMVPE
        else:
            from rvclab.models.rmvpe.mlx import RMVPE
        _MODELS[key] = RMVPE(model)
    return _MODELS[key]


def estimate(audio_16k: np.ndarray, backend: str = "torch", f0_min: float = F0_MIN,
             f0_max: float = F0_MAX, *, model_path=None, threshold: float | None = None,
             apply_range: bool = False, pad_mode: str = DEFAULT_PAD_MODE,
             chunk_frames: int | None = RmvpeConfig.chunk_frames, **kw) -> tuple[np.ndarray, np.ndarray]:
    """(N,) float audio @ 16 kHz -> (f0_hz (T,), voiced (T,)), T = N // 160 + 1."""
    audio = check_audio_16k(audio_16k)
    if audio.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    est = get_estimator(backend, model_path)
    f0 = np.asarray(est.infer(audio, threshold, chunk_frames=chunk_frames, pad_mode=pad_mode), np.float32)
    if apply_range:
        f0[(f0 < f0_min) | (f0 > f0_max)] = 0.0
    return f0, f0 > 0
