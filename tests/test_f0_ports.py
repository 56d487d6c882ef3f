"""Building blocks of the MLX CREPE / FCPE ports against plain references (small shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from rvclab.runtime import import_mlx

mx = import_mlx()


@pytest.mark.parametrize("in_ch,out_ch,k,stride,pad", [(1, 8, 16, 4, (6, 6)), (8, 4, 5, 1, (2, 2)),
                                                       (4, 8, 5, 1, (1, 3))])
@pytest.mark.parametrize("method", ["unfold", "shift"])
def test_timeconv_paths_match_conv1d(in_ch, out_ch, k, stride, pad, method):
    from rvclab.models.crepe.mlx import TimeConv

    if method == "shift" and stride != 1:
        pytest.skip("the shift path is for stride 1")
    rng = np.random.RandomState(0)
    x = rng.randn(3, 40, in_ch).astype(np.float32)
    conv = TimeConv(in_ch, out_ch, k, stride)
    conv.weight = mx.array(rng.randn(out_ch, k, 1, in_ch).astype(np.float32))
    conv.bias = mx.array(rng.randn(out_ch).astype(np.float32))
    conv.method = lambda length: method
    got = np.array(conv(mx.array(x), pad))
    xp = np.pad(x, [(0, 0), pad, (0, 0)])
    want = np.array(mx.conv1d(mx.array(xp), conv.weight[:, :, 0, :], stride=stride)) + \
        np.array(conv.bias)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_fcpe_decoders_agree_across_backends():
    import torch

    from rvclab.models.fcpe.mlx import decode as mlx_decode
    from rvclab.models.fcpe.torch import decode as torch_decode

    rng = np.random.RandomState(1)
    latent = rng.rand(2, 30, 360).astype(np.float32) ** 8  # peaky, some frames below threshold
    latent[0, 3] = 0.001
    latent[1, 5, :3] = 0.99  # argmax at the lower edge: clamped local window
    table = np.linspace(1800, 7000, 360).astype(np.float32)
    for mode in ("local_argmax", "argmax"):
        f_t, c_t = torch_decode(torch.from_numpy(latent), torch.from_numpy(table), mode, 0.006)
        f_m, c_m = mlx_decode(mx.array(latent), mx.array(table), mode, 0.006)
        np.testing.assert_allclose(np.array(f_m), f_t.numpy(), rtol=1e-5)
        np.testing.assert_array_equal(np.array(c_m), c_t.numpy())
        assert np.array(f_m)[0, 3] == 0.0


def test_crepe_decode_range_and_dither_are_seeded():
    from rvclab.models.crepe.f0 import decode

    rng = np.random.RandomState(2)
    probs = rng.rand(40, 360).astype(np.float32) * 0.2
    probs[:, 150] = 0.95  # a clear peak at bin 150 (~ 1997 + 3000 cents ~ 178 Hz)
    f1, p1 = decode(probs, seed=5)
    f2, p2 = decode(probs, seed=5)
    f3, _ = decode(probs, seed=6)
    np.testing.assert_array_equal(f1, f2)
    assert not np.array_equal(f1, f3)
    cents = 1200 * np.log2(f1 / 10.0)
    assert np.all(np.abs(cents - (1997.3794 + 20 * 150)) <= 20.0)  # dither within +-20 cents
    np.testing.assert_allclose(p1, 0.95)
    f_low, _ = decode(probs, f0_min=300.0, f0_max=1100.0, seed=5)  # peak masked out of range
    assert np.all(f_low >= 290.0)


@pytest.mark.parametrize("batch, t, k", [(1, 57, 31), (2, 40, 31), (1, 9, 4), (1, 3, 1)])
def test_fcpe_depthwise_conv_is_the_tap_loop(batch, t, k):
    """Two taps per compiled kernel on (k, C) weights: bit-identical to one multiply-add per tap in
    order, and torch's depthwise conv1d to fp32 rounding."""
    import torch

    from rvclab.models.fcpe.mlx import depthwise_conv

    mx = import_mlx()
    rng = np.random.default_rng(t + k)
    x = rng.standard_normal((batch, t, 24)).astype(np.float32)
    w = rng.standard_normal((24, k)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    got = np.array(depthwise_conv(mx.array(x), mx.array(w), mx.array(b)))
    xp = np.pad(x, [(0, 0), (k // 2, k // 2), (0, 0)])
    loop = mx.array(xp[:, 0:t]) * mx.array(w[:, 0])
    for j in range(1, k):
        loop = loop + mx.array(xp[:, j:j + t]) * mx.array(w[:, j])
    assert np.array_equal(got, np.array(loop + mx.array(b)))
    if k % 2:  # torch's padding k // 2 on both sides keeps the length for odd k
        ref = torch.nn.functional.conv1d(torch.from_numpy(x).transpose(1, 2), torch.from_numpy(w)[:, None, :],
                                         torch.from_numpy(b), padding=k // 2, groups=24).transpose(1, 2).numpy()
        assert np.abs(got - ref).max() < 1e-5
