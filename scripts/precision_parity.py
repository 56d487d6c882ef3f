"""Each precision mode against fp32, per backend: synthesizer spectral correlation and max abs,
HuBERT worst-frame cosine, and (tf32) RMVPE F0 cents and voicing agreement. JSON rows.

``python scripts/precision_parity.py --device cpu|gpu --modes fp16,bf16 --json out.json``. MLX's
TF32 is fixed when it loads (``MLX_ENABLE_TF32``): run tf32 in a process of its own with
``MLX_ENABLE_TF32=1``; its MLX rows then compare against torch's fp32 (the only fp32 there).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rvclab import metrics
from rvclab.bench.stages import StageOptions, place_pipeline_models, speech, voice_model
from rvclab.bench.timing import machine_info, write_json_atomic
from rvclab.models.synth.parity import clip_inputs
from rvclab.pipeline.networks import embedder, features, synthesize
from rvclab.pitch import estimate_f0
from rvclab.precision import torch_precision
from rvclab.tolerances import PRECISION_BARS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    ap.add_argument("--modes", default="fp16,bf16")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", dest="json_out", required=True)
    args = ap.parse_args(argv)
    opts = StageOptions(device=args.device)
    voice = voice_model(opts)
    place_pipeline_models(opts)
    tdev = "cuda" if args.device == "gpu" else "cpu"
    inp = clip_inputs(voice.config, args.frames, 0)
    frames, pitch, pitchf = inp["phone"][0], inp["pitch"][0], inp["f0"][0]
    x = speech(args.seconds)
    meta = machine_info(args.device)
    ref = {"wave": synthesize(voice.model("torch"), voice, frames, pitch, pitchf, 0, 0, "torch", mode="fp32"),
           "feats": features(embedder("torch"), x, "v2", "torch", mode="fp32")}
    with torch_precision("fp32", tdev):
        ref["f0"] = estimate_f0(x, "rmvpe", backend="torch").f0
    rows = []
    for mode in args.modes.split(","):
        for backend in ("torch", "mlx"):
            own = "fp32" if mode != "tf32" or backend == "torch" else mode
            base_wave = ref["wave"] if backend == "torch" or mode == "tf32" else \
                synthesize(voice.model(backend), voice, frames, pitch, pitchf, 0, 0, backend, mode=own)
            base_feats = ref["feats"] if backend == "torch" or mode == "tf32" else \
                features(embedder(backend), x, "v2", backend, mode=own)
            wave = synthesize(voice.model(backend), voice, frames, pitch, pitchf, 0, 0, backend, mode=mode)
            feats = features(embedder(backend), x, "v2", backend, mode=mode)
            row = {**meta, "command": "python scripts/precision_parity.py " + " ".join(argv or sys.argv[1:]),
                   "stage": "precision", "precision": mode, "backend": backend,
                   "reference": "torch fp32" if (backend == "torch" or mode == "tf32") else f"{backend} fp32",
                   "synth_spec_corr": metrics.spectral_corr(wave, base_wave, voice.sr),
                   "synth_max_abs": metrics.max_abs(wave, base_wave),
                   "hubert_cos": metrics.worst_cosine(metrics.cosine_per_frame(feats, base_feats))}
            if mode == "tf32":
                with torch_precision(mode, tdev):
                    f0 = estimate_f0(x, "rmvpe", backend=backend).f0
                row["f0_cents_p99"] = metrics.cents_error(f0, ref["f0"]).get("p99")
                row["voicing"] = metrics.voicing_agreement(f0, ref["f0"])
            bars = PRECISION_BARS[mode]
            row["ok"] = all(bars[k].goal_ok(row[k]) for k in bars if k in row)
            row["guard_ok"] = all(bars[k].guard_ok(row[k]) for k in bars if k in row)
            rows.append(row)
            print({k: row[k] for k in ("precision", "backend", "synth_spec_corr", "synth_max_abs", "hubert_cos",
                                       "ok")}, flush=True)
            write_json_atomic(Path(args.json_out), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
