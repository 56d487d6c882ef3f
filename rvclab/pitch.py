"""One interface for every F0 method: ``estimate_f0(audio_16k, method, backend=...)``.

Each method lives in ``rvclab/f0/<module>.py`` and exposes
``estimate(audio_16k, backend, f0_min, f0_max, **kw) -> (f0_hz, voiced)`` at 10 ms frames.
This module dispatches, validates, and aligns the frame count the way RVC's pipeline does:
``n_frames = len(audio_16k) // 160`` (the pipeline's ``p_len``), trimming extra frames and padding
missing ones as unvoiced, so every method returns the same count for the same input.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field

import numpy as np

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K, AudioError, check_finite
from rvclab.f0 import F0_MAX, F0_MIN

# method -> (module, fixed keyword arguments)
METHODS: dict[str, tuple[str, dict]] = {
    "rmvpe": ("rvclab.models.rmvpe.f0", {}),
    "crepe": ("rvclab.models.crepe.f0", {"model": "full"}),
    "crepe-tiny": ("rvclab.models.crepe.f0", {"model": "tiny"}),
    "fcpe": ("rvclab.models.fcpe.f0", {}),
    "harvest": ("rvclab.f0.world", {"algorithm": "harvest"}),
    "dio": ("rvclab.f0.world", {"algorithm": "dio"}),
    "pm": ("rvclab.f0.pm", {}),
}
BACKENDS = ("torch", "mlx", "cpu")  # "cpu": methods with no neural network (harvest, dio, pm)
CPU_ONLY = ("harvest", "dio", "pm")


@dataclass
class F0Result:
    """F0 in Hz per 10 ms frame (0 where unvoiced) and the voiced mask; shapes (n_frames,)."""

    f0: np.ndarray
    voiced: np.ndarray
    method: str
    backend: str
    extra: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.f0.shape[0])


def available_methods() -> list[str]:
    """Methods whose module is present in this installation."""
    out = []
    for name, (module, _) in METHODS.items():
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


def frames_for(n_samples: int) -> int:
    """RVC's frame count for ``n_samples`` at 16 kHz (its ``p_len``)."""
    return n_samples // HOP_16K


def estimate_f0(
    audio_16k: np.ndarray,
    method: str = "rmvpe",
    backend: str = "torch",
    f0_min: float = F0_MIN,
    f0_max: float = F0_MAX,
    n_frames: int | None = None,
    **kwargs,
) -> F0Result:
    """F0 of mono 16 kHz float audio (T,) with ``method`` on ``backend`` ("torch" or "mlx").

    Methods without a network (harvest, dio, pm) run on the CPU whatever ``backend`` says.
    Raises ValueError for an unknown method/backend and AudioError for unusable audio.
    """
    if method not in METHODS:
        raise ValueError(f"unknown F0 method '{method}'; choose from {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")
    if not 0 < f0_min < f0_max:
        raise ValueError(f"need 0 < f0_min < f0_max, got f0_min={f0_min}, f0_max={f0_max}")
    audio = np.asarray(audio_16k, dtype=np.float32)
    if audio.ndim != 1:
        raise AudioError(f"expected mono audio of shape (T,) at {SAMPLE_RATE_16K} Hz, got {audio.shape}")
    check_finite(audio)
    if audio.size < HOP_16K:
        raise AudioError(
            f"audio of {audio.size} samples is shorter than one F0 frame ({HOP_16K} samples at 16 kHz)"
        )
    module_name, fixed = METHODS[method]
    module = importlib.import_module(module_name)
    call = {**fixed, **kwargs}
    if _accepts(module.estimate, "method"):
        call.setdefault("method", method)
    result = module.estimate(audio, backend=backend, f0_min=f0_min, f0_max=f0_max, **call)
    f0, voiced, extra = _unpack(result)
    target = frames_for(audio.size) if n_frames is None else int(n_frames)
    f0, voiced = align(f0, voiced, target)
    extra = {k: _align_extra(v, target) for k, v in extra.items()}
    used = "cpu" if method in CPU_ONLY else backend
    return F0Result(f0=f0, voiced=voiced, method=method, backend=used, extra=extra)


def _accepts(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _unpack(result) -> tuple[np.ndarray, np.ndarray, dict]:
    extra = {}
    if isinstance(result, tuple) and len(result) == 3:
        f0, voiced, extra = result
    elif isinstance(result, tuple):
        f0, voiced = result
    else:  # an object with attributes
        f0, voiced = result.f0, result.voiced
        extra = dict(getattr(result, "extra", {}) or {})
    f0 = np.nan_to_num(np.asarray(f0, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    voiced = np.asarray(voiced, dtype=bool).reshape(-1) & (f0 > 0)
    return np.where(voiced, f0, 0.0).astype(np.float32), voiced, extra


def align(f0: np.ndarray, voiced: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Trim to ``n_frames`` or pad the end as unvoiced."""
    if f0.shape[0] >= n_frames:
        return f0[:n_frames], voiced[:n_frames]
    pad = n_frames - f0.shape[0]
    return np.pad(f0, (0, pad)), np.pad(voiced, (0, pad))


def _align_extra(value, n_frames: int):
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] >= n_frames // 2:
        if value.shape[0] >= n_frames:
            return value[:n_frames]
        return np.pad(value, [(0, n_frames - value.shape[0])] + [(0, 0)] * (value.ndim - 1))
    return value


def shift_semitones(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Transpose voiced frames by ``semitones`` (RVC's f0_up_key); unvoiced stay 0."""
    return np.where(f0 > 0, f0 * 2.0 ** (semitones / 12.0), 0.0).astype(np.float32)
