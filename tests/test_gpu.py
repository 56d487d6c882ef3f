"""GPU suite (``pytest -m gpu``): the GPU-only branches, and torch-CUDA vs MLX-CUDA parity.

Runs on the lent GPU machine through ``scripts/gpu_test.sh``; anywhere else conftest skips every
test here with the reason. Both backends compute in true fp32: TF32 is off (``MLX_ENABLE_TF32=0``
set before MLX loads, which the script does; torch's ``allow_tf32`` flags set False here), and
:func:`test_tf32_is_off_on_both_backends` checks that by measurement.

* GPU-only branches, each called directly and compared with its CPU counterpart or a float64
  reference: ``cumsum_acc`` and ``_interp_align_corners`` (the vocoder's non-CPU paths), the MLX
  device choice (``mx.cuda``, ``RVCLAB_MLX_DEVICE``), ``RVCLAB_MLX_CACHE_GB`` on the GPU, the
  cuDNN load order (torch before MLX, in a fresh process), the benchmark's CUDA paths.
* Parity, torch on ``cuda`` vs MLX on its GPU, against the goals in :mod:`rvclab.tolerances`:
  the synthesizer (every configuration small, full-size v2-48k), HuBERT, RMVPE, end to end.

``RVCLAB_GPU_REPORT=<file.json>``: every test's figures and the precision mode are written there.
``RVCLAB_GPU_TEST_ON_CPU=1`` is a debugging switch, never used in CI: the suite runs on the CPU
(torch on ``cpu``, MLX on its CPU) to catch mistakes before a device run; the tests that need a
real GPU skip then, and the "GPU branch" tests run the CPU branch, so a pass proves nothing
about the GPU.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rvclab import metrics, runtime
from rvclab import tolerances as tol
from rvclab.audio import SAMPLE_RATE_16K, clip, load_audio
from rvclab.bench import run as bench_run
from rvclab.bench import timing as bench_timing
from rvclab.bench.stages import StageOptions
from rvclab.checkpoints import load_checkpoint
from rvclab.models.fcpe import f0 as fcpe_f0
from rvclab.models.fcpe import torch as fcpe_torch
from rvclab.models.fcpe.io import load_fcpe
from rvclab.models.hubert import io as hubert_io
from rvclab.models.hubert import parity as hubert_parity
from rvclab.models.rmvpe import f0 as rmvpe_f0
from rvclab.models.rmvpe.io import load_rmvpe
from rvclab.models.rmvpe.parity import check_clip
from rvclab.models.rmvpe.torch import RMVPE
from rvclab.models.synth.config import SINE_AMP, SynthConfig
from rvclab.models.synth.mlx.vocoder import SineGen as MlxSineGen
from rvclab.models.synth.mlx.vocoder import _interp_align_corners, cumsum_acc
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.parity import (
    CONFIG_NAMES,
    clip_inputs,
    models_from_voice,
    run_mlx,
    textenc_fp64_errors,
    torch_voice,
)
from rvclab.models.synth.torch.vocoder import SineGen as TorchSineGen
from rvclab.pipeline.networks import VoiceModel, embedder
from rvclab.pipeline.parity import run_case
from rvclab.voices import default_voice
from rvclab.weights import default_hubert, default_rmvpe

mx = runtime.import_mlx()

pytestmark = pytest.mark.gpu

ON_CPU = os.environ.get("RVCLAB_GPU_TEST_ON_CPU") == "1"  # debugging switch (module docstring)
TORCH_DEVICE = "cpu" if ON_CPU else "cuda"
MLX_GPU = mx.cpu if ON_CPU else mx.gpu
needs_real_gpu = pytest.mark.skipif(ON_CPU, reason="RVCLAB_GPU_TEST_ON_CPU=1: this test needs the real GPU")

# 1 + 2^-13 is exact in float32 and rounds to 1.0 in TF32 (10 mantissa bits): multiplied by an
# identity, it survives only a true fp32 matmul or convolution.
TF32_PROBE = 1.0 + 2.0**-13
# SineGen's output is SINE_AMP * sin(2 pi phase): a phase error of e cycles moves it by up to
# SINE_AMP * 2 pi * e, which must stay within the synthesizer's waveform goal.
PHASE_ERR_MAX_CYCLES = tol.SYNTH_WAVE_MAX_ABS / (SINE_AMP * 2 * math.pi)
# Interpolation: two products and a sum in float32 round at most 1.5 units in the last place of
# the larger input; two is the bound against any other correct float32 evaluation.
INTERP_MAX_ULPS = 2.0
INTERP_FRAMES = 300
SYNTH_FRAMES_SMALL = 30
SYNTH_SECONDS_FULL = 0.2  # as tests/test_synth_parity.py: at 0.5 s the TextEncoder misses its goal on the CPU too
E2E_SECONDS = 1.5
HUBERT_ODD_LENGTH = 40003  # 2.5 s @ 16 kHz, leaves a remainder after the 320-sample hop

_REPORT: dict = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    """Figures of every test, written to ``$RVCLAB_GPU_REPORT`` after the module (when set)."""
    yield _REPORT
    path = os.environ.get("RVCLAB_GPU_REPORT")
    if path:
        Path(path).write_text(json.dumps(_REPORT, indent=2, default=float) + "\n")


def record(request, **figures) -> None:
    _REPORT.setdefault("tests", {})[request.node.name] = figures


@contextlib.contextmanager
def mlx_device(device):
    """MLX's default device set to ``device`` inside the block."""
    previous = mx.default_device()
    mx.set_default_device(device)
    try:
        yield
    finally:
        mx.set_default_device(previous)


