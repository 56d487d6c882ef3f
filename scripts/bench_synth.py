"""Benchmark: RVC synthesizer inference, torch reference vs MLX port, same weights/inputs/noise.

    .venv/bin/python scripts/bench_synth.py [--config v2-48k] [--seconds 2] [--repeats 5]

Each backend: warm-up calls, then ``--repeats`` timed calls (``mx.eval`` / torch CPU ops are
synchronous); prints JSON rows (median, min, all times) and the MLX/torch ratio of medians.
Calls alternate between the backends so a load change on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="v2-48k")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    from rvclab import runtime
    from rvclab.models.synth.config import SynthConfig
    from rvclab.models.synth.noise import make_noise
    from rvclab.models.synth.parity import clip_inputs, models_from_voice, run_mlx, run_torch, torch_voice
    from rvclab.tolerances import SYNTH_SPEED_RATIO_GOAL

    if args.threads:
        torch.set_num_threads(args.threads)
    mx = runtime.import_mlx()
    config = SynthConfig.preset(args.config)
    frames = int(round(args.seconds * 100))
    tmodel, mmodel = models_from_voice(torch_voice(config, args.seed))
    inp = clip_inputs(config, frames, args.seed)
    noise = make_noise(config, 1, frames, args.seed)
    f0 = bool(config.f0)

    def t_call():
        run_torch(tmodel, inp, noise)

    def m_call():
        run_mlx(mmodel, inp, noise, f0)  # converts outputs to numpy: evaluation is complete

    times = {"torch": [], "mlx": []}
    for _ in range(args.warmup):
        t_call()
        m_call()
    for _ in range(args.repeats):
        for name, fn in (("torch", t_call), ("mlx", m_call)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    common = {"bench": "synth", "config": config.name, "seconds_audio": frames / 100,
              "samples": frames * config.hop_length, "machine": platform.machine(),
              "torch_threads": torch.get_num_threads(), "mlx_device": str(mx.default_device()),
              "blas": runtime.blas_in_use()}
    rows = []
    for name, ts in times.items():
        rows.append({**common, "backend": name, "median_s": statistics.median(ts),
                     "min_s": min(ts), "times_s": ts})
    ratio = rows[1]["median_s"] / rows[0]["median_s"]
    rows.append({**common, "backend": "mlx/torch", "ratio_median": ratio,
                 "goal": SYNTH_SPEED_RATIO_GOAL, "ok": ratio <= SYNTH_SPEED_RATIO_GOAL})
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
