"""Peak memory of one benchmark call, per backend.

CPU: peak RSS of a process running one backend only (:func:`measure_rss_subprocess`), so the two
backends' allocations never mix. GPU: each backend's allocator peak around one call in the
benchmark process (:func:`gpu_peak_of`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from rvclab.bench.stages import SYNTH_VOICE, StageOptions, build
from rvclab.paths import ROOT
from rvclab.runtime import import_mlx

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESULT_TAG = "RVCLAB_MEMORY_ROWS "


def status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (VmRSS, VmHWM), or None where there is none."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark to its current RSS; False where refused."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples VmRSS every ``interval`` seconds on a thread; ``peak_kib`` is the largest seen."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak_kib = status_kib("VmRSS") or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, status_kib("VmRSS") or 0)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, status_kib("VmRSS") or 0)


def peak_rss_of(fn, use_reset: bool = True) -> dict:
    """Run ``fn()`` once; {peak_rss_bytes, rss_before_bytes, wall_s, method}."""
    before = status_kib("VmRSS") or 0
    if use_reset and reset_peak_rss() and status_kib("VmHWM") is not None:
        t = time.perf_counter()
        fn()
        wall = time.perf_counter() - t
        peak, method = status_kib("VmHWM") or 0, "VmHWM after clear_refs"
    else:
        with RssSampler() as sampler:
            t = time.perf_counter()
            fn()
            wall = time.perf_counter() - t
        peak, method = sampler.peak_kib, "VmRSS sampled every 2 ms"
    return {"peak_rss_bytes": peak * 1024, "rss_before_bytes": before * 1024, "wall_s": wall, "method": method}


def gpu_peak_of(backend: str, fn) -> dict:
    """Peak device memory allocated during ``fn()`` on the GPU, as the backend's allocator counts it:
    ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, ``mx.get_peak_memory``
    after ``mx.reset_peak_memory``."""
    if backend == "torch":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return {"peak_gpu_bytes": int(torch.cuda.max_memory_allocated()),
                "gpu_memory_method": "torch.cuda.max_memory_allocated"}
    mx = import_mlx()
    mx.reset_peak_memory()
    fn()
    return {"peak_gpu_bytes": int(mx.get_peak_memory()), "gpu_memory_method": "mx.get_peak_memory"}


def measure_rss_subprocess(stage: str, backend: str, seconds: list[float], opts, timeout: float | None = None) -> list:
    """Peak RSS rows for ``stage`` on ``backend`` at each length, from a process of its own.

    That process (``python -m rvclab.bench.memory``) builds the runner for each length, shortest
    first, resets the kernel's high-water mark (``/proc/self/clear_refs`` value 5) and runs one
    call; ``VmHWM`` afterwards is the peak RSS during it (models, libraries and buffers included).
    Where the reset is refused, a thread samples ``VmRSS`` instead (the row's ``method`` says which).
    """
    cmd = [sys.executable, "-m", "rvclab.bench.memory", "--stage", stage, "--backend", backend,
           "--seconds", ",".join(f"{s:g}" for s in seconds), "--device", opts.device,
           "--f0-method", opts.f0_method, "--crepe-model", opts.crepe_model, "--voice", opts.voice,
           "--noise", opts.noise, "--reference", opts.reference]
    root = str(ROOT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"memory run {stage}/{backend} failed (exit {proc.returncode}): " + " | ".join(tail))


def run_lengths(stage: str, backend: str, seconds: list[float], opts) -> list[dict]:
    """In this process: one call per length, shortest first, each with its peak RSS."""
    rows = []
    for s in sorted(seconds):
        runner = build(stage, backend, s, opts)
        load_start = os.getloadavg()[0]
        mem = peak_rss_of(lambda r=runner: r.sync(r.call()))
        rows.append({"stage": stage, "backend": backend, "seconds_audio": s, **mem,
                     "ru_maxrss_bytes": _ru_maxrss_bytes(), "loadavg_1m_start": load_start,
                     "loadavg_1m_end": os.getloadavg()[0]})
    return rows


def _ru_maxrss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="peak RSS of one benchmark stage on one backend")
    ap.add_argument("--stage", required=True)
    ap.add_argument("--backend", required=True, choices=("torch", "mlx"))
    ap.add_argument("--seconds", required=True)
    ap.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    ap.add_argument("--f0-method", default="rmvpe")
    ap.add_argument("--crepe-model", default="full")
    ap.add_argument("--voice", default=SYNTH_VOICE)
    ap.add_argument("--noise", default="numpy")
    ap.add_argument("--reference", default=StageOptions.reference)
    args = ap.parse_args(argv)
    opts = StageOptions(device=args.device, f0_method=args.f0_method, crepe_model=args.crepe_model,
                        voice=args.voice, noise=args.noise, reference=args.reference)
    seconds = [float(s) for s in args.seconds.split(",")]
    rows = run_lengths(args.stage, args.backend, seconds, opts)
    print(RESULT_TAG + json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
