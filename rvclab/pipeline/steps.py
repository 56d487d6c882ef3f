"""Backend-independent steps of RVC inference, as pure numpy functions (RVC WebUI 20240604, Applio).

Both backends see the same chunks, pitch arrays and post-processing. Input side: 16 kHz
(``SR_16K``), 10 ms frames (``WINDOW`` = 160 samples, 100 fps); output side: the voice's rate
``tgt_sr``. Where the two upstreams differ, the function says which one it follows. The output
stage (:mod:`rvclab.pipeline.output`) is re-exported here.
:func:`rvclab.pipeline.conversion.convert_voice` composes the steps in order: normalize_input,
highpass, plan_chunks, pad_audio, F0, postprocess_f0, per chunk features_to_frames and the
synthesizer, change_rms and finalize_audio (in place on the output: ``mix_rms_``, ``finalize_audio_``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K
from rvclab.models.synth.config import coarse_pitch as coarse_pitch
from rvclab.pipeline.output import OUTPUT_PEAK as OUTPUT_PEAK
from rvclab.pipeline.output import change_rms as change_rms
from rvclab.pipeline.output import finalize_audio as finalize_audio
from rvclab.pipeline.output import finalize_audio_ as finalize_audio_
from rvclab.pipeline.output import frame_rms as frame_rms
from rvclab.pipeline.output import interp_linear as interp_linear
from rvclab.pipeline.output import mix_rms_ as mix_rms_
from rvclab.pipeline.output import to_int16_webui as to_int16_webui

SR_16K = SAMPLE_RATE_16K  # HuBERT and F0 input rate
WINDOW = HOP_16K  # samples per F0 frame at 16 kHz (10 ms)
FRAME_RATE = SR_16K // WINDOW  # 100 F0 frames per second ("tf0" upstream)

# --- input high-pass: 5th-order Butterworth, 48 Hz, applied forward and backward (filtfilt) ----
HIGHPASS_ORDER = 5
HIGHPASS_CUTOFF_HZ = 48
HIGHPASS_B, HIGHPASS_A = signal.butter(
    N=HIGHPASS_ORDER, Wn=HIGHPASS_CUTOFF_HZ, btype="high", fs=SR_16K
)
HIGHPASS_MIN_SAMPLES = 3 * max(len(HIGHPASS_A), len(HIGHPASS_B)) + 1  # filtfilt's padlen + 1 = 19

# --- pitch: coarse ids 1..255 on the mel scale between F0_MIN and F0_MAX ----------------------
COARSE_MIN, COARSE_MAX = 1, 255

PROTECT_OFF = 0.5  # protect >= 0.5 disables the protection of unvoiced frames
INPUT_PEAK = 0.95  # the loaded input is scaled down if its peak exceeds this


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


# --- input conditioning -------------------------------------------------------------------
def normalize_input(audio: np.ndarray) -> np.ndarray:
    """(N,) float @ 16 kHz -> (N,) float32, divided by peak/0.95 when the peak exceeds 0.95.

    Both upstreams do this right after loading. Raises ValueError on NaN/Inf or empty input.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"audio: expected a non-empty mono array (N,), found shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"audio: {int(np.sum(~np.isfinite(x)))} NaN/Inf samples")
    peak = float(np.abs(x).max()) / INPUT_PEAK
    return x / np.float32(peak) if peak > 1 else x.copy()


def highpass(audio: np.ndarray) -> np.ndarray:
    """(N,) @ 16 kHz -> (N,) float64: zero-phase 5th-order Butterworth high-pass at 48 Hz.

    scipy's ``filtfilt`` with its default odd-extension padding, as upstream; the result is
    float64 (upstream keeps it so: split points and the RMS envelope are computed on it, and each
    chunk is cast to float32 when it enters HuBERT).
    """
    x = np.asarray(audio)
    if x.ndim != 1 or x.shape[0] < HIGHPASS_MIN_SAMPLES:
        raise ValueError(
            f"audio: the high-pass filter needs a mono array of at least {HIGHPASS_MIN_SAMPLES} "
            f"samples, found shape {x.shape}"
        )
    return signal.filtfilt(HIGHPASS_B, HIGHPASS_A, x)


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


