"""A GRU with PyTorch's equations and parameter names, for MLX.

PyTorch (and this module), per step with x_t (B, I) and h (B, H):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      # b_hn sits INSIDE the reset-gated term
    h = (1 - z) * n + z * h

Weights are stacked in gate order (r, z, n): ``weight_ih_l{k}`` (3H, I), ``weight_hh_l{k}``
(3H, H), ``bias_ih_l{k}`` / ``bias_hh_l{k}`` (3H,); the reverse direction adds ``_reverse``.
``mlx.nn.GRU`` differs (its own gate order and where the hidden bias enters), so loading
torch weights into it gives wrong outputs; this module takes them as they are.

Speed: the input projections of every timestep are one matmul per direction; the recurrence
(:func:`recurrence`) then runs both directions together, on the path
:func:`rvclab.runtime.mlx_gru_path` picks for MLX's device:

* ``cuda_split`` / ``cuda_block`` / ``metal``: every step in one kernel launch, the hidden state on
  chip (sources and launchers in :mod:`rvclab.models.rmvpe.gru_kernels`);
* ``host`` (MLX on the CPU): numpy on the host, one BLAS product of (D, B, H) x (D, H, 3H) and a
  few vector operations per step (MLX's CPU backend sends a one-row product to ``sgemm``, whose
  fixed cost per call dominates at this size);
* ``loop``: :func:`gru_scan`, a compiled MLX step per time step, evaluated in blocks; the
  reference the other paths are tested against, and what ``RVCLAB_GRU_PATH=loop`` forces.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from rvclab.models.rmvpe import gru_kernels
from rvclab.runtime import mlx_gru_path


def _step(h, gi, w_hh_t, b_hh):
    """One GRU step for a stack of directions.

    h (D, B, H); gi (D, B, 3H) = W_ih x + b_ih; w_hh_t (D, H, 3H); b_hh (D, 1, 3H).
    """
    hidden = h.shape[-1]
    gh = h @ w_hh_t + b_hh
    r = mx.sigmoid(gi[..., :hidden] + gh[..., :hidden])
    z = mx.sigmoid(gi[..., hidden:2 * hidden] + gh[..., hidden:2 * hidden])
    n = mx.tanh(gi[..., 2 * hidden:] + r * gh[..., 2 * hidden:])
    return n + z * (h - n)  # = (1 - z) * n + z * h


_step_compiled = mx.compile(_step)


# Steps per evaluated block of the recurrence. Without blocks, a long input builds one lazy graph of
# T steps (RMVPE: 100 steps per second of audio); MLX's CUDA backend turns such a graph into CUDA
# graphs whose size grows with T, and a 5-minute clip ran the device out of memory. Evaluating
# every block bounds the graph; it is a synchronisation, not a copy to the host.
EVAL_BLOCK_STEPS = 512


def gru_scan(gi: mx.array, w_hh: mx.array, b_hh: mx.array, h0: mx.array | None = None,
             compiled: bool = True) -> mx.array:
    """Run the recurrence over time for D stacked directions (inputs already in step order).

    gi (D, B, T, 3H) input projections; w_hh (D, 3H, H); b_hh (D, 3H) -> (D, B, T, H).
    """
    d, b, t, h3 = gi.shape
    hidden = h3 // 3
    w_t = mx.contiguous(mx.swapaxes(w_hh, -1, -2))  # (D, H, 3H), laid out once for every step
    bias = b_hh[:, None, :]
    h = mx.zeros((d, b, hidden), dtype=gi.dtype) if h0 is None else h0
    step = _step_compiled if compiled else _step
    blocks, outs = [], []
    for i in range(t):
        h = step(h, gi[:, :, i, :], w_t, bias)
        outs.append(h)
        if len(outs) == EVAL_BLOCK_STEPS and i + 1 < t:
            block = mx.stack(outs, axis=2)
            mx.eval(block)
            blocks.append(block)
            h, outs = block[:, :, -1, :], []
    blocks.append(mx.stack(outs, axis=2))
    return blocks[0] if len(blocks) == 1 else mx.concatenate(blocks, axis=2)


def host_scan(gi: mx.array, w_hh: mx.array, b_hh: mx.array) -> mx.array:
    """The recurrence in numpy on the host, float32 (the ``host`` path; MLX on the CPU).

    gi (D, B, T, 3H) input projections; w_hh (D, 3H, H); b_hh (D, 3H) -> (D, B, T, H).
    """
    g = np.array(gi.astype(mx.float32))
    w_t = np.ascontiguousarray(np.swapaxes(np.array(w_hh.astype(mx.float32)), -1, -2))  # (D, H, 3H)
    d, b, t, h3 = g.shape
    hidden = h3 // 3
    bias = np.ascontiguousarray(np.broadcast_to(np.array(b_hh.astype(mx.float32))[:, None, :], (d, b, h3)))
    out = np.empty((d, b, t, hidden), np.float32)
    gh = np.empty((d, b, h3), np.float32)  # W_hh h + b_hh
    rz = np.empty((d, b, 2 * hidden), np.float32)  # r, z
    n = np.empty((d, b, hidden), np.float32)
    tmp = np.empty((d, b, hidden), np.float32)
    h = np.zeros((d, b, hidden), np.float32)
    with np.errstate(over="ignore"):  # exp(-a) = inf for a < -88: sigmoid 0, as it should be
        _host_steps(g, w_t, bias, out, gh, rz, n, tmp, h)
    return mx.array(out).astype(gi.dtype)


def _host_steps(g, w_t, bias, out, gh, rz, n, tmp, h) -> None:
    """:func:`host_scan`'s time loop over preallocated buffers; writes ``out`` (D, B, T, H)."""
    hidden = h.shape[-1]
    for i in range(g.shape[2]):
        np.matmul(h, w_t, out=gh)
        gh += bias
        x = g[:, :, i, :]
        np.add(x[..., :2 * hidden], gh[..., :2 * hidden], out=rz)
        np.negative(rz, out=rz)  # sigmoid = 1 / (1 + exp(-a))
        np.exp(rz, out=rz)
        rz += 1.0
        np.reciprocal(rz, out=rz)
        np.multiply(rz[..., :hidden], gh[..., 2 * hidden:], out=n)  # r * (W_hn h + b_hn)
        n += x[..., 2 * hidden:]
        np.tanh(n, out=n)
        np.subtract(h, n, out=tmp)
        tmp *= rz[..., hidden:]
        h = out[:, :, i, :]
        np.add(n, tmp, out=h)  # n + z * (h - n)