def torch_sync() -> None:
    runtime.torch_sync(TORCH_DEVICE)


# --- precision mode ---------------------------------------------------------------------------------
def keeps_fp32(out: np.ndarray) -> bool:
    """True when every element of a probe product kept the 2^-13 that TF32 rounds away."""
    return bool(np.abs(out - TF32_PROBE).max() < 2.0**-14)


def probe_torch() -> dict:
    x = torch.full((512, 512), TF32_PROBE, device=TORCH_DEVICE)
    mm = (x @ torch.eye(512, device=TORCH_DEVICE)).cpu().numpy()
    w = torch.zeros(64, 64, 7, device=TORCH_DEVICE)
    w[torch.arange(64), torch.arange(64), 3] = 1.0  # identity at the centre tap
    sig = torch.full((1, 64, 4096), TF32_PROBE, device=TORCH_DEVICE)
    conv = F.conv1d(sig, w, padding=3).cpu().numpy()
    return {"torch_matmul_fp32": keeps_fp32(mm), "torch_conv_fp32": keeps_fp32(conv)}


def probe_mlx() -> dict:
    x = mx.full((512, 512), TF32_PROBE)
    mm = x @ mx.eye(512)
    w = np.zeros((64, 7, 64), np.float32)  # MLX layout (C_out, K, C_in)
    w[np.arange(64), 3, np.arange(64)] = 1.0
    conv = mx.conv1d(mx.full((1, 4096, 64), TF32_PROBE), mx.array(w), padding=3)
    mx.eval(mm, conv)
    return {"mlx_matmul_fp32": keeps_fp32(np.array(mm)), "mlx_conv_fp32": keeps_fp32(np.array(conv))}


