"""FCPE parity: the MLX port vs torchfcpe itself, real weights, every shipped clip.

``rvclab parity fcpe``. Per clip (16 kHz, fp32), both sides run RVC/Applio's call
(``decoder_mode="local_argmax"``, ``threshold=0.006``). Reported: ``f0_median_cents`` /
``f0_p99_cents`` / ``f0_max_cents`` on frames voiced in both, ``voicing_agreement``,
``periodicity_max_abs`` (FCPE's confidence = max latent per frame), ``ok`` / ``guard_ok`` (every
goal / guard of :data:`rvclab.tolerances.F0_CHECKS` met) and
``reference`` ("torchfcpe <version>" or, where it cannot import, "rvclab.models.fcpe.torch", proved
bit-identical to torchfcpe where it imports).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from rvclab import help_text as text
from rvclab import metrics
from rvclab.audio import SAMPLE_RATE_16K
from rvclab.models.common import clips_audio, f0_row_verdicts
from rvclab.models.f0_packages import import_torchfcpe, package_version, torchaudio_status
from rvclab.models.fcpe import f0 as f0fcpe
from rvclab.models.fcpe.config import DEFAULT_THRESHOLD


def add_arguments(parser) -> None:
    parser.add_argument("--clip", default=None, help="only clips whose name starts with this")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help=f"{text.MAX_SECONDS} (default: none, whole clips)")


_PACKAGE_MODEL = {}


def reference(audio: np.ndarray) -> dict:
    """torchfcpe (or our torch reference) as RVC/Applio call it -> f0, confidence."""
    try:
        import torch

        tf = import_torchfcpe()
        quiet = io.StringIO()  # torchfcpe prints its configuration and range warnings
        with contextlib.redirect_stdout(quiet), torch.no_grad():
            if "model" not in _PACKAGE_MODEL:
                _PACKAGE_MODEL["model"] = tf.spawn_bundled_infer_model(device="cpu")
            model = _PACKAGE_MODEL["model"]
            wav = torch.from_numpy(audio)[None]
            f0 = model.infer(wav, sr=SAMPLE_RATE_16K, decoder_mode="local_argmax",
                             threshold=DEFAULT_THRESHOLD)[0, :, 0].numpy()
            conf = model.model(model.wav2mel(wav, SAMPLE_RATE_16K)).max(-1).values[0].numpy()
        return {"f0": f0, "confidence": conf, "name": f"torchfcpe {package_version('torchfcpe')}",
                "torchaudio": torchaudio_status()}
    except ImportError:
        out = f0fcpe.predict(audio, "torch")
        return {**out, "name": "rvclab.models.fcpe.torch", "torchaudio": "not needed"}


def run(args) -> list[dict]:
    rows = []
    for path, audio in clips_audio(args):
        ref = reference(audio)
        with contextlib.redirect_stdout(io.StringIO()):
            out = f0fcpe.predict(audio, "mlx")
        err = metrics.cents_error(out["f0"], ref["f0"])
        row = {
            "clip": path.name, "model": "fcpe", "seconds": round(audio.size / SAMPLE_RATE_16K, 2),
            "frames": int(out["f0"].size), "frames_ref": int(ref["f0"].size),
            "reference": ref["name"], "torchaudio": ref["torchaudio"],
            "f0_median_cents": err["median"], "f0_p99_cents": err["p99"],
            "f0_max_cents": err["max"], "voiced_both": err["frames"],
            "voicing_agreement": metrics.voicing_agreement(out["f0"], ref["f0"]),
            "periodicity_max_abs": float(np.max(np.abs(out["confidence"] - ref["confidence"]))),
        }
        row.update(f0_row_verdicts(row))
        rows.append(row)
    return rows