def _kernel(launch):
    """A kernel launcher in :func:`recurrence`'s form: (gi, w_hh (D, 3H, H), b_hh) -> hs."""
    def run(gi, w_hh, b_hh):
        w_t = mx.contiguous(mx.swapaxes(w_hh, -1, -2))  # (D, H, 3H)
        return launch(gi, w_t, b_hh).astype(gi.dtype)
    return run


# path name -> (gi, w_hh, b_hh) -> hs; the names and the device each runs on: rvclab.runtime.GRU_PATHS
PATHS = {
    "cuda_split": _kernel(gru_kernels.cuda_split_scan),
    "cuda_block": _kernel(gru_kernels.cuda_block_scan),
    "metal": _kernel(gru_kernels.metal_scan),
    "host": host_scan,
    "loop": gru_scan,
    "loop_uncompiled": lambda gi, w_hh, b_hh: gru_scan(gi, w_hh, b_hh, compiled=False),
}
_ORIGINAL_STEPS = (_step, _step_compiled)
_LAST = {"path": None}


def recurrence(gi: mx.array, w_hh: mx.array, b_hh: mx.array, path: str | None = None) -> mx.array:
    """gi (D, B, T, 3H), w_hh (D, 3H, H), b_hh (D, 3H) -> (D, B, T, H) on ``path`` (a name of
    :data:`PATHS`), or when None the device's (:func:`rvclab.runtime.mlx_gru_path`). A replaced
    step function (rvclab.fixes puts a documented bug back in ``_step``) always runs the loop,
    the only path that calls it. :func:`last_path` says which path ran last."""
    if path is None:
        if (_step, _step_compiled) != _ORIGINAL_STEPS:
            path = "loop"
        else:
            lay = gru_kernels.split_layout(w_hh.shape[-1])
            path = mlx_gru_path(mx, None if lay is None else lay.blocks * gi.shape[0] * gi.shape[1])
    if path not in PATHS:
        raise ValueError(f"unknown GRU path {path!r}; choose from {', '.join(PATHS)}")
    _LAST["path"] = path
    return PATHS[path](gi, w_hh, b_hh)


def last_path() -> str | None:
    """The path the last :func:`recurrence` call took (None before the first)."""
    return _LAST["path"]


class GRU(nn.Module):
    """Batch-first GRU with torch's parameter names: (B, T, I) -> ((B, T, D*H), h_n (L*D, B, H))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, bias: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.use_bias = bias
        scale = hidden_size ** -0.5
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.num_directions
            for sfx in self._suffixes(layer):
                setattr(self, f"weight_ih{sfx}",
                        mx.random.uniform(-scale, scale, (3 * hidden_size, in_size)))
                setattr(self, f"weight_hh{sfx}",
                        mx.random.uniform(-scale, scale, (3 * hidden_size, hidden_size)))
                zeros = mx.zeros((3 * hidden_size,))
                setattr(self, f"bias_ih{sfx}", zeros)
                setattr(self, f"bias_hh{sfx}", zeros)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        sfx = [f"_l{layer}"]
        if self.bidirectional:
            sfx.append(f"_l{layer}_reverse")
        return sfx

    def __call__(self, x: mx.array, compiled: bool = True, path: str | None = None):
        """x (B, T, I) -> output (B, T, D*H), h_n (num_layers*D, B, H).

        ``path``: the recurrence's path (:func:`recurrence`); None picks one for the device.
        ``compiled=False``: the loop with an uncompiled step (for tests).
        """
        if not compiled:
            path = "loop_uncompiled"
        finals = []
        for layer in range(self.num_layers):
            sfx = self._suffixes(layer)
            w_ih = mx.stack([getattr(self, f"weight_ih{s}") for s in sfx])  # (D, 3H, I)
            w_hh = mx.stack([getattr(self, f"weight_hh{s}") for s in sfx])  # (D, 3H, H)
            b_ih = mx.stack([getattr(self, f"bias_ih{s}") for s in sfx])
            b_hh = mx.stack([getattr(self, f"bias_hh{s}") for s in sfx])
            if not self.use_bias:
                b_ih, b_hh = mx.zeros_like(b_ih), mx.zeros_like(b_hh)
            # all timesteps' input projections, one matmul per direction: (D, B, T, 3H)
            xs = [x, x[:, ::-1, :]] if self.bidirectional else [x]
            gi = mx.stack([xs[k] @ w_ih[k].T + b_ih[k] for k in range(len(sfx))])
            hs = recurrence(gi, w_hh, b_hh, path)  # (D, B, T, H)
            outs = [hs[0]]
            if self.bidirectional:
                outs.append(hs[1][:, ::-1, :])  # back to time order
            finals.extend(h[:, -1, :] for h in hs)
            x = mx.concatenate(outs, axis=-1)
        return x, mx.stack(finals)
