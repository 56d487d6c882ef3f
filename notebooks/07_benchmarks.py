# %% [markdown]
# # 07 · Benchmarks: torch vs MLX, every stage, CPU and GPU
#
# The committed results of `rvclab bench` (JSON rows in `docs/bench/`): each stage timed on both
# backends in one run, the MLX/torch ratio, GFLOP/s against the measured matmul peak, and how time
# and memory grow with clip length. `docs/benchmarks.md` is generated from the same rows. A short
# live benchmark at the end runs here; its timings vary, so nbval masks them.

# %%
# %matplotlib inline
from rvclab.bench import report as rep
from rvclab.bench import run as bench
from rvclab.views import bench as plots
cpu_rows, gpu_rows = rep.load_rows("bench_stages_cpu*.json"), rep.load_rows("bench_stages_gpu*.json")
cpu, gpu = rep.pairs(cpu_rows), rep.pairs(gpu_rows)
for g in rep.cpu_goals(cpu, rep.best_peak(cpu_rows)) + rep.gpu_goals(gpu):
    met = "unreliable" if g.get("note") else "not measured" if g["met"] is None else "met" if g["met"] else "not met"
    value = "-" if g["measured"] is None else f"{g['measured']:.3g}"
    print(f"{g['device']:3s}  {g['goal']:56s} {g['op']} {g['target']:<5g} measured {value:>6s}  {met}")

# %% [markdown]
# ## Where the time goes, per stage
#
# Median seconds at the longest clip each stage was run with (bars: min to max over the repeats);
# the number above each pair is MLX/torch from the same run. The CPU is shared: every row carries the
# load average (see `docs/benchmarks.md`).

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.stage_bars(cpu, "CPU")

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.stage_bars(gpu, "GPU: " + gpu_rows[0]["device_name"])

# %% [markdown]
# ## Achieved GFLOP/s against the fp32 matmul peak of the same run
#
# FLOPs come from torch's FlopCounterMode on the reference (matmuls, convolutions, attention) and
# serve both backends; the dashed line is the better fp32 matmul rate of the two backends.

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.gflops_bars(cpu, "CPU: achieved GFLOP/s")

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.gflops_bars(gpu, "GPU: achieved GFLOP/s")

# %% [markdown]
# ## Scaling with clip length
#
# End-to-end conversion time and peak memory against clip length, with a linear fit per backend
# (medians of repeated runs, and single runs for the longest clips).

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
cpu_points = rep.scaling_points(cpu_rows + rep.load_rows("bench_memory_e2e_cpu*.json"))
gpu_scaling = rep.load_rows("bench_scaling_gpu*.json") + rep.load_rows("bench_memory_e2e_gpu*.json")
gpu_points = rep.scaling_points(gpu_scaling)
plots.scaling(cpu_points, "CPU end to end: time")

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.scaling(cpu_points, "CPU end to end: peak RSS", "memory")

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.scaling(gpu_points, "GPU end to end: time")

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/*.json
plots.scaling(gpu_points, "GPU end to end: peak device memory", "memory")

# %% [markdown]
# ## Where a conversion's time goes, step by step
#
# One bar per conversion (backend, device, precision, length): the networks, the copies to and from
# their device, the noise and the numpy steps; above each bar, end to end over the networks' sum.

# %%
# display-only: timings differ on every machine; the rows are in docs/bench/bench_steps_*.json
plots.step_stack(rep.load("steps_cpu"), "CPU, step by step")

# %% [markdown]
# ## A live benchmark on this machine
#
# A 512 x 512 fp32 matmul in both backends, three repeats after warm-up, synchronised; the timings
# and the ratio vary from run to run (masked by nbval).

# %%
rows = bench.bench_matmul(sizes=(512,), repeats=3)
by = {r["backend"]: r for r in rows}
print(f"torch median {by['torch']['median_s'] * 1e3:.3f} ms, MLX median {by['mlx']['median_s'] * 1e3:.3f} ms")
print(f"ratio MLX/torch: {by['ratio']['ratio_mlx_over_torch']:.3f}")
print("FLOPs per product:", by["torch"]["flops"], "= 2 * 512**3:", by["torch"]["flops"] == 2 * 512**3)
