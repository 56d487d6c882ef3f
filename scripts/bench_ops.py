"""Benchmark rvclab.mlx.ops: MLX native kernels vs the matmul path vs torch, on the real shapes.

Shapes: the v2-48k NSF-HiFiGAN decoder (upsample rates 12/10/2/2, kernels 24/20/4/4, 512 channels
halving per stage, ResBlock1 kernels 3/7/11 with dilations 1/3/5, NSF noise convs, conv_pre/post)
for ``--seconds`` of 48 kHz audio, the HuBERT front end and grouped pos_conv for the same audio at
16 kHz, and a few RMVPE encoder conv2d layers.

Each case: warm-up, then repeats (fewer for very slow native MLX runs, see ``--budget``), median
in ms, ``mx.eval`` synchronisation; one JSON row per case on stdout (and in ``--out``).

    .venv/bin/python scripts/bench_ops.py --seconds 2 --repeats 7 --out bench_ops.jsonl
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from rvclab.mlx import ops
from rvclab.runtime import blas_in_use, import_mlx

mx = import_mlx()

SR = 48000
HOP = 480  # 100 frames per second at 48 kHz
UP_RATES, UP_KERNELS, UP_CH0 = (12, 10, 2, 2), (24, 20, 4, 4), 512
RES_KERNELS, RES_DILATIONS = (3, 7, 11), (1, 3, 5)


def cases(seconds: float, full: bool):
    """Yield (name, kind, params) for every benchmarked layer."""
    frames = int(round(seconds * SR / HOP))
    t, ch = frames, UP_CH0
    yield "conv_pre", "conv1d", dict(B=1, T=t, cin=192, cout=ch, K=7, padding=3)
    for i, (u, k) in enumerate(zip(UP_RATES, UP_KERNELS, strict=True)):
        yield f"ups{i}", "convt", dict(B=1, T=t, cin=ch, cout=ch // 2, K=k, stride=u,
                                       padding=(k - u) // 2)
        t, ch = t * u, ch // 2
        stride_f0 = int(np.prod(UP_RATES[i + 1:]))
        if stride_f0 > 1:
            yield f"noise_conv{i}", "conv1d", dict(B=1, T=frames * HOP, cin=1, cout=ch,
                                                   K=2 * stride_f0, stride=stride_f0,
                                                   padding=stride_f0 // 2)
        for k in RES_KERNELS:
            dils = RES_DILATIONS if full else RES_DILATIONS[-1:] if k == 11 else (1,)
            for d in dils:
                yield f"res{i}_k{k}_d{d}", "conv1d", dict(B=1, T=t, cin=ch, cout=ch, K=k,
                                                          dilation=d, padding=d * (k - 1) // 2)
    yield "conv_post", "conv1d", dict(B=1, T=t, cin=ch, cout=1, K=7, padding=3, bias=False)
    n16 = int(seconds * 16000)
    yield "hubert_conv0", "conv1d", dict(B=1, T=n16, cin=1, cout=512, K=10, stride=5, bias=False)
    t16 = (n16 - 10) // 5 + 1
    yield "hubert_conv1", "conv1d", dict(B=1, T=t16, cin=512, cout=512, K=3, stride=2, bias=False)
    t16 = (t16 - 3) // 2 + 1
    for _ in range(3):
        t16 = (t16 - 3) // 2 + 1
    t16 = ((t16 - 2) // 2 + 1 - 2) // 2 + 1
    yield "hubert_pos_conv", "conv1d", dict(B=1, T=t16, cin=768, cout=768, K=128, padding=64,
                                            groups=16)
    n_frames = -(-(int(seconds * 100) + 1) // 32) * 32
    for j, (h, w, cin, cout) in enumerate([(n_frames, 128, 1, 16), (n_frames, 128, 16, 16),
                                           (n_frames // 4, 32, 64, 64),
                                           (n_frames // 16, 8, 256, 256)]):
        yield f"rmvpe_conv2d_{j}", "conv2d", dict(B=1, H=h, W=w, cin=cin, cout=cout, k=3, padding=1)


def build(kind: str, p: dict, rng):
    """Return (torch_fn, mlx_fn(path), reference numpy output in MLX layout)."""
    bias = p.get("bias", True)
    g = p.get("groups", 1)
    if kind == "conv2d":
        x = rng.standard_normal((p["B"], p["H"], p["W"], p["cin"]), dtype=np.float32)
        w = rng.standard_normal((p["cout"], p["k"], p["k"], p["cin"] // g), dtype=np.float32)
    else:
        x = rng.standard_normal((p["B"], p["T"], p["cin"]), dtype=np.float32)
        if kind == "convt":
            shape = (p["cin"], p["cout"], p["K"])
        else:
            shape = (p["cout"], p["K"], p["cin"] // g)
        w = (rng.standard_normal(shape) / np.sqrt(p["cin"] * p["K"] / g)).astype(np.float32)
    b = rng.standard_normal(p["cout"], dtype=np.float32) if bias else None
    bt = None if b is None else torch.from_numpy(b)
    bm = None if b is None else mx.array(b)
    s, pad, d = p.get("stride", 1), p.get("padding", 0), p.get("dilation", 1)
    if kind == "conv1d":
        xt = torch.from_numpy(x).permute(0, 2, 1).contiguous()
        wt = torch.from_numpy(w).permute(0, 2, 1).contiguous()
        tfn = lambda: F.conv1d(xt, wt, bt, s, pad, d, g)  # noqa: E731
        xm, wm = mx.array(x), mx.array(w)
        mfn = lambda: ops.conv1d(xm, wm, bm, stride=s, padding=pad, dilation=d, groups=g)  # noqa: E731
        to_mlx = lambda y: y.permute(0, 2, 1).numpy()  # noqa: E731
    elif kind == "convt":
        xt = torch.from_numpy(x).permute(0, 2, 1).contiguous()
        wt = torch.from_numpy(w)
        tfn = lambda: F.conv_transpose1d(xt, wt, bt, s, pad)  # noqa: E731
        xm, wm = mx.array(x), mx.array(np.ascontiguousarray(w.transpose(1, 2, 0)))
        mfn = lambda: ops.conv_transpose1d(xm, wm, bm, stride=s, padding=pad)  # noqa: E731
        to_mlx = lambda y: y.permute(0, 2, 1).numpy()  # noqa: E731
    else:
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        wt = torch.from_numpy(w).permute(0, 3, 1, 2).contiguous()
        tfn = lambda: F.conv2d(xt, wt, bt, s, pad, d, g)  # noqa: E731
        xm, wm = mx.array(x), mx.array(w)
        mfn = lambda: ops.conv2d(xm, wm, bm, stride=s, padding=pad, dilation=d, groups=g)  # noqa: E731
        to_mlx = lambda y: y.permute(0, 2, 3, 1).numpy()  # noqa: E731
    return tfn, mfn, to_mlx


def time_interleaved(fns: dict, warmup: int, repeats: int, budget_s: float) -> dict:
    """Median ms per function, the functions taking turns in each round so that they share the
    machine's load. A function whose warm-up takes longer than budget_s / repeats joins only the
    first rounds (at least one)."""
    first, rounds = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(max(warmup, 1)):
            fn()
        first[name] = (time.perf_counter() - t0) / max(warmup, 1)
        rounds[name] = max(1, min(repeats, int(budget_s / max(first[name], 1e-9))))
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            if r < rounds[name]:
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(v) * 1e3, len(v)) for name, v in times.items()}


def _with_path(path: str, mfn):
    def run():
        with ops.conv_path(path):
            mx.eval(mfn())

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="audio length (default 2 s)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds per method and case: slow native MLX runs get fewer repeats")
    ap.add_argument("--no-native", action="store_true", help="skip MLX's native kernels")
    ap.add_argument("--full", action="store_true", help="every ResBlock kernel/dilation pair")
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    ap.add_argument("--out", default="", help="also write JSON rows (one per line) here")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    only = [s for s in args.only.split(",") if s]
    rows = []
    meta = dict(machine=platform.machine(), torch_threads=torch.get_num_threads(),
                blas=blas_in_use(), device=str(mx.default_device()), mlx=mx.__version__,
                torch=torch.__version__)
    print(json.dumps({"meta": meta}), flush=True)
    for name, kind, p in cases(args.seconds, args.full):
        if only and not any(s in name for s in only):
            continue
        tfn, mfn, to_mlx = build(kind, p, rng)
        ref = to_mlx(tfn())
        row = dict(name=name, op=kind, **p)
        fns = {"torch": tfn}
        for path in ("matmul",) if args.no_native else ("matmul", "native"):
            with ops.conv_path(path):
                got = np.array(mfn())
            key = "fast" if path == "matmul" else "native"
            row[f"{key}_rel_err"] = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
            fns[key] = _with_path(path, mfn)
        with torch.inference_mode():
            res = time_interleaved(fns, args.warmup, args.repeats, args.budget)
        row["torch_ms"], row["torch_repeats"] = res.pop("torch")
        op = {"convt": "conv_transpose1d"}.get(kind, kind)
        with ops.conv_path("auto"):
            row["auto_path"] = ops.active_path(op, p.get("stride", 1), p.get("dilation", 1),
                                               p.get("groups", 1))
        for key, (ms, n) in res.items():
            row[f"mlx_{key}_ms"], row[f"{key}_repeats"] = ms, n
            row[f"{key}_over_torch"] = ms / row["torch_ms"]
        auto_key = "fast" if row["auto_path"] == "matmul" else "native"
        if f"mlx_{auto_key}_ms" in row:
            row["mlx_auto_ms"] = row[f"mlx_{auto_key}_ms"]
            row["auto_over_torch"] = row["mlx_auto_ms"] / row["torch_ms"]
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) and "err" not in k else v
                          for k, v in row.items()}), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"meta": meta}) + "\n")
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
