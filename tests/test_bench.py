"""The benchmark machinery (rvclab.bench.run*): rows, ratios, FLOP counts, peak memory, CLI, JSON.

Speed is never asserted here; small real workloads (a conv1d on both backends, small matmuls)
stand in for the model stages so the tests stay fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from rvclab.bench import memory as bench_memory
from rvclab.bench import run as bench
from rvclab.bench import stages as bench_stages
from rvclab.bench import timing as bench_timing
from rvclab.runtime import import_mlx

mx = import_mlx()

ROW_FIELDS = {"stage", "seconds_audio", "backend", "median_s", "min_s", "max_s", "repeats", "times_s",
              "realtime_x", "flops", "gflops", "peak_gflops", "pct_of_peak", "flop_limit_s"}
META_FIELDS = {"date", "machine", "processor", "device", "device_name", "python", "torch", "mlx", "rvclab",
               "loadavg_start", "loadavg_end", "command", "peak_gflops"}


def _conv_builder(calls: list):
    """A real conv1d stage, (1, 16, T) @ 16 kHz -> (1, 32, T - 2): torch (B, C, T), MLX (B, T, C)."""

    def build(backend, audio, opts):
        w = np.random.default_rng(0).standard_normal((32, 16, 3)).astype(np.float32)
        x = np.tile(audio[None, None, :], (1, 16, 1))
        if backend == "torch":
            tw, tx = torch.from_numpy(w), torch.from_numpy(x)

            def call():
                calls.append("torch")
                return torch.nn.functional.conv1d(tx, tw)
            return call
        mw, mxx = mx.array(w.transpose(0, 2, 1)), mx.array(x.transpose(0, 2, 1))

        def call_mlx():
            calls.append("mlx")
            return mx.conv1d(mxx, mw)
        return call_mlx

    return build


@pytest.fixture
def conv_stage(monkeypatch):
    calls: list[str] = []
    monkeypatch.setitem(bench_stages.BUILDERS, "conv", _conv_builder(calls))
    # a 440 Hz tone as the stage's input (the shipped clips need resampling, which is slow to load)
    monkeypatch.setattr(bench_stages, "speech",
                        lambda s: np.sin(np.arange(int(s * 16000)) * 2 * np.pi * 440 / 16000).astype(np.float32))
    return calls


def test_matmul_flops_are_2n3():
    n = 64
    a = torch.ones(n, n)
    assert bench_stages.count_flops(lambda: torch.mm(a, a)) == 2 * n**3 == bench.matmul_flops(n)


def test_conv_flops_counted():
    x, w = torch.ones(1, 16, 1000), torch.ones(32, 16, 3)
    t_out = 1000 - 3 + 1
    assert bench_stages.count_flops(lambda: torch.nn.functional.conv1d(x, w)) == 2 * 32 * 16 * 3 * t_out


def test_stage_rows_fields_and_ratio_from_same_run(conv_stage):
    opts = bench_stages.StageOptions()
    rows = bench.bench_stage("conv", [0.1], opts, warmup=1, repeats=3, peak_gflops=50.0, memory=False)
    by = {r["backend"]: r for r in rows}
    assert set(by) == {"torch", "mlx", "ratio"}
    for b in ("torch", "mlx"):
        assert ROW_FIELDS <= set(by[b]), ROW_FIELDS - set(by[b])
        assert by[b]["repeats"] == len(by[b]["times_s"]) == 3
        assert by[b]["min_s"] <= by[b]["median_s"] <= by[b]["max_s"]
        assert by[b]["realtime_x"] == pytest.approx(0.1 / by[b]["median_s"])
    # one FLOP count (torch's) serves both backends: 2 * C_out * C_in * K * T_out
    assert by["torch"]["flops"] == by["mlx"]["flops"] == 2 * 32 * 16 * 3 * (1600 - 2)
    assert by["ratio"]["ratio_mlx_over_torch"] == by["mlx"]["median_s"] / by["torch"]["median_s"]
    # counted call, one warm-up each, then the repeats alternate torch, MLX, torch, MLX, ...
    assert conv_stage == ["torch"] + ["torch", "mlx"] * 4


def test_timed_alternating_interleaves_backends():
    order: list[str] = []
    runners = {b: bench_stages.Runner(call=lambda b=b: order.append(b), sync=lambda out: None, stage="x",
                                      backend=b, seconds=1.0) for b in ("torch", "mlx")}
    out = bench_timing.timed_alternating(runners, warmup=2, repeats=2, first_torch=lambda: order.append("count"))
    assert order == ["count"] + ["torch", "mlx"] * 4
    assert out["torch"]["repeats"] == out["mlx"]["repeats"] == 2


PEAK_SCRIPT = """
import json
import numpy as np
from rvclab.bench.memory import peak_rss_of

