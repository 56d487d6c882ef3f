"""Benchmarks: warm-up, repeats, explicit synchronisation, medians, MLX/torch ratios, JSON rows.

Each stage function returns rows for both backends from the same run, so ratios compare like
with like. ``rvclab bench --stage matmul`` is the foundation's BLAS check; model stages register
in :data:`STAGES` as they land.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def timeit(fn: Callable[[], object], sync: Callable[[object], None], warmup: int = 2, repeats: int = 5) -> dict:
    """Median/min/max seconds of ``sync(fn())`` over ``repeats`` after ``warmup`` calls."""
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
    }


def mlx_sync(out) -> None:
    from rvclab.runtime import import_mlx

    mx = import_mlx()
    mx.eval(out)


def torch_sync_cpu(out) -> None:
    """Torch CPU ops are synchronous; on CUDA use rvclab.runtime.torch_sync('cuda')."""
    return None


def machine_info(device: str = "cpu") -> dict:
    from rvclab import __version__, runtime

    mx = runtime.import_mlx()
    import torch

    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}",
        "processor": _cpu_name(),
        "device": device,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "mlx": mx.__version__,
        "rvclab": __version__,
        "mlx_blas": runtime.blas_in_use(),
        "torch_threads": torch.get_num_threads(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_matmul(sizes=(1024, 2048), repeats: int = 5) -> list[dict]:
    """fp32 (n, n) matmul in torch and MLX; GFLOP/s and the MLX/torch ratio."""
    from rvclab.runtime import import_mlx

    mx = import_mlx()
    import torch

    rows = []
    for n in sizes:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        ta, ma = torch.from_numpy(a), mx.array(a)
        t_torch = timeit(lambda ta=ta: torch.mm(ta, ta), torch_sync_cpu, repeats=repeats)
        t_mlx = timeit(lambda ma=ma: ma @ ma, mlx_sync, repeats=repeats)
        flop = 2.0 * n**3
        for backend, t in (("torch", t_torch), ("mlx", t_mlx)):
            rows.append({"stage": "matmul", "size": n, "backend": backend, **t,
                         "gflops": flop / t["median_s"] / 1e9})
        rows.append({"stage": "matmul", "size": n, "backend": "ratio",
                     "ratio_mlx_over_torch": t_mlx["median_s"] / t_torch["median_s"]})
    return rows


STAGES: dict[str, Callable[..., list[dict]]] = {"matmul": lambda args: bench_matmul(repeats=args.repeats)}


def run_cli(args) -> int:
    if args.stage not in STAGES:
        print(f"unknown stage '{args.stage}'; choose from {', '.join(STAGES)}", file=sys.stderr)
        return 2
    meta = machine_info(args.device)
    rows = [{**meta, **row} for row in STAGES[args.stage](args)]
    for row in rows:
        shown = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items() if k not in meta}
        print(json.dumps(shown))
    if args.json_out:
        from rvclab.checkpoints import atomic_write

        atomic_write(Path(args.json_out), lambda tmp: tmp.write_text(json.dumps(rows, indent=2)))
        print(f"wrote {args.json_out}")
    return 0
