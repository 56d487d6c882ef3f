"""The non-network steps of a conversion, timed alone on the CPU (no networks): what
``convert_voice`` spends outside HuBERT, F0 and the synthesizer, per step, at given lengths.

``python scripts/bench_numpy_steps.py --seconds 5,60 --label after --json out.json``; with an older
tree first on PYTHONPATH it times that tree's steps (the "before" of a comparison). Inputs: the
shipped speech tiled to length, high-passed; an output of the v2-48k voice's length (48 kHz); per
chunk, features (T, 768) and F0 as the pipeline makes them. Fastest of ``--repeats`` per step.
Also times the synthesizer noise for the same frames: numpy's PCG64 and, where this tree has it,
the counter generator (numpy, and MLX's and torch's own kernels on the CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from rvclab.bench.stages import speech
from rvclab.bench.timing import machine_info, write_json_atomic
from rvclab.models.synth import noise as nz
from rvclab.pipeline import steps
from rvclab.pipeline.networks import VoiceModel
from rvclab.voices import default_voice

OUT_SR = 48000


def fastest(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def step_times(seconds: float, repeats: int, config) -> dict[str, float]:
    x16 = speech(seconds)
    x = steps.highpass(steps.normalize_input(x16))
    pad = steps.padding_for(OUT_SR)
    chunks = steps.plan_chunks(x, pad)
    padded = steps.pad_audio(x, pad)
    p_len = padded.shape[0] // steps.WINDOW
    rng = np.random.default_rng(0)
    f0 = np.where(rng.random(p_len) < 0.3, 0, rng.uniform(80, 300, p_len)).astype(np.float32)
    coarse, f0bak = steps.postprocess_f0(f0, 0, None, 1, p_len)
    per_chunk = []
    for c in chunks:
        n = c.audio_stop - c.audio_start
        feats = rng.standard_normal((n // 320, 768)).astype(np.float32)
        per_chunk.append((feats, n, c.frames(coarse), c.frames(f0bak)))
    out = (rng.standard_normal(int(seconds * OUT_SR)) * 0.2).astype(np.float32)
    source_rms = steps.frame_rms(x, 16000)
    frames = [min(n // steps.WINDOW, 2 * f.shape[0]) for f, n, _, _ in per_chunk]
    t = {
        "highpass": fastest(lambda: steps.highpass(steps.normalize_input(x16)), repeats),
        "plan_chunks": fastest(lambda: steps.plan_chunks(x, pad), repeats),
        "frame_rms": fastest(lambda: steps.frame_rms(x, 16000), repeats),
        "pad_audio": fastest(lambda: steps.pad_audio(x, pad), repeats),
        "postprocess_f0": fastest(lambda: steps.postprocess_f0(f0, 0, None, 1, p_len), repeats),
        "features_to_frames": fastest(lambda: [steps.features_to_frames(f, f.copy(), n, p, pf, 0.33)
                                               for f, n, p, pf in per_chunk], repeats),
        "mix_rms": fastest(lambda: steps.mix_rms_(out.copy(), OUT_SR, source_rms, 0.25), repeats)
        - fastest(lambda: out.copy(), repeats),
        "finalize": fastest(lambda: steps.finalize_audio_(out * 3), repeats) - fastest(lambda: out * 3, repeats),
        "noise_numpy": fastest(lambda: [nz.make_noise(config, 1, n, 0) for n in frames], repeats),
    }
    if hasattr(nz, "counter_noise"):
        from rvclab.models.synth.mlx.noise import counter_noise_mlx_kernels
        from rvclab.models.synth.torch.noise import counter_noise_torch_kernels
        from rvclab.runtime import import_mlx

        mx = import_mlx()
        t["noise_counter_numpy"] = fastest(lambda: [nz.counter_noise(config, 1, n, 0) for n in frames], repeats)
        t["noise_counter_mlx_cpu_kernels"] = fastest(
            lambda: [mx.eval(list(counter_noise_mlx_kernels(config, 1, n, 0).values())) for n in frames], repeats)
        t["noise_counter_torch_cpu_kernels"] = fastest(
            lambda: [counter_noise_torch_kernels(config, 1, n, 0) for n in frames], max(1, repeats // 2))
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", default="5,60")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--label", default="after")
    ap.add_argument("--json", dest="json_out", required=True)
    args = ap.parse_args(argv)
    config = VoiceModel(default_voice("voice_v2_48k.pth")).config
    path = Path(args.json_out)
    rows = json.loads(path.read_text()) if path.exists() else []
    meta = {**machine_info("cpu"), "label": args.label, "rvclab_path": str(Path(steps.__file__).parents[2]),
            "command": "python scripts/bench_numpy_steps.py " + " ".join(argv or sys.argv[1:])}
    for s in (float(v) for v in args.seconds.split(",")):
        import os

        load = os.getloadavg()[0]
        t = step_times(s, args.repeats, config)
        numpy_steps = {k: v for k, v in t.items() if not k.startswith("noise_counter")}
        rows.append({**meta, "stage": "numpy_steps", "seconds_audio": s, "steps_s": t,
                     "total_s": sum(numpy_steps.values()), "loadavg_1m_start": load,
                     "loadavg_1m_end": os.getloadavg()[0]})
        print(json.dumps({"label": args.label, "seconds": s, "total_ms": round(1e3 * rows[-1]["total_s"], 1),
                          **{k: round(1e3 * v, 1) for k, v in t.items()}}), flush=True)
        write_json_atomic(path, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