@pytest.fixture(scope="module", autouse=True)
def fp32_mode():
    """torch's TF32 off for the module; the measured mode of both backends, recorded."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    mode = {
        "torch_device": torch.cuda.get_device_name(0) if TORCH_DEVICE == "cuda" else "cpu",
        "mlx_device": str(mx.default_device()),
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "mlx": mx.__version__,
        "MLX_ENABLE_TF32": os.environ.get("MLX_ENABLE_TF32"),
        "torch_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch_cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "debug_on_cpu": ON_CPU,
        **probe_torch(), **probe_mlx(),
    }
    _REPORT["mode"] = mode
    yield mode
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_tf32_is_off_on_both_backends(fp32_mode, request):
    record(request, **fp32_mode)
    assert fp32_mode["torch_matmul_fp32"] and fp32_mode["torch_conv_fp32"], fp32_mode
    assert fp32_mode["mlx_matmul_fp32"] and fp32_mode["mlx_conv_fp32"], (
        "MLX computes in TF32: export MLX_ENABLE_TF32=0 before Python starts (scripts/gpu_test.sh does)",
        fp32_mode)


@needs_real_gpu
def test_both_backends_compute_on_the_gpu():
    assert torch.cuda.is_available()
    assert mx.default_device() == mx.gpu
    assert runtime.mlx_backend_name() == "cuda"
    assert mx.array([1.0, 2.0]).sum().item() == 3.0  # one op, evaluated on that device


# --- GPU-only branches --------------------------------------------------------------------------
def sine_increments(n: int, dim: int = 2, sr: int = 48000, seed: int = 0) -> np.ndarray:
    """(1, n, dim) float32: what SineGen's second ``cumsum_acc`` sums, per-sample phase increments
    (f0 * h / sr, F0 100-400 Hz changing every 10 ms) with -1 where the phase wraps."""
    rng = np.random.default_rng(seed)
    f0 = np.repeat(100.0 + 300.0 * rng.random(n // 480 + 1), 480)[:n]
    rad = (f0[:, None] * np.arange(1, dim + 1) / sr) % 1.0
    wrapped = np.diff(np.cumsum(rad, axis=0) % 1.0, axis=0) < 0
    shift = np.concatenate([np.zeros((1, dim)), -wrapped.astype(np.float64)])
    return (rad + shift).astype(np.float32)[None]


@pytest.mark.parametrize("n", [200, 256 * 37 + 5, 96000, 480000])  # one block, padded blocks, 2 s and 10 s @ 48k
def test_cumsum_acc_gpu_branch_vs_float64(n, request):
    x = sine_increments(n)
    exact = np.cumsum(x.astype(np.float64), axis=1)
    with mlx_device(MLX_GPU):
        gpu = np.array(cumsum_acc(mx.array(x), axis=1))
    with mlx_device(mx.cpu):
        cpu = np.array(cumsum_acc(mx.array(x), axis=1))
    xt = torch.from_numpy(x).to(TORCH_DEVICE)
    torch_dev = torch.cumsum(xt, dim=1).cpu().numpy()
    err = float(np.abs(gpu - exact).max())
    record(request, gpu_vs_fp64_cycles=err, cpu_vs_fp64_cycles=float(np.abs(cpu - exact).max()),
           torch_device_vs_fp64_cycles=float(np.abs(torch_dev - exact).max()), bound_cycles=PHASE_ERR_MAX_CYCLES)
    assert gpu.shape == x.shape and gpu.dtype == np.float32
    assert np.array_equal(cpu, exact.astype(np.float32))  # CPU branch: float64 sum, each rounded once
    assert err <= PHASE_ERR_MAX_CYCLES, err


def test_cumsum_acc_gpu_branch_other_axis():
    x = sine_increments(256 * 5 + 1, dim=3)[0]  # (n, 3), summed along axis 0
    with mlx_device(MLX_GPU):
        gpu = np.array(cumsum_acc(mx.array(x), axis=0))
    exact = np.cumsum(x.astype(np.float64), axis=0)
    assert gpu.shape == x.shape
    assert np.abs(gpu - exact).max() <= PHASE_ERR_MAX_CYCLES


def frame_phase(frames: int, upp: int, seed: int = 0) -> np.ndarray:
    """(1, frames, 2) float32: SineGen's ``cumsum(rad) * upp`` at the frame rate (F0 80-500 Hz)."""
    rng = np.random.default_rng(seed)
    rad = (80.0 + 420.0 * rng.random((frames, 1))) * np.arange(1, 3) / (upp * 100)
    return (np.cumsum(rad.astype(np.float32), axis=0) * upp).astype(np.float32)[None]


