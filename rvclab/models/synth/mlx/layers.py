"""Small building blocks of the MLX synthesizer: convolutions, Linear, Embedding, leaky ReLU, masks.

Layout ``(B, T, C)`` (torch: ``(B, C, T)``). Kernels arrive fused and transposed by
:mod:`rvclab.models.synth.rules`: conv1d and conv_transpose1d weights ``(O, K, I)``.
Every convolution of the synthesizer goes through :func:`conv1d` / :func:`conv_transpose1d`,
so a faster kernel is swapped in at one place.
"""

from __future__ import annotations

import functools

import mlx.core as mx
import mlx.nn as nn

from rvclab.mlx import ops
from rvclab.mlx.accumulate import blocked_matmul
from rvclab.models.synth.config import LRELU_SLOPE


# --- the one place where convolutions are computed ------------------------------------------------
def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """``x`` (B, T, I), ``w`` (O, K, I/groups), ``b`` (O,) -> (B, T', O), as torch's conv1d."""
    if w.shape[1] == 1 and stride == 1 and padding == 0 and groups == 1:
        y = x @ w[:, 0, :].T  # a 1x1 conv is a matmul
        return y if b is None else y + b
    return ops.conv1d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_transpose1d(x, w, b=None, stride=1, padding=0, output_padding=0):
    """``x`` (B, T, I), ``w`` (O, K, I), ``b`` (O,) -> (B, T', O), as torch's conv_transpose1d."""
    return ops.conv_transpose1d(x, w, b, stride=stride, padding=padding,
                                output_padding=output_padding)


# --- layers ---------------------------------------------------------------------------------------
class Conv1d(nn.Module):
    """Conv1d with torch's arguments; ``weight`` (O, K, I/groups), ``bias`` (O,).

    ``k_block``: for a plain 1x1 conv only, its matmul's contraction summed in slices of this many
    input channels (:func:`rvclab.mlx.accumulate.blocked_matmul`); None: one matmul."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, k_block=None):
        super().__init__()
        if k_block is not None and (kernel_size, stride, padding, dilation, groups) != (1, 1, 0, 1, 1):
            raise ValueError(f"Conv1d k_block={k_block} needs a plain 1x1 conv (kernel 1, stride 1, no padding, "
                             f"dilation 1, groups 1); got kernel {kernel_size}, stride {stride}, padding "
                             f"{padding}, dilation {dilation}, groups {groups}")
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.k_block = k_block
        self.weight = mx.zeros((out_ch, kernel_size, in_ch // groups))
        if bias:
            self.bias = mx.zeros((out_ch,))

    def __call__(self, x):  # (B, T, I) -> (B, T', O)
        if self.k_block is not None:
            y = blocked_matmul(x, self.weight[:, 0, :].T, self.k_block)
            return y + self.bias if "bias" in self else y
        return conv1d(x, self.weight, self.get("bias"), self.stride, self.padding, self.dilation,
                      self.groups)


class ConvTranspose1d(nn.Module):
    """ConvTranspose1d with torch's arguments; ``weight`` (O, K, I), ``bias`` (O,)."""

    def __init__(self, in_ch, out_ch, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True):
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.weight = mx.zeros((out_ch, kernel_size, in_ch))
        if bias:
            self.bias = mx.zeros((out_ch,))

    def __call__(self, x):  # (B, T, I) -> (B, T*stride, O) for padding (K - stride) / 2
        return conv_transpose1d(x, self.weight, self.get("bias"), self.stride, self.padding,
                                self.output_padding)


class Linear(nn.Module):
    """torch-style Linear: ``weight`` (out, in), ``bias`` (out,); ``k_block`` as :class:`Conv1d`'s."""

    def __init__(self, in_features, out_features, bias=True, k_block=None):
        super().__init__()
        self.k_block = k_block
        self.weight = mx.zeros((out_features, in_features))
        if bias:
            self.bias = mx.zeros((out_features,))

    def __call__(self, x):
        w_t = self.weight.T
        y = x @ w_t if self.k_block is None else blocked_matmul(x, w_t, self.k_block)
        return y + self.bias if "bias" in self else y


class Embedding(nn.Module):
    """Lookup table ``weight`` (num, dim)."""

    def __init__(self, num, dim):
        super().__init__()
        self.weight = mx.zeros((num, dim))

    def __call__(self, idx):
        return self.weight[idx]


def leaky_relu(x, slope=LRELU_SLOPE):
    """``x`` where positive, ``slope * x`` elsewhere (0 <= slope < 1); any shape.

    Computed as ``max(x, slope * x)``, bit for bit the same values as the select form (for
    ``x > 0``, ``x > slope * x``; otherwise ``slope * x >= x``), in one compiled element-wise
    kernel (faster than compare-and-select on the CPU: docs/synthesizer.md).
    """
    return _leaky_relu_kernel(float(slope))(x)


@functools.lru_cache(maxsize=8)
def _leaky_relu_kernel(slope: float):
    if not 0.0 <= slope < 1.0:
        raise ValueError(f"leaky_relu slope must be in [0, 1), got {slope}")
    return mx.compile(lambda x: mx.maximum(x, x * slope), shapeless=True)


def sequence_mask(lengths, max_len):
    """(B,) int lengths -> (B, T, 1) float mask, 1 on valid frames."""
    return (mx.arange(max_len)[None, :] < lengths[:, None]).astype(mx.float32)[..., None]


def get_padding(kernel_size, dilation=1):
    """'Same' padding of an odd kernel with dilation."""
    return (kernel_size * dilation - dilation) // 2
