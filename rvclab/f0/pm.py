"""Praat autocorrelation F0 (method ``pm``, praat-parselmouth) per 10 ms frame, CPU only.

``estimate(audio_16k, backend, f0_min, f0_max)`` -> ``(f0_hz, voiced)``, both (N // 160 + 1,).
``backend`` is accepted for a uniform interface and ignored.

RVC's parameters: ``to_pitch_ac(time_step=0.01, voicing_threshold=0.6, pitch_floor=f0_min,
pitch_ceiling=f0_max)``; Praat returns fewer frames (its first frame is centred half an analysis
window in), so the track is zero-padded on both sides to the frame count, the extra zero going to
the end when the difference is odd, as RVC pads it. Audio shorter than Praat's analysis window
(3 / f0_min seconds) gives an all-unvoiced track.
"""

from __future__ import annotations

import numpy as np

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K
from rvclab.f0 import F0_MAX, F0_MIN, check_audio_16k

TIME_STEP_S = HOP_16K / SAMPLE_RATE_16K  # 0.01
VOICING_THRESHOLD = 0.6


def estimate(audio_16k: np.ndarray, backend: str = "cpu", f0_min: float = F0_MIN,
             f0_max: float = F0_MAX, *, voicing_threshold: float = VOICING_THRESHOLD,
             **_) -> tuple[np.ndarray, np.ndarray]:
    """(N,) audio @ 16 kHz -> (f0_hz, voiced), each (N // 160 + 1,)."""
    import parselmouth

    x = check_audio_16k(audio_16k, np.float64)
    want = x.size // HOP_16K + 1
    if x.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    try:
        pitch = parselmouth.Sound(x, SAMPLE_RATE_16K).to_pitch_ac(
            time_step=TIME_STEP_S, voicing_threshold=voicing_threshold,
            pitch_floor=float(f0_min), pitch_ceiling=float(f0_max))
        f0 = np.asarray(pitch.selected_array["frequency"], np.float32)
    except parselmouth.PraatError:  # shorter than one analysis window
        f0 = np.zeros(0, np.float32)
    f0 = f0[:want]
    pad = (want - f0.size + 1) // 2
    f0 = np.pad(f0, (pad, want - f0.size - pad))
    f0 = np.nan_to_num(f0, nan=0.0).astype(np.float32)
    return f0, f0 > 0
