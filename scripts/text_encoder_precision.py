"""The TextEncoder's float32 distance from float64, torch and MLX, on the shipped seeded voices.

    PYTHONPATH=. .venv/bin/python scripts/text_encoder_precision.py [--seconds 3] \
        [--json docs/bench/text_encoder_precision.json]

Per seeded voice file (rvclab.models.synth.seeded.FILES), per clip: ``enc_p`` run in torch float64
(the reference), torch float32 and MLX float32 on the same inputs (rvclab's torch HuBERT features
of the clip, x2 to 100 fps, and its RMVPE pitch ids); max abs and RMS of each float32 side's
error, relative to the float64 output's RMS, and the ratio MLX / torch against
rvclab.tolerances.TEXTENC_F64_CHECKS. Prints one JSON row per (voice, clip).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from rvclab import tolerances as tol
from rvclab.audio import data_clips
from rvclab.checkpoints import load_checkpoint
from rvclab.models.synth.parity import models_from_voice
from rvclab.models.synth.rules import config_of
from rvclab.models.synth.seeded import FILES
from rvclab.models.synth.textenc_precision import clip_text_inputs, text_encoder_distances
from rvclab.runtime import import_mlx
from rvclab.voices import default_voice

mx = import_mlx()  # through rvclab, so MLX runs on the BLAS rvclab loads for it


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="each clip cut to this length")
    ap.add_argument("--clips", type=int, default=2, help="how many shipped clips (first N)")
    ap.add_argument("--json", default=None, help="write the rows and the summary here")
    args = ap.parse_args()
    rows = []
    for (_preset, f0), name in sorted(FILES.items()):
        ckpt = load_checkpoint(default_voice(name))
        config = config_of(ckpt)
        tmodel, mmodel = models_from_voice(ckpt)
        for path in data_clips()[: args.clips]:
            inputs = clip_text_inputs(path, config.version, args.seconds)
            if not f0:
                inputs["pitch"] = None  # a voice without F0 takes no pitch ids
            figures = text_encoder_distances(tmodel.enc_p, mmodel.enc_p, inputs)
            for side in ("torch", "mlx"):
                figures[f"{side}_rel"] = figures[f"{side}_max_abs"] / figures["ref_rms"]
            verdicts = tol.verdicts(figures, tol.TEXTENC_F64_CHECKS)
            row = {"voice": name, "config": config.name, "clip": path.name, **figures, **verdicts}
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = {k: max(r[k] for r in rows) for k in tol.TEXTENC_F64_CHECKS}
    summary.update(ok=all(r["ok"] for r in rows), goal={k: c.goal for k, c in tol.TEXTENC_F64_CHECKS.items()})
    print(json.dumps({"worst": summary}))
    if args.json:
        meta = {"torch": torch.__version__, "mlx": mx.__version__, "mlx_device": str(mx.default_device()),
                "machine": platform.machine(), "seconds": args.seconds}
        Path(args.json).write_text(json.dumps({"meta": meta, "worst": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
