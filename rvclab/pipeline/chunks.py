"""Chunking of RVC inference (pure numpy): the device configs in seconds, the padding they give,
the quiet split points and the chunks converted one after another. Re-exported by
:mod:`rvclab.pipeline.steps`. Lengths at 16 kHz (``WINDOW`` = 160-sample frames) except where named.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K

SR_16K = SAMPLE_RATE_16K  # HuBERT and F0 input rate
WINDOW = HOP_16K  # samples per F0 frame at 16 kHz (10 ms)
# How quiet a split point is, per sample: the releases' two formulas (ReferenceProfile.split_quietness)
QUIETNESS = ("sum-abs", "abs-sum")  # sum of |x| over the window (WebUI) | |sum of x| (Applio)


# --- chunking configuration ---------------------------------------------------------------
@dataclass(frozen=True)
class PadConfig:
    """Chunking constants in seconds, as RVC's device configs name them.

    x_pad: context added on each side of every chunk; x_query: half-width of the search for a
    quiet split point; x_center: spacing of the split points; x_max: inputs shorter than this
    are converted in one piece.
    """

    x_pad: int
    x_query: int
    x_center: int
    x_max: int


FP32_CONFIG = PadConfig(x_pad=1, x_query=6, x_center=38, x_max=41)  # fp32 (CPU, MPS, most GPUs)
HALF_CONFIG = PadConfig(x_pad=3, x_query=10, x_center=60, x_max=65)  # fp16 GPUs (WebUI only)
LOW_MEMORY_CONFIG = PadConfig(x_pad=1, x_query=5, x_center=30, x_max=32)  # GPUs with <= 4 GB


@dataclass(frozen=True)
class Padding:
    """Chunking lengths in samples. 16 kHz values except ``t_pad_tgt`` (at the model rate)."""

    t_pad: int  # SR_16K * x_pad: reflect padding on each side of the whole input
    t_pad_tgt: int  # tgt_sr * x_pad: output samples dropped at each end of every chunk
    t_pad2: int  # 2 * t_pad
    t_query: int  # SR_16K * x_query
    t_center: int  # SR_16K * x_center
    t_max: int  # SR_16K * x_max
    window: int = WINDOW


def padding_for(tgt_sr: int, config: PadConfig = FP32_CONFIG) -> Padding:
    """The sample counts the pipeline derives from ``config`` for a model at ``tgt_sr`` Hz.

    As upstream: every 16 kHz length is ``16000 * x_*``; only ``t_pad_tgt`` uses the model rate.
    With FP32_CONFIG and a 40 kHz model: t_pad=16000, t_pad_tgt=40000, t_pad2=32000,
    t_query=96000, t_center=608000, t_max=656000.
    """
    t_pad = SR_16K * config.x_pad
    return Padding(
        t_pad=t_pad,
        t_pad_tgt=int(tgt_sr) * config.x_pad,
        t_pad2=2 * t_pad,
        t_query=SR_16K * config.x_query,
        t_center=SR_16K * config.x_center,
        t_max=SR_16K * config.x_max,
    )


# --- split points and chunks --------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    """One piece of the padded input, converted on its own.

    ``audio_start:audio_stop`` index the t_pad-padded 16 kHz audio (:func:`pad_audio`);
    ``frame_start:frame_stop`` index the F0 arrays computed on it (100 fps). The synthesizer's
    output for the chunk (at tgt_sr) loses ``trim_tgt`` samples at each end before concatenation.
    """

    audio_start: int
    audio_stop: int
    frame_start: int
    frame_stop: int
    trim_tgt: int

    def audio(self, padded: np.ndarray) -> np.ndarray:
        """The chunk's samples, float32 (what HuBERT receives)."""
        return np.asarray(padded[self.audio_start : self.audio_stop], dtype=np.float32)

    def frames(self, arr: np.ndarray) -> np.ndarray:
        """The chunk's slice of a per-frame array (coarse pitch or F0 in Hz)."""
        return arr[self.frame_start : self.frame_stop]

    def trim(self, out: np.ndarray) -> np.ndarray:
        """Drop the padding from the synthesizer output (N_tgt,) -> (N_tgt - 2*trim_tgt,)."""
        return out[self.trim_tgt : out.shape[0] - self.trim_tgt]


def quietness(audio: np.ndarray, window: int = WINDOW, mode: str = "sum-abs") -> np.ndarray:
    """(N,) -> (N,): sum of |x| over ``window`` samples centred on each sample ("sum-abs", RVC
    WebUI), or |sum of x| ("abs-sum", Applio: a DC-free loud stretch can look quiet).

    The input is reflect-padded by window//2 on both sides; element j sums padded samples
    j .. j+window-1. Accumulated one shifted slice at a time, in the same order as upstream, so
    the float64 sums (and hence ties) are identical.
    """
    x = np.asarray(audio)
    return quietness_range(x, 0, x.shape[0], window, mode)


def quietness_range(audio: np.ndarray, start: int, stop: int, window: int = WINDOW,
                    mode: str = "sum-abs") -> np.ndarray:
    """Elements ``start:stop`` of :func:`quietness` (same sums, same order), computed from the
    samples they need only: split points read a few seconds around each cut, not the whole clip."""
    x = np.asarray(audio)
    n = x.shape[0]
    half = window // 2
    idx = np.abs(np.arange(start - half, stop - half + window - 1))  # reflect at the start
    idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)  # and at the end (np.pad's "reflect")
    padded = x[idx]
    if mode not in QUIETNESS:
        raise ValueError(f"split quietness {mode!r}: choose from {', '.join(QUIETNESS)}")
    total = np.zeros(stop - start, dtype=x.dtype)
    buf = np.empty_like(total)
    for i in range(window):
        if mode == "sum-abs":
            np.abs(padded[i : i + stop - start], out=buf)
            total += buf
        else:
            total += padded[i : i + stop - start]
    return total if mode == "sum-abs" else np.abs(total)


