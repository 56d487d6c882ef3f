"""Layers of the MLX RMVPE port: reflect padding, Conv2d / ConvTranspose2d / BatchNorm2d with
torch's parameter names, BatchNorm folding into convs, pooling. The network is :mod:`rvclab.models.rmvpe.mlx`.

Layout: torch (B, C, T, F) is MLX (B, T, F, C). MLX has no reflect padding, so :func:`reflect_pad`
builds it from slices.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from rvclab.mlx import ops


# --- padding ---------------------------------------------------------------------------------
def reflect_pad(x: mx.array, axis: int, left: int, right: int) -> mx.array:
    """Reflect (mirror without repeating the edge) along ``axis``, as torch's mode="reflect".

    Needs ``left, right < x.shape[axis]``; raises ValueError otherwise.
    """
    n = x.shape[axis]
    if left >= n or right >= n:
        raise ValueError(f"reflect padding of ({left}, {right}) needs more than "
                         f"{max(left, right)} samples along axis {axis}; got {n}")
    parts = []
    if left:
        idx = mx.arange(left, 0, -1)
        parts.append(mx.take(x, idx, axis=axis))
    parts.append(x)
    if right:
        idx = mx.arange(n - 2, n - 2 - right, -1)
        parts.append(mx.take(x, idx, axis=axis))
    return mx.concatenate(parts, axis=axis) if len(parts) > 1 else x


# --- derived weights ---------------------------------------------------------------------------
class _Derived:
    """Arrays computed from parameters (e.g. BatchNorm folded into conv weights), kept outside
    the parameter tree. Rebuilt whenever a source array object is replaced (``load_weights``,
    ``update``), so the cache never goes stale; computed lazily with the first forward pass."""

    def __init__(self):
        self._src: tuple = ()
        self._val = None

    def get(self, src: tuple, build):
        if len(src) != len(self._src) or any(a is not b for a, b in zip(src, self._src)):
            self._val, self._src = build(), src
        return self._val


def fold_batchnorm(w: mx.array, b: mx.array | None, bn: BatchNorm2d):
    """conv (w (O, ...), b (O,) or None) followed by eval-mode ``bn`` -> one conv's (w', b').

    bn(conv(x)) = conv(x) * s + (beta - mean * s), s = gamma / sqrt(var + eps); so w' = w * s
    per output channel and b' = (b or 0) * s + beta - mean * s. Exact up to fp32 rounding.
    """
    scale = bn.weight * mx.rsqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if b is not None:
        shift = shift + b * scale
    return w * scale.reshape((-1,) + (1,) * (w.ndim - 1)), shift


def _bn_src(bn: BatchNorm2d) -> tuple:
    return (bn.weight, bn.bias, bn.running_mean, bn.running_var)


# --- layers (torch names and parameter names) --------------------------------------------------
class Conv2d(nn.Module):
    """weight (O, kH, kW, I) [torch (O, I, kH, kW)], optional bias (O,). NHWC in and out."""

    def __init__(self, in_ch, out_ch, kernel, padding=0, bias=True):
        super().__init__()
        self.weight = mx.zeros((out_ch, kernel, kernel, in_ch))
        if bias:
            self.bias = mx.zeros((out_ch,))
        self.padding = padding

    def __call__(self, x):
        return ops.conv2d(x, self.weight, self.get("bias"), padding=self.padding)


class ConvTranspose2d(nn.Module):
    """weight (O, kH, kW, I) [torch (I, O, kH, kW)]; stride, padding, output_padding as torch.

    RMVPE's case (kernel 3, stride 2, padding 1, output_padding 1: T -> 2T) runs as a polyphase
    2x2 convolution on the matmul path of :mod:`rvclab.mlx.ops`: output row 2m takes tap 1 at
    input m; row 2m+1 takes tap 2 at m and tap 0 at m+1 (same along the mel axis). The four
    phases are four output-channel blocks of one conv, interleaved by a reshape (why not MLX's
    own transposed convolution: docs/rmvpe.md).
    """

    _TAPS = ((1, 3), (2, 0))  # per phase: kernel index used at input offset 0 and 1 (3 = zero)

    def __init__(self, in_ch, out_ch, kernel, stride, padding, output_padding):
        super().__init__()
        self.weight = mx.zeros((out_ch, kernel, kernel, in_ch))
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self._derived = _Derived()

    def _polyphase_weight(self) -> mx.array:
        w = mx.pad(self.weight, [(0, 0), (0, 1), (0, 1), (0, 0)])  # (O, 4, 4, I), tap 3 = 0
        blocks = []
        for ph in self._TAPS:
            rows = mx.take(w, mx.array(ph), axis=1)
            for pw in self._TAPS:
                blocks.append(mx.take(rows, mx.array(pw), axis=2))  # (O, 2, 2, I)
        return mx.concatenate(blocks, axis=0)  # (4 * O, 2, 2, I), blocks (ph, pw)

    def __call__(self, x, bn: BatchNorm2d | None = None):
        """(B, T, F, I) -> (B, 2T, 2F, O); with an eval-mode ``bn``, bn(conv(x)) with the
        BatchNorm folded into the polyphase weights and bias."""
        k = self.weight.shape[1]
        if (k, self.stride, self.padding, self.output_padding) != (3, 2, 1, 1):
            y = mx.conv_transpose2d(x, self.weight, stride=self.stride,
                                    padding=self.padding, output_padding=self.output_padding)
            return y if bn is None else bn(y)
        if bn is not None and bn.train_mode:
            return bn(self(x))
        b, t, f, _ = x.shape
        o = self.weight.shape[0]

        def build():
            w = self._polyphase_weight()
            if bn is None:
                return w, None
            w, shift = fold_batchnorm(w, None, _Tiled(bn, 4))
            return w, shift

        src = (self.weight,) + (() if bn is None else _bn_src(bn))
        w, bias = self._derived.get(src, build)
        xp = mx.pad(x, [(0, 0), (0, 1), (0, 1), (0, 0)])  # input m + 1 past the end is zero
        y = ops.conv2d(xp, w, bias)  # (B, T, F, 4 * O)
        y = y.reshape(b, t, f, 2, 2, o).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, 2 * t, 2 * f, o)


class BatchNorm2d(nn.Module):
    """Eval-mode BatchNorm over the last (channel) axis, using the running statistics."""

    def __init__(self, ch, eps=1e-5):
        super().__init__()
        self.weight = mx.ones((ch,))
        self.bias = mx.zeros((ch,))
        self.running_mean = mx.zeros((ch,))
        self.running_var = mx.ones((ch,))
        self.eps = eps
        self.train_mode = False  # True = batch statistics (a bug in inference; see notebook 02)

    def __call__(self, x):
        if self.train_mode:
            axes = tuple(range(x.ndim - 1))
            mean, var = mx.mean(x, axis=axes), mx.var(x, axis=axes)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * mx.rsqrt(var + self.eps)
        return x * scale + (self.bias - mean * scale)


class _Tiled:
    """A BatchNorm's statistics repeated ``n`` times along the channel axis (polyphase blocks)."""

    def __init__(self, bn: BatchNorm2d, n: int):
        self.weight, self.bias = mx.tile(bn.weight, n), mx.tile(bn.bias, n)
        self.running_mean, self.running_var = mx.tile(bn.running_mean, n), mx.tile(bn.running_var, n)
        self.eps = bn.eps


class ReLU(nn.Module):
    def __call__(self, x):
        return nn.relu(x)


class Sigmoid(nn.Module):
    def __call__(self, x):
        return mx.sigmoid(x)


class Dropout(nn.Module):
    """Identity at inference (p = 0.25 upstream); keeps the index of ``fc.2``."""

    def __call__(self, x):
        return x


def avg_pool2(x: mx.array) -> mx.array:
    """2x2 average pooling, stride 2: (B, T, F, C) -> (B, T/2, F/2, C)."""
    b, t, f, c = x.shape
    return x.reshape(b, t // 2, 2, f // 2, 2, c).mean(axis=(2, 4))
