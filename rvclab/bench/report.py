"""Benchmark results as tables: the committed JSON rows (docs/bench) read and checked against the
project's speed goals (issue #10), the scaling fits and the peak-memory figures.

docs/bench holds one current file per benchmark kind, under the stable names of ``BENCH_FILES``: a
new run replaces its kind's file (rows kept from another run say so in ``provenance``) and git keeps
the old one. No numbers live here: every figure comes from the rows ``rvclab bench`` wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from rvclab.paths import ROOT

BENCH_DIR = ROOT / "docs" / "bench"
STAGE_ORDER = ("hubert", "rmvpe", "crepe", "fcpe", "synth", "e2e")
BENCH_FILES = {  # kind: the one current file of docs/bench the report reads
    "stages_cpu": "bench_stages_cpu.json",
    "stages_gpu": "bench_stages_gpu.json",
    "scaling_gpu": "bench_scaling_gpu.json",
    "memory_e2e_cpu": "bench_memory_e2e_cpu.json",
    "memory_e2e_gpu": "bench_memory_e2e_gpu.json",
    "primitives_cpu": "bench_primitives_cpu.json",
    "steps_cpu": "bench_steps_cpu.json",  # scripts/step_breakdown.py: convert_voice step by step
    "numpy_steps_cpu": "bench_numpy_steps_cpu.json",  # scripts/bench_numpy_steps.py: the steps alone
    "precision_cpu": "parity_precision_cpu.json",  # scripts/precision_parity.py: each mode against fp32
}

# Goals of issue #10 (MLX time / torch time unless said otherwise).
CPU_E2E_RATIO_GOAL = 0.8
CPU_STAGE_RATIO_GOAL = 1.0
CPU_RMVPE_RATIO_GOAL = 0.5
CPU_SYNTH_FLOP_LIMIT_GOAL = 1.3  # MLX synth time / (FLOPs / measured fp32 matmul peak)
GPU_E2E_RATIO_GOAL = 0.8
PEAK_TRUST_FRACTION = 0.75  # a run's matmul peak below this share of the machine's best: a slow phase
GPU_E2E_REALTIME_GOAL = 500.0
GPU_GOAL_SECONDS = 60.0


def load_rows(pattern: str, folder: Path = BENCH_DIR) -> list[dict]:
    """Rows of the ``BENCH_FILES`` whose name matches ``pattern`` (a name or a glob), each tagged with
    its ``source``; other files in ``folder`` are never read."""
    names = sorted(n for n in BENCH_FILES.values() if fnmatch(n, pattern))
    if not names:
        raise ValueError(f"{pattern!r} matches none of the benchmark files {sorted(BENCH_FILES.values())}")
    rows = []
    for name in names:
        for row in json.loads((folder / name).read_text()):
            rows.append({**row, "source": name})
    return rows


def load(kind: str, folder: Path = BENCH_DIR) -> list[dict]:
    """Rows of the current file of one benchmark kind (a key of ``BENCH_FILES``)."""
    return load_rows(BENCH_FILES[kind], folder)


def stage_rows(rows: list[dict], stage: str) -> list[dict]:
    """The timed rows of ``stage`` (error and memory-only rows dropped)."""
    return [r for r in rows if r.get("stage") == stage and r.get("backend") in ("torch", "mlx", "ratio")
            and r.get("mode") != "memory-only"]


def errors(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("backend") == "error"]


@dataclass
class Pair:
    """One stage at one length: both backends' rows from the same run, and their ratio."""

    stage: str
    seconds: float
    torch: dict
    mlx: dict

    @property
    def ratio(self) -> float:
        return self.mlx["median_s"] / self.torch["median_s"]


def pairs(rows: list[dict], stages=STAGE_ORDER) -> list[Pair]:
    """Both backends' rows per stage and length; two rows of one backend there is an error (one
    current run per kind)."""
    out = []
    for stage in stages:
        chosen = stage_rows(rows, stage)
        for s in sorted({r["seconds_audio"] for r in chosen if "seconds_audio" in r}):
            by: dict[str, dict] = {}
            for r in chosen:
                if r.get("seconds_audio") != s:
                    continue
                if r["backend"] in by:
                    raise ValueError(f"two {r['backend']} rows for {stage} at {s:g} s ({by[r['backend']]['source']} "
                                     f"{by[r['backend']]['date']}, {r['source']} {r['date']}): keep one run per kind")
                by[r["backend"]] = r
            if "torch" in by and "mlx" in by:
                out.append(Pair(stage, s, by["torch"], by["mlx"]))
    return out


