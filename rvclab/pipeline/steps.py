"""Backend-independent steps of RVC inference, as pure numpy functions (RVC WebUI 20240604, Applio).

Both backends see the same chunks, pitch arrays and post-processing. Input side: 16 kHz
(``SR_16K``), 10 ms frames (``WINDOW`` = 160 samples, 100 fps); output side: the voice's rate
``tgt_sr``. Where the releases differ, the function takes the choice as an argument
(:mod:`rvclab.profiles` names each release's). The chunking (:mod:`rvclab.pipeline.chunks`) and
the output stage (:mod:`rvclab.pipeline.output`) are re-exported here.
:func:`rvclab.pipeline.conversion.convert_voice` composes the steps in order: normalize_input,
highpass, plan_chunks, pad_audio, F0, postprocess_f0, per chunk features_to_frames and the
synthesizer, change_rms and finalize_audio (in place on the output: ``mix_rms_``, ``finalize_audio_``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import signal

from rvclab.models.synth.config import coarse_pitch as coarse_pitch
from rvclab.pipeline.chunks import FP32_CONFIG as FP32_CONFIG
from rvclab.pipeline.chunks import HALF_CONFIG as HALF_CONFIG
from rvclab.pipeline.chunks import LOW_MEMORY_CONFIG as LOW_MEMORY_CONFIG
from rvclab.pipeline.chunks import QUIETNESS as QUIETNESS
from rvclab.pipeline.chunks import SR_16K as SR_16K
from rvclab.pipeline.chunks import WINDOW as WINDOW
from rvclab.pipeline.chunks import Chunk as Chunk
from rvclab.pipeline.chunks import PadConfig as PadConfig
from rvclab.pipeline.chunks import Padding as Padding
from rvclab.pipeline.chunks import pad_audio as pad_audio
from rvclab.pipeline.chunks import padding_for as padding_for
from rvclab.pipeline.chunks import plan_chunks as plan_chunks
from rvclab.pipeline.chunks import quietest as quietest
from rvclab.pipeline.chunks import quietness as quietness
from rvclab.pipeline.chunks import quietness_range as quietness_range
from rvclab.pipeline.chunks import split_points as split_points
from rvclab.pipeline.output import OUTPUT_PEAK as OUTPUT_PEAK
from rvclab.pipeline.output import RMS_DTYPES as RMS_DTYPES
from rvclab.pipeline.output import change_rms as change_rms
from rvclab.pipeline.output import finalize_audio as finalize_audio
from rvclab.pipeline.output import finalize_audio_ as finalize_audio_
from rvclab.pipeline.output import frame_rms as frame_rms
from rvclab.pipeline.output import interp_linear as interp_linear
from rvclab.pipeline.output import mix_rms_ as mix_rms_
from rvclab.pipeline.output import to_int16_webui as to_int16_webui

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


def fill_unvoiced(f0: np.ndarray) -> np.ndarray:
    """(T,) Hz -> (T,) float32 with every unvoiced (0 Hz) frame linearly interpolated between the
    voiced ones (frames before the first and after the last voiced one hold its value), as RVC
    WebUI 2026's offline pipeline and every release's realtime path do; all-unvoiced stays 0."""
    f0 = np.asarray(f0, np.float32).copy()
    voiced = f0 > 0
    if voiced.any() and not voiced.all():
        idx = np.arange(f0.size)
        f0[~voiced] = np.interp(idx[~voiced], idx[voiced], f0[voiced])
    return f0


def postprocess_f0(
    f0: np.ndarray,
    f0_up_key: float = 0,
    f0_curve: np.ndarray | None = None,
    x_pad: int = FP32_CONFIG.x_pad,
    n_frames: int | None = None,
    fill: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw F0 (T,) Hz on the padded audio -> (coarse (T',) int32, f0bak (T',) float32 Hz).

    ``fill``: first :func:`fill_unvoiced` (ReferenceProfile.f0_fill_unvoiced). Shift by
    ``f0_up_key`` semitones, then the optional user curve (:func:`apply_f0_curve`), then coarse
    ids; ``f0bak`` (the synthesizer's NSF F0, "pitchf") is the shifted/overridden Hz curve. Both
    are truncated to ``n_frames`` (the pipeline's p_len) when given.
    """
    shifted = shift_f0(fill_unvoiced(f0) if fill else f0, f0_up_key)
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
    protect_off: float = PROTECT_OFF,
) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray | None]:
    """Per-chunk features @ 50 fps -> synthesizer inputs @ 100 fps.

    feats (T, C): HuBERT features after the optional index blend; feats0 (T, C): the same before
    the blend (used only when protecting; None when nothing was blended, which makes protection
    the identity, as it is upstream without an index); n_samples: the chunk's 16 kHz length;
    pitch/pitchf (F,): the chunk's coarse ids / Hz (None for a model without F0).
    Returns (feats (2T, C), p_len, pitch[:p_len], pitchf[:p_len]) with
    p_len = min(n_samples // window, 2T). Pitch is trimmed only when the features are shorter
    (as upstream). When protect < ``protect_off`` (0.5 in every release) and pitch is given,
    unvoiced frames mix back the un-blended features: feats*w + feats0*(1-w), w from
    :func:`protect_weights`; protect >= protect_off leaves the features as they are.
    """
    up = repeat_x2(feats)
    p_len = n_samples // WINDOW
    if up.shape[0] < p_len:
        p_len = up.shape[0]
        if pitch is not None and pitchf is not None:
            pitch, pitchf = pitch[:p_len], pitchf[:p_len]
    if protect < protect_off and pitch is not None and pitchf is not None and feats0 is not None:
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