def allocate():
    buf = np.ones(300 * 2**20 // 8)  # 300 MiB, touched, so resident
    return float(buf[-1])

print(json.dumps(peak_rss_of(allocate)))
"""


def test_peak_rss_reflects_a_known_allocation():
    """VmHWM after clear_refs, in a fresh process (no reused heap): the kernel's high-water mark,
    so the peak is caught however briefly the buffer lives and however busy the machine is."""
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True,
                         timeout=600)
    m = json.loads(out.stdout)
    if m["method"] != "VmHWM after clear_refs":
        pytest.skip(f"this kernel refuses /proc/self/clear_refs, so the peak is sampled ({m['method']})")
    assert m["peak_rss_bytes"] - m["rss_before_bytes"] >= 0.9 * 300 * 2**20, m


def test_rss_sampler_keeps_the_peak_seen_while_the_call_runs(monkeypatch):
    """The sampling fallback with a fake VmRSS: the call raises RSS, waits until the sampler thread
    has read the raised value (no race with its 2 ms period), then drops it again."""
    low, high = 1_000, 301_000  # KiB
    rss = {"kib": low}
    sampled_high = threading.Event()

    def fake_status_kib(field):
        assert field == "VmRSS"
        value = rss["kib"]
        if value == high and threading.current_thread() is not threading.main_thread():
            sampled_high.set()
        return value

    def call():
        rss["kib"] = high
        assert sampled_high.wait(300), "the sampler thread never read VmRSS while the call ran"
        rss["kib"] = low

    monkeypatch.setattr(bench_memory, "status_kib", fake_status_kib)
    m = bench_memory.peak_rss_of(call, use_reset=False)
    assert m["method"] == "VmRSS sampled every 2 ms"
    assert m["rss_before_bytes"] == low * 1024 and m["peak_rss_bytes"] == high * 1024, m


def test_mlx_peak_memory_reflects_a_known_allocation():
    n = 50_000_000  # float32: 200 MB
    m = bench_memory.gpu_peak_of("mlx", lambda: mx.eval(mx.ones((n,))))
    assert m["peak_gpu_bytes"] >= 4 * n


def test_cli_rejects_unknown_stage(capsys):
    from rvclab.cli import main

    assert main(["bench", "--stage", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage 'nope'" in err and "hubert" in err
    assert main(["bench", "--stage", "synth", "--seconds", "1,abc"]) == 2
    assert "--seconds" in capsys.readouterr().err


def test_cli_matmul_writes_json_with_meta(tmp_path, monkeypatch):
    from rvclab.cli import main

    monkeypatch.setitem(bench.MATMUL_SIZES, "cpu", (64, 128))
    out = tmp_path / "sub" / "bench.json"
    assert main(["bench", "--stage", "matmul", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["size"] for r in rows if r["backend"] == "torch"] == [64, 128]
    for r in rows:
        assert META_FIELDS <= set(r), META_FIELDS - set(r)
        assert r["command"].startswith("rvclab bench --stage matmul")
    assert rows[0]["peak_gflops"] == max(r["gflops"] for r in rows if "gflops" in r)
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temp file left behind


def test_json_write_is_atomic(tmp_path):
    path = tmp_path / "rows.json"
    bench_timing.write_json_atomic(path, [{"a": 1}])
    with pytest.raises(TypeError):
        bench_timing.write_json_atomic(path, [{"a": object()}])  # fails while writing the temp file
    assert json.loads(path.read_text()) == [{"a": 1}]
    assert list(tmp_path.iterdir()) == [path]


def _row(stage, seconds, backend, median, source="run.json", date="2026-01-01T00:00:00+00:00", **extra):
    return {"stage": stage, "seconds_audio": seconds, "backend": backend, "median_s": median, "min_s": median,
            "max_s": median, "realtime_x": seconds / median, "source": source, "date": date, **extra}


def test_goals_use_the_newest_run_and_its_longest_clip():
    from rvclab.bench import report as rep

    new = {"source": "new.json", "date": "2026-02-01"}
    rows = [_row("e2e", 5, "torch", 1.0), _row("e2e", 5, "mlx", 0.5),  # old run: met
            _row("e2e", 1, "torch", 1.0, **new), _row("e2e", 1, "mlx", 0.7, **new),
            _row("e2e", 15, "torch", 1.0, **new), _row("e2e", 15, "mlx", 0.9, **new)]
    goal = {g["goal"]: g for g in rep.cpu_goals(rep.pairs(rows))}["MLX end to end / torch"]
    assert goal["measured"] == pytest.approx(0.9) and goal["met"] is False and "15 s" in goal["where"]
    gpu = rep.gpu_goals(rep.pairs([_row("e2e", 60, "torch", 0.1), _row("e2e", 60, "mlx", 0.06)]))
    assert [g["met"] for g in gpu] == [True, True]  # 0.6 <= 0.8 and 1000x >= 500x
    assert rep.gpu_goals([])[0]["met"] is None  # not measured is not "not met"


def test_linear_fit_recovers_a_line():
    from rvclab.bench import report as rep

    fit = rep.linear_fit([1, 5, 60, 600], [0.5 + 0.02 * s for s in (1, 5, 60, 600)])
    assert fit["intercept"] == pytest.approx(0.5) and fit["slope"] == pytest.approx(0.02) and fit["r2"] > 0.999
    assert rep.linear_fit([5, 5], [1, 2]) is None


def test_primitives_script_rows(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_primitives.py"
    spec = importlib.util.spec_from_file_location("bench_primitives", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "prim.json"
    assert mod.main(["--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    kinds = {(r["primitive"], r["backend"]) for r in rows}
    assert {("gemv_chain", "mlx"), ("gemv_chain", "torch"), ("gemv_chain", "numpy"),
            ("gemm_narrow", "mlx"), ("gemm_narrow", "torch"),
            ("conv3x3_16ch", "mlx"), ("conv3x3_16ch", "torch")} <= kinds
    assert all(r["date"] and r["device"] == "cpu" for r in rows)
    conv = next(r for r in rows if r.get("variant") == "rvclab.mlx.ops.conv2d")
    assert conv["max_abs_vs_torch"] < 1e-3 and conv["ms"] > 0


def test_flop_limit_goal_not_judged_on_a_slow_peak():
    from rvclab.bench import report as rep

    def synth_rows(peak, source):
        extra = {"source": source, "peak_gflops": peak, "flop_limit_s": 1.0}
        return [_row("synth", 5, "torch", 2.0, **extra), _row("synth", 5, "mlx", 1.2, **extra)]

    def flop_goal(rows):
        goals = rep.cpu_goals(rep.pairs(rows), rep.best_peak(rows))
        return next(g for g in goals if "FLOP limit" in g["goal"])

    steady = flop_goal(synth_rows(180.0, "a.json"))
    assert steady["measured"] == pytest.approx(1.2) and steady["met"] is True and not steady.get("note")
    slow = flop_goal(synth_rows(180.0, "a.json")[:0] + synth_rows(90.0, "b.json")
                     + [dict(r, peak_gflops=180.0, stage="matmul") for r in synth_rows(180.0, "a.json")])
    assert slow["met"] is None and "below 75%" in slow["note"] and "2.40" in slow["note"]
