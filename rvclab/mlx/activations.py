"""Activations for the MLX port, with a fast exact-GELU path for MLX on the CPU.

``gelu`` is the exact (erf) GELU, ``x * Phi(x)``, as torch's ``nn.GELU()`` default. On a GPU it is
MLX's own ``nn.gelu``. On the CPU, MLX evaluates ``erf`` one element at a time through the C
library, far slower than torch's vectorised kernel (docs/runtime.md has the figures). There we
evaluate erf as a polynomial instead, inside one ``mx.compile``-d element-wise kernel:

* ``erf(u)`` for ``0 <= u <= ERF_CLAMP`` is a degree-``ERF_DEGREE`` Chebyshev interpolant, fitted
  here at import from :func:`math.erf` on Chebyshev nodes and evaluated by Horner's rule in the
  mapped variable ``2u / ERF_CLAMP - 1`` (well conditioned: all coefficients are below 1);
* beyond the clamp ``erf(u)`` is 1 to within 4e-8 (``erfc(3.9)``), below fp32 resolution at 1;
* odd symmetry gives negative arguments.

The error against float64 is bounded by ``rvclab.tolerances.GELU_POLY_MAX_ABS`` (tests compare
the two paths; measured errors and speed in docs/runtime.md). ``RVCLAB_GELU_PATH=auto|poly|native``
overrides the choice.
"""

from __future__ import annotations

import math
import os

import mlx.core as mx
import mlx.nn as nn
import numpy as np

ERF_CLAMP = 3.9
ERF_DEGREE = 16
_PATHS = ("auto", "poly", "native")


def _erf_coefficients() -> list[float]:
    """Power-basis coefficients (highest first) of erf on [0, ERF_CLAMP] in t = 2u/clamp - 1."""
    nodes = np.cos(np.pi * (np.arange(256) + 0.5) / 256)
    values = [math.erf((t + 1.0) * ERF_CLAMP / 2.0) for t in nodes]
    cheb = np.polynomial.chebyshev.chebfit(nodes, values, ERF_DEGREE)
    return [float(c) for c in np.polynomial.chebyshev.cheb2poly(cheb)[::-1]]


_ERF_COEF = _erf_coefficients()
_TO_T = 2.0 / ERF_CLAMP / math.sqrt(2.0)  # x -> t for u = |x| / sqrt(2)


def _gelu_poly(x: mx.array) -> mx.array:
    t = mx.minimum(mx.abs(x) * _TO_T, 2.0) - 1.0
    erf = _ERF_COEF[0]
    for c in _ERF_COEF[1:]:
        erf = erf * t + c
    return 0.5 * x * (1.0 + mx.where(x < 0, -erf, erf))


_gelu_poly_compiled = mx.compile(_gelu_poly, shapeless=True)


def _path_from_env(var: str) -> str:
    """``"poly"`` or ``"native"`` from env ``var`` (auto: the polynomial kernels on the CPU only)."""
    choice = os.environ.get(var, "auto").strip().lower() or "auto"
    if choice not in _PATHS:
        raise ValueError(f"{var} must be one of {', '.join(_PATHS)}, got {choice!r}")
    if choice != "auto":
        return choice
    return "poly" if mx.default_device() == mx.cpu else "native"


def gelu_path() -> str:
    """``"poly"`` or ``"native"``: what :func:`gelu` uses now (env ``RVCLAB_GELU_PATH``)."""
    return _path_from_env("RVCLAB_GELU_PATH")


