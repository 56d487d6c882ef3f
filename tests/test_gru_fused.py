"""RMVPE's BiGRU on every recurrence path (rvclab.runtime.GRU_PATHS) against the loop, a float64
reference of torch's equations and torch itself; the torch reference under CUDA graphs vs eager.

CPU: the ``host`` path (MLX's CPU default), the dispatch and its switches, the kernels' layouts.
``gpu``-marked (torch CUDA + MLX CUDA; skipped elsewhere with the reason): the CUDA kernels at
RMVPE's real shapes and the CUDA-graph torch reference. Metal: the Metal kernel, on a Mac.
Every test seeds its own inputs; each figure is compared with a goal of rvclab.tolerances.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
import torch

from rvclab import runtime
from rvclab import tolerances as tol
from rvclab.models.rmvpe.config import RmvpeConfig

HIDDEN, INPUTS = RmvpeConfig.gru_hidden, 3 * RmvpeConfig.n_mels  # RMVPE's BiGRU: 384 -> 2 x 256
SMALL = RmvpeConfig(n_blocks=1, inter_layers=1, en_out_channels=4, gru_hidden=16)


@pytest.fixture(scope="module")
def mx():
    return runtime.import_mlx()


def torch_gru(inputs: int, hidden: int, seed: int, scale: float = 1.0) -> torch.nn.GRU:
    """A bidirectional batch-first torch GRU with seeded weights; ``scale`` times torch's init."""
    torch.manual_seed(seed)
    ref = torch.nn.GRU(inputs, hidden, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for p in ref.parameters():
            p.mul_(scale)
    return ref


@contextlib.contextmanager
def on_device(mx, device):
    """MLX's default device set to ``device`` inside the block (what the dispatcher reads)."""
    saved = mx.default_device()
    mx.set_default_device(device)
    try:
        yield
    finally:
        mx.set_default_device(saved)


def mlx_gru(mx, ref: torch.nn.GRU):
    from rvclab.models.rmvpe.gru import GRU

    ours = GRU(ref.input_size, ref.hidden_size, bidirectional=True)
    ours.load_weights([(k, mx.array(v.detach().numpy())) for k, v in ref.named_parameters()])
    return ours


def reference64(ref: torch.nn.GRU, x: np.ndarray) -> np.ndarray:
    """torch's GRU equations in float64 numpy, written out per step: (B, T, I) -> (B, T, 2H)."""
    p = {k: v.detach().double().numpy() for k, v in ref.named_parameters()}
    hidden = ref.hidden_size
    outs = []
    for sfx, flip in (("_l0", False), ("_l0_reverse", True)):
        xs = x[:, ::-1].astype(np.float64) if flip else x.astype(np.float64)
        gi = xs @ p["weight_ih" + sfx].T + p["bias_ih" + sfx]
        h = np.zeros((x.shape[0], hidden))
        hs = []
        for t in range(x.shape[1]):
            gh = h @ p["weight_hh" + sfx].T + p["bias_hh" + sfx]
            r = 1 / (1 + np.exp(-(gi[:, t, :hidden] + gh[:, :hidden])))
            z = 1 / (1 + np.exp(-(gi[:, t, hidden:2 * hidden] + gh[:, hidden:2 * hidden])))
            n = np.tanh(gi[:, t, 2 * hidden:] + r * gh[:, 2 * hidden:])
            h = (1 - z) * n + z * h
            hs.append(h)
        hs = np.stack(hs, axis=1)
        outs.append(hs[:, ::-1] if flip else hs)
    return np.concatenate(outs, axis=-1)


def run_path(mx, ours, x: np.ndarray, path: str) -> np.ndarray:
    from rvclab.models.rmvpe import gru

    out, _ = ours(mx.array(x), path=path)
    mx.eval(out)
    assert gru.last_path() == path
    return np.array(out)


# --- CPU: the host path -----------------------------------------------------------------------
@pytest.mark.parametrize("batch,steps,hidden,inputs", [(1, 300, HIDDEN, INPUTS), (2, 23, 9, 12)])
def test_host_path_matches_loop_reference_and_torch(mx, monkeypatch, batch, steps, hidden, inputs):
    """The host path at RMVPE's real sizes (300 frames) and at a small odd size, against the MLX
    loop (evaluated in blocks of 64 steps, a partial last one), the float64 equations and torch's
    nn.GRU (same weights, same input)."""
    from rvclab.models.rmvpe import gru

    monkeypatch.setattr(gru, "EVAL_BLOCK_STEPS", 64)
    ref = torch_gru(inputs, hidden, seed=steps, scale=2.0)  # larger weights: saturating gates too
    ours = mlx_gru(mx, ref)
    x = np.random.default_rng(steps).standard_normal((batch, steps, inputs)).astype(np.float32)
    host = run_path(mx, ours, x, "host")
    loop = run_path(mx, ours, x, "loop")
    with torch.no_grad():
        want = ref(torch.from_numpy(x))[0].numpy()
    exact = reference64(ref, x)
    for name, got in (("loop", loop), ("torch", want), ("float64", exact)):
        err = np.abs(host - got).max()
        assert err <= tol.RMVPE_GRU_MAX_ABS, f"host vs {name}: max abs {err:.2e}"
    assert np.abs(host - exact).max() <= np.abs(loop - exact).max() * 10 + 1e-6  # no worse than the loop


def test_rmvpe_salience_on_host_path_matches_torch(mx, monkeypatch):
    """The small seeded RMVPE end to end (log-mel -> salience) with the host path chosen by the
    dispatcher (as the pipeline runs it), against the torch reference and against the loop."""
    from rvclab.convert import load_into_mlx
    from rvclab.models.rmvpe import gru
    from rvclab.models.rmvpe import mlx as M
    from rvclab.models.rmvpe import torch as T
    from rvclab.models.rmvpe.rules import convert_checkpoint
    from rvclab.models.rmvpe.seeded import seeded_state_dict

    sd = seeded_state_dict(5, SMALL)
    tm = T.E2E(SMALL)
    tm.load_state_dict(sd)
    mm = M.E2E(SMALL)
    load_into_mlx(mm, convert_checkpoint(sd)[0])
    audio = np.random.default_rng(5).standard_normal(16000).astype(np.float32) * 0.1
    want = T.RMVPE(tm).salience(audio)
    monkeypatch.delenv(runtime.GRU_PATH_ENV, raising=False)
    with on_device(mx, mx.cpu):
        host = M.RMVPE(mm).salience(audio)
        assert gru.last_path() == "host"
        monkeypatch.setenv(runtime.GRU_PATH_ENV, "loop")
        loop = M.RMVPE(mm).salience(audio)
        assert gru.last_path() == "loop"
    assert np.abs(host - want).max() <= tol.RMVPE_SALIENCE_MAX_ABS
    assert np.abs(host - loop).max() <= tol.RMVPE_SALIENCE_MAX_ABS


# --- CPU: the dispatch ------------------------------------------------------------------------
def test_dispatch_defaults_and_switches(mx, monkeypatch):
    from rvclab.models.rmvpe import gru

    ref = torch_gru(6, 5, seed=1)
    ours = mlx_gru(mx, ref)
    x = mx.array(np.random.default_rng(1).standard_normal((1, 7, 6)).astype(np.float32))
    monkeypatch.delenv(runtime.GRU_PATH_ENV, raising=False)
    with on_device(mx, mx.cpu):
        mx.eval(ours(x)[0])
        assert gru.last_path() == "host"
        monkeypatch.setenv(runtime.GRU_PATH_ENV, "loop")
        mx.eval(ours(x)[0])
        assert gru.last_path() == "loop"
        monkeypatch.setenv(runtime.GRU_PATH_ENV, "cuda_split")
        with pytest.raises(ValueError, match="does not run on MLX's cpu device; usable here: host, loop"):
            ours(x)
        monkeypatch.setenv(runtime.GRU_PATH_ENV, "fused")
        with pytest.raises(ValueError, match="choose auto or one of cuda_split"):
            ours(x)
    with pytest.raises(ValueError, match="unknown GRU path 'fast'"):
        gru.recurrence(mx.zeros((1, 1, 2, 15)), mx.zeros((1, 15, 5)), mx.zeros((1, 15)), path="fast")


def test_replaced_step_runs_the_loop(mx, monkeypatch):
    """rvclab.fixes puts a documented bug back by replacing ``_step``; only the loop calls it, so the
    dispatcher must take the loop then, and the bug must show in the output."""
    from rvclab.models.rmvpe import gru

    ref = torch_gru(6, 5, seed=2)
    ours = mlx_gru(mx, ref)
    x = mx.array(np.random.default_rng(2).standard_normal((1, 9, 6)).astype(np.float32))
    monkeypatch.delenv(runtime.GRU_PATH_ENV, raising=False)
    good = np.array(ours(x)[0])
    monkeypatch.setattr(gru, "_step_compiled", lambda h, gi, w, b: gru._step(h, gi, w, b) * 0.5)
    bad = np.array(ours(x)[0])
    assert gru.last_path() == "loop"
    assert np.abs(bad - good).max() > 1e-2


def test_split_path_needs_a_layout_and_few_blocks(mx, monkeypatch):
    """On CUDA the split kernel is the default only where it has a layout and its blocks all fit
    at once; the choice is a function of the block count (checked here for the CUDA device)."""
    monkeypatch.delenv(runtime.GRU_PATH_ENV, raising=False)
    monkeypatch.setattr(runtime, "mlx_device_kind", lambda mx: "cuda")
    assert runtime.mlx_gru_path(mx, 16) == "cuda_split"
    assert runtime.mlx_gru_path(mx, runtime.GRU_SPLIT_MAX_BLOCKS + 1) == "cuda_block"
    assert runtime.mlx_gru_path(mx, None) == "cuda_block"
    monkeypatch.setenv(runtime.GRU_PATH_ENV, "cuda_split")
    with pytest.raises(ValueError, match="at most 32"):
        runtime.mlx_gru_path(mx, 64)


def test_kernel_layouts_fit_the_devices():
    from rvclab.models.rmvpe import gru_kernels as K

    lay = K.split_layout(HIDDEN)
    assert (lay.blocks, lay.threads) == (HIDDEN // K.SPLIT_UNITS, 3 * K.SPLIT_UNITS * K.SPLIT_SLICES)
    assert lay.blocks * 2 <= runtime.GRU_SPLIT_MAX_BLOCKS  # RMVPE's B = 1 row, both directions
    weights = 4 * 3 * HIDDEN * HIDDEN // lay.blocks  # this block's share of W_hh, float32
    assert weights < lay.shared_bytes <= weights + 4096
    assert K.split_layout(250) is None and K.split_layout(16) is None  # 250 % 16; one block a row
    for limit_threads, limit_floats in ((K.CUDA_MAX_THREADS, K.CUDA_STATIC_SHARED_FLOATS),
                                        (K.METAL_MAX_THREADS, K.METAL_THREADGROUP_FLOATS)):
        for hidden in (1, 9, 16, 256, 1000):
            b = K.block_layout(hidden, limit_threads, limit_floats)
            assert b.threads <= limit_threads and b.threads % 32 == 0 and b.shared_floats <= limit_floats
            assert b.lanes >= min(hidden, limit_threads) and b.threads == b.lanes * b.slices
    assert K.block_layout(4096, K.CUDA_MAX_THREADS, K.CUDA_STATIC_SHARED_FLOATS) is None


def test_kernel_launchers_check_shapes(mx):
    from rvclab.models.rmvpe import gru_kernels as K

    with pytest.raises(ValueError, match=r"needs w_t \(2, 4, 12\)"):
        K.cuda_block_scan(mx.zeros((2, 1, 3, 12)), mx.zeros((2, 12, 4)), mx.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"expected gi \(D, B, T, 3H\)"):
        K.metal_scan(mx.zeros((1, 3, 12)), mx.zeros((1, 4, 12)), mx.zeros((1, 12)))


# --- CPU: the torch reference's CUDA-graph switch ----------------------------------------------
def test_cuda_graph_switch_is_off_on_the_cpu(monkeypatch):
    from rvclab.models.rmvpe import torch as T

    monkeypatch.setenv(runtime.TORCH_CUDA_GRAPH_ENV, "1")
    est = T.RMVPE(T.E2E(SMALL), "cpu", cuda_graph=True)
    assert not est.cuda_graph and est.graphed is None
    assert runtime.torch_cuda_graph_enabled("cuda") is True
    assert runtime.torch_cuda_graph_enabled("cuda", requested=False) is False
    monkeypatch.delenv(runtime.TORCH_CUDA_GRAPH_ENV)
    assert runtime.torch_cuda_graph_enabled("cuda") is False
    assert runtime.torch_cuda_graph_enabled("cuda", default=True) is True
    monkeypatch.setenv(runtime.TORCH_CUDA_GRAPH_ENV, "maybe")
    with pytest.raises(ValueError, match="expected 0 or 1"):
        runtime.torch_cuda_graph_enabled("cuda")
    with pytest.raises(ValueError, match="needs a CUDA tensor"):
        T.GraphedForward(T.E2E(SMALL))(torch.zeros(1, 128, 32))


# --- GPU: the CUDA kernels at RMVPE's real shapes, and torch under CUDA graphs -------------------
@pytest.mark.gpu
@pytest.mark.parametrize("path", ["cuda_split", "cuda_block"])
@pytest.mark.parametrize("batch,steps,hidden,inputs", [(1, 6000, HIDDEN, INPUTS), (3, 257, HIDDEN, INPUTS),
                                                       (2, 23, 32, 12), (2, 23, 9, 12)])
def test_cuda_kernel_matches_float64_and_loop(mx, path, batch, steps, hidden, inputs):
    """A 60 s clip's 6000 frames at RMVPE's sizes, several rows, and small sizes (H = 32: the
    smallest split layout, two blocks a row; H = 9: no split layout, the block kernel only)."""
    from rvclab.models.rmvpe import gru_kernels as K

    if path == "cuda_split" and K.split_layout(hidden) is None:
        pytest.skip(f"no split layout for hidden size {hidden}")
    with on_device(mx, mx.gpu):
        ref = torch_gru(inputs, hidden, seed=steps, scale=2.0)
        ours = mlx_gru(mx, ref)
        x = np.random.default_rng(steps).standard_normal((batch, steps, inputs)).astype(np.float32)
        got = run_path(mx, ours, x, path)
        loop = run_path(mx, ours, x, "loop")
    exact = reference64(ref, x)
    err, err_loop = np.abs(got - exact).max(), np.abs(got - loop).max()
    print(f"{path} B={batch} T={steps} H={hidden}: max abs vs float64 {err:.2e}, vs loop {err_loop:.2e}")
    assert err <= tol.RMVPE_GRU_MAX_ABS and err_loop <= tol.RMVPE_GRU_MAX_ABS


@pytest.mark.gpu
def test_rmvpe_default_gpu_path_matches_torch(mx, monkeypatch):
    """The full-size seeded RMVPE on 10 s of noise-like audio, MLX on its GPU default path vs
    torch on CUDA (eager), in true fp32 (TF32 off on both sides for the comparison)."""
    from rvclab.models.rmvpe import gru
    from rvclab.models.rmvpe import mlx as M
    from rvclab.models.rmvpe import torch as T
    from rvclab.models.rmvpe.io import load_rmvpe

    monkeypatch.delenv(runtime.GRU_PATH_ENV, raising=False)
    audio = (np.random.default_rng(7).standard_normal(160000) * 0.1).astype(np.float32)
    with torch_fp32():
        want = T.RMVPE(load_rmvpe(None, "torch"), "cuda", cuda_graph=False).salience(audio)
    with on_device(mx, mx.gpu):
        got = M.RMVPE(load_rmvpe(None, "mlx")).salience(audio)
    assert gru.last_path() == "cuda_split"
    err = np.abs(got - want).max()
    print(f"RMVPE salience, MLX {gru.last_path()} vs torch eager: max abs {err:.2e}")
    if err > tol.RMVPE_SALIENCE_MAX_ABS and os.environ.get("MLX_ENABLE_TF32", "1") != "0":
        pytest.skip(f"max abs {err:.2e}: MLX matmuls in TF32 (set MLX_ENABLE_TF32=0 before MLX loads)")
    assert err <= tol.RMVPE_SALIENCE_MAX_ABS


@contextlib.contextmanager
def torch_fp32():
    """torch's CUDA matmuls and cuDNN convolutions in full fp32 (TF32 off) inside the block."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.gpu
def test_torch_cuda_graph_replays_eager_output():
    """The torch reference under CUDA graphs returns eager's salience within the RMVPE goal in fp32
    (not bit for bit: cuDNN may pick other algorithms while capturing), captured once per input
    shape, replayed after, a new length captured anew. With cuDNN's TF32 convolutions, torch's
    default, the difference follows TF32's rounding: printed, not held to the fp32 goal."""
    from rvclab.models.rmvpe import torch as T
    from rvclab.models.rmvpe.io import load_rmvpe

    model = load_rmvpe(None, "torch")
    audio = (np.random.default_rng(8).standard_normal(96000) * 0.1).astype(np.float32)
    with torch_fp32():
        eager = T.RMVPE(model, "cuda", cuda_graph=False).salience(audio)
        graphed = T.RMVPE(model, "cuda", cuda_graph=True)
        first, second = graphed.salience(audio), graphed.salience(audio)
        shorter = graphed.salience(audio[:48000])
        want_short = T.RMVPE(model, "cuda", cuda_graph=False).salience(audio[:48000])
    stats = graphed.graphed
    assert (stats.captures, stats.replays, stats.fallbacks) == (2, 3, 0)
    err = max(np.abs(first - eager).max(), np.abs(second - eager).max())
    default = T.RMVPE(model, "cuda", cuda_graph=True).salience(audio)
    err_default = np.abs(default - T.RMVPE(model, "cuda", cuda_graph=False).salience(audio)).max()
    print(f"torch RMVPE graph vs eager: fp32 max abs {err:.2e} (bit-identical {bool(err == 0)}); "
          f"torch's default TF32 convolutions: {err_default:.2e}")
    assert err <= tol.RMVPE_SALIENCE_MAX_ABS
    assert np.abs(shorter - want_short).max() <= tol.RMVPE_SALIENCE_MAX_ABS


# --- Metal --------------------------------------------------------------------------------------
def _metal() -> bool:
    import mlx.core as mx

    return runtime.IS_MACOS and bool(mx.metal.is_available())


@pytest.mark.skipif(not _metal(), reason="needs MLX with Metal (a Mac with Apple silicon)")
@pytest.mark.parametrize("batch,steps,hidden,inputs", [(1, 2000, HIDDEN, INPUTS), (2, 23, 9, 12)])
def test_metal_kernel_matches_float64_and_loop(mx, batch, steps, hidden, inputs):
    with on_device(mx, mx.gpu):
        ref = torch_gru(inputs, hidden, seed=steps, scale=2.0)
        ours = mlx_gru(mx, ref)
        x = np.random.default_rng(steps).standard_normal((batch, steps, inputs)).astype(np.float32)
        got = run_path(mx, ours, x, "metal")
        loop = run_path(mx, ours, x, "loop")
    exact = reference64(ref, x)
    assert np.abs(got - exact).max() <= tol.RMVPE_GRU_MAX_ABS
    assert np.abs(got - loop).max() <= tol.RMVPE_GRU_MAX_ABS
