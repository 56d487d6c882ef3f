"""Benchmarks: warm-up, repeats, explicit synchronisation, medians, MLX/torch ratios, JSON rows.

``rvclab bench --stage matmul|hubert|rmvpe|crepe|fcpe|synth|e2e|all --seconds 1,5,15
--device cpu|gpu --repeats N --warmup N --json out.json`` (also ``python -m rvclab.bench.run``).
Both backends run the same work (:mod:`rvclab.bench.stages`), their calls alternating; rows are
described at :func:`bench_stage`. ``--memory-only``: one call per backend and length, for peak
memory and wall time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from rvclab import help_text as text
from rvclab import runtime
from rvclab.bench import memory as bench_memory
from rvclab.bench.stages import BACKENDS, STAGE_NAMES, StageOptions, build, count_flops, mlx_sync, torch_sync_for
from rvclab.bench.timing import machine_info, timed_alternating, timeit, write_json_atomic
from rvclab.models.synth.noise import NOISE_KINDS
from rvclab.precision import PRECISIONS
from rvclab.profiles import DEFAULT_PROFILE, PROFILES

STAGE_CHOICES = ("matmul", *STAGE_NAMES, "all")
MATMUL_SIZES = {"cpu": (1024, 2048), "gpu": (4096, 8192)}


class BenchUsageError(ValueError):
    """Arguments the benchmark cannot run with (exit code 2)."""


def bench_matmul(sizes=(1024, 2048), repeats: int = 5, device: str = "cpu", warmup: int = 2) -> list[dict]:
    """fp32 (n, n) @ (n, n) in torch and MLX: GFLOP/s (2 n^3 FLOPs a product) and MLX/torch."""
    mx = runtime.import_mlx()
    import torch

    tdev = "cuda" if device == "gpu" else "cpu"
    rows = []
    for n in sizes:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        ta, ma = torch.from_numpy(a).to(tdev), mx.array(a)
        with _fp32_matmul():
            t_torch = timeit(lambda ta=ta: torch.mm(ta, ta), torch_sync_for(device), warmup, repeats)
        t_mlx = timeit(lambda ma=ma: ma @ ma, mlx_sync, warmup, repeats)
        flop = matmul_flops(n)
        for backend, t in (("torch", t_torch), ("mlx", t_mlx)):
            rows.append({"stage": "matmul", "size": n, "backend": backend, **t, "flops": flop,
                         "gflops": flop / t["median_s"] / 1e9})
        rows.append({"stage": "matmul", "size": n, "backend": "ratio",
                     "ratio_mlx_over_torch": t_mlx["median_s"] / t_torch["median_s"]})
    return rows


def matmul_flops(n: int) -> int:
    return 2 * n**3


class _fp32_matmul:
    """torch matmuls in true fp32 (no TF32) inside the block."""

    def __enter__(self):
        import torch

        self.saved = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc):
        import torch

        torch.backends.cuda.matmul.allow_tf32 = self.saved


def bench_stage(stage: str, seconds: list[float], opts: StageOptions, *, warmup: int, repeats: int,
                peak_gflops: float | None, memory: bool = True) -> list[dict]:
    """Rows for ``stage`` at each length: one per backend and a ratio row (MLX/torch).

    Warm-up calls, then ``repeats`` rounds of one torch and one MLX call (alternating, so a change
    in machine load hits both alike), each synchronised. A backend's row: median/min/max seconds,
    realtime factor (audio seconds / median seconds), the FLOPs torch's FlopCounterMode counts on
    one extra untimed torch call (the same count serves both backends), GFLOP/s and their share of
    ``peak_gflops`` (the run's fp32 matmul peak), and peak memory (:mod:`rvclab.bench.memory`).
    :func:`run_cli` adds the machine, device, versions, date and load average to every row.
    """
    rows = []
    for s in seconds:
        free_cached_memory(opts.device)
        try:
            runners = {b: build(stage, b, s, opts) for b in BACKENDS}
            flops: dict[str, int] = {}

            def counted(tr=runners["torch"], flops=flops):
                flops["n"] = count_flops(lambda: tr.sync(tr.call()))

            t = timed_alternating(runners, warmup, repeats, first_torch=counted)
        except Exception as exc:  # e.g. out of device memory at one length: keep the other lengths
            traceback.print_exc()
            rows.append({"stage": stage, "seconds_audio": s, "backend": "error",
                         "error": f"{type(exc).__name__}: {exc}"})
            runners = None
            continue
        for b in BACKENDS:
            row = {"stage": stage, "seconds_audio": s, "backend": b, **t[b],
                   "realtime_x": s / t[b]["median_s"], "flops": flops["n"],
                   "gflops": flops["n"] / t[b]["median_s"] / 1e9}
            if stage == "crepe":
                row["model"] = f"crepe-{opts.crepe_model}"
            row.update(runners[b].details())
            if peak_gflops:
                row["peak_gflops"] = peak_gflops
                row["pct_of_peak"] = 100.0 * row["gflops"] / peak_gflops
                row["flop_limit_s"] = flops["n"] / (peak_gflops * 1e9)
            if memory and opts.device == "gpu":
                row.update(bench_memory.gpu_peak_of(b, lambda r=runners[b]: r.sync(r.call())))
            rows.append(row)
        rows.append({"stage": stage, "seconds_audio": s, "backend": "ratio",
                     "ratio_mlx_over_torch": t["mlx"]["median_s"] / t["torch"]["median_s"]})
        del runners
        free_cached_memory(opts.device)
    if memory and opts.device == "cpu":
        for b in BACKENDS:
            peaks = {m["seconds_audio"]: m for m in bench_memory.measure_rss_subprocess(stage, b, seconds, opts)}
            for row in rows:
                if row["backend"] == b and row["seconds_audio"] in peaks:
                    m = peaks[row["seconds_audio"]]
                    row.update(peak_rss_bytes=m["peak_rss_bytes"], rss_before_bytes=m["rss_before_bytes"],
                               rss_method=m["method"])
    return rows


def free_cached_memory(device: str) -> None:
    """Hand cached device buffers back between lengths and stages (each allocator keeps its own)."""
    gc.collect()
    if device == "gpu":
        import torch

        runtime.import_mlx().clear_cache()
        torch.cuda.empty_cache()


def memory_only(stage: str, seconds: list[float], opts: StageOptions, backends=BACKENDS) -> list[dict]:
    """One call per backend and length, one backend at a time: peak memory and wall time."""
    rows = []
    for b in backends:
        if opts.device == "cpu":
            found = bench_memory.measure_rss_subprocess(stage, b, seconds, opts)
        else:
            found = []
            for s in seconds:
                free_cached_memory(opts.device)
                try:
                    r = build(stage, b, s, opts)
                    r.sync(r.call())  # warm-up (kernel compilation), then the measured call
                    t0 = time.perf_counter()
                    mem = bench_memory.gpu_peak_of(b, lambda r=r: r.sync(r.call()))
                except Exception as exc:  # out of device memory: record it, go on
                    traceback.print_exc()
                    rows.append({"stage": stage, "backend": "error", "failed_backend": b, "seconds_audio": s,
                                 "mode": "memory-only", "error": f"{type(exc).__name__}: {exc}"})
                    continue
                found.append({"stage": stage, "backend": b, "seconds_audio": s, **mem,
                              "wall_s": time.perf_counter() - t0})
        for m in found:
            m["realtime_x"] = m["seconds_audio"] / m["wall_s"]
            rows.append({**m, "mode": "memory-only", "repeats": 1})
    return rows


def parse_seconds(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchUsageError(f"--seconds: expected comma-separated numbers, got '{text}'") from None
    if not values or any(v <= 0 for v in values):
        raise BenchUsageError(f"--seconds: expected positive lengths, got '{text}'")
    return values


def parse_stages(text: str) -> list[str]:
    stages = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGE_CHOICES]
    if bad or not stages:
        raise BenchUsageError(f"unknown stage '{','.join(bad) or text}'; choose from {', '.join(STAGE_CHOICES)}")
    if "all" in stages:
        return ["matmul", *STAGE_NAMES]
    return stages


def add_arguments(s: argparse.ArgumentParser) -> None:
    d = text.DEFAULT
    s.add_argument("--stage", default="matmul", help=f"comma-separated, from {', '.join(STAGE_CHOICES)} {d}")
    s.add_argument("--seconds", default="1,5", help=f"comma-separated clip lengths in seconds, each > 0 {d}")
    s.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help=f"device: %(choices)s {d}")
    s.add_argument("--repeats", type=int, default=3, help=f"timed runs per case, >= 1 {d}")
    s.add_argument("--warmup", type=int, default=1, help=f"untimed runs before them, >= 0 {d}")
    s.add_argument("--f0-method", default="rmvpe", help=f"F0 method of the e2e stage, one the profile offers {d}")
    s.add_argument("--reference", default=DEFAULT_PROFILE, choices=list(PROFILES), help=f"profile of the e2e stage {d}")
    s.add_argument("--crepe-model", default="full", choices=("full", "tiny"), help=f"CREPE capacity: %(choices)s {d}")
    s.add_argument("--noise", default="numpy", choices=NOISE_KINDS, help=f"noise generator of the e2e stage {d}")
    s.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="precision mode of the e2e stage (rvclab.precision); default: the backends as set")
    s.add_argument("--no-memory", action="store_true", help="skip peak-memory measurement")
    s.add_argument("--memory-only", action="store_true", help="one call per backend: peak memory and time")
    s.add_argument("--backends", default="torch,mlx", choices=("torch,mlx", "torch", "mlx"),
                   help=f"with --memory-only: which backends, in this order {d}")
    s.add_argument("--json", dest="json_out", default=None, help="write JSON rows to this file (atomically)")


def precision_as_set() -> str:
    """The precision a run without --precision computes in: the backends' own settings."""
    import torch

    tf32 = os.environ.get("MLX_ENABLE_TF32", "unset (on)")
    return (f"as set: MLX_ENABLE_TF32={tf32}, torch matmul allow_tf32={torch.backends.cuda.matmul.allow_tf32}, "
            f"cudnn allow_tf32={torch.backends.cudnn.allow_tf32}")


def run_cli(args) -> int:
    try:
        stages = parse_stages(args.stage)
        seconds = parse_seconds(args.seconds)
        if args.repeats < 1 or args.warmup < 0:
            raise BenchUsageError("--repeats must be >= 1 and --warmup >= 0")
        if args.precision is not None and set(stages) - {"e2e", "matmul"}:
            raise BenchUsageError(f"--precision {args.precision}: only the e2e stage runs other modes so far")
    except BenchUsageError as exc:
        print(f"rvclab bench: {exc}", file=sys.stderr)
        return 2
    if args.device == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("rvclab bench: --device gpu needs CUDA, and torch sees none", file=sys.stderr)
            return 2
    opts = StageOptions(device=args.device, f0_method=args.f0_method, crepe_model=args.crepe_model,
                        noise=args.noise, precision=args.precision, reference=args.reference)
    meta = {**machine_info(args.device), "precision": args.precision or precision_as_set(),
            "command": "rvclab bench " + " ".join(_argv_of(args))}
    rows: list[dict] = []
    peak = None
    if not args.memory_only:
        sizes = MATMUL_SIZES[args.device] if "matmul" in stages else MATMUL_SIZES[args.device][-1:]
        mm = bench_matmul(sizes, repeats=max(args.repeats, 3), device=args.device, warmup=max(args.warmup, 1))
        peak = max(r["gflops"] for r in mm if "gflops" in r)
        meta["peak_gflops"] = peak
        if "matmul" in stages:
            _emit(rows, mm, meta, args)
    failed = []
    for stage in (s for s in stages if s != "matmul"):
        try:
            if args.memory_only:
                found = memory_only(stage, seconds, opts, backends=args.backends.split(","))
            else:
                found = bench_stage(stage, seconds, opts, warmup=args.warmup, repeats=args.repeats,
                                    peak_gflops=peak, memory=not args.no_memory)
        except Exception as exc:  # one broken stage must not cost the others' figures
            traceback.print_exc()
            failed.append(stage)
            found = [{"stage": stage, "backend": "error", "error": f"{type(exc).__name__}: {exc}"}]
        _emit(rows, found, meta, args)
    if failed:
        print(f"rvclab bench: stage(s) failed: {', '.join(failed)} (rows with backend 'error')", file=sys.stderr)
        return 1
    return 0


def _emit(rows: list, new: list[dict], meta: dict, args) -> None:
    """Print the new rows, add them to ``rows`` and rewrite the JSON file (atomically)."""
    end = list(os.getloadavg())
    for row in new:
        shown = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items() if k != "times_s"}
        print(json.dumps(shown), flush=True)
        rows.append({**meta, **row, "loadavg_end": end})
    if args.json_out:
        write_json_atomic(Path(args.json_out), rows)


def _argv_of(args) -> list[str]:
    out = [f"--stage {args.stage}", f"--seconds {args.seconds}", f"--device {args.device}",
           f"--repeats {args.repeats}", f"--warmup {args.warmup}"]
    if args.f0_method != "rmvpe":
        out.append(f"--f0-method {args.f0_method}")
    if args.crepe_model != "full":
        out.append(f"--crepe-model {args.crepe_model}")
    if args.noise != "numpy":
        out.append(f"--noise {args.noise}")
    if args.precision is not None:
        out.append(f"--precision {args.precision}")
    out += [flag for flag, on in (("--no-memory", args.no_memory), ("--memory-only", args.memory_only)) if on]
    if args.memory_only and args.backends != "torch,mlx":
        out.append(f"--backends {args.backends}")
    if args.json_out:
        out.append(f"--json {args.json_out}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rvclab bench", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run_cli(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
