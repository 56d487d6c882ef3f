"""Exactness of rvclab.mlx.ops (matmul path and native path) against torch.nn.functional."""

import itertools
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rvclab.mlx import ops
from rvclab.runtime import import_mlx
from rvclab.tolerances import OPS_CONV_REL_MAX_ABS

mx = import_mlx()

PATHS = ("matmul", "native")


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _close(got, ref):
    got = np.array(got)
    assert got.shape == ref.shape, f"shape {got.shape} != torch {ref.shape}"
    scale = max(float(np.abs(ref).max()), 1e-6)
    err = float(np.abs(got - ref).max()) / scale
    assert err < OPS_CONV_REL_MAX_ABS, f"relative max abs error {err:.2e}"


def _conv1d_case(path, B, T, cin, cout, K, stride, padding, dilation, groups, bias):
    r = _rng("c1", B, T, cin, cout, K, stride, padding, dilation, groups, bias)
    x = r.standard_normal((B, T, cin), dtype=np.float32)
    w = r.standard_normal((cout, K, cin // groups), dtype=np.float32)
    b = r.standard_normal(cout, dtype=np.float32) if bias else None
    ref = F.conv1d(
        torch.from_numpy(x).permute(0, 2, 1), torch.from_numpy(w).permute(0, 2, 1),
        None if b is None else torch.from_numpy(b), stride, padding, dilation, groups,
    ).permute(0, 2, 1).numpy()
    with ops.conv_path(path):
        got = ops.conv1d(mx.array(x), mx.array(w), None if b is None else mx.array(b),
                         stride=stride, padding=padding, dilation=dilation, groups=groups)
    _close(got, ref)


CONV1D_GRID = [
    # B, T, cin, cout, K, stride, padding, dilation, groups, bias
    (1, 37, 8, 6, 3, 1, 1, 1, 1, True),
    (2, 50, 16, 12, 7, 1, 9, 3, 1, True),
    (3, 41, 12, 20, 11, 1, 25, 5, 1, False),
    (2, 33, 5, 7, 4, 3, 0, 1, 1, True),
    (1, 101, 1, 16, 10, 5, 0, 1, 1, False),  # HuBERT front end
    (2, 160, 1, 8, 80, 40, 20, 1, 1, True),  # NSF noise conv (stride 40, K 80)
    (2, 64, 32, 32, 16, 1, 8, 1, 16, True),  # pos_conv-like: groups 16, even K
    (1, 29, 12, 18, 5, 2, 3, 2, 3, True),  # groups + stride + dilation
    (2, 1, 8, 4, 1, 1, 0, 1, 1, True),  # length 1, K 1
    (1, 1, 8, 4, 3, 1, 1, 1, 1, True),  # length 1 with padding
    (1, 1, 6, 6, 7, 1, 9, 3, 2, False),  # length 1, dilated, grouped
    (2, 9, 4, 4, 3, 4, 2, 1, 1, True),  # stride > K
    (1, 300, 96, 96, 3, 1, 5, 5, 1, True),  # wider channels (single-tap blocks)
    (2, 57, 32, 24, 11, 1, 5, 1, 1, True),  # sample pairs: odd length, odd K
    (1, 40, 16, 16, 4, 1, 1, 1, 1, False),  # sample pairs: even K, asymmetric result length
    (1, 2, 8, 8, 7, 1, 3, 1, 1, True),  # sample pairs: input shorter than the kernel
    (1, 64, 129, 8, 3, 1, 1, 1, 1, True),  # above PAIR_MAX_CHANNELS: single taps
    (2, 83, 24, 16, 7, 1, 9, 3, 1, True),  # dilated sample pairs (7 taps, dilation 3)
    (1, 61, 32, 32, 11, 1, 25, 5, 1, False),  # dilated sample pairs (11 taps, dilation 5)
    (1, 5, 8, 8, 8, 1, 14, 2, 1, True),  # dilated pairs, input much shorter than the kernel
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CONV1D_GRID)
def test_conv1d_matches_torch(path, case):
    _conv1d_case(path, *case)


def test_conv1d_asymmetric_padding():
    r = _rng("asym")
    x = r.standard_normal((2, 20, 4), dtype=np.float32)
    w = r.standard_normal((3, 5, 4), dtype=np.float32)
    ref = F.conv1d(F.pad(torch.from_numpy(x).permute(0, 2, 1), (4, 0)),
                   torch.from_numpy(w).permute(0, 2, 1)).permute(0, 2, 1).numpy()
    for path in PATHS:
        with ops.conv_path(path):
            _close(ops.conv1d(mx.array(x), mx.array(w), padding=(4, 0)), ref)


def _torch_to_mlx_transposed(wt, groups):
    """torch (C_in, C_out/g, K) -> MLX (C_out, K, C_in/g)."""
    cin, og, k = wt.shape
    cg = cin // groups
    return wt.reshape(groups, cg, og, k).transpose(0, 2, 3, 1).reshape(groups * og, k, cg)


CONVT_GRID = [
    # B, T, cin, cout, K, stride, padding, output_padding, dilation, groups, bias
    (1, 9, 16, 8, 24, 12, 6, 0, 1, 1, True),  # v2-48k stage 0
    (2, 11, 8, 4, 20, 10, 5, 0, 1, 1, True),  # stage 1
    (1, 17, 8, 4, 4, 2, 1, 0, 1, 1, False),  # stages 2-3
    (2, 13, 6, 5, 16, 10, 3, 0, 1, 1, True),  # K not a multiple of stride
    (1, 7, 4, 6, 3, 2, 0, 1, 1, 1, True),  # output_padding
    (2, 10, 4, 4, 5, 3, 2, 2, 1, 1, True),  # output_padding past the last tap
    (1, 8, 6, 4, 3, 2, 1, 1, 2, 1, True),  # dilation
    (2, 12, 8, 6, 4, 2, 1, 0, 1, 2, True),  # groups
    (1, 1, 4, 3, 4, 2, 1, 0, 1, 1, True),  # length 1
    (1, 5, 3, 2, 2, 3, 0, 0, 1, 1, False),  # stride > K
    (1, 6, 4, 4, 3, 1, 1, 0, 1, 1, True),  # stride 1
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CONVT_GRID)
def test_conv_transpose1d_matches_torch(path, case):
    B, T, cin, cout, K, stride, padding, opad, dilation, groups, bias = case
    r = _rng("ct", *case)
    x = r.standard_normal((B, T, cin), dtype=np.float32)
    wt = r.standard_normal((cin, cout // groups, K), dtype=np.float32)
    b = r.standard_normal(cout, dtype=np.float32) if bias else None
    ref = F.conv_transpose1d(
        torch.from_numpy(x).permute(0, 2, 1), torch.from_numpy(wt),
        None if b is None else torch.from_numpy(b), stride, padding, opad, groups, dilation,
    ).permute(0, 2, 1).numpy()
    w = _torch_to_mlx_transposed(wt, groups)
    with ops.conv_path(path):
        got = ops.conv_transpose1d(mx.array(x), mx.array(w), None if b is None else mx.array(b),
                                   stride=stride, padding=padding, output_padding=opad,
                                   dilation=dilation, groups=groups)
    _close(got, ref)


CONV2D_GRID = [
    # B, H, W, cin, cout, (kh, kw), stride, padding, dilation, groups, bias
    (1, 12, 10, 1, 8, (3, 3), 1, 1, 1, 1, True),
    (2, 9, 14, 3, 5, (3, 2), 1, (1, 2), (2, 1), 1, False),  # shallow input: one im2col matmul
    (2, 9, 13, 8, 6, (3, 3), (1, 2), (1, 0), 1, 1, True),
    (1, 11, 11, 16, 16, (3, 5), 1, (2, 4), (2, 2), 1, False),
    (2, 8, 7, 6, 9, (2, 2), 2, 0, 1, 3, True),
    (1, 7, 9, 200, 8, (3, 3), 1, 1, 1, 1, True),  # single-tap blocks
    (1, 1, 1, 4, 4, (3, 3), 1, 1, 1, 1, True),  # 1x1 input
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CONV2D_GRID)
def test_conv2d_matches_torch(path, case):
    B, H, W, cin, cout, k, stride, padding, dilation, groups, bias = case
    r = _rng("c2", *itertools.chain(case[:5], k, [str(stride), str(padding), str(dilation)]))
    x = r.standard_normal((B, H, W, cin), dtype=np.float32)
    w = r.standard_normal((cout, *k, cin // groups), dtype=np.float32)
    b = r.standard_normal(cout, dtype=np.float32) if bias else None
    ref = F.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(w).permute(0, 3, 1, 2),
        None if b is None else torch.from_numpy(b), stride, padding, dilation, groups,
    ).permute(0, 2, 3, 1).numpy()
    with ops.conv_path(path):
        got = ops.conv2d(mx.array(x), mx.array(w), None if b is None else mx.array(b),
                         stride=stride, padding=padding, dilation=dilation, groups=groups)
    _close(got, ref)


def test_path_choice_follows_device():
    on_cpu = mx.default_device() == mx.cpu
    with ops.conv_path("auto"):
        for op, kw, cpu_path in [
            ("conv1d", {}, "matmul"),
            ("conv1d", {"dilation": 3}, "matmul"),
            ("conv1d", {"stride": 5}, "native"),
            ("conv_transpose1d", {"stride": 10}, "matmul"),
            ("conv2d", {}, "native"),
            ("conv2d", {"dilation": (1, 2)}, "matmul"),
        ]:
            assert ops.active_path(op, **kw) == (cpu_path if on_cpu else "native"), (op, kw)
    with ops.conv_path("native"):
        assert ops.active_path("conv_transpose1d") == "native"
    with ops.conv_path("matmul"):
        assert ops.active_path("conv2d") == "matmul"
    with pytest.raises(ValueError, match="conv path"):
        ops.set_conv_path("fast")


def test_bad_shapes_raise_with_shapes():
    x = mx.zeros((1, 10, 6))
    with pytest.raises(ValueError, match=r"C_in=4.*\(1, 10, 6\)"):
        ops.conv1d(x, mx.zeros((3, 3, 4)))
    with pytest.raises(ValueError, match="groups=4"):
        ops.conv1d(x, mx.zeros((3, 3, 2)), groups=4)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        ops.conv1d(x, mx.zeros((3, 3, 6)), mx.zeros((4,)))
    with pytest.raises(ValueError, match="3 dims"):
        ops.conv1d(mx.zeros((10, 6)), mx.zeros((3, 3, 6)))
    with ops.conv_path("matmul"), pytest.raises(ValueError, match="shorter"):
        ops.conv1d(mx.zeros((1, 2, 6)), mx.zeros((3, 5, 6)))
    with pytest.raises(ValueError, match="output_padding"):
        ops.conv_transpose1d(x, mx.zeros((3, 4, 6)), stride=2, output_padding=2)


REAL_LAYERS = [
    # v2-48k decoder and HuBERT layers at their real channel widths, short lengths (matmul path;
    # the benchmark runs them at full length).
    ("conv1d", dict(B=1, T=40, cin=192, cout=512, K=7, padding=3)),  # conv_pre
    ("convt", dict(B=1, T=12, cin=512, cout=256, K=24, stride=12, padding=6)),  # ups0
    ("convt", dict(B=1, T=30, cin=256, cout=128, K=20, stride=10, padding=5)),  # ups1
    ("conv1d", dict(B=1, T=300, cin=256, cout=256, K=11, dilation=5, padding=25)),  # ResBlock1
    ("conv1d", dict(B=1, T=800, cin=1, cout=256, K=80, stride=40, padding=20)),  # noise_convs[0]
    ("conv1d", dict(B=1, T=60, cin=768, cout=768, K=128, padding=64, groups=16)),  # pos_conv
    ("conv1d", dict(B=2, T=400, cin=1, cout=512, K=10, stride=5)),  # HuBERT conv 0
]


REAL_IDS = [f"{kind}_{i}" for i, (kind, _) in enumerate(REAL_LAYERS)]


@pytest.mark.parametrize("kind,p", REAL_LAYERS, ids=REAL_IDS)
def test_real_layer_shapes(kind, p):
    r = _rng("real", kind, sorted(p.items()))
    g, s, pad = p.get("groups", 1), p.get("stride", 1), p.get("padding", 0)
    x = r.standard_normal((p["B"], p["T"], p["cin"]), dtype=np.float32)
    b = r.standard_normal(p["cout"], dtype=np.float32)
    xt, bt = torch.from_numpy(x).permute(0, 2, 1), torch.from_numpy(b)
    with ops.conv_path("matmul"):
        if kind == "convt":
            wt = r.standard_normal((p["cin"], p["cout"], p["K"]), dtype=np.float32)
            ref = F.conv_transpose1d(xt, torch.from_numpy(wt), bt, s, pad)
            got = ops.conv_transpose1d(mx.array(x), mx.array(_torch_to_mlx_transposed(wt, 1)),
                                       mx.array(b), stride=s, padding=pad)
        else:
            w = r.standard_normal((p["cout"], p["K"], p["cin"] // g), dtype=np.float32)
            d = p.get("dilation", 1)
            ref = F.conv1d(xt, torch.from_numpy(w).permute(0, 2, 1), bt, s, pad, d, g)
            got = ops.conv1d(mx.array(x), mx.array(w), mx.array(b), stride=s, padding=pad,
                             dilation=d, groups=g)
    _close(got, ref.permute(0, 2, 1).numpy())


def test_matmul_path_under_compile():
    r = _rng("compile")
    x = mx.array(r.standard_normal((2, 50, 16), dtype=np.float32))
    w = mx.array(r.standard_normal((8, 7, 16), dtype=np.float32))
    wt = mx.array(r.standard_normal((8, 4, 8), dtype=np.float32))
    with ops.conv_path("matmul"):

        def f(x):
            y = ops.conv1d(x, w, padding=9, dilation=3)
            return ops.conv_transpose1d(y, wt, stride=2, padding=1)

        eager = np.array(f(x))
        compiled = np.array(mx.compile(f)(x))
    assert eager.shape == (2, 100, 8)
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-6)
