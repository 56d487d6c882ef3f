"""Timing and the run's context for every benchmark: warm-up and repeats with an explicit
synchronisation, alternating backends, the machine's description, JSON rows written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rvclab import __version__, runtime
from rvclab.checkpoints import atomic_write


def timeit(fn: Callable[[], object], sync: Callable[[object], None], warmup: int = 2, repeats: int = 5) -> dict:
    """Median/min/max seconds of ``sync(fn())`` over ``repeats`` after ``warmup`` calls."""
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t)
    return summarize(times)


def fastest_s(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls of ``fn`` (which synchronises itself) after one warm-up:
    for a primitive this short, the least disturbed call on a shared machine is the better
    estimate of what the code costs (the scripts under ``scripts/bench_*.py``)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def summarize(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": len(times), "times_s": list(times)}


def timed_alternating(runners: dict, warmup: int, repeats: int, first_torch: Callable | None = None) -> dict:
    """{backend: summary} with the backends' calls alternating; ``first_torch`` (an untimed
    torch call that counts FLOPs) runs before the warm-up calls."""
    if first_torch is not None:
        first_torch()
    for _ in range(warmup):
        for r in runners.values():
            r.sync(r.call())
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, r in runners.items():
            t = time.perf_counter()
            r.sync(r.call())
            times[name].append(time.perf_counter() - t)
    return {name: summarize(ts) for name, ts in times.items()}


def machine_info(device: str = "cpu") -> dict:
    """The run's context: machine, device, versions, date, load average at the start."""
    mx = runtime.import_mlx()
    import torch

    info = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}",
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "device_name": _cpu_name(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "mlx": mx.__version__,
        "rvclab": __version__,
        "mlx_device": str(mx.default_device()),
        "mlx_blas": runtime.blas_in_use(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": list(os.getloadavg()),
    }
    if device == "gpu":
        info["device_name"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_json_atomic(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(rows, indent=2) + "\n"))