def split_points(audio: np.ndarray, pad: Padding, mode: str = "sum-abs") -> list[int]:
    """(N,) high-passed audio @ 16 kHz -> split sample indices in the unpadded input.

    No splits when N + window <= t_max (the window-padded length is what upstream compares).
    Otherwise, for each t = t_center, 2*t_center, ... < N, the first quietest sample of
    :func:`quietness` in [t - t_query, t + t_query) (clipped at N). Not yet rounded to frames.
    Each window is searched with cumulative sums (:func:`quietest`), and the sums within their
    rounding bound of the minimum are recomputed as :func:`quietness_range` does, so the choice is
    upstream's, tie for tie. ``mode`` "abs-sum" (:func:`quietness`) sums each window exactly in
    upstream's order (no shortcut: signed sums cancel).
    """
    x = np.asarray(audio)
    n = x.shape[0]
    if n + 2 * (pad.window // 2) <= pad.t_max:
        return []
    points = []
    for t in range(pad.t_center, n, pad.t_center):
        span = range(n)[t - pad.t_query : t + pad.t_query]  # the slice upstream takes of the sums
        if mode == "sum-abs":
            offset = quietest(x, span.start, span.stop, pad.window)
        else:
            sums = quietness_range(x, span.start, span.stop, pad.window, mode)
            offset = int(np.flatnonzero(sums == sums.min())[0])
        points.append(t - pad.t_query + offset)
    return points


def quietest(audio: np.ndarray, start: int, stop: int, window: int = WINDOW) -> int:
    """Offset from ``start`` of the first minimum of :func:`quietness` over ``start:stop``.

    Window sums as differences of one float64 cumulative sum of |x| (O(n), not O(n * window));
    every sum within the cumulative sum's worst-case rounding error of the smallest is recomputed
    in upstream's order (:func:`quietness_range`), and the first exact minimum among them wins.
    """
    x = np.asarray(audio)
    n = x.shape[0]
    half = window // 2
    idx = np.abs(np.arange(start - half, stop - half + window - 1))
    idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
    mag = np.abs(x[idx].astype(np.float64, copy=False))
    csum = np.concatenate(([0.0], np.cumsum(mag)))
    sums = csum[window:] - csum[:-window]  # (stop - start,)
    # Recursive summation of m non-negative terms errs by at most gamma_m * total, gamma_m =
    # m u / (1 - m u) (Higham, Accuracy and Stability, 4.3): each difference is within 2 gamma_m
    # * total (+ its own rounding) of the true window sum, and upstream's sums in x's dtype within
    # gamma_window of it; any sum that can equal upstream's minimum lies within ``bound``.
    def gamma(m: int, dtype) -> float:
        u = float(np.finfo(dtype).eps) / 2
        return m * u / (1 - m * u)

    lowest = float(sums.min())
    err = 2 * gamma(mag.shape[0], np.float64) * float(csum[-1]) + gamma(1, np.float64) * float(sums.max())
    bound = 2 * err + 4 * gamma(window, x.dtype) * (lowest + err)
    near = np.flatnonzero(sums <= lowest + bound)
    if near.shape[0] == 1:
        return int(near[0])
    exact = np.zeros(near.shape[0], dtype=x.dtype)
    for i in range(window):  # upstream's order of accumulation, on the candidates only
        exact += np.abs(x[idx[near + i]])
    return int(near[np.flatnonzero(exact == exact.min())[0]])


def plan_chunks(audio: np.ndarray, pad: Padding, quietness: str = "sum-abs") -> list[Chunk]:
    """(N,) high-passed audio @ 16 kHz -> the chunks, in order, covering the whole input.

    ``quietness``: how split points are found (:data:`QUIETNESS`, :func:`quietness`). Each split
    point is rounded down to a multiple of ``window``. Chunk i spans padded samples
    [s, t + 2*t_pad + window) where s is the previous split (0 first) and t this one; its F0
    frames are [s // window, (t + 2*t_pad) // window) - one frame fewer than its samples hold,
    as upstream (the synthesizer call trims to the shorter of features and pitch). The last
    chunk runs from the last split to the end of the padded audio and of the F0 arrays.

    Upstream consequence (kept): HuBERT gives 2*T = n-1 frames for an odd chunk length of n
    frames and n-2 for an even one, so after trimming t_pad_tgt a chunk yields (t - s)/160
    frames or one fewer; at such a split 10 ms of input is dropped and later output sits 10 ms
    early. A 95 s input cut into 3 chunks gives 9528 output frames for 9530 input frames.
    """
    n = np.asarray(audio).shape[0]
    n_padded = n + 2 * pad.t_pad
    n_frames = n_padded // pad.window
    chunks = []
    s = 0
    for t in split_points(audio, pad, quietness):
        t = t // pad.window * pad.window
        chunks.append(
            Chunk(
                s,
                t + pad.t_pad2 + pad.window,
                s // pad.window,
                (t + pad.t_pad2) // pad.window,
                pad.t_pad_tgt,
            )
        )
        s = t
    chunks.append(Chunk(s, n_padded, s // pad.window, n_frames, pad.t_pad_tgt))
    return chunks


def pad_audio(audio: np.ndarray, pad: Padding) -> np.ndarray:
    """(N,) -> (N + 2*t_pad,): reflect padding by t_pad on each side (same dtype).

    F0 is estimated on this array and truncated to ``len // window`` frames (``p_len``).
    """
    return np.pad(np.asarray(audio), (pad.t_pad, pad.t_pad), mode="reflect")
