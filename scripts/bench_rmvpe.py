"""RMVPE speed, torch vs MLX on this machine: audio -> salience for N seconds of speech.

    .venv/bin/python scripts/bench_rmvpe.py [--seconds 10] [--repeats 3] [--json out.json]

Both backends run the same work (log-mel, padding, network, chunking as upstream); one warm-up
call each, then ``--repeats`` rounds of one torch and one MLX call (alternating, so changes in
machine load hit both alike), medians reported. MLX is synchronised with
``mx.eval`` (the salience is materialised as numpy, as the decoder needs it). Also times the
BiGRU alone (the sequential part). Prints JSON rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed_pair(fn_torch, fn_mlx, repeats: int) -> tuple[dict, dict]:
    """Warm both up, then alternate torch and MLX calls (so load changes hit both alike)."""
    fn_torch()
    fn_mlx()
    times = {"torch": [], "mlx": []}
    for _ in range(repeats):
        for name, fn in (("torch", fn_torch), ("mlx", fn_mlx)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return tuple({"median_s": statistics.median(t), "min_s": min(t), "repeats": repeats}
                 for t in (times["torch"], times["mlx"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)

    import torch

    from rvclab.audio import data_clips, load_audio
    from rvclab.models.rmvpe.f0 import get_estimator
    from rvclab.runtime import blas_in_use, import_mlx

    mx = import_mlx()
    speech = np.concatenate([load_audio(p, 16000) for p in data_clips()]).astype(np.float32)
    n = int(args.seconds * 16000)
    audio = np.tile(speech, -(-n // speech.size))[:n]
    est_t = get_estimator("torch", args.model_path)
    est_m = get_estimator("mlx", args.model_path)

    rows = []
    common = {"seconds": args.seconds, "torch_threads": torch.get_num_threads(),
              "mlx_device": str(mx.default_device()), "blas": blas_in_use()}
    tt, tm = timed_pair(lambda: est_t.salience(audio), lambda: est_m.salience(audio), args.repeats)
    rows.append({"stage": "salience", "backend": "torch", **common, **tt})
    rows.append({"stage": "salience", "backend": "mlx", **common, **tm})

    # the BiGRU alone on the real input shape (T, 384)
    t = n // 160 + 1
    t = 32 * ((t - 1) // 32 + 1)
    x = np.random.default_rng(0).standard_normal((1, t, 384)).astype(np.float32)
    xt = torch.from_numpy(x)
    gru_t = est_t.model.fc[0]
    gru_m = est_m.model.fc[0]
    xm = mx.array(x)

    def run_t():
        with torch.no_grad():
            gru_t(xt)

    tt, tm = timed_pair(run_t, lambda: mx.eval(gru_m(xm)), args.repeats)
    rows.append({"stage": "bigru", "backend": "torch", **common, **tt})
    rows.append({"stage": "bigru", "backend": "mlx", **common, **tm})
    for stage in ("salience", "bigru"):
        pair = {r["backend"]: r["median_s"] for r in rows if r["stage"] == stage}
        rows.append({"stage": stage, "ratio_torch_over_mlx": pair["torch"] / pair["mlx"], **common})
    text = json.dumps(rows, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
