"""Agreement metrics between two backends' outputs (numpy in, Python floats out).

Not comparable is NaN, never a pass. A metric with nothing to compare returns ``NaN``
(:data:`NOT_COMPARABLE`): empty inputs, a NaN or infinity in either input, no frame voiced in
both (the F0 metrics), a correlation of a constant signal, a cosine of an all-zero frame. Every
check treats NaN as a failure: :class:`rvclab.tolerances.Check` does (``goal_ok`` / ``guard_ok``),
and a bound written ``value <= bound`` or ``value >= bound`` is False for NaN (never write
``not value > bound``). Callers report the NaN as it is; :func:`comparable` tells it apart.
Inputs of different shapes raise ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np

from rvclab.audio import log_mel

NOT_COMPARABLE = float("nan")


def comparable(value) -> bool:
    """False for a metric that had nothing to compare (NaN); True for any number, inf included."""
    return not math.isnan(float(value))


def _finite(*arrays: np.ndarray) -> bool:
    """Every array non-empty and free of NaN and infinity."""
    return all(a.size and np.isfinite(a).all() for a in arrays)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a, b


def max_abs(a, b) -> float:
    """Largest absolute elementwise difference (NaN: not comparable)."""
    a, b = _pair(a, b)
    return float(np.max(np.abs(a - b))) if _finite(a, b) else NOT_COMPARABLE


def rmse(a, b) -> float:
    """Root mean square of the difference (NaN: not comparable)."""
    a, b = _pair(a, b)
    return float(np.sqrt(np.mean((a - b) ** 2))) if _finite(a, b) else NOT_COMPARABLE


def rms(a) -> float:
    """Root mean square of one signal (NaN when empty or not finite)."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.mean(a**2))) if _finite(a) else NOT_COMPARABLE


def corr(a, b) -> float:
    """Pearson correlation of the flattened arrays (NaN when either is constant: undefined)."""
    a, b = _pair(a, b)
    if not _finite(a, b):
        return NOT_COMPARABLE
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / den) if den > 0 else NOT_COMPARABLE


def cosine_per_frame(a, b, axis: int = -1) -> np.ndarray:
    """Cosine similarity along ``axis`` (the feature axis) for every frame; NaN for a frame that
    is all zeros in either input or holds a NaN/inf. Empty inputs give an empty array: reduce
    with :func:`worst_cosine`, not ``.min()``."""
    a, b = _pair(a, b)
    num = np.sum(a * b, axis=axis)
    den = np.linalg.norm(a, axis=axis) * np.linalg.norm(b, axis=axis)
    ok = (den > 0) & np.isfinite(den) & np.isfinite(num)
    return np.where(ok, num / np.where(ok, den, 1.0), NOT_COMPARABLE)


def worst_cosine(cos: np.ndarray) -> float:
    """The lowest per-frame cosine; NaN when there is no frame or any frame is NaN."""
    cos = np.asarray(cos, dtype=np.float64)
    return float(cos.min()) if cos.size and not np.isnan(cos).any() else NOT_COMPARABLE


def cents(f_hz, ref_hz) -> np.ndarray:
    """1200*log2(f/ref) elementwise (inputs must be > 0)."""
    return 1200.0 * np.log2(np.asarray(f_hz, np.float64) / np.asarray(ref_hz, np.float64))


def _f0_pair(f0_a, f0_b) -> tuple[np.ndarray, np.ndarray] | None:
    """Both F0 curves (Hz, 0 = unvoiced) as float64, or None when not comparable (empty, NaN)."""
    a, b = _pair(f0_a, f0_b)
    return (a, b) if _finite(a, b) else None


def cents_error(f0_a, f0_b) -> dict:
    """Absolute cents error on frames voiced (F0 > 0) in both: median, p99, max (NaN when no
    frame is voiced in both, either curve is empty or holds a NaN) and ``frames`` (the count)."""
    pair = _f0_pair(f0_a, f0_b)
    both = (pair[0] > 0) & (pair[1] > 0) if pair is not None else np.zeros(0, bool)
    if not both.any():
        return {"median": NOT_COMPARABLE, "p99": NOT_COMPARABLE, "max": NOT_COMPARABLE,
                "frames": 0}
    a, b = pair
    err = np.abs(cents(a[both], b[both]))
    return {
        "median": float(np.median(err)),
        "p99": float(np.percentile(err, 99)),
        "max": float(err.max()),
        "frames": int(both.sum()),
    }


def relative_f0_error(f0_test, f0_ref) -> float:
    """Median of (test - ref) / ref on frames voiced in both (e.g. -0.18 for 18% low); NaN when
    none is (or either curve is empty or holds a NaN)."""
    pair = _f0_pair(f0_test, f0_ref)
    if pair is None:
        return NOT_COMPARABLE
    a, b = pair
    both = (a > 0) & (b > 0)
    return float(np.median((a[both] - b[both]) / b[both])) if both.any() else NOT_COMPARABLE


def voicing_agreement(f0_a, f0_b) -> float:
    """Fraction of frames on which both agree voiced (F0 > 0) or both unvoiced (NaN when either
    curve is empty or holds a NaN)."""
    pair = _f0_pair(f0_a, f0_b)
    return float(np.mean((pair[0] > 0) == (pair[1] > 0))) if pair is not None else NOT_COMPARABLE


def spectral_corr(wave_a, wave_b, sr: int) -> float:
    """Correlation of the two log-mel spectrograms (the seed's 'spectrogram correlation');
    NaN when either wave is empty or not finite."""
    a, b = np.asarray(wave_a), np.asarray(wave_b)
    if not _finite(a, b):
        return NOT_COMPARABLE
    return corr(log_mel(a, sr), log_mel(b, sr))


def snr_db(reference, test) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` in dB (inf when identical)."""
    ref, test = _pair(reference, test)
    if not _finite(ref, test):
        return NOT_COMPARABLE
    noise = np.sum((ref - test) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref**2) / noise))


def rms_ratio(test, reference) -> float:
    """RMS(test) / RMS(reference) (NaN when the reference is silent, empty or not finite)."""
    r = rms(reference)
    return rms(test) / r if r > 0 else NOT_COMPARABLE


def compare(a, b) -> dict:
    """The standard summary row: shape, max_abs, rmse, corr, max_abs relative to RMS(a).

    ``max_abs_rel`` is 0 for two identical all-zero arrays, inf when only ``a`` is all zeros,
    NaN when not comparable; ``corr`` is NaN for a constant array."""
    a_arr, b_arr = _pair(a, b)
    scale = rms(a_arr)
    m = max_abs(a_arr, b_arr)
    if not comparable(m):
        rel = NOT_COMPARABLE
    else:
        rel = m / scale if scale > 0 else (0.0 if m == 0 else float("inf"))
    return {
        "shape": tuple(a_arr.shape),
        "max_abs": m,
        "rmse": rmse(a_arr, b_arr),
        "corr": corr(a_arr, b_arr),
        "max_abs_rel": rel,
    }
