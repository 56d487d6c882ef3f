"""F0 of every method on one clip, and how far the methods agree (for notebooks and docs).

``all_tracks(audio_16k, backend)`` -> {method: f0 Hz (N // 160 + 1,)} for rmvpe, crepe,
crepe-tiny, fcpe (on ``backend``), harvest, dio, pm (CPU).
``agreement_table(tracks)`` -> rows (a, b, median cents, p90 cents, voicing agreement, frames)
on frames voiced in both.
"""

from __future__ import annotations

import numpy as np

from rvclab import metrics
from rvclab.audio import HOP_16K
from rvclab.f0 import pm, world
from rvclab.models.crepe import f0 as crepe
from rvclab.models.fcpe import f0 as fcpe
from rvclab.models.rmvpe import f0 as rmvpe

METHODS = ("rmvpe", "crepe", "crepe-tiny", "fcpe", "harvest", "dio", "pm")


def track(audio_16k: np.ndarray, method: str, backend: str = "mlx", **kw) -> np.ndarray:
    """F0 Hz per 10 ms frame of ``method``, (N // 160 + 1,), 0 where unvoiced."""
    n = np.asarray(audio_16k).size // HOP_16K + 1
    if method in ("crepe", "crepe-tiny"):
        f0 = crepe.estimate(audio_16k, backend, method=method, **kw)[0]
    elif method == "fcpe":
        f0 = fcpe.estimate(audio_16k, backend, **kw)[0]
    elif method in ("harvest", "dio"):
        f0 = world.estimate(audio_16k, method=method, **kw)[0]
    elif method == "pm":
        f0 = pm.estimate(audio_16k, **kw)[0]
    elif method == "rmvpe":
        f0 = rmvpe.estimate(audio_16k, backend, **kw)[0]
    else:
        raise ValueError(f"F0 method '{method}' unknown; expected one of {METHODS}")
    f0 = np.asarray(f0, np.float32)[:n]
    return np.pad(f0, (0, n - f0.size))


def all_tracks(audio_16k: np.ndarray, backend: str = "mlx", methods=METHODS) -> dict:
    """{method: track} for each of ``methods``."""
    return {m: track(audio_16k, m, backend) for m in methods}


def agreement_table(tracks: dict) -> list[dict]:
    """Pairwise agreement: cents on frames voiced in both, and voicing agreement."""
    rows = []
    names = list(tracks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            fa, fb = tracks[a], tracks[b]
            both = (fa > 0) & (fb > 0)
            cents = np.abs(metrics.cents(fa[both], fb[both])) if both.any() else np.zeros(1)
            rows.append({"a": a, "b": b, "median_cents": round(float(np.median(cents)), 1),
                         "p90_cents": round(float(np.percentile(cents, 90)), 1),
                         "voicing_agreement": round(metrics.voicing_agreement(fa, fb), 3),
                         "voiced_both": int(both.sum())})
    return rows