def longest(ps: list[Pair], stage: str) -> Pair | None:
    found = [p for p in ps if p.stage == stage]
    return max(found, key=lambda p: p.seconds) if found else None


def at_length(ps: list[Pair], stage: str, seconds: float) -> Pair | None:
    return next((p for p in ps if p.stage == stage and p.seconds == seconds), None)


def stage_table(ps: list[Pair]) -> list[dict]:
    """One line per stage and length: times, ratio, realtime factors, GFLOP/s, load average."""
    out = []
    for p in ps:
        model = p.torch.get("model")
        if p.stage == "crepe" and model is None:  # rows written before the model was recorded
            model = "crepe-tiny" if "--crepe-model tiny" in p.torch.get("command", "") else "crepe-full"
        out.append({
            "stage": p.stage + (f" ({model})" if model else ""),
            "seconds": p.seconds, "torch_s": p.torch["median_s"], "mlx_s": p.mlx["median_s"],
            "torch_spread": (p.torch["min_s"], p.torch["max_s"]), "mlx_spread": (p.mlx["min_s"], p.mlx["max_s"]),
            "ratio": p.ratio, "torch_rt": p.torch["realtime_x"], "mlx_rt": p.mlx["realtime_x"],
            "torch_gflops": p.torch.get("gflops"), "mlx_gflops": p.mlx.get("gflops"),
            "peak_gflops": p.torch.get("peak_gflops"),
            "load": (p.torch.get("loadavg_start", [None])[0], p.torch.get("loadavg_end", [None])[0]),
            "source": p.torch["source"], "date": p.torch["date"],
        })
    return out


def goal(name: str, device: str, measured: float | None, target: float, lower_is_better: bool, where: str) -> dict:
    met = None if measured is None else (measured <= target if lower_is_better else measured >= target)
    return {"goal": name, "device": device, "measured": measured, "target": target,
            "op": "<=" if lower_is_better else ">=", "met": met, "where": where}


def cpu_goals(ps: list[Pair], best_peak_gflops: float | None = None) -> list[dict]:
    """Issue #10's CPU goals, each judged at the longest length measured for its stage.

    ``best_peak_gflops``: the best fp32 matmul peak of any run on this machine. The FLOP-limit goal
    uses the peak of the synth's own run; where that peak fell below ``PEAK_TRUST_FRACTION`` of the
    best, the machine was slow during that run's matmul stage and the goal is not judged."""
    out = []
    e2e = longest(ps, "e2e")
    out.append(goal("MLX end to end / torch", "cpu", e2e and e2e.ratio, CPU_E2E_RATIO_GOAL, True,
                    _where(e2e)))
    for stage in STAGE_ORDER:
        p = longest(ps, stage)
        out.append(goal(f"{stage}: MLX / torch", "cpu", p and p.ratio, CPU_STAGE_RATIO_GOAL, True, _where(p)))
    rm = longest(ps, "rmvpe")
    out.append(goal("RMVPE: MLX / torch", "cpu", rm and rm.ratio, CPU_RMVPE_RATIO_GOAL, True, _where(rm)))
    sy = longest(ps, "synth")
    limit = sy and sy.mlx.get("flop_limit_s")
    g = goal("synth: MLX time / FLOP limit (FLOPs / fp32 matmul peak)", "cpu",
             limit and sy.mlx["median_s"] / limit, CPU_SYNTH_FLOP_LIMIT_GOAL, True, _where(sy))
    if g["measured"] is not None and g["measured"] < 1.0:  # faster than the peak allows: load changed
        g["met"] = None
        g["note"] = ("unreliable: the stage ran faster than the matmul peak measured at the run's start "
                     "(the load fell during the run)")
    run_peak = sy and sy.mlx.get("peak_gflops")
    if g["measured"] is not None and run_peak and best_peak_gflops and \
            run_peak < PEAK_TRUST_FRACTION * best_peak_gflops:
        g["met"] = None
        g["note"] = (f"unreliable: that run's matmul peak ({run_peak:.0f} GFLOP/s) is below "
                     f"{PEAK_TRUST_FRACTION:.0%} of the best measured here ({best_peak_gflops:.0f}); "
                     f"against the best: {sy.mlx['median_s'] / limit * best_peak_gflops / run_peak:.2f}")
    out.append(g)
    return out


