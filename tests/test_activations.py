"""The CPU fast path of the exact GELU agrees with float64 and with MLX's own kernel."""

import math

import numpy as np
import pytest

from rvclab.mlx import activations  # prepares the runtime before mlx.core loads
from rvclab.tolerances import GELU_POLY_MAX_ABS

mx, nn = activations.mx, activations.nn


def _reference(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)(x.astype(np.float64) / math.sqrt(2.0))
    return 0.5 * x.astype(np.float64) * (1.0 + erf)


@pytest.mark.parametrize("path", ["poly", "native"])
def test_gelu_matches_float64(monkeypatch, path):
    monkeypatch.setenv("RVCLAB_GELU_PATH", path)
    x = np.concatenate([np.linspace(-12, 12, 200_001), [0.0, -0.0, 1e-30, -1e-30, 3.9 * math.sqrt(2)]])
    x = x.astype(np.float32)
    got = np.array(activations.gelu(mx.array(x)))
    err = np.abs(got - _reference(x))
    assert err.max() <= GELU_POLY_MAX_ABS, f"{path}: max abs error {err.max():.3g} at x={x[err.argmax()]}"
    assert np.isfinite(got).all()


def test_poly_and_native_agree_on_activations(monkeypatch):
    x = mx.array(np.random.default_rng(0).standard_normal((64, 3, 257)).astype(np.float32) * 4)
    monkeypatch.setenv("RVCLAB_GELU_PATH", "poly")
    poly = np.array(activations.gelu(x))
    monkeypatch.setenv("RVCLAB_GELU_PATH", "native")
    native = np.array(activations.gelu(x))
    assert poly.shape == native.shape == (64, 3, 257)
    assert np.abs(poly - native).max() <= 2 * GELU_POLY_MAX_ABS
    # the two paths are different computations, so they must not be bit-identical
    assert not np.array_equal(poly, native)


def test_gelu_path_choice(monkeypatch):
    monkeypatch.delenv("RVCLAB_GELU_PATH", raising=False)
    expected = "poly" if mx.default_device() == mx.cpu else "native"
    assert activations.gelu_path() == expected
    monkeypatch.setenv("RVCLAB_GELU_PATH", "fastest")
    with pytest.raises(ValueError, match="RVCLAB_GELU_PATH"):
        activations.gelu_path()


def test_non_float32_uses_native(monkeypatch):
    monkeypatch.setenv("RVCLAB_GELU_PATH", "poly")
    x = mx.array(np.linspace(-3, 3, 11).astype(np.float16))
    got = activations.gelu(x)
    assert got.dtype == mx.float16
    assert np.array_equal(np.array(got), np.array(nn.gelu(x)))


# --- exp-based activations (sigmoid, tanh, SiLU, GLU) -------------------------------------------
def _wide_inputs() -> np.ndarray:
    return np.concatenate([
        np.linspace(-100, 100, 400_001), np.linspace(-1.5, 1.5, 300_001),
        np.geomspace(1e-30, 1e-2, 2001), -np.geomspace(1e-30, 1e-2, 2001),
        [0.0, -0.0, 87.3, 87.9, 88.0, -88.0, -104.0, 1e30, -1e30, 1.0, -1.0],
    ]).astype(np.float32)


def _ref_sigmoid(x):
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("path", ["poly", "native"])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "silu"])
def test_exp_activations_match_float64(monkeypatch, path, name):
    from rvclab.tolerances import EXP_ACT_MAX_ABS

    monkeypatch.setenv("RVCLAB_ACT_PATH", path)
    x = _wide_inputs()
    if name == "silu":
        x = x[np.abs(x) <= 20]  # x * sigmoid(x): the bound is per unit of |x|
    got = np.array(getattr(activations, name)(mx.array(x))).astype(np.float64)
    ref = {"sigmoid": _ref_sigmoid(x), "tanh": np.tanh(x.astype(np.float64)),
           "silu": x.astype(np.float64) * _ref_sigmoid(x)}[name]
    err = np.abs(got - ref)
    if name == "silu":
        err = err / np.maximum(1.0, np.abs(x))
    assert np.isfinite(got).all()
    assert err.max() <= EXP_ACT_MAX_ABS, f"{path} {name}: max abs {err.max():.3g} at x={x[err.argmax()]}"
    if name == "tanh":  # odd, exactly 0 at 0 and tiny inputs returned to full relative precision
        small = (np.abs(x) < 1e-3) & (x != 0)
        assert np.max(np.abs(got[small] - ref[small]) / np.abs(ref[small])) < 1e-6
        assert got[x == 0].tolist() == [0.0] * int((x == 0).sum())


def test_glu_is_a_times_sigmoid_b(monkeypatch):
    monkeypatch.setenv("RVCLAB_ACT_PATH", "poly")
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal((2, 50, 64)).astype(np.float32) * 5 for _ in range(2))
    got = np.array(activations.glu(mx.array(a), mx.array(b)))
    assert np.abs(got - a * _ref_sigmoid(b)).max() <= 5 * 2e-7 * 5


def test_exp_activations_special_values(monkeypatch):
    monkeypatch.setenv("RVCLAB_ACT_PATH", "poly")
    x = mx.array(np.array([np.nan, np.inf, -np.inf, 0.0], np.float32))
    s = np.array(activations.sigmoid(x))
    t = np.array(activations.tanh(x))
    assert np.isnan(s[0]) and np.isnan(t[0])
    assert s[1] == 1.0 and s[3] == 0.5 and 0.0 <= s[2] < 1e-38  # the clamp leaves a denormal at -inf
    assert t[1:].tolist() == [1.0, -1.0, 0.0]


def test_act_path_choice_and_fallbacks(monkeypatch):
    monkeypatch.delenv("RVCLAB_ACT_PATH", raising=False)
    assert activations.act_path() == ("poly" if mx.default_device() == mx.cpu else "native")
    monkeypatch.setenv("RVCLAB_ACT_PATH", "poly")
    half = mx.array(np.linspace(-3, 3, 7).astype(np.float16))  # not float32: MLX's kernel
    assert np.array_equal(np.array(activations.sigmoid(half)), np.array(mx.sigmoid(half)))
    x = mx.array(np.linspace(-8, 8, 1001).astype(np.float32))
    poly = np.array(activations.tanh(x))
    monkeypatch.setenv("RVCLAB_ACT_PATH", "native")
    assert np.array_equal(np.array(activations.tanh(x)), np.array(mx.tanh(x)))
    assert not np.array_equal(poly, np.array(mx.tanh(x)))  # two different computations
    monkeypatch.setenv("RVCLAB_ACT_PATH", "quick")
    with pytest.raises(ValueError, match="RVCLAB_ACT_PATH"):
        activations.act_path()
