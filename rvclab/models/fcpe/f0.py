"""FCPE F0 (torchfcpe's bundled model) per 10 ms frame on either backend.

``estimate(audio_16k, backend, f0_min, f0_max)`` -> ``(f0_hz, voiced)``, both (N // 160 + 1,).

As RVC/Applio call torchfcpe: 16 kHz input, ``decoder_mode="local_argmax"``,
``threshold=0.006`` (frames whose largest latent value is <= 0.006 are unvoiced, F0 0), no
interpolation over unvoiced frames. RVC does not clip FCPE to [f0_min, f0_max]; neither do we
unless ``apply_range=True`` (then frames outside become unvoiced).
Weights: torchfcpe's packaged ``assets/fcpe_c_v001.pt`` (never downloaded), loaded safely.
"""

from __future__ import annotations

import numpy as np

from rvclab.audio import HOP_16K
from rvclab.f0 import F0_MAX, F0_MIN, check_audio_16k
from rvclab.models.fcpe.config import DECODERS, DEFAULT_THRESHOLD, mel_basis
from rvclab.models.fcpe.io import load_fcpe
from rvclab.runtime import import_mlx

_MODELS: dict = {}


def get_model(backend: str = "mlx"):
    """Cached FCPE net for ``backend`` with torchfcpe's packaged weights."""
    if backend not in _MODELS:
        _MODELS[backend] = load_fcpe(backend=backend)
    return _MODELS[backend]


def predict(audio_16k: np.ndarray, backend: str = "mlx", *, decoder: str = "local_argmax",
            threshold: float = DEFAULT_THRESHOLD) -> dict:
    """{'f0': Hz (T,), 'confidence': max latent per frame (T,)}, T = N // 160 + 1."""
    if decoder not in DECODERS:
        raise ValueError(f"FCPE decoder '{decoder}' unknown; expected one of {DECODERS}")
    audio = check_audio_16k(audio_16k)
    model = get_model(backend)
    if backend == "torch":
        from rvclab.models.fcpe.torch import infer

        f0, conf = infer(model, audio, decoder, threshold)
    else:
        from rvclab.models.fcpe.mlx import infer

        mx = import_mlx()
        f0, conf = infer(model, audio, mel_basis(), decoder, threshold)
        mx.eval(f0, conf)
        f0, conf = np.array(f0), np.array(conf)
    return {"f0": np.asarray(f0, np.float32), "confidence": np.asarray(conf, np.float32)}


def estimate(audio_16k: np.ndarray, backend: str = "mlx", f0_min: float = F0_MIN,
             f0_max: float = F0_MAX, *, decoder: str = "local_argmax",
             threshold: float = DEFAULT_THRESHOLD, apply_range: bool = False,
             **_) -> tuple[np.ndarray, np.ndarray]:
    """(N,) audio @ 16 kHz -> (f0_hz, voiced), each (N // 160 + 1,)."""
    audio = check_audio_16k(audio_16k)
    if audio.size == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    f0 = predict(audio, backend, decoder=decoder, threshold=threshold)["f0"]
    f0 = np.nan_to_num(f0, nan=0.0)
    if apply_range:
        f0[(f0 < f0_min) | (f0 > f0_max)] = 0.0
    return f0, f0 > 0


def n_frames(n_samples: int, hop: int = HOP_16K) -> int:
    return n_samples // hop + 1
