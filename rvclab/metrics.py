"""Agreement metrics between two backends' outputs (numpy in, Python floats out)."""

from __future__ import annotations

import numpy as np

from rvclab.audio import log_mel


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a, b


def max_abs(a, b) -> float:
    """Largest absolute elementwise difference."""
    a, b = _pair(a, b)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def rmse(a, b) -> float:
    """Root mean square of the difference."""
    a, b = _pair(a, b)
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else 0.0


def rms(a) -> float:
    """Root mean square of one signal."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.mean(a**2))) if a.size else 0.0


def corr(a, b) -> float:
    """Pearson correlation of the flattened arrays (1.0 when both are identical constants)."""
    a, b = _pair(a, b)
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if den == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.sum(a * b) / den)


def cosine_per_frame(a, b, axis: int = -1) -> np.ndarray:
    """Cosine similarity along ``axis`` (the feature axis) for every frame."""
    a, b = _pair(a, b)
    num = np.sum(a * b, axis=axis)
    den = np.linalg.norm(a, axis=axis) * np.linalg.norm(b, axis=axis)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def cents(f_hz, ref_hz) -> np.ndarray:
    """1200*log2(f/ref) elementwise (inputs must be > 0)."""
    return 1200.0 * np.log2(np.asarray(f_hz, np.float64) / np.asarray(ref_hz, np.float64))


def cents_error(f0_a, f0_b) -> dict:
    """Absolute cents error on frames voiced (F0 > 0) in both; median, p99, max, count."""
    a, b = _pair(f0_a, f0_b)
    both = (a > 0) & (b > 0)
    if not both.any():
        return {"median": 0.0, "p99": 0.0, "max": 0.0, "frames": 0}
    err = np.abs(cents(a[both], b[both]))
    return {
        "median": float(np.median(err)),
        "p99": float(np.percentile(err, 99)),
        "max": float(err.max()),
        "frames": int(both.sum()),
    }


def relative_f0_error(f0_test, f0_ref) -> float:
    """Median of (test - ref) / ref on frames voiced in both (e.g. -0.18 for 18% low)."""
    a, b = _pair(f0_test, f0_ref)
    both = (a > 0) & (b > 0)
    return float(np.median((a[both] - b[both]) / b[both])) if both.any() else 0.0


def voicing_agreement(f0_a, f0_b) -> float:
    """Fraction of frames on which both agree voiced (F0 > 0) or both unvoiced."""
    a, b = _pair(f0_a, f0_b)
    return float(np.mean((a > 0) == (b > 0))) if a.size else 1.0


def spectral_corr(wave_a, wave_b, sr: int) -> float:
    """Correlation of the two log-mel spectrograms (the seed's 'spectrogram correlation')."""
    return corr(log_mel(np.asarray(wave_a), sr), log_mel(np.asarray(wave_b), sr))


def snr_db(reference, test) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` in dB (inf when identical)."""
    ref, test = _pair(reference, test)
    noise = np.sum((ref - test) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref**2) / noise))


def rms_ratio(test, reference) -> float:
    """RMS(test) / RMS(reference)."""
    r = rms(reference)
    return rms(test) / r if r > 0 else float("nan")


def compare(a, b) -> dict:
    """The standard summary row: shape, max_abs, rmse, corr, max_abs relative to RMS(a)."""
    a_arr, b_arr = _pair(a, b)
    scale = rms(a_arr)
    m = max_abs(a_arr, b_arr)
    return {
        "shape": tuple(a_arr.shape),
        "max_abs": m,
        "rmse": rmse(a_arr, b_arr),
        "corr": corr(a_arr, b_arr),
        "max_abs_rel": m / scale if scale > 0 else (0.0 if m == 0 else float("inf")),
    }
