"""RMVPE parity: torch reference vs MLX port on every shipped clip (``rvclab parity rmvpe``).

Per clip (16 kHz, fp32): ``salience_max_abs`` over the (T, 360) salience, F0 cents and voicing on
frames voiced in both, the same for both decoders on an all-voiced salience built from the clip's
YIN pitch (``bump_*``), and ``decode_same_max_abs_hz`` (both decoders on the torch salience).
``ok`` / ``guard_ok``: every goal / guard of :data:`rvclab.tolerances.RMVPE_CHECKS` met (and equal
frame counts); the figures are described in docs/rmvpe.md ("Parity").
"""

from __future__ import annotations

import librosa
import numpy as np

from rvclab import metrics, tolerances
from rvclab.audio import HOP_16K, SAMPLE_RATE_16K, data_clips, load_audio
from rvclab.f0 import F0_MAX, F0_MIN
from rvclab.models.rmvpe.config import RmvpeConfig
from rvclab.models.rmvpe.f0 import get_estimator
from rvclab.runtime import import_mlx

BUMP_SIGMA_CENTS = 25.0
BUMP_PEAK = 0.9
YIN_FRAME = 1024  # samples per YIN analysis frame
THRESHOLD = RmvpeConfig.threshold  # upstream's decoding threshold


def add_arguments(parser) -> None:
    parser.add_argument("--model-path", default=None,
                        help="rmvpe.pt (default weights/rmvpe.pt, seeded when missing)")
    parser.add_argument("--clip", default=None, help="only clips whose name starts with this")
    parser.add_argument("--chunk-frames", type=int, default=None,
                        help=f"frames per network call, > 0, a multiple of {RmvpeConfig.pad_multiple} (default: none, "
                             f"{RmvpeConfig.chunk_frames} as upstream)")


def reference_pitch(audio: np.ndarray, sr: int = SAMPLE_RATE_16K) -> np.ndarray:
    """YIN F0 (Hz) per 10 ms frame, centred: (N // 160 + 1,), every frame a value."""
    return librosa.yin(audio.astype(np.float64), fmin=F0_MIN, fmax=F0_MAX, sr=sr,
                       frame_length=YIN_FRAME, hop_length=HOP_16K, center=True).astype(np.float32)


def bump_salience(f0_hz: np.ndarray, cfg=None, sigma: float = BUMP_SIGMA_CENTS,
                  peak: float = BUMP_PEAK) -> np.ndarray:
    """(T,) Hz -> (T, 360) salience: a Gaussian in cents centred on each frame's pitch."""
    bins = (cfg or RmvpeConfig()).bin_cents()
    cents = 1200 * np.log2(np.maximum(f0_hz, 1e-3) / 10.0)
    sal = peak * np.exp(-0.5 * ((bins[None, :] - cents[:, None]) / sigma) ** 2)
    return sal.astype(np.float32)


def f0_figures(f0_ref: np.ndarray, f0_test: np.ndarray, prefix: str = "") -> dict:
    err = metrics.cents_error(f0_test, f0_ref)
    return {
        f"{prefix}f0_median_cents": err["median"],
        f"{prefix}f0_p99_cents": err["p99"],
        f"{prefix}voicing_agreement": metrics.voicing_agreement(f0_ref, f0_test),
        f"{prefix}frames_voiced_both": err["frames"],
    }


def decoders_compare(salience: np.ndarray, threshold: float = THRESHOLD):
    """Decode one (T, 360) salience with both backends' decoders: (f0_torch, f0_mlx) in Hz."""
    mx = import_mlx()
    from rvclab.models.rmvpe.mlx import decode as decode_mlx
    from rvclab.models.rmvpe.torch import decode as decode_torch

    return decode_torch(salience, threshold), np.array(decode_mlx(mx.array(salience), threshold))


def check_clip(name: str, audio: np.ndarray, est_t, est_m, chunk_frames=RmvpeConfig.chunk_frames) -> dict:
    """One row of figures for ``audio`` (N,) @ 16 kHz; ``est_*`` are RMVPE wrappers."""
    thr = THRESHOLD
    sal_t = est_t.salience(audio, chunk_frames)
    sal_m = est_m.salience(audio, chunk_frames)
    f0_t, f0_m = decoders_compare(sal_t, thr)[0], decoders_compare(sal_m, thr)[1]
    row = {"clip": name, "frames": int(sal_t.shape[0]), "frames_mlx": int(sal_m.shape[0]),
           "salience_max_abs": metrics.max_abs(sal_t, sal_m)}
    row.update(f0_figures(f0_t, f0_m))
    row["voiced_torch"] = int((f0_t > 0).sum())
    row["voiced_mlx"] = int((f0_m > 0).sum())
    same_t, same_m = decoders_compare(sal_t, thr)
    row["decode_same_max_abs_hz"] = metrics.max_abs(same_t, same_m)
    bt, bm = decoders_compare(bump_salience(reference_pitch(audio)), thr)
    row.update(f0_figures(bt, bm, prefix="bump_"))
    same = row["frames"] == row["frames_mlx"]
    row.update({k: bool(same and v) for k, v in tolerances.verdicts(row, tolerances.RMVPE_CHECKS).items()})
    return row


def estimators(model_path=None):
    """(torch, MLX) RMVPE wrappers for ``model_path`` (default weights/rmvpe.pt)."""
    return get_estimator("torch", model_path), get_estimator("mlx", model_path)


def run(args) -> list[dict]:
    est_t, est_m = estimators(getattr(args, "model_path", None))
    chunk = getattr(args, "chunk_frames", None) or RmvpeConfig.chunk_frames
    rows = []
    for path in data_clips():
        if getattr(args, "clip", None) and not path.name.startswith(args.clip):
            continue
        rows.append(check_clip(path.stem, load_audio(path, SAMPLE_RATE_16K), est_t, est_m, chunk))
    return rows
