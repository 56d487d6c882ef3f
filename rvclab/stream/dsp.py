"""The signal processing around the networks of a streaming conversion (numpy only).

Upstream's realtime path, as facts: a silence gate on 40 ms RMS windows, block-wise resampling
with 20 ms of left context (the newest 10 ms @ 16 kHz recomputed on the next block), the RMS
envelope blend, and SOLA: the offset (within the search span) where the new block best matches
the tail kept from the previous one, then a sin^2 crossfade over the matched span.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K
from rvclab.stream.config import GATE_WINDOW_FRAMES

DB_FLOOR_AMPLITUDE = 1e-5  # amplitude floor before dB (-100 dB), as librosa's amplitude_to_db
RMS_FLOOR = 1e-3  # the model's envelope is floored here before dividing by it, as upstream
SOLA_EPS = 1e-8  # added under the square root of the SOLA normaliser


def fade_in(n: int) -> np.ndarray:
    """(n,) float32 rising sin^2 ramp from 0 to 1 (the fade-out is 1 minus it)."""
    return (np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, n)) ** 2).astype(np.float32)


def frame_rms(x: np.ndarray, zc: int) -> np.ndarray:
    """RMS of centred windows of GATE_WINDOW_FRAMES*zc samples every zc samples (zero padded), float32."""
    half = GATE_WINDOW_FRAMES * zc // 2
    padded = np.pad(np.asarray(x, np.float64), (half, half))
    csum = np.concatenate([[0.0], np.cumsum(padded ** 2)])
    starts = np.arange(0, padded.size - 2 * half + 1, zc)
    energy = np.maximum(csum[starts + 2 * half] - csum[starts], 0.0) / (2 * half)
    return np.sqrt(energy).astype(np.float32)


def silence_gate(history: np.ndarray, block: np.ndarray, zc: int, threshold_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero the 10 ms pieces whose centred 40 ms RMS is below ``threshold_db`` (dB re 1.0).

    history: the last GATE_WINDOW_FRAMES*zc input samples before ``block``. Returns (samples,
    new history): samples cover the last 2*zc samples of the previous block (judged again, now
    with their right context) and ``block``, so the caller writes 2*zc + len(block) samples.
    """
    joined = np.concatenate([history, block]).astype(np.float32)
    rms = frame_rms(joined, zc)[2:]  # window i centred on joined[(i + 2) * zc]
    db = 20 * np.log10(np.maximum(rms, DB_FLOOR_AMPLITUDE))
    out = joined[2 * zc:].copy()
    for i in np.flatnonzero(db < threshold_db):
        start = max(i * zc - zc // 2, 0)
        out[start:(i + 1) * zc - zc // 2] = 0
    return out, joined[-GATE_WINDOW_FRAMES * zc:].copy()


def resample_poly(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Linear-phase polyphase resampling (delay compensated), float32; exact length n*sr_out/sr_in."""
    if sr_in == sr_out:
        return np.asarray(x, np.float32)
    g = math.gcd(int(sr_in), int(sr_out))
    return signal.resample_poly(np.asarray(x, np.float32), sr_out // g, sr_in // g).astype(np.float32)


def to_16k_tail(buffer: np.ndarray, n_new: int, sr: int, zc: int) -> np.ndarray:
    """The 16 kHz samples to write at the end of the 16 kHz buffer after ``n_new`` samples entered
    ``buffer`` (at ``sr``): the new span plus the previous 10 ms, resampled with 20 ms of context."""
    src = buffer[-(n_new + 2 * zc):]
    return resample_poly(src, sr, SAMPLE_RATE_16K)[HOP_16K:]


def rms_mix(source: np.ndarray, out: np.ndarray, zc: int, rate: float) -> np.ndarray:
    """Impose the envelope of ``source`` on ``out`` by (1 - rate): out * (rms_src / rms_out)^(1-rate).

    Envelopes: 40 ms windows every 10 ms, stretched linearly (ends aligned) to one value per sample.
    """
    n = out.size
    src = np.zeros(n, np.float32)
    src[:min(n, source.size)] = source[:n]

    def envelope(x):
        r = frame_rms(x, zc)
        pos = np.linspace(0, r.size - 1, n + 1)[:-1]
        return np.interp(pos, np.arange(r.size), r).astype(np.float32)

    ratio = envelope(src) / np.maximum(envelope(out), RMS_FLOOR)
    return (out * ratio ** np.float32(1 - rate)).astype(np.float32)


def sola_offset(out: np.ndarray, tail: np.ndarray, search: int) -> int:
    """Offset in 0..search where ``out`` best matches ``tail`` (normalised cross-correlation)."""
    n = tail.size
    seg = np.asarray(out[:n + search], np.float64)
    num = np.correlate(seg, tail.astype(np.float64), mode="valid")
    den = np.sqrt(np.convolve(seg ** 2, np.ones(n), mode="valid") + SOLA_EPS)
    return int(np.argmax(num / den))


def sola_crossfade(out: np.ndarray, tail: np.ndarray, offset: int, block: int,
                   window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(block samples to play, the next tail): ``out`` from ``offset``, its first len(tail)
    samples faded in over ``tail`` faded out."""
    n = tail.size
    y = out[offset:].astype(np.float32, copy=True)
    y[:n] = y[:n] * window + tail * (1 - window)
    return y[:block], y[block:block + n].copy()
