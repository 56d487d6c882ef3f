"""Small building blocks of the RVC synthesizer reference: weight-norm convolutions and helpers.

Weight norm is written out as explicit parameters, the way upstream checkpoints store it
(the old ``torch.nn.utils.weight_norm`` form): a magnitude ``weight_g`` and a direction
``weight_v``; the effective kernel is ``w = g * v / ||v||`` with the norm taken over every axis
except axis 0 (the output axis of a Conv1d, the *input* axis of a ConvTranspose1d, as torch's
``dim=0`` default does). Keeping them as plain parameters makes the state-dict keys match the
saved ``.pth`` files without hooks, and makes the fusion visible for the MLX port.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with dilation."""
    return (kernel_size * dilation - dilation) // 2


def sequence_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True on valid frames."""
    if max_length is None:
        max_length = int(lengths.max())
    steps = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    """L2 norm of ``v`` over every axis but 0, kept as (N, 1, ..., 1) (torch's norm_except_dim)."""
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def fuse_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Effective kernel ``g * v / ||v||`` (norm over all axes but 0).

    Uses torch's own fused op (the one its ``weight_norm`` hook calls) so the kernel is
    bit-identical to upstream's; the plain formula is the fallback.
    """
    if hasattr(torch, "_weight_norm"):
        return torch._weight_norm(v, g, 0)
    return v * (g / norm_except_dim0(v))


class _WeightNormMixin:
    """Shared init of ``weight_g``/``weight_v`` from a conventionally initialised kernel."""

    weight_g: nn.Parameter
    weight_v: nn.Parameter

    def _init_from(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        # registration order bias, weight_g, weight_v: the order torch's weight_norm leaves
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.weight_g = nn.Parameter(norm_except_dim0(weight.detach()).clone())
        self.weight_v = nn.Parameter(weight.detach().clone())

    @property
    def weight(self) -> torch.Tensor:
        """The fused kernel (a tensor computed from g and v, not a parameter)."""
        return fuse_weight_norm(self.weight_g, self.weight_v)


class WNConv1d(_WeightNormMixin, nn.Module):
    """Conv1d with weight norm; keys ``weight_g`` (O,1,1), ``weight_v`` (O,I,K), ``bias`` (O).

    Initialised like upstream: torch's default Conv1d init for v (and bias), then g = ||v||.
    Input/output (B, C, T).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = True):
        super().__init__()
        ref = nn.Conv1d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                        bias=bias)
        self._init_from(ref.weight, ref.bias)
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(_WeightNormMixin, nn.Module):
    """ConvTranspose1d with weight norm; ``weight_g`` (I,1,1), ``weight_v`` (I,O,K), ``bias`` (O).

    The norm runs over axes 1, 2 of the (in, out, k) kernel, as torch's ``weight_norm(dim=0)``
    does for a transposed convolution. Input/output (B, C, T).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        ref = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, padding,
                                 bias=bias)
        self._init_from(ref.weight, ref.bias)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding)


def fused_add_tanh_sigmoid_multiply(a: torch.Tensor, b: torch.Tensor, n_channels: int):
    """WaveNet gate: tanh(first half of a+b) * sigmoid(second half). (B, 2C, T) -> (B, C, T)."""
    s = a + b
    return torch.tanh(s[:, :n_channels]) * torch.sigmoid(s[:, n_channels:])


def rel_stddev(k_channels: int) -> float:
    """Std of upstream's relative-position embedding init: k_channels ** -0.5."""
    return 1.0 / math.sqrt(k_channels)
