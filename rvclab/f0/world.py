"""WORLD F0 (methods ``harvest`` and ``dio``, pyworld) per 10 ms frame, CPU only.

``estimate(audio_16k, backend, f0_min, f0_max, method="harvest")`` -> ``(f0_hz, voiced)``, both
(N // 160 + 1,). ``backend`` is accepted for a uniform interface and ignored (pyworld is C++).

RVC's parameters: float64 audio, ``frame_period`` 10 ms, ``f0_floor`` / ``f0_ceil`` = f0_min /
f0_max (50 / 1100 Hz), then ``stonemask`` refinement; for harvest, when ``filter_radius`` > 2
(RVC's default 3), a 3-frame median filter (``scipy.signal.medfilt(f0, 3)``).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import signal

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K
from rvclab.f0 import F0_MAX, F0_MIN, check_audio_16k

FRAME_PERIOD_MS = 1000.0 * HOP_16K / SAMPLE_RATE_16K  # 10 ms
FILTER_RADIUS = 3  # RVC WebUI / Applio default
METHODS = ("harvest", "dio")


def estimate(audio_16k: np.ndarray, backend: str = "cpu", f0_min: float = F0_MIN,
             f0_max: float = F0_MAX, *, method: str = "harvest", filter_radius: int = FILTER_RADIUS,
             algorithm: str | None = None, **_) -> tuple[np.ndarray, np.ndarray]:
    """(N,) audio @ 16 kHz -> (f0_hz, voiced), each (N // 160 + 1,); ``algorithm`` (as
    rvclab.pitch passes it) or ``method``: 'harvest' / 'dio'."""
    method = algorithm or method
    pyworld = _pyworld()
    if method not in METHODS:
        raise ValueError(f"WORLD method '{method}' unknown; expected one of {METHODS}")
    x = check_audio_16k(audio_16k, np.float64)
    want = x.size // HOP_16K + 1
    if x.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    track = pyworld.harvest if method == "harvest" else pyworld.dio
    f0, t = track(x, fs=SAMPLE_RATE_16K, f0_ceil=float(f0_max), f0_floor=float(f0_min),
                  frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, t, SAMPLE_RATE_16K)
    if method == "harvest" and filter_radius > 2:
        with warnings.catch_warnings():  # a track shorter than 3 frames is zero-padded: fine
            warnings.simplefilter("ignore", UserWarning)
            f0 = signal.medfilt(f0, 3)
    f0 = np.nan_to_num(np.asarray(f0, np.float32), nan=0.0)
    f0 = np.pad(f0[:want], (0, max(0, want - f0.size)))
    return f0, f0 > 0


def _pyworld():
    """The pyworld module. pyworld 0.3.5's ``__init__`` imports ``pkg_resources`` (only to read its
    own version), which setuptools >= 81 no longer ships; then its compiled extension is loaded
    directly (same functions, nothing installed or patched)."""
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as exc:
        if exc.name != "pkg_resources":
            raise
    if "pyworld.pyworld" in sys.modules:
        return sys.modules["pyworld.pyworld"]
    spec = importlib.util.find_spec("pyworld")
    folder = Path(next(iter(spec.submodule_search_locations)))
    ext = next(folder.glob("pyworld*.so"), None) or next(folder.glob("pyworld*.pyd"))
    ext_spec = importlib.util.spec_from_file_location("pyworld.pyworld", ext)
    module = importlib.util.module_from_spec(ext_spec)
    ext_spec.loader.exec_module(module)
    sys.modules["pyworld.pyworld"] = module
    return module


def harvest(audio_16k, backend="cpu", f0_min=F0_MIN, f0_max=F0_MAX, **kw):
    kw.pop("method", None)
    return estimate(audio_16k, backend, f0_min, f0_max, method="harvest", **kw)


def dio(audio_16k, backend="cpu", f0_min=F0_MIN, f0_max=F0_MAX, **kw):
    kw.pop("method", None)
    return estimate(audio_16k, backend, f0_min, f0_max, method="dio", **kw)
