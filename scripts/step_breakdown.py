"""Where a conversion's time goes: end to end against the sum of its network stages, per step.

``python scripts/step_breakdown.py --seconds 5,60 --repeats 3,1 --json docs/bench/bench_steps_cpu.json``
runs :func:`rvclab.pipeline.conversion.convert_voice` (v2-48k voice, rmvpe, no index) on both
backends after a warm-up conversion, with ``profile=True`` (a device wait after every step) and
records per repeat the wall time, the stage timings and ``Conversion.steps``. Run against a
tree without ``Conversion.steps`` (an older checkout on PYTHONPATH) it records the wall time and
the stage timings only (``"steps_s": null``), the "before" of a comparison.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from rvclab.bench.stages import StageOptions, place_pipeline_models, speech, voice_model
from rvclab.bench.timing import machine_info, write_json_atomic
from rvclab.pipeline import conversion

NETWORKS = ("f0_network", "hubert", "synth")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", default="5,60")
    ap.add_argument("--repeats", default="3,1", help="repeats per length, in the same order")
    ap.add_argument("--backends", default="torch,mlx")
    ap.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    ap.add_argument("--noise", default="numpy")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--label", default="after")
    ap.add_argument("--json", dest="json_out", required=True)
    args = ap.parse_args(argv)
    seconds = [float(s) for s in args.seconds.split(",")]
    repeats = [int(r) for r in args.repeats.split(",")]
    opts = StageOptions(device=args.device)
    voice = voice_model(opts)
    place_pipeline_models(opts)
    has_steps = "profile" in inspect.signature(conversion.convert_voice).parameters
    extra = {"profile": True, "noise": args.noise, "precision": args.precision} if has_steps else {}
    meta = {**machine_info(args.device), "label": args.label, "rvclab_path": str(Path(conversion.__file__).parents[1]),
            "command": "python scripts/step_breakdown.py " + " ".join(argv or sys.argv[1:])}
    rows = []
    for backend in args.backends.split(","):
        conversion.convert_voice(speech(1.0), voice, sr=16000, backend=backend, **extra)  # warm-up
        for s, n in zip(seconds, repeats, strict=True):
            x = speech(s)
            for r in range(n):
                load = os.getloadavg()[0]
                t = time.perf_counter()
                run = conversion.convert_voice(x, voice, sr=16000, backend=backend, **extra)
                wall = time.perf_counter() - t
                steps = dict(run.steps) if has_steps else None
                row = {**meta, "stage": "e2e_steps", "backend": backend, "seconds_audio": s, "repeat": r,
                       "wall_s": wall, "timings_s": dict(run.timings), "steps_s": steps,
                       "network_s": sum(steps[k] for k in NETWORKS if k in steps) if steps else None,
                       "noise": args.noise if has_steps else "numpy", "loadavg_1m_start": load,
                       "loadavg_1m_end": os.getloadavg()[0], "precision": args.precision if has_steps else "as set",
                       "audio_rms": float(np.sqrt(np.mean(run.audio.astype(np.float64) ** 2)))}
                if steps:
                    row["wall_over_network"] = wall / row["network_s"]
                rows.append(row)
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                                  if k in ("label", "backend", "seconds_audio", "wall_s", "network_s",
                                           "wall_over_network", "loadavg_1m_start")}), flush=True)
                write_json_atomic(Path(args.json_out), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
