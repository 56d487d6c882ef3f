"""Write docs/benchmarks.md and its figures (docs/bench/fig_*.png) from the committed benchmark JSON.

    .venv/bin/python scripts/make_bench_docs.py

Every number in the page comes from the rows ``rvclab bench`` wrote into the one current file of each
benchmark kind (``rvclab.bench.report.BENCH_FILES``; the command of each run is listed); nothing is
typed by hand. After a new benchmark, replace its kind's file and rerun.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from rvclab import precision  # noqa: E402
from rvclab.bench import report as rep  # noqa: E402
from rvclab.checkpoints import atomic_write  # noqa: E402
from rvclab.views import bench as plots  # noqa: E402

OUT = rep.ROOT / "docs" / "benchmarks.md"
GiB = 2**30


def fmt_s(v: float) -> str:
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"


def fmt_num(v, digits=3) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"


def save(fig, name: str) -> str:
    path = rep.BENCH_DIR / name
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None}))
    matplotlib.pyplot.close(fig)
    return f"bench/{name}"


def goals_table(goals: list[dict]) -> list[str]:
    lines = ["| device | goal | target | measured | met | where |", "|---|---|---|---|---|---|"]
    for g in goals:
        met = g.get("note") or ("not measured" if g["met"] is None else ("**met**" if g["met"] else "not met"))
        lines.append(f"| {g['device'].upper()} | {g['goal']} | {g['op']} {g['target']:g} | "
                     f"{fmt_num(g['measured'])} | {met} | {g['where']} |")
    return lines


def stage_lines(table: list[dict]) -> list[str]:
    lines = ["| stage | clip | torch median (min–max) | MLX median (min–max) | MLX/torch | realtime torch / MLX "
             "| GFLOP/s torch / MLX (peak) | load avg start→end |", "|---|---|---|---|---|---|---|---|"]
    for t in table:
        ts, ms = t["torch_spread"], t["mlx_spread"]
        load = t["load"]
        lines.append(
            f"| {t['stage']} | {t['seconds']:g} s | {fmt_s(t['torch_s'])} ({fmt_s(ts[0])}–{fmt_s(ts[1])}) | "
            f"{fmt_s(t['mlx_s'])} ({fmt_s(ms[0])}–{fmt_s(ms[1])}) | **{t['ratio']:.2f}** | "
            f"{fmt_num(t['torch_rt'])}x / {fmt_num(t['mlx_rt'])}x | {fmt_num(t['torch_gflops'])} / "
            f"{fmt_num(t['mlx_gflops'])} ({fmt_num(t['peak_gflops'])}) | "
            f"{fmt_num(load[0])}→{fmt_num(load[1])} |")
    return lines


def memory_lines(figs: list[dict], label: str) -> list[str]:
    lines = [f"| backend | clip | {label} | time of that run | source |", "|---|---|---|---|---|"]
    for f in figs:
        if f["peak_bytes"] is None:
            lines.append(f"| {f['backend']} | {f['seconds']:g} s | not measured | | |")
            continue
        lines.append(f"| {f['backend']} | {f['seconds']:g} s | {f['peak_bytes'] / GiB:.2f} GiB | "
                     f"{fmt_s(f['time_s'])} | {f['source']} |")
    return lines


def fit_lines(points: dict, what: str) -> list[str]:
    out = []
    for backend, pts in points.items():
        key = "time_s" if what == "time" else "peak_bytes"
        pts = [p for p in pts if p[key]]
        fit = rep.linear_fit([p["seconds"] for p in pts], [p[key] / (1 if what == "time" else GiB) for p in pts])
        if fit:
            unit = "s" if what == "time" else "GiB"
            out.append(f"- {backend}: {fit['intercept']:.3g} {unit} + {fit['slope']:.3g} {unit} per second of "
                       f"audio (R² {fit['r2']:.4f}; {len(pts)} points, {min(p['seconds'] for p in pts):g}–"
                       f"{max(p['seconds'] for p in pts):g} s)")
    return out


def sources(rows: list[dict]) -> list[str]:
    """One line per run: its file, when, where, the stages it has rows for, why it is kept, its command."""
    runs: dict[tuple, dict] = {}
    for r in rows:
        runs.setdefault((r["source"], r["date"], r["command"]), r)
    out = []
    for (name, date, command), r in sorted(runs.items()):
        run = [x for x in rows if (x["source"], x["date"], x["command"]) == (name, date, command)]
        stages = sorted({x["stage"] for x in run if x.get("backend") in ("torch", "mlx")})
        load = r.get("loadavg_start", [None])[0]
        why = f" {r['provenance'][:1].upper()}{r['provenance'][1:]}." if r.get("provenance") else ""
        out.append(f"- `docs/bench/{name}`, run of {date} ({r.get('device_name')}, torch {r['torch']}, MLX {r['mlx']}, "
                   f"load average {fmt_num(load)} at start; stages with rows: {', '.join(stages) or 'none'}).{why}  \n"
                   f"  `{command}`")
    return out


def primitive_lines(rows: list[dict]) -> list[str]:
    """The CPU primitives behind RMVPE's MLX/torch ratio (scripts/bench_primitives.py)."""
    if not rows:
        return []
    r0 = rows[0]
    lines = ["## Where MLX loses on this CPU: primitives", "",
             f"`{r0['command']}` ({r0['date']}, load average {fmt_num(r0['loadavg_start'][0])} at start; fastest of "
             "the repeats, the machine being shared). Shapes are RMVPE's on 10 s of audio.", "",
             "| primitive | shape | backend | variant | time | GFLOP/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        t = f"{r['us_per_call']:.1f} µs per product" if "us_per_call" in r else f"{r['ms']:.2f} ms"
        lines.append(f"| {r['primitive']} | {r['shape']} | {r['backend']} | {r.get('variant', '')} | {t} | "
                     f"{fmt_num(r.get('gflops'))} |")
    return lines + ["", "MLX's matmul reaches BLAS through `sgemm` even for the BiGRU's one-row recurrent "
                    "product (numpy's `@` on a vector calls `sgemv`); `sgemm` repacking the 768 KB weight "
                    "matrix on every call is the likely cost. The U-Net's full-resolution 3x3 "
                    "convolutions have 16 channels: as matmuls (per tap, or one im2col product) they are "
                    "narrow GEMMs that OpenBLAS runs far below its peak, while torch calls oneDNN's direct "
                    "convolution kernel. MLX has no CPU kernel interface to write either from this project.", ""]


def step_lines(e2e: list[dict], alone: list[dict]) -> list[str]:
    """Issue 20's breakdown: end to end against the networks' sum, and the numpy steps alone,
    before and after their vectorisation (scripts/step_breakdown.py, scripts/bench_numpy_steps.py)."""
    lines = ["## Where a conversion's time goes (issue #20)", "",
             "`convert_voice` with `profile=True` times every step, waiting for the devices after each "
             "(`Conversion.steps`; the e2e benchmark rows carry them as `steps_s`). The networks are the F0 "
             "network (log-mel and decoding included), HuBERT and the synthesizer; the rest is copies, noise "
             "and numpy steps. Each bar: one conversion; above it, end to end over the networks' sum.", ""]
    with_steps = [r for r in e2e if r.get("steps_s")]
    if with_steps:
        lines += [f"![steps]({save(plots.step_stack(with_steps, 'CPU, step by step'), 'fig_steps_cpu.png')})", ""]
    lines += ["| tree | backend | clip | precision | end to end | networks | end to end / networks | "
              "non-network | load at start |", "|---|---|---|---|---|---|---|---|---|"]
    for r in e2e:
        net = r.get("network_s")
        lines.append(f"| {r['label']} | {r['backend']} | {r['seconds_audio']:g} s | {r['precision']} | "
                     f"{fmt_s(r['wall_s'])} | {fmt_s(net) if net else '—'} | "
                     f"{fmt_num(r['wall_s'] / net, 4) if net else '—'} | "
                     f"{fmt_s(r['wall_s'] - net) if net else '—'} | {fmt_num(r['loadavg_1m_start'])} |")
    lines += ["", "The numpy steps alone (no networks; fastest of the repeats), per length, before and after:", "",
              "| step | " + " | ".join(f"{r['label']} {r['seconds_audio']:g} s" for r in alone) + " |",
              "|---|" + "---|" * len(alone)]
    names = list(dict.fromkeys(k for r in alone for k in r["steps_s"]))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(fmt_s(r["steps_s"][name]) if name in r["steps_s"] else "—"
                                                for r in alone) + " |")
    lines.append("| **numpy steps, total** | " + " | ".join(f"**{fmt_s(r['total_s'])}**" for r in alone) + " |")
    by = {(r["label"], r["seconds_audio"]): r for r in alone}
    longest = max(r["seconds_audio"] for r in alone)
    before, after = by.get(("before", longest)), by.get(("after", longest))
    if before and after:
        t = after["steps_s"]
        lines += ["", f"At {longest:g} s the numpy steps take {fmt_s(before['total_s'])} before and "
                  f"{fmt_s(after['total_s'])} after ({before['total_s'] / after['total_s']:.1f}x less); the noise "
                  f"is most of what is left ({fmt_s(t['noise_numpy'])}, numpy's PCG64, the default)."]
        if "noise_counter_numpy" in t:
            lines += ["The counter generator (`noise=\"counter\"`) for the same draws: "
                      f"{fmt_s(t['noise_counter_numpy'])} computed by numpy, "
                      f"{fmt_s(t['noise_counter_mlx_cpu_kernels'])} by MLX's CPU kernels and "
                      f"{fmt_s(t['noise_counter_torch_cpu_kernels'])} by torch's (int64 arithmetic in 16-bit halves). "
                      "On the CPU both backends therefore take numpy's draws (the same bits, "
                      "tests/test_counter_noise.py); "
                      "the device kernels are for the GPU, where `scripts/gpu_bench.sh steps` measures them."]
    lines += ["", "End to end at 60 s on this CPU was not run: at a load average of 4 to 8 (the machine is shared) one "
              "5 s conversion took 40 to 60 s. The GPU rows (5 s and 60 s, every precision mode) come from "
              "`scripts/gpu_bench.sh steps`."]
    lines += ["", "Sources: " + "; ".join(sorted({f"`{r['command']}` ({r['label']}, {r['date']})"
                                                  for r in e2e + alone})), ""]
    return lines


