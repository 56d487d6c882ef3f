"""Audio I/O and the signal constants every stage shares.

Constants are named once here; derived values say how they are derived.
"""

from __future__ import annotations

import os
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from rvclab.checkpoints import atomic_write
from rvclab.paths import ROOT

# --- rates and frames ----------------------------------------------------------------------
SAMPLE_RATE_16K = 16000  # HuBERT/ContentVec and every F0 method run at 16 kHz
HOP_16K = 160  # 10 ms F0 frame at 16 kHz
F0_FRAME_RATE = SAMPLE_RATE_16K // HOP_16K  # 100 F0 frames per second
HUBERT_HOP_16K = 320  # HuBERT's conv front end downsamples by 5*2*2*2*2*2*2 = 320 -> 50 fps
HUBERT_FRAME_RATE = SAMPLE_RATE_16K // HUBERT_HOP_16K  # 50 frames/s, repeated x2 -> 100 fps

# --- RMVPE log-mel front end ---------------------------------------------------------------
RMVPE_N_FFT = 1024  # = window length
RMVPE_WIN_LENGTH = 1024
RMVPE_N_MELS = 128
RMVPE_FMIN = 30.0
RMVPE_FMAX = 8000.0  # = Nyquist at 16 kHz
RMVPE_LOG_CLAMP = 1e-5

# --- plotting defaults ---------------------------------------------------------------------
PLOT_N_FFT = 1024
PLOT_N_MELS = 80

MIN_SAMPLE_RATE = 1000  # below this nothing is speech; a header claiming it is damaged
MAX_SAMPLE_RATE = 384000  # the highest rate audio interfaces record at
RES_TYPE = "soxr_hq"  # librosa resampler rvclab uses where a reference profile names none it can run

