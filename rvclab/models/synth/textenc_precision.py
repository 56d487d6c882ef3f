"""The TextEncoder (``enc_p``) in float32, torch and MLX, each against torch in float64.

Both float32 runs round; the question is whether MLX rounds more than torch does. Each side's
distance from a float64 run of the same weights on the same inputs (``m_p`` and ``logs_p``
together, (B, T, C)) is measured, and the ratio MLX / torch is the figure
(:data:`rvclab.tolerances.TEXTENC_F64_CHECKS`). Inputs: :func:`clip_text_inputs` (a shipped
clip's content features and coarse pitch) or :func:`rvclab.models.synth.parity.clip_inputs`.
scripts/text_encoder_precision.py runs it on the seeded voices; docs/synthesizer.md has the table.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from rvclab.audio import SAMPLE_RATE_16K, load_audio
from rvclab.models.rmvpe import f0 as rmvpe_f0
from rvclab.models.synth.config import coarse_pitch
from rvclab.pipeline.networks import embedder, features
from rvclab.runtime import import_mlx

FEATURE_REPEAT = 2  # content features (50 fps) repeated to the synthesizer's 100 fps, as the pipeline does


def clip_text_inputs(path, version: str, seconds: float, hubert_path=None) -> dict:
    """TextEncoder inputs from clip ``path``: rvclab's torch HuBERT features (v1: layer 9 through
    final_proj, v2: layer 12) x2 -> phone (1, T, 256|768) float32, RMVPE F0 (torch) -> pitch
    (1, T) int64 ids, lengths (1,)."""
    audio = load_audio(path, SAMPLE_RATE_16K)[: int(seconds * SAMPLE_RATE_16K)].astype(np.float32)
    feats = features(embedder("torch", hubert_path), audio, version, "torch")
    phone = np.repeat(feats, FEATURE_REPEAT, axis=0)[None]
    frames = phone.shape[1]
    f0 = np.asarray(rmvpe_f0.estimate(audio, "torch")[0], np.float32)
    f0 = np.pad(f0, (0, max(0, frames - f0.size)))[:frames]
    return {"phone": phone, "pitch": coarse_pitch(f0)[None].astype(np.int64),
            "lengths": np.array([frames], np.int64)}


def text_encoder_distances(torch_enc_p, mlx_enc_p, inputs: dict) -> dict:
    """Figures of the float32 torch ``torch_enc_p`` and MLX ``mlx_enc_p`` (same weights) against
    ``torch_enc_p`` run in float64 on ``inputs`` (phone, pitch (None without F0), lengths):
    max abs and RMS of each side's error, the RMS of the float64 output, and the ratios MLX / torch."""
    mx = import_mlx()
    enc64 = copy.deepcopy(torch_enc_p).double()
    pitch = inputs.get("pitch")
    with torch.no_grad():
        phone = torch.from_numpy(inputs["phone"])
        args = (torch.from_numpy(pitch) if pitch is not None else None, torch.from_numpy(inputs["lengths"]))
        ref = _stack_torch(enc64(phone.double(), *args))
        t32 = _stack_torch(torch_enc_p(phone.float(), *args))
    m, logs, _ = mlx_enc_p(mx.array(inputs["phone"]), mx.array(pitch) if pitch is not None else None,
                           mx.array(inputs["lengths"]))
    mx.eval(m, logs)
    m32 = np.concatenate([np.array(m), np.array(logs)], axis=-1).astype(np.float64)
    out = {"frames": int(ref.shape[1]), "ref_rms": float(np.sqrt(np.mean(ref**2)))}
    for side, got in (("torch", t32), ("mlx", m32)):
        err = got - ref
        out[f"{side}_max_abs"] = float(np.abs(err).max())
        out[f"{side}_rms_err"] = float(np.sqrt(np.mean(err**2)))
    out["ratio_max_abs"] = out["mlx_max_abs"] / max(out["torch_max_abs"], np.finfo(np.float64).tiny)
    out["ratio_rms_err"] = out["mlx_rms_err"] / max(out["torch_rms_err"], np.finfo(np.float64).tiny)
    return out


def _stack_torch(result) -> np.ndarray:
    """(m, logs, mask) of (B, C, T) -> (B, T, 2C) float64 numpy."""
    m, logs, _ = result
    return torch.cat([m, logs], dim=1).double().numpy().transpose(0, 2, 1)