def precision_lines(rows: list[dict]) -> list[str]:
    """Precision modes: what each device runs, the defaults, and each mode's quality against fp32."""
    lines = ["## Precision modes (issue #20)", "",
             "`convert_voice(..., precision=\"fp32\"|\"tf32\"|\"fp16\"|\"bf16\")`, or one mode per stage "
             "(`{\"features\": ..., \"f0\": ..., \"synth\": ...}`), and `rvclab bench --stage e2e --precision`; "
             "every benchmark row records its mode. `rvclab/precision.py` holds the registry:", "",
             "| device | modes | default |", "|---|---|---|"]
    lines += [f"| {d} | {', '.join(m)} | {precision.DEFAULT[d]} |" for d, m in precision.SUPPORTED.items()]
    lines += ["", "fp32 turns TF32 off on both backends (torch's matmul and cuDNN flags, `MLX_ENABLE_TF32=0` before "
              "MLX loads); tf32 turns it on for both. fp16 and bf16: torch under `torch.autocast`, MLX on a copy of "
              "the model cast to the half type; the F0 stage runs fp32 or tf32 only (its log-mel front end is "
              "float32). `precision=None` (the default) leaves both backends as they are set. NaN or Inf in a "
              "network's output raises `PrecisionOverflow` naming the stage. The CPU keeps fp32 (the half modes "
              "were not timed on this CPU). Quality against fp32 (bars: `rvclab.tolerances.PRECISION_BARS`):", "",
              "| mode | backend | reference | synth spectral corr | synth max abs | HuBERT worst cosine | "
              "goal met | device | load at start |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['precision']} | {r['backend']} | {r['reference']} | {r['synth_spec_corr']:.7f} | "
                     f"{r['synth_max_abs']:.2e} | {r['hubert_cos']:.6f} | {'yes' if r['ok'] else 'no'} | "
                     f"{r['device']} | {fmt_num(r['loadavg_start'][0] if 'loadavg_start' in r else None)} |")
    if rows:
        lines += ["", f"Source: `{rows[0]['command']}` ({rows[0]['date']}); the GPU rows, tf32 included, come "
                  "from `scripts/gpu_bench.sh steps`.", ""]
    return lines


