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