def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU of any shape; float32 in, float32 out."""
    if gelu_path() == "poly" and x.dtype == mx.float32:
        return _gelu_poly_compiled(x)
    return nn.gelu(x)


# --- exp-based activations: sigmoid, tanh, SiLU, GLU ---------------------------------------------
# MLX's CPU backend evaluates exp, sigmoid and tanh one element at a time through the C library
# (15-20 ns per element on the build machine, against 0.25 ns for a multiply): FCPE spends most
# of its time in the sigmoids of its GLU and SiLU layers, and the BiGRU pays them at every step.
# On the CPU these run instead as compiled element-wise kernels around a polynomial exp:
#
# * ``exp(x) = 2**n * exp(r)`` with ``n = round(x / ln 2)`` and ``r = x - n ln 2`` in [-ln2/2, ln2/2]
#   (ln 2 split in two parts so that ``n ln 2`` is exact); ``exp(r)`` is a degree-``EXP_DEGREE``
#   Chebyshev interpolant fitted here at import; ``2**n`` is built from its float32 bit pattern.
#   Arguments are clamped to [``EXP_MIN``, ``EXP_MAX``], where 2**n stays a normal float32.
# * ``sigmoid(x) = 1 / (1 + exp(-x))`` (no cancellation on either side).
# * ``tanh(x)``: below ``TANH_SMALL`` in magnitude ``x * q(x*x)``, a Chebyshev interpolant of
#   tanh(x)/x (no cancellation near 0); above it ``2 sigmoid(2x) - 1``.
#
# Max abs error against float64 on the inputs of ``tests/test_activations.py`` (about 700k values
# on [-100, 100], tiny and special ones): sigmoid 8.8e-8, tanh 1.8e-7 (MLX's own kernels: 8.6e-8
# and 1.0e-7); the bound is
# ``rvclab.tolerances.EXP_ACT_MAX_ABS``. On the CPU: sigmoid 4.6x, SiLU 3.7x, tanh 2.3x faster
# than MLX's kernels on 1M elements; FCPE's network on 5 s: 333 -> 233 ms (same depthwise conv,
# MLX's kernels vs these). The BiGRU keeps MLX's
# kernels: its per-step arrays are too small for the gain to show (measured, no change).
# ``RVCLAB_ACT_PATH=auto|poly|native`` overrides the choice, as ``RVCLAB_GELU_PATH`` does for GELU.

EXP_DEGREE = 7
EXP_MIN, EXP_MAX = -87.3, 87.9
TANH_SMALL = 1.0
TANH_SMALL_DEGREE = 8
_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # 11 significant bits: n * _LN2_HI is exact for |n| <= 128
_LN2_LO = math.log(2.0) - _LN2_HI


def _chebyshev_power(fn, lo: float, hi: float, degree: int) -> list[float]:
    """Power-basis coefficients (highest first) of fn's interpolant on [lo, hi], in the raw variable."""
    nodes = np.cos(np.pi * (np.arange(256) + 0.5) / 256)
    xs = lo + (nodes + 1.0) * (hi - lo) / 2.0
    fit = np.polynomial.chebyshev.Chebyshev.fit(xs, [fn(v) for v in xs], degree, domain=[lo, hi])
    return [float(c) for c in fit.convert(kind=np.polynomial.Polynomial, domain=[lo, hi],
                                           window=[lo, hi]).coef[::-1]]


_HALF_LN2 = math.log(2.0) / 2.0
_EXP_COEF = _chebyshev_power(math.exp, -_HALF_LN2, _HALF_LN2, EXP_DEGREE)
_TANH_COEF = _chebyshev_power(lambda s: math.tanh(math.sqrt(s)) / math.sqrt(s) if s > 0 else 1.0,
                              0.0, TANH_SMALL * TANH_SMALL, TANH_SMALL_DEGREE)


def _horner(coef: list[float], t: mx.array) -> mx.array:
    acc = coef[0]
    for c in coef[1:]:
        acc = acc * t + c
    return acc


def _exp_poly(x: mx.array) -> mx.array:
    x = mx.clip(x, EXP_MIN, EXP_MAX)
    n = mx.floor(x * _LOG2E + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    scale = mx.view(mx.left_shift(n.astype(mx.int32) + 127, 23), mx.float32)
    return _horner(_EXP_COEF, r) * scale


def _sigmoid_poly(x: mx.array) -> mx.array:
    return 1.0 / (1.0 + _exp_poly(-x))


def _tanh_poly(x: mx.array) -> mx.array:
    big = 2.0 / (1.0 + _exp_poly(-2.0 * x)) - 1.0  # = 2 sigmoid(2x) - 1
    small = x * _horner(_TANH_COEF, x * x)
    return mx.where(mx.abs(x) < TANH_SMALL, small, big)


_sigmoid_compiled = mx.compile(_sigmoid_poly)
_tanh_compiled = mx.compile(_tanh_poly)
_silu_compiled = mx.compile(lambda x: x * _sigmoid_poly(x))
_glu_compiled = mx.compile(lambda a, b: a * _sigmoid_poly(b))


def act_path() -> str:
    """``"poly"`` or ``"native"``: what :func:`sigmoid` and :func:`tanh` use now (``RVCLAB_ACT_PATH``)."""
    return _path_from_env("RVCLAB_ACT_PATH")


def _poly(x: mx.array) -> bool:
    return x.dtype == mx.float32 and act_path() == "poly"


def sigmoid(x: mx.array) -> mx.array:
    return _sigmoid_compiled(x) if _poly(x) else mx.sigmoid(x)


def tanh(x: mx.array) -> mx.array:
    return _tanh_compiled(x) if _poly(x) else mx.tanh(x)


def silu(x: mx.array) -> mx.array:
    """x * sigmoid(x)."""
    return _silu_compiled(x) if _poly(x) else x * mx.sigmoid(x)


def glu(a: mx.array, b: mx.array) -> mx.array:
    """a * sigmoid(b)."""
    return _glu_compiled(a, b) if _poly(b) and a.dtype == mx.float32 else a * mx.sigmoid(b)