def best_peak(rows: list[dict]) -> float | None:
    """The best fp32 matmul peak (GFLOP/s) recorded in any of ``rows``."""
    peaks = [r["peak_gflops"] for r in rows if r.get("peak_gflops")]
    return max(peaks) if peaks else None


def gpu_goals(ps: list[Pair]) -> list[dict]:
    e2e = at_length(ps, "e2e", GPU_GOAL_SECONDS)
    return [
        goal("MLX end to end / torch", "gpu", e2e and e2e.ratio, GPU_E2E_RATIO_GOAL, True, _where(e2e)),
        goal("MLX end to end, realtime factor", "gpu", e2e and e2e.mlx["realtime_x"], GPU_E2E_REALTIME_GOAL,
             False, _where(e2e)),
    ]


def _where(p: Pair | None) -> str:
    return "not measured" if p is None else f"{p.seconds:g} s clip, {p.torch['source']}"


# --- scaling and memory ---------------------------------------------------------------------------


def scaling_points(rows: list[dict], stage: str = "e2e") -> dict[str, list[dict]]:
    """{backend: [{seconds, time_s, peak_bytes, kind}]} from timed rows (median) and single
    memory-only runs (wall time), every run of ``stage`` in ``rows``."""
    out: dict[str, list[dict]] = {"torch": [], "mlx": []}
    for r in rows:
        if r.get("stage") != stage or r.get("backend") not in out:
            continue
        single = r.get("mode") == "memory-only"
        out[r["backend"]].append({
            "seconds": r["seconds_audio"], "time_s": r["wall_s"] if single else r["median_s"],
            "peak_bytes": r.get("peak_rss_bytes", r.get("peak_gpu_bytes")),
            "kind": "single run" if single else f"median of {r.get('repeats')}", "source": r["source"],
        })
    for pts in out.values():
        pts.sort(key=lambda p: p["seconds"])
    return out


def linear_fit(x, y) -> dict | None:
    """y = a + b x by least squares on relative residuals ((y - fit) / y, so a 1 s clip counts as
    much as a 10-minute one): {intercept, slope, r2 (ordinary)}; None with fewer than 2 distinct x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 2 or np.unique(x).size < 2:
        return None
    b, a = np.polyfit(x, y, 1, w=1.0 / np.abs(y))
    resid = y - (a + b * x)
    ss = float(((y - y.mean()) ** 2).sum())
    return {"intercept": float(a), "slope": float(b), "r2": 1.0 - float((resid**2).sum()) / ss if ss else 1.0}


def memory_figures(rows: list[dict], seconds=(60.0, 600.0)) -> list[dict]:
    """Peak memory of an e2e conversion per backend at each length in ``seconds``; two rows with a
    peak at one length is an error (one current run per kind)."""
    out = []
    for backend in ("torch", "mlx"):
        for s in seconds:
            found = [r for r in rows if r.get("stage") == "e2e" and r.get("backend") == backend
                     and r.get("seconds_audio") == s and (r.get("peak_rss_bytes") or r.get("peak_gpu_bytes"))]
            if not found:
                out.append({"backend": backend, "seconds": s, "peak_bytes": None})
                continue
            if len(found) > 1:
                raise ValueError(f"{len(found)} {backend} e2e rows with a peak at {s:g} s "
                                 f"({', '.join(r['source'] for r in found)}): keep one run per kind")
            r = found[0]
            out.append({"backend": backend, "seconds": s,
                        "peak_bytes": r.get("peak_rss_bytes", r.get("peak_gpu_bytes")),
                        "what": "peak RSS" if "peak_rss_bytes" in r else r.get("gpu_memory_method"),
                        "time_s": r.get("wall_s", r.get("median_s")), "load": r.get("loadavg_1m_end"),
                        "source": r["source"]})
    return out
