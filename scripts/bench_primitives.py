"""The CPU primitives RMVPE's time comes down to, MLX vs torch (and numpy's BLAS), on this machine.

    .venv/bin/python scripts/bench_primitives.py [--repeats 5] [--json docs/bench/bench_primitives_cpu.json]

Each row times one primitive at the shape RMVPE gives it (10 s of audio = a 1024-frame chunk):

* ``gemv_chain``: the BiGRU's recurrent product, (1, 256) @ (256, 768), 1000 times in a chain
  (each product feeds the next, as the recurrence does); microseconds per product. MLX reaches
  BLAS through ``sgemm``; numpy's ``@`` on a vector uses ``sgemv``.
* ``gemm_narrow``: (133,120 x 16) @ (16 x 16) and (133,120 x 144) @ (144 x 16), the matmuls a 3x3
  conv with 16 channels on a 1024 x 128 map becomes (per tap, or as one im2col product).
* ``conv3x3_16ch``: that conv, 16 -> 16 channels on 1024 x 128: ``rvclab.mlx.ops.conv2d`` (the
  port's CPU path), MLX's own ``mx.conv2d``, and torch's ``conv2d`` (oneDNN's direct kernel) in
  NCHW and channels-last layouts.

Fastest of ``--repeats`` calls after one warm-up (the machine is shared); MLX synchronised with
``mx.eval``. JSON rows carry the machine description of ``rvclab bench``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rvclab.bench.timing import fastest_s  # noqa: E402

FRAMES, MELS = 1024, 128
CHAIN = 1000


def gemv_rows(mx, torch, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 768)).astype(np.float32) * 0.05
    h0 = rng.standard_normal((1, 256)).astype(np.float32)
    wm, hm = mx.array(w), mx.array(h0)
    wt, ht = torch.from_numpy(w), torch.from_numpy(h0)

    def chain_mlx():
        h = hm
        for _ in range(CHAIN):
            h = mx.tanh((h @ wm)[:, :256])
        mx.eval(h)

    def chain_torch():
        h = ht
        with torch.no_grad():
            for _ in range(CHAIN):
                h = torch.tanh((h @ wt)[:, :256])

    def chain_numpy():
        h = h0[0]
        for _ in range(CHAIN):
            h = np.tanh((h @ w)[:256])

    rows = []
    for backend, fn in (("mlx", chain_mlx), ("torch", chain_torch), ("numpy", chain_numpy)):
        rows.append({"primitive": "gemv_chain", "shape": "(1,256)@(256,768)+tanh", "backend": backend,
                     "us_per_call": fastest_s(fn, repeats) / CHAIN * 1e6})
    return rows


def gemm_rows(mx, torch, repeats: int) -> list[dict]:
    rng = np.random.default_rng(1)
    m = (FRAMES + 3) * (MELS + 2)
    rows = []
    for k in (16, 144):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, 16)).astype(np.float32)
        am, bm = mx.array(a), mx.array(b)
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        mx.eval(am, bm)
        flops = 2 * m * k * 16
        for backend, fn in (("mlx", lambda am=am, bm=bm: mx.eval(am @ bm)), ("torch", lambda at=at, bt=bt: at @ bt)):
            s = fastest_s(fn, repeats)
            rows.append({"primitive": "gemm_narrow", "shape": f"({m}x{k})@({k}x16)", "backend": backend,
                         "ms": s * 1e3, "gflops": flops / s / 1e9})
    return rows


def conv_rows(mx, torch, repeats: int) -> list[dict]:
    from rvclab.mlx import ops

    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, FRAMES, MELS, 16)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 16)).astype(np.float32) * 0.1
    b = rng.standard_normal(16).astype(np.float32)
    xm, wm, bm = mx.array(x), mx.array(w), mx.array(b)
    mx.eval(xm, wm, bm)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    xcl = xt.contiguous(memory_format=torch.channels_last)
    wt = torch.from_numpy(w).permute(0, 3, 1, 2).contiguous()
    bt = torch.from_numpy(b)
    flops = 2 * FRAMES * MELS * 9 * 16 * 16

    def conv_t(inp):
        with torch.no_grad():
            return torch.nn.functional.conv2d(inp, wt, bt, padding=1)

    ref = conv_t(xt).permute(0, 2, 3, 1).numpy()
    got = np.array(ops.conv2d(xm, wm, bm, padding=1))
    err = float(np.abs(got - ref).max())
    variants = (
        ("mlx", "rvclab.mlx.ops.conv2d", lambda: mx.eval(ops.conv2d(xm, wm, bm, padding=1))),
        ("mlx", "mx.conv2d", lambda: mx.eval(mx.conv2d(xm, wm, padding=1) + bm)),
        ("torch", "conv2d NCHW", lambda: conv_t(xt)),
        ("torch", "conv2d channels_last", lambda: conv_t(xcl)),
    )
    rows = []
    for backend, how, fn in variants:
        s = fastest_s(fn, repeats)
        rows.append({"primitive": "conv3x3_16ch", "shape": f"1x{FRAMES}x{MELS}x16 -> 16", "backend": backend,
                     "variant": how, "ms": s * 1e3, "gflops": flops / s / 1e9,
                     **({"max_abs_vs_torch": err} if how == "rvclab.mlx.ops.conv2d" else {})})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the rows to this file (atomically)")
    args = ap.parse_args(argv)

    import torch

    from rvclab.bench.timing import machine_info, write_json_atomic
    from rvclab.runtime import import_mlx

    mx = import_mlx()
    meta = machine_info("cpu")
    meta["command"] = "scripts/bench_primitives.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = gemv_rows(mx, torch, args.repeats) + gemm_rows(mx, torch, args.repeats) + conv_rows(mx, torch, args.repeats)
    import os

    rows = [{**meta, "loadavg_end": list(os.getloadavg()), **r} for r in rows]
    for r in rows:
        keep = {k: v for k, v in r.items() if k in ("primitive", "shape", "backend", "variant", "us_per_call", "ms",
                                                      "gflops", "max_abs_vs_torch")}
        print(json.dumps(keep))
    if args.json:
        write_json_atomic(Path(args.json), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
