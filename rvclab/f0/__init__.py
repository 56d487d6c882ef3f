"""F0 methods, one module each, dispatched by rvclab.pitch."""

import numpy as np

F0_MIN, F0_MAX = 50.0, 1100.0  # Hz: RVC's default F0 range (f0_min / f0_max)


def check_audio_16k(audio_16k, dtype=np.float32) -> np.ndarray:
    """``audio_16k`` as a 1-D finite array of ``dtype``; ValueError naming the problem otherwise."""
    audio = np.asarray(audio_16k, dtype=dtype)
    if audio.ndim != 1:
        raise ValueError(f"audio_16k must be 1-D (mono @ 16 kHz); got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio_16k contains NaN or inf")
    return audio