def quietness(audio: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """(N,) -> (N,): sum of |x| over ``window`` samples centred on each sample.

    The input is reflect-padded by window//2 on both sides; element j sums padded samples
    j .. j+window-1. Accumulated one shifted slice at a time, in the same order as upstream, so
    the float64 sums (and hence ties) are identical.
    """
    x = np.asarray(audio)
    return quietness_range(x, 0, x.shape[0], window)


def quietness_range(audio: np.ndarray, start: int, stop: int, window: int = WINDOW) -> np.ndarray:
    """Elements ``start:stop`` of :func:`quietness` (same sums, same order), computed from the
    samples they need only: split points read a few seconds around each cut, not the whole clip."""
    x = np.asarray(audio)
    n = x.shape[0]
    half = window // 2
    idx = np.abs(np.arange(start - half, stop - half + window - 1))  # reflect at the start
    idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)  # and at the end (np.pad's "reflect")
    padded = x[idx]
    total = np.zeros(stop - start, dtype=x.dtype)
    buf = np.empty_like(total)
    for i in range(window):
        np.abs(padded[i : i + stop - start], out=buf)
        total += buf
    return total


def split_points(audio: np.ndarray, pad: Padding) -> list[int]:
    """(N,) high-passed audio @ 16 kHz -> split sample indices in the unpadded input.

    No splits when N + window <= t_max (the window-padded length is what upstream compares).
    Otherwise, for each t = t_center, 2*t_center, ... < N, the first quietest sample of
    :func:`quietness` in [t - t_query, t + t_query) (clipped at N). Not yet rounded to frames.
    Each window is searched with cumulative sums (:func:`quietest`), and the sums within their
    rounding bound of the minimum are recomputed as :func:`quietness_range` does, so the choice is
    upstream's, tie for tie.
    """
    x = np.asarray(audio)
    n = x.shape[0]
    if n + 2 * (pad.window // 2) <= pad.t_max:
        return []
    points = []
    for t in range(pad.t_center, n, pad.t_center):
        span = range(n)[t - pad.t_query : t + pad.t_query]  # the slice upstream takes of the sums
        points.append(t - pad.t_query + quietest(x, span.start, span.stop, pad.window))
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


def plan_chunks(audio: np.ndarray, pad: Padding) -> list[Chunk]:
    """(N,) high-passed audio @ 16 kHz -> the chunks, in order, covering the whole input.

    Each split point is rounded down to a multiple of ``window``. Chunk i spans padded samples
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
    for t in split_points(audio, pad):
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


# --- pitch --------------------------------------------------------------------------------
def shift_f0(f0: np.ndarray, f0_up_key: float) -> np.ndarray:
    """(T,) Hz -> (T,) Hz times 2**(f0_up_key/12); unvoiced zeros stay zero. Keeps the dtype."""
    f0 = np.array(f0, copy=True)
    f0 *= pow(2, f0_up_key / 12)
    return f0


def read_f0_curve(path: str | Path) -> np.ndarray:
    """A user F0 file -> (M, 2) float32 of (time in s, F0 in Hz), one "time,hz" pair per line.

    The WebUI's format (comma-separated, no header). Raises ValueError naming the file and line.
    """
    rows = []
    text = Path(path).read_text(encoding="utf-8").strip("\n")
    for number, line in enumerate(text.split("\n"), 1):
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            values = []
        if len(values) != 2 or not all(np.isfinite(values)):
            raise ValueError(
                f"{path}: line {number}: expected 'time,hz' (two numbers), found {line!r}"
            )
        rows.append(values)
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2)


def apply_f0_curve(f0: np.ndarray, curve: np.ndarray, x_pad: int) -> np.ndarray:
    """Replace F0 frames with a user curve (M, 2) of (seconds, Hz), as the WebUI does.

    ``f0`` (T,) is on the padded audio, so frame x_pad*100 is the input's first frame. The curve
    is resampled by linear interpolation at frames 0, 1, ..., D-1 with
    D = round((t_max - t_min) * 100 + 1), using the curve's times * 100 as the x positions, and
    written from frame x_pad*100 on (cut at the end of ``f0``). Upstream quirks kept: frames
    count from the input's start but D from the curve's duration, so a curve whose first time is
    not 0 is cut short at its end; the curve is not pitch-shifted (it is applied after the
    shift). One difference: upstream stores D as int16, which wraps for curves longer than
    327 s; we do not.
    """
    curve = np.asarray(curve, dtype=np.float32)
    if curve.ndim != 2 or curve.shape[1] != 2 or curve.shape[0] == 0:
        raise ValueError(f"f0 curve: expected shape (M, 2) with M >= 1, found {curve.shape}")
    out = np.array(f0, copy=True)
    times = curve[:, 0]
    n = int(np.round((times.max() - times.min()) * FRAME_RATE + 1))
    values = np.interp(np.arange(n), times * FRAME_RATE, curve[:, 1])
    start = x_pad * FRAME_RATE
    target = out[start : start + n]
    target[:] = values[: target.shape[0]]
    return out


def postprocess_f0(
    f0: np.ndarray,
    f0_up_key: float = 0,
    f0_curve: np.ndarray | None = None,
    x_pad: int = FP32_CONFIG.x_pad,
    n_frames: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw F0 (T,) Hz on the padded audio -> (coarse (T',) int32, f0bak (T',) float32 Hz).

    Shift by ``f0_up_key`` semitones, then the optional user curve (:func:`apply_f0_curve`),
    then coarse ids; ``f0bak`` (the synthesizer's NSF F0, "pitchf") is the shifted/overridden Hz
    curve. Both are truncated to ``n_frames`` (the pipeline's p_len) when given.
    """
    shifted = shift_f0(f0, f0_up_key)
    if f0_curve is not None:
        shifted = apply_f0_curve(shifted, f0_curve, x_pad)
    f0bak = shifted.copy()
    coarse = coarse_pitch(shifted)
    if n_frames is not None:
        coarse, f0bak = coarse[:n_frames], f0bak[:n_frames]
    return coarse, f0bak.astype(np.float32)


# --- features -----------------------------------------------------------------------------
def repeat_x2(feats: np.ndarray) -> np.ndarray:
    """(T, C) @ 50 fps -> (2T, C) @ 100 fps: each frame twice (nearest, scale factor 2)."""
    x = np.asarray(feats)
    out = np.empty((2 * x.shape[0], *x.shape[1:]), dtype=x.dtype)
    out.reshape(x.shape[0], 2, *x.shape[1:])[:] = x[:, None]
    return out


def protect_weights(pitchf: np.ndarray, protect: float) -> np.ndarray:
    """(T,) F0 Hz -> (T,) weight of the (retrieval-blended) features per frame.

    1 where F0 >= 1 Hz, ``protect`` elsewhere (unvoiced; as upstream, 0 < F0 < 1 also counts as
    unvoiced because the "< 1" rule is applied last). Dtype float32.
    """
    pitchf = np.asarray(pitchf, dtype=np.float32)
    w = pitchf.copy()
    w[pitchf > 0] = 1
    w[pitchf < 1] = protect
    return w


def features_to_frames(
    feats: np.ndarray,
    feats0: np.ndarray | None,
    n_samples: int,
    pitch: np.ndarray | None = None,
    pitchf: np.ndarray | None = None,
    protect: float = 0.33,
) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray | None]:
    """Per-chunk features @ 50 fps -> synthesizer inputs @ 100 fps.

    feats (T, C): HuBERT features after the optional index blend; feats0 (T, C): the same before
    the blend (used only when protecting; None when nothing was blended, which makes protection
    the identity, as it is upstream without an index); n_samples: the chunk's 16 kHz length;
    pitch/pitchf (F,): the chunk's coarse ids / Hz (None for a model without F0).
    Returns (feats (2T, C), p_len, pitch[:p_len], pitchf[:p_len]) with
    p_len = min(n_samples // window, 2T). Pitch is trimmed only when the features are shorter
    (as upstream). When protect < 0.5 and pitch is given, unvoiced frames mix back the
    un-blended features: feats*w + feats0*(1-w), w from :func:`protect_weights`; protect >= 0.5
    leaves the features as they are.
    """
    up = repeat_x2(feats)
    p_len = n_samples // WINDOW
    if up.shape[0] < p_len:
        p_len = up.shape[0]
        if pitch is not None and pitchf is not None:
            pitch, pitchf = pitch[:p_len], pitchf[:p_len]
    if protect < PROTECT_OFF and pitch is not None and pitchf is not None and feats0 is not None:
        w = protect_weights(pitchf, protect)[:, None]
        if w.shape[0] != up.shape[0]:
            raise ValueError(
                f"protect: features have {up.shape[0]} frames but F0 has {w.shape[0]}; "
                "expected equal counts after trimming"
            )
        # only frames with w != 1 change (w = 1 gives up * 1 + base * 0 = up exactly)
        rows = np.flatnonzero(w[:, 0] != 1)
        wr = w[rows]
        base = np.asarray(feats0)[rows // 2]
        up[rows] = (up[rows] * wr + base * (1 - wr)).astype(up.dtype)
    return up, p_len, pitch, pitchf
