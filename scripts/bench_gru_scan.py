"""The BiGRU recurrence alone, MLX vs torch, on whatever device MLX and torch use here.

    python scripts/bench_gru_scan.py [--steps 1024,6000] [--repeats 3]

Times ``rvclab.models.rmvpe.gru.gru_scan`` (both directions as a batch of 2, compiled step, evaluated in
blocks of ``EVAL_BLOCK_STEPS``) at several block sizes, an unrolled variant (k steps per compiled
call; not used by the port: it measured slower), and torch's ``nn.GRU`` (cuDNN on a GPU) on the
same sizes: 256 hidden units, 384 inputs, RMVPE's shape (100 steps per second of audio); torch's
time includes the input projections, which the MLX rows take as given. Prints
one JSON object (fastest of the repeats, ms). The numbers quoted in docs/rmvpe.md came from it on
the H100 machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rvclab.bench.timing import fastest_s  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="1024,6000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch  # before MLX: on Linux with MLX-CUDA, torch's cuDNN must load first

    from rvclab.runtime import import_mlx

    mx = import_mlx()
    import rvclab.models.rmvpe.gru as G

    @lru_cache(None)
    def unrolled(k):
        def f(h, gi, w_t, b):
            outs = []
            for s in range(k):
                h = G._step(h, gi[:, :, s, :], w_t, b)
                outs.append(h)
            return mx.stack(outs, axis=2)
        return mx.compile(f)

    def scan_unrolled(gi, w_hh, b_hh, k):
        d, b, t, h3 = gi.shape
        w_t = mx.contiguous(mx.swapaxes(w_hh, -1, -2))
        bias = b_hh[:, None, :]
        h = mx.zeros((d, b, h3 // 3))
        outs, n = [], 0
        for i in range(0, t - t % k, k):
            blk = unrolled(k)(h, gi[:, :, i:i + k, :], w_t, bias)
            outs.append(blk)
            h = blk[:, :, -1, :]
            n += k
            if n >= G.EVAL_BLOCK_STEPS:
                mx.eval(h)
                n = 0
        for i in range(t - t % k, t):
            h = G._step_compiled(h, gi[:, :, i, :], w_t, bias)
            outs.append(h[:, :, None, :])
        return mx.concatenate(outs, axis=2)

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(0)
    res = {"mlx_device": str(mx.default_device()), "torch_device": dev}
    default_block = G.EVAL_BLOCK_STEPS
    for t in (int(s) for s in args.steps.split(",")):
        gi = mx.array(rng.standard_normal((2, 1, t, 768)).astype(np.float32))
        w = mx.array(rng.standard_normal((2, 768, 256)).astype(np.float32) * 0.05)
        b = mx.array(rng.standard_normal((2, 768)).astype(np.float32))
        mx.eval(gi, w, b)
        ref = np.array(G.gru_scan(gi, w, b))
        for block in (128, default_block, 2048):
            G.EVAL_BLOCK_STEPS = block
            res[f"T{t}_mlx_block{block}_ms"] = 1e3 * fastest_s(
                lambda gi=gi, w=w, b=b: mx.eval(G.gru_scan(gi, w, b)), args.repeats)
        G.EVAL_BLOCK_STEPS = default_block
        for k in (8, 32):
            res[f"T{t}_mlx_unroll{k}_ms"] = 1e3 * fastest_s(
                lambda gi=gi, w=w, b=b, k=k: mx.eval(scan_unrolled(gi, w, b, k)), args.repeats)
            res[f"T{t}_mlx_unroll{k}_max_diff"] = float(np.abs(np.array(scan_unrolled(gi, w, b, k)) - ref).max())
        g = torch.nn.GRU(384, 256, batch_first=True, bidirectional=True).to(dev)
        x = torch.randn(1, t, 384, device=dev)

        def run_torch(g=g, x=x):
            with torch.no_grad():
                g(x)
            if dev == "cuda":
                torch.cuda.synchronize()

        res[f"T{t}_torch_bigru_ms"] = 1e3 * fastest_s(run_torch, args.repeats)
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
