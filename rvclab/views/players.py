"""Audio players for notebooks: one signal, two side by side (A/B), and an F0 contour as a buzz."""

from __future__ import annotations

import ipywidgets as w
import numpy as np
from IPython.display import HTML, Audio, display


def audio_player(audio: np.ndarray, sr: int, label: str = ""):
    """An HTML5 audio player for a mono float signal (with an optional caption)."""
    player = Audio(np.asarray(audio, dtype=np.float32), rate=sr, normalize=False)
    caption = f"<div><b>{label}</b></div>" if label else ""
    return HTML(caption + player._repr_html_())


def ab_player(a: np.ndarray, b: np.ndarray, sr: int, labels=("torch", "MLX")):
    """Two players side by side (A/B listening)."""
    boxes = []
    for audio, label in zip((a, b), labels):
        out = w.Output()
        with out:
            display(Audio(np.asarray(audio, np.float32), rate=sr, normalize=False))
        boxes.append(w.VBox([w.HTML(f"<b>{label}</b>"), out]))
    return w.HBox(boxes)


def pitch_buzz(f0: np.ndarray, fps: int = 100, sr: int = 16000, harmonics: int = 12) -> np.ndarray:
    """An F0 track (Hz per frame at ``fps``, 0 = unvoiced) rendered as a buzz (T * sr / fps,)
    float32 @ ``sr``: harmonics 1/k below Nyquist, silent where unvoiced. For hearing a contour."""
    f0 = np.ravel(f0).astype(np.float64)
    n = f0.size * sr // fps
    hz = np.interp(np.arange(n) / sr, np.arange(f0.size) / fps, f0)
    voiced = np.interp(np.arange(n) / sr, np.arange(f0.size) / fps, (f0 > 0).astype(np.float64))
    phase = 2 * np.pi * np.cumsum(np.where(voiced > 0.5, hz, 0.0)) / sr
    k = np.arange(1, harmonics + 1)[:, None]
    below = (k * hz[None] < sr / 2).astype(np.float64)
    wave = (np.sin(k * phase[None]) * below / k).sum(0) * voiced
    peak = np.abs(wave).max()
    return (0.3 * wave / peak if peak > 0 else wave).astype(np.float32)
