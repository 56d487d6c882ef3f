"""Sums in a fixed, blocked order, for the MLX TextEncoder's float32 precision.

MLX's reductions (``mx.sum``, ``mx.mean``, the sums inside ``mx.softmax`` and
``mx.fast.layer_norm``) and a matmul's contraction add their terms largely in sequence, so their
rounding error grows with the number of terms; torch's CPU kernels sum in blocks (cascade sums,
oneDNN's split contraction). Summing in blocks and then adding the block sums keeps the error of
each output near that of a short sum, on any device. docs/synthesizer.md ("TextEncoder
precision") gives the measured effect; :mod:`rvclab.models.synth.mlx.attention` and
:class:`rvclab.models.synth.mlx.layers.Conv1d` / ``Linear`` (``k_block``) use these.
"""

from __future__ import annotations

import mlx.core as mx

SUM_BLOCK = 8  # terms per partial sum in :func:`blocked_sum` (then the partial sums, recursively)
MATMUL_K_BLOCK = 32  # contraction terms per partial product in :func:`blocked_matmul`


def blocked_sum(x, block: int = SUM_BLOCK):
    """Sum over the last axis of ``x`` (..., N) -> (..., 1): blocks of ``block`` terms (zero-padded),
    then the block sums the same way until at most ``block`` remain."""
    if block < 2:
        raise ValueError(f"blocked_sum block must be >= 2, got {block}")
    n = x.shape[-1]
    if n <= block:
        return mx.sum(x, axis=-1, keepdims=True)
    pad = (-n) % block
    if pad:
        x = mx.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return blocked_sum(mx.sum(x.reshape(*x.shape[:-1], -1, block), axis=-1), block)


def blocked_matmul(x, w_t, block: int = MATMUL_K_BLOCK):
    """``x`` (..., K) @ ``w_t`` (K, N) -> (..., N), the contraction in slices of ``block`` terms whose
    products are added in order."""
    k = w_t.shape[0]
    if x.shape[-1] != k:
        raise ValueError(f"blocked_matmul: x has {x.shape[-1]} features, the weight {k}")
    out = x[..., :block] @ w_t[:block]
    for start in range(block, k, block):
        out = out + x[..., start:start + block] @ w_t[start:start + block]
    return out


def softmax(x):
    """Softmax over the last axis of ``x`` (..., N), its denominator a :func:`blocked_sum`."""
    e = mx.exp(x - mx.max(x, axis=-1, keepdims=True))
    return e / blocked_sum(e)


def layer_norm(x, gamma, beta, eps: float):
    """LayerNorm over the last axis of ``x`` (..., C): two-pass mean and variance, each a
    :func:`blocked_sum`; ``gamma``, ``beta`` (C,)."""
    n = x.shape[-1]
    centred = x - blocked_sum(x) / n
    var = blocked_sum(centred * centred) / n
    return centred * mx.rsqrt(var + eps) * gamma + beta