def ulps(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> float:
    """Max |a - b| in float32 units in the last place of ``scale`` (elementwise)."""
    return float((np.abs(a.astype(np.float64) - b) / np.spacing(np.abs(scale).astype(np.float32))).max())


@pytest.mark.parametrize("upp", [320, 400, 480])  # 32k, 40k, 48k hops
def test_interp_align_corners_gpu_branch(upp, request):
    x = frame_phase(INTERP_FRAMES, upp)
    with mlx_device(MLX_GPU):
        gpu = np.array(_interp_align_corners(mx.array(x), upp))
    with mlx_device(mx.cpu):
        cpu = np.array(_interp_align_corners(mx.array(x), upp))

    def torch_interp(t):
        return F.interpolate(t.transpose(2, 1), scale_factor=float(upp), mode="linear",
                             align_corners=True).transpose(2, 1).cpu().numpy()

    xt = torch.from_numpy(x)
    ref_cpu = torch_interp(xt)  # upstream's arithmetic (torch, CPU, float32)
    ref_dev = torch_interp(xt.to(TORCH_DEVICE))
    exact = torch_interp(xt.double())
    # each output's unit of rounding: that of the larger of its neighbours (one either side spare)
    n, size = x.shape[1], INTERP_FRAMES * upp
    left = np.arange(size) * (n - 1) // (size - 1)
    scale = np.max([np.abs(x[:, np.clip(left + d, 0, n - 1)]) for d in (-1, 0, 1, 2)], axis=0)
    figures = {"gpu_vs_torch_cpu_ulps": ulps(gpu, ref_cpu, scale),
               "gpu_vs_torch_device_ulps": ulps(gpu, ref_dev, scale),
               "gpu_vs_fp64_ulps": ulps(gpu, exact, scale),
               "cpu_vs_torch_cpu_max_abs": float(np.abs(cpu - ref_cpu).max())}
    record(request, **figures)
    assert gpu.shape == (1, INTERP_FRAMES * upp, 2)
    assert np.array_equal(cpu, ref_cpu)  # the CPU branch reproduces torch's CPU kernel exactly
    assert figures["gpu_vs_torch_cpu_ulps"] <= INTERP_MAX_ULPS, figures
    assert figures["gpu_vs_torch_device_ulps"] <= INTERP_MAX_ULPS, figures


def test_sinegen_on_device_matches_torch_on_device(request):
    """Both branches in context: SineGen over 2 s at 48k with wraps, shared phase and noise."""
    frames, upp, sr = 200, 480, 48000
    f0 = 110.0 * 2.0 ** (np.arange(frames) / 60.0)
    f0[50:60] = 0.0
    f0[150:] = 1100.0  # fast phase wraps
    f0 = f0.astype(np.float32)[None]
    phase0 = np.zeros((1, 1), np.float32)
    noise = np.random.default_rng(0).standard_normal((1, frames * upp, 1)).astype(np.float32)
    ref, uv, _ = TorchSineGen(sr)(torch.from_numpy(f0).to(TORCH_DEVICE), upp,
                                  torch.from_numpy(phase0).to(TORCH_DEVICE), torch.from_numpy(noise).to(TORCH_DEVICE))
    got, uv_m, _ = MlxSineGen(sr)(mx.array(f0), upp, phase0=phase0, noise=noise)
    err = float(np.abs(np.array(got) - ref.cpu().numpy()).max())
    record(request, sine_max_abs=err)
    assert np.array_equal(np.array(uv_m), uv.cpu().numpy())
    assert err <= tol.SYNTH_WAVE_MAX_ABS, err


@needs_real_gpu
@pytest.mark.parametrize("setting, expected", [(None, "gpu"), ("cpu", "cpu"), ("gpu", "gpu")])
def test_mlx_device_choice_on_cuda(monkeypatch, setting, expected):
    """No setting: ``mx.cuda`` reports the GPU and MLX computes there; RVCLAB_MLX_DEVICE overrides."""
    previous = mx.default_device()
    if setting is None:
        monkeypatch.delenv("RVCLAB_MLX_DEVICE", raising=False)
    else:
        monkeypatch.setenv("RVCLAB_MLX_DEVICE", setting)
    try:
        assert runtime._gpu_available(mx)
        runtime.import_mlx()
        assert mx.default_device() == getattr(mx, expected)
        assert runtime.mlx_backend_name() == ("cuda" if expected == "gpu" else "cpu")
    finally:
        mx.set_default_device(previous)


def test_mlx_cache_cap_holds_on_the_device(monkeypatch, request):
    """RVCLAB_MLX_CACHE_GB caps what MLX keeps of freed device buffers; without it they stay.

    Many 4 MiB buffers, as a conversion's activations are: on the H200 a single freed 1 GiB
    buffer was not cached at all (cache 0 with and without the cap), which proved nothing."""
    cap_gb = 0.25
    monkeypatch.setenv("RVCLAB_MLX_CACHE_GB", str(cap_gb))
    cap = runtime.mlx_cache_limit_bytes()

    def freed_and_cached() -> int:
        mx.clear_cache()
        arrays = [mx.full((1024, 1024), float(i)) for i in range(256)]  # 256 x 4 MiB float32
        mx.eval(arrays)
        del arrays
        return int(mx.get_cache_memory())

    previous = mx.set_cache_limit(4 * 2**30)  # high: only the cap can keep the cache small
    try:
        uncapped = freed_and_cached()
        runtime.import_mlx()  # applies the cap
        capped = freed_and_cached()
    finally:
        mx.set_cache_limit(previous)
        mx.clear_cache()
    record(request, cap_bytes=cap, cached_capped=capped, cached_uncapped=uncapped)
    # MLX trims its cache when it allocates, so it may sit past the cap by less than one buffer
    assert capped <= cap + 4 * 2**20, (capped, cap)
    assert uncapped >= 2**29, uncapped  # the cap, not the allocator, made the difference


CUDNN_PROBE = """
import json, sys
import rvclab
order = {"torch_before_mlx": "torch" in sys.modules and "mlx.core" not in sys.modules}
import mlx.core as mx
import torch
gru = torch.nn.GRU(16, 16, batch_first=True, bidirectional=True).cuda()
y, _ = gru(torch.randn(2, 50, 16, device="cuda"))
conv = torch.nn.Conv1d(16, 16, 5, padding=2).cuda()(y[..., :16].transpose(1, 2))
torch.cuda.synchronize()
z = mx.conv1d(mx.random.normal((2, 50, 16)), mx.random.normal((16, 5, 16)), padding=2, stream=mx.gpu)
mx.eval(z)
print(json.dumps({**order, "cudnn": torch.backends.cudnn.version(), "torch_finite": bool(torch.isfinite(conv).all()),
                  "mlx_finite": bool(mx.isfinite(z).all().item()), "mlx_device": str(mx.default_device())}))
"""
# The order the runtime prevents, for the report only (its outcome depends on the two cuDNN builds)
CUDNN_MLX_FIRST = """
import mlx.core as mx
import torch
torch.nn.GRU(16, 16).cuda()(torch.randn(5, 2, 16, device="cuda"))
torch.cuda.synchronize()
"""


@needs_real_gpu
def test_cudnn_load_order_torch_first(request):
    """``import rvclab`` loads torch before MLX's CUDA backend, and then both use their cuDNN."""
    env = {k: v for k, v in os.environ.items() if k != "RVCLAB_MLX_DEVICE"}
    proc = subprocess.run([sys.executable, "-c", CUDNN_PROBE], capture_output=True, text=True, env=env, timeout=300)
    other = subprocess.run([sys.executable, "-c", CUDNN_MLX_FIRST], capture_output=True, text=True, env=env,
                           timeout=300)
    got = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    record(request, **got, returncode=proc.returncode, stderr_tail=proc.stderr[-600:],
           mlx_first_returncode=other.returncode, mlx_first_stderr_tail=other.stderr[-600:])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert got["torch_before_mlx"], got
    assert got["torch_finite"] and got["mlx_finite"], got
    assert got["mlx_device"] == "Device(gpu, 0)", got


def test_bench_gpu_paths(request):
    """The benchmark's device paths: machine info, fp32 matmul, a synth stage with peak memory."""
    device = "cpu" if ON_CPU else "gpu"
    info = bench_timing.machine_info(device)
    mm = bench_run.bench_matmul(sizes=(1024,), repeats=1, device=device, warmup=0)
    rows = bench_run.bench_stage("synth", [1.0], StageOptions(device=device), warmup=0, repeats=1,
                                 peak_gflops=None, memory=not ON_CPU)
    bench_run.free_cached_memory(device)
    torch_sync()
    record(request, device_name=info["device_name"], matmul_backends=[r["backend"] for r in mm],
           synth_backends=[r["backend"] for r in rows])
    assert [r["backend"] for r in rows] == ["torch", "mlx", "ratio"], rows
    assert not torch.backends.cuda.matmul.allow_tf32  # bench_matmul restored the module's setting
    if not ON_CPU:
        assert info["device_name"] == torch.cuda.get_device_name(0) and info["cuda"]
        assert all(r["peak_gpu_bytes"] > 0 for r in rows[:2]), rows


# --- parity on the device -----------------------------------------------------------------------
def torch_synth_on_device(model, inp: dict, noise: dict) -> dict:
    """As :func:`rvclab.models.synth.parity.run_torch`, with the model and inputs on TORCH_DEVICE."""
    f0 = model.config.f0
    t = lambda k: torch.from_numpy(inp[k]).to(TORCH_DEVICE)  # noqa: E731
    with torch.no_grad():
        o, _, (z, z_p, m_p, logs_p) = model.infer(t("phone"), t("lengths"), t("pitch") if f0 else None,
                                                  t("f0") if f0 else None, t("sid"), noise)
    btc = lambda a: a.cpu().numpy().transpose(0, 2, 1)  # noqa: E731  (B, C, T) -> (B, T, C)
    return {"wave": o.cpu().numpy()[:, 0], "m_p": btc(m_p), "logs_p": btc(logs_p), "z_p": btc(z_p), "z": btc(z)}


def flow_on_device(tmodel, mmodel, z_p: np.ndarray, inp: dict) -> float:
    """Max abs difference of the reverse flow alone, both backends fed torch's z_p (B, T, C)."""
    sid, lengths = inp["sid"], inp["lengths"]
    mask = (np.arange(z_p.shape[1])[None] < lengths[:, None]).astype(np.float32)
    with torch.no_grad():
        g = tmodel.emb_g(torch.from_numpy(sid).to(TORCH_DEVICE)).unsqueeze(-1)
        zt = tmodel.flow(torch.from_numpy(z_p.transpose(0, 2, 1).copy()).to(TORCH_DEVICE),
                         torch.from_numpy(mask[:, None]).to(TORCH_DEVICE), g=g, reverse=True)
    zm = mmodel.flow(mx.array(z_p), mx.array(mask[..., None]), g=mmodel.emb_g(mx.array(sid))[:, None], reverse=True)
    return float(np.abs(zt.cpu().numpy().transpose(0, 2, 1) - np.array(zm)).max())


def synth_parity(ckpt: dict, frames: int, seed: int) -> dict:
    tmodel, mmodel = models_from_voice(ckpt)  # torch on the CPU, for the float64 TextEncoder
    config = tmodel.config
    dev_model = copy.deepcopy(tmodel).to(TORCH_DEVICE)
    inp = clip_inputs(config, frames, seed)
    noise = make_noise(config, 1, frames, seed)
    ref = torch_synth_on_device(dev_model, inp, noise)
    out = run_mlx(mmodel, inp, noise, bool(config.f0))
    floor, mlx_vs_exact = textenc_fp64_errors(tmodel, inp, ref, out)
    return {
        "config": config.name, "frames": frames, "samples": int(ref["wave"].size),
        "textenc_max_abs": max(metrics.max_abs(ref[k], out[k]) for k in ("m_p", "logs_p")),
        "textenc_ref_fp32_error": floor, "textenc_mlx_fp64_error": mlx_vs_exact,
        "flow_max_abs": flow_on_device(dev_model, mmodel, ref["z_p"], inp),
        "wave_corr": metrics.corr(ref["wave"], out["wave"]),
        "wave_max_abs": metrics.max_abs(ref["wave"], out["wave"]),
        "wave_rms": metrics.rms(ref["wave"]),
    }


def check_synth(row: dict) -> None:
    """The goals; the TextEncoder's as docs/parity.md states it (its goal sits below one float32
    step of its outputs): the port within the goal of the float64 result, or no further from it
    than torch's own float32 run."""
    assert row["textenc_mlx_fp64_error"] <= max(tol.SYNTH_TEXTENC_MAX_ABS, row["textenc_ref_fp32_error"]), row
    assert row["flow_max_abs"] <= tol.SYNTH_FLOW_MAX_ABS, row
    assert row["wave_corr"] >= tol.SYNTH_WAVE_CORR_MIN, row
    assert row["wave_max_abs"] <= tol.SYNTH_WAVE_MAX_ABS, row
    assert row["wave_rms"] > 1e-4, row  # a silent output would agree trivially


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_synth_parity_small_on_device(name, request):
    config = SynthConfig.preset(name).small()
    row = synth_parity(torch_voice(config, seed=1), SYNTH_FRAMES_SMALL, seed=1)
    record(request, **row)
    assert row["samples"] == SYNTH_FRAMES_SMALL * config.hop_length
    check_synth(row)


@pytest.fixture(scope="module")
def full_v2_48k_row():
    ckpt = load_checkpoint(default_voice("voice_v2_48k.pth"))
    return synth_parity(ckpt, int(SYNTH_SECONDS_FULL * 100), seed=0)


def test_synth_parity_full_v2_48k_on_device(request, full_v2_48k_row):
    """Every goal at full size, the flow's included (figures: docs/parity.md, "GPU suite")."""
    row = full_v2_48k_row
    record(request, **row)
    check_synth(row)


@pytest.fixture(scope="module")
def hubert_pair():
    weights = hubert_io.read_hubert(default_hubert())
    return hubert_io.torch_model(weights).to(TORCH_DEVICE), hubert_io.mlx_model(weights)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hubert_parity_on_device(hubert_pair, version, request):
    tmodel, mmodel = hubert_pair
    inputs = [("clip", load_audio(clip("librivox_male_0880"), SAMPLE_RATE_16K).astype(np.float32)),
              *hubert_parity.test_inputs((HUBERT_ODD_LENGTH,), clips=False)]
    rows = {}
    for name, wav in inputs:
        with torch.no_grad():
            ref = tmodel.extract_features(torch.from_numpy(wav).to(TORCH_DEVICE), version)[0].cpu().numpy()
        out = mmodel.extract_features(mx.array(wav), version)[0]
        rows[name] = hubert_parity.compare(ref, np.array(out))
    record(request, **rows)
    for row in rows.values():
        assert row["frames_torch"] == row["frames_mlx"], row
        assert row["cos_min"] >= tol.HUBERT_COS_MIN, row
        assert row["max_abs_rel"] <= tol.HUBERT_MAX_ABS_REL, row


def test_rmvpe_parity_on_device(request):
    path = default_rmvpe()
    est_t = RMVPE(load_rmvpe(path, "torch"), device=TORCH_DEVICE)
    est_m = rmvpe_f0.get_estimator("mlx", path)
    audio = load_audio(clip("librivox_male_0880"), SAMPLE_RATE_16K).astype(np.float32)
    row = check_clip("librivox_male_0880", audio, est_t, est_m)
    record(request, **row)
    assert row["frames"] == row["frames_mlx"], row
    assert row["frames_voiced_both"] > 0.3 * row["frames"], row  # F0 compared on real frames
    assert row["salience_max_abs"] <= tol.RMVPE_SALIENCE_MAX_ABS, row
    assert row["f0_median_cents"] <= tol.F0_MEDIAN_CENTS_MAX, row
    assert row["f0_p99_cents"] <= tol.F0_P99_CENTS_MAX, row
    assert row["voicing_agreement"] >= tol.VOICING_AGREEMENT_MIN, row


def test_fcpe_parity_on_device(request):
    """FCPE's torch model on the device (the log-mel made on the CPU and moved there) against MLX on
    its GPU, against the F0 goals (as RMVPE above)."""
    model = load_fcpe(backend="torch").to(TORCH_DEVICE)
    audio = load_audio(clip("librivox_male_0880"), SAMPLE_RATE_16K).astype(np.float32)
    f0_t, _ = fcpe_torch.infer(model, audio)
    with mlx_device(MLX_GPU):
        f0_m = fcpe_f0.predict(audio, "mlx")["f0"]
    err = metrics.cents_error(f0_m, f0_t)
    row = {"frames_voiced_both": err["frames"], "f0_median_cents": err["median"], "f0_p99_cents": err["p99"],
           "voicing_agreement": metrics.voicing_agreement(f0_m, f0_t)}
    record(request, **row)
    assert f0_t.shape == f0_m.shape
    assert err["frames"] > 0.3 * f0_t.size, row  # F0 compared on real frames
    assert row["f0_median_cents"] <= tol.F0_MEDIAN_CENTS_MAX, row
    assert row["f0_p99_cents"] <= tol.F0_P99_CENTS_MAX, row
    assert row["voicing_agreement"] >= tol.VOICING_AGREEMENT_MIN, row


@pytest.fixture(scope="module")
def pipeline_on_device():
    """The pipeline's cached torch models (HuBERT, RMVPE, the v2-48k voice) on TORCH_DEVICE for the
    module, back on the CPU afterwards."""
    voice = VoiceModel(default_voice("voice_v2_48k.pth"))
    voice.model("torch").to(TORCH_DEVICE)
    hub = embedder("torch")
    hub.to(TORCH_DEVICE)
    rmvpe_path = str(default_rmvpe())
    key = (rmvpe_path, "torch")
    saved = rmvpe_f0.get_estimator("torch", rmvpe_path)
    rmvpe_f0._MODELS[key] = RMVPE(saved.model, device=TORCH_DEVICE)
    yield voice
    hub.to("cpu")
    rmvpe_f0._MODELS[key] = RMVPE(saved.model, device="cpu")


def test_end_to_end_parity_on_device(pipeline_on_device, request):
    audio = load_audio(clip("librivox_male_0880"), SAMPLE_RATE_16K)[: int(E2E_SECONDS * SAMPLE_RATE_16K)]
    row = run_case(pipeline_on_device, audio, f0_method="rmvpe", label="v2-48k on device")
    record(request, **row)
    assert next(embedder("torch").parameters()).device.type == torch.device(TORCH_DEVICE).type
    assert row["samples_torch"] == row["samples_mlx"], row
    assert row["wave_corr"] >= tol.E2E_WAVE_CORR_MIN, row
    assert row["spec_corr"] >= tol.E2E_SPEC_CORR_MIN, row
    assert row["voicing_agreement"] >= tol.VOICING_AGREEMENT_MIN, row