def bound_gib(values: list[float]) -> float:
    """The stated bound: the largest measured peak rounded up to the next half GiB."""
    return math.ceil(max(values) / GiB * 2) / 2


def main() -> int:
    cpu_rows, gpu_rows, cpu_mem = rep.load("stages_cpu"), rep.load("stages_gpu"), rep.load("memory_e2e_cpu")
    gpu_scale = rep.load("scaling_gpu") + rep.load("memory_e2e_gpu")
    cpu_pairs, gpu_pairs = rep.pairs(cpu_rows), rep.pairs(gpu_rows)
    goals = rep.cpu_goals(cpu_pairs, rep.best_peak(cpu_rows)) + rep.gpu_goals(gpu_pairs)
    cpu_points = rep.scaling_points(cpu_rows + cpu_mem)
    gpu_points = rep.scaling_points(gpu_scale)

    figs = {
        "stages_cpu": save(plots.stage_bars(cpu_pairs, "CPU"), "fig_stages_cpu.png"),
        "stages_gpu": save(plots.stage_bars(gpu_pairs, "GPU"), "fig_stages_gpu.png"),
        "gflops_cpu": save(plots.gflops_bars(cpu_pairs, "CPU: achieved GFLOP/s"), "fig_gflops_cpu.png"),
        "gflops_gpu": save(plots.gflops_bars(gpu_pairs, "GPU: achieved GFLOP/s"), "fig_gflops_gpu.png"),
        "scale_cpu_t": save(plots.scaling(cpu_points, "CPU end to end: time"), "fig_scaling_cpu_time.png"),
        "scale_cpu_m": save(plots.scaling(cpu_points, "CPU end to end: peak RSS", "memory"),
                            "fig_scaling_cpu_memory.png"),
        "scale_gpu_t": save(plots.scaling(gpu_points, "GPU end to end: time"), "fig_scaling_gpu_time.png"),
        "scale_gpu_m": save(plots.scaling(gpu_points, "GPU end to end: peak device memory", "memory"),
                            "fig_scaling_gpu_memory.png"),
    }
    cpu_mem_figs = rep.memory_figures(cpu_rows + cpu_mem, seconds=(1.0, 5.0, 60.0, 600.0))
    gpu_mem_figs = rep.memory_figures(gpu_scale, seconds=(60.0, 600.0))
    ten_min = [f["peak_bytes"] for f in cpu_mem_figs if f["seconds"] == 600.0 and f["peak_bytes"]]
    ten_min_backends = [f["backend"] for f in cpu_mem_figs if f["seconds"] == 600.0 and f["peak_bytes"]]
    gpu_errors = rep.errors(gpu_rows + gpu_scale)
    cpu_errors = rep.errors(cpu_rows + cpu_mem)

    md = ["# Benchmarks: torch vs MLX, every stage, CPU and GPU", "",
          "Generated by `scripts/make_bench_docs.py` from the JSON in `docs/bench/` (written by `rvclab bench`; "
          "one current file per benchmark kind, each run's command listed at the end; earlier runs are in git "
          "history). Do not edit by hand: rerun the benchmark, replace its file, then run the script.",
          "", "How it measures: both backends run the same work in one process, alternating call by call after "
          "warm-up; MLX is synchronised with `mx.eval`, torch on CUDA with `torch.cuda.synchronize`. Medians with "
          "min–max; MLX/torch from the same run; realtime factor = audio seconds / compute seconds. FLOPs are "
          "counted once on the torch reference by `torch.utils.flop_counter.FlopCounterMode` (matmuls, "
          "convolutions, attention; elementwise ops, FFTs and the GRU's recurrent products where torch does not "
          "dispatch them as matmuls are not counted) and serve both backends; the peak is the better fp32 matmul "
          "GFLOP/s of the two backends in the same run. CPU peak memory is the peak RSS of a process running one "
          "backend only; GPU peak memory is each allocator's own peak. Inputs: the shipped speech clips tiled to "
          "the length; seeded weights (v2-48k voice). See `rvclab/bench/run.py`.", "",
          "## Goals (issue #10)", "", *goals_table(goals), "",
          "CPU goals are judged at the longest clip measured for the stage; the CPU here is shared by several "
          "jobs, so the load average is given with every row.", "",
          "## CPU", "", f"![CPU stages]({figs['stages_cpu']})", "", f"![CPU GFLOP/s]({figs['gflops_cpu']})", "",
          *stage_lines(rep.stage_table(cpu_pairs)), "",
          "## GPU", "", f"![GPU stages]({figs['stages_gpu']})", "", f"![GPU GFLOP/s]({figs['gflops_gpu']})", "",
          *stage_lines(rep.stage_table(gpu_pairs)), ""]
    if any(r.get("model") == "crepe-tiny" or "--crepe-model tiny" in r.get("command", "") for r in gpu_rows):
        md += ["On the GPU the CREPE stage runs the tiny model: the full model's weight file (89 MB) does not fit "
               "the device calls beside MLX-CUDA (see `scripts/gpu_bench.sh`).", ""]
    md += ["The GPU matmul peak is MLX's: its fp32 matmul on CUDA runs far above torch's true-fp32 figure "
           "(torch's TF32 is off in the matmul stage), which points to TF32 tensor cores; percentages of that "
           "peak are therefore low for every stage.", "",
           "## Scaling with clip length", "",
           f"![CPU time]({figs['scale_cpu_t']}) ![CPU memory]({figs['scale_cpu_m']})", "",
           f"![GPU time]({figs['scale_gpu_t']}) ![GPU memory]({figs['scale_gpu_m']})", "",
           "Linear fits, time = a + b · seconds:", "", "CPU:", *fit_lines(cpu_points, "time"), "", "GPU:",
           *fit_lines(gpu_points, "time"), "",
           "## Peak memory of a conversion (issues #8 and #11)", "",
           "CPU, peak RSS of `convert_voice` (rmvpe, v2-48k voice) in a process of its own per backend:", "",
           *memory_lines(cpu_mem_figs, "peak RSS"), ""]
    if ten_min:
        who = "either backend" if len(ten_min_backends) == 2 else f"{ten_min_backends[0]} (the only backend " \
            "whose 10-minute CPU run finished here)"
        md += [f"**Bound:** converting a 10-minute clip stays within {bound_gib(ten_min):g} GiB of resident memory "
               f"on the CPU with {who} (the largest measured peak, rounded up to the next half GiB). The "
               "pipeline converts in chunks of about 40 s, so the synthesizer's memory does not grow with the clip; "
               "what grows is the input, the F0 pass over the whole clip and the output.", ""]
    else:
        md += ["No 10-minute CPU conversion has finished on this shared 2-core CPU yet, so no bound is stated "
               "from a measurement. A straight line through the measured peaks (not a measurement):", ""]
        for backend, pts in cpu_points.items():
            pts = [p for p in pts if p["peak_bytes"]]
            fit = rep.linear_fit([p["seconds"] for p in pts], [p["peak_bytes"] / GiB for p in pts])
            if fit:
                md.append(f"- {backend}: {fit['intercept']:.2f} GiB + {fit['slope'] * 1024:.1f} MiB per second "
                          f"of audio from {len(pts)} points up to {max(p['seconds'] for p in pts):g} s, which would "
                          f"give {fit['intercept'] + 600 * fit['slope']:.2f} GiB at 600 s")
        md += [""]
    md += ["GPU, peak device memory of the same conversion:", "", *memory_lines(gpu_mem_figs, "peak device memory"),
           ""]
    at60 = {f["backend"]: f["peak_bytes"] for f in gpu_mem_figs if f["seconds"] == 60.0 and f["peak_bytes"]}
    if len(at60) == 2:
        md += [f"At 60 s MLX-CUDA's allocator peaks at {at60['mlx'] / at60['torch']:.1f}x torch's "
               "(`mx.get_peak_memory` vs `torch.cuda.max_memory_allocated`); the failed rows below show where that "
               "ran out of the card's memory.", ""]
    if gpu_errors or cpu_errors:
        md += ["## Runs that failed", "", "| device | stage | clip | error | source |", "|---|---|---|---|---|"]
        for r in cpu_errors + gpu_errors:
            who = f" ({r['failed_backend']})" if "failed_backend" in r else ""
            clip = f"{r['seconds_audio']:g} s" if r.get("seconds_audio") is not None else "whole stage"
            md.append(f"| {r['device']} | {r['stage']}{who} | {clip} | {r['error'][:120]} | {r['source']} |")
        md += [""]
        if any(r["device"] == "gpu" and "out of memory" in r["error"] for r in gpu_errors):
            md += ["Out of memory on the GPU inside one benchmark process: torch's and MLX's allocators each keep "
                   "the memory their earlier calls freed, and MLX's buffer cache grows towards the whole card "
                   "(the measurement is under `RVCLAB_MLX_CACHE_GB` in docs/runtime.md). The memory-only runs, "
                   "one backend at a time in a fresh process, convert the same 5- and 10-minute clips (table "
                   "above). A failure after an out-of-memory error in the same process (a device-side assert) "
                   "says only that the CUDA context was left unusable; such a stage was re-run in a process of "
                   "its own (its rows are in the same file; the sources below list both runs).", ""]
    md += primitive_lines(rep.load("primitives_cpu"))
    md += step_lines(rep.load("steps_cpu"), rep.load("numpy_steps_cpu"))
    md += precision_lines(rep.load("precision_cpu"))
    md += ["## Sources", "", *sources(cpu_rows + cpu_mem + gpu_rows + gpu_scale), "",
           "GPU runs: `scripts/gpu_bench.sh` (three device calls; the header says how).", ""]
    atomic_write(OUT, lambda tmp: tmp.write_text("\n".join(md)))
    print(f"wrote {OUT} and {len(figs)} figures in {rep.BENCH_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