# The one list of audio files rvclab reads, for a single file and a folder alike (libsndfile reads
# each here; tests/test_provenance.py checks .opus). Outputs: the formats save_audio_atomic writes
# (not .opus: Opus takes 8 to 48 kHz rates only, which 32 and 40 kHz voices miss; mp3 is read only).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3")
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}  # suffix -> libsndfile format
DATA_DIR = ROOT / "data"


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the problem."""


def is_hidden_name(name: str) -> bool:
    """Hidden and metadata files a folder holds beside its audio: ``.DS_Store``, macOS's ``._a.wav``
    AppleDouble files, ``.hidden.wav``, ``.git``: every name starting with a dot."""
    return name.startswith(".")


def is_audio_name(path: str | os.PathLike) -> bool:
    """A visible file name with an extension in :data:`AUDIO_EXTENSIONS` (case-insensitive)."""
    path = Path(path)
    return not is_hidden_name(path.name) and path.suffix.lower() in AUDIO_EXTENSIONS


# Files read by load_audio in this process: save_audio_atomic refuses to overwrite them.
_INPUTS: set[str] = set()
_INPUTS_LOCK = threading.Lock()


def _key(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))


def load_audio(path: str | os.PathLike, sr: int | None = SAMPLE_RATE_16K) -> np.ndarray:
    """Read any of :data:`AUDIO_EXTENSIONS` as mono float32 in [-1, 1] at ``sr`` Hz (``None``: native rate).

    Returns shape (T,). Stereo is averaged to mono. Raises :class:`AudioError` naming the file
    when it is missing, unreadable, empty, at a sample rate outside 1 kHz .. 384 kHz, or holds
    NaN/Inf samples.
    """
    audio, native = load_audio_native(path)
    if sr is not None and native != sr:
        audio = resample(audio, native, sr)
    return audio


def load_audio_native(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a file as mono float32 at its own rate: ``(audio (T,), sample_rate)``."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    audio, native = _read(path)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise AudioError(f"{path}: contains no samples")
    check_sample_rate(native, str(path))
    check_finite(audio, str(path))
    with _INPUTS_LOCK:
        _INPUTS.add(_key(path))
    return audio, int(native)


def _read(path: Path) -> tuple[np.ndarray, int]:
    try:
        audio, native = sf.read(str(path), dtype="float32", always_2d=False)
        return audio, native
    except Exception as first:  # libsndfile refused: try librosa's fallback decoders
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                audio, native = librosa.load(str(path), sr=None, mono=True)
            return audio, native
        except Exception:
            raise AudioError(f"{path}: not a readable audio file ({first})") from None


def check_finite(audio: np.ndarray, name: str = "audio") -> None:
    """Raise :class:`AudioError` if ``audio`` holds NaN or Inf samples."""
    bad = ~np.isfinite(audio)
    if bad.any():
        what = "all samples are" if bad.all() else f"{int(bad.sum())} of {audio.size} samples are"
        raise AudioError(f"{name}: {what} NaN or Inf")


def check_sample_rate(sr: int, name: str = "audio") -> None:
    """Raise :class:`AudioError` unless ``sr`` lies in MIN_SAMPLE_RATE .. MAX_SAMPLE_RATE."""
    if not MIN_SAMPLE_RATE <= int(sr) <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: sample rate {int(sr)} Hz is outside {MIN_SAMPLE_RATE // 1000} kHz .. "
                         f"{MAX_SAMPLE_RATE // 1000} kHz (a damaged header?)")


def resample(audio: np.ndarray, sr_in: int, sr_out: int, res_type: str = RES_TYPE) -> np.ndarray:
    """Band-limited resampling with librosa's ``res_type`` (default soxr_hq), float32 in and out.

    A ``res_type`` whose package is missing (resampy for "kaiser_best") raises AudioError naming it.
    """
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    if sr_in <= 0 or sr_out <= 0:
        raise AudioError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    try:
        out = librosa.resample(audio.astype(np.float32), orig_sr=sr_in, target_sr=sr_out, res_type=res_type)
    except ImportError as exc:
        raise AudioError(f"resampling with res_type={res_type!r} needs the {exc.name or 'missing'} package "
                         f"({exc}); install it or choose another reference profile") from exc
    return out.astype(np.float32, copy=False)


def save_audio_atomic(
    path: str | os.PathLike,
    audio: np.ndarray,
    sr: int,
    *,
    protect: tuple[str | os.PathLike, ...] = (),
    overwrite: bool = True,
) -> Path:
    """Write ``audio`` (T,) float, or int16 samples, to ``path`` (wav/flac/ogg by suffix) via temp
    file + rename. Floats go to WAV as 32-bit float; int16 arrays as 16-bit PCM, sample for sample.

    Refuses to write over any file this process read with :func:`load_audio` or named in
    ``protect`` (inputs are never overwritten). The target is untouched on any error.
    """
    path = Path(path)
    target = _key(path)
    with _INPUTS_LOCK:
        inputs = set(_INPUTS)
    if target in inputs or any(target == _key(p) for p in protect):
        raise AudioError(f"{path}: is an input file; refusing to overwrite it")
    audio = np.asarray(audio)
    pcm16 = audio.dtype == np.int16
    audio = audio if pcm16 else audio.astype(np.float32, copy=False)
    if audio.ndim != 1:
        raise AudioError(f"{path}: expected mono audio of shape (T,), got {audio.shape}")
    check_finite(audio, str(path))
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported output format; use {', '.join(OUTPUT_FORMATS)}")
    if pcm16:
        subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    else:
        subtype = "FLOAT" if fmt == "WAV" else None
    return atomic_write(
        path,
        lambda tmp: sf.write(str(tmp), audio, int(sr), format=fmt, subtype=subtype),
        overwrite=overwrite,
    )


def data_clips() -> list[Path]:
    """The speech clips shipped in data/ (provenance in data/README.md), sorted by name."""
    root = Path(os.environ.get("RVCLAB_DATA", DATA_DIR))
    return sorted(p for p in root.iterdir() if is_audio_name(p))


def clip(name: str) -> Path:
    """A shipped clip by file name or unique prefix (e.g. ``"librivox_male_0880"``)."""
    matches = [p for p in data_clips() if p.name == name or p.name.startswith(name)]
    if len(matches) != 1:
        names = ", ".join(p.name for p in data_clips())
        raise AudioError(f"clip '{name}': {len(matches)} matches among {names}")
    return matches[0]


@lru_cache(maxsize=16)
def mel_filterbank(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool = True
) -> np.ndarray:
    """Mel filterbank (n_mels, n_fft//2 + 1), float32, librosa's Slaney-normalised filters.

    ``htk=True`` uses the HTK mel scale (as RMVPE does). Cached; treat the result as read-only.
    """
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    fb = fb.astype(np.float32)
    fb.flags.writeable = False
    return fb


def log_mel(audio: np.ndarray, sr: int, n_mels: int = PLOT_N_MELS, hop: int | None = None) -> np.ndarray:
    """A log-mel spectrogram (n_mels, frames) for plots and spectral metrics (numpy only)."""
    hop = hop or sr // 100
    n_fft = PLOT_N_FFT if sr <= 24000 else 2 * PLOT_N_FFT
    spec = np.abs(stft(audio, n_fft, hop)) ** 2
    fb = mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2, True)
    return np.log10(np.maximum(fb @ spec, 1e-10)).astype(np.float32)


def stft(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, reflect-padded Hann STFT (n_fft//2+1, frames), complex64 (numpy)."""
    pad = n_fft // 2
    mode = "reflect" if audio.size > pad else "constant"
    x = np.pad(audio.astype(np.float32), (pad, pad), mode=mode)
    n_frames = 1 + (x.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    return np.fft.rfft(x[idx] * window, axis=1).T.astype(np.complex64)
