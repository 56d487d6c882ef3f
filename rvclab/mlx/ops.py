"""Convolutions for the MLX port, with torch semantics and a fast path for MLX on the Linux CPU.

Layouts (MLX, channels last):

* ``conv1d``: x ``(B, T, C_in)``, w ``(C_out, K, C_in/groups)``, b ``(C_out,)``
  -> ``(B, T_out, C_out)``
* ``conv_transpose1d``: x ``(B, T, C_in)``, w ``(C_out, K, C_in/groups)`` (MLX's layout: torch's
  ``(C_in, C_out/groups, K)`` regrouped; for ``groups=1`` simply ``w_torch.transpose(1, 2, 0)``)
* ``conv2d``: x ``(B, H, W, C_in)``, w ``(C_out, kH, kW, C_in/groups)``
  -> ``(B, H_out, W_out, C_out)``

Output lengths, padding (zeros), stride, dilation, groups and ``output_padding`` follow
``torch.nn.functional.conv1d`` / ``conv_transpose1d`` / ``conv2d``. ``padding`` may also be a pair
``(left, right)`` for conv1d (asymmetric) and ``(pad_h, pad_w)`` for conv2d.

Two paths, chosen in ONE place, :func:`_use_matmul_path`: **native** (``mx.conv*``: Metal, CUDA,
and CPU shapes where MLX's kernel is fast) and **matmul** (:mod:`rvclab.mlx.conv_matmul`: MLX on
the CPU, for transposed, dilated and stride-1 convs, where BLAS matmuls beat MLX's CPU kernels).
``RVCLAB_CONV_PATH=auto|matmul|native`` (or :func:`set_conv_path` / :func:`conv_path`) overrides
the choice, e.g. for benchmarks and tests.
"""

from __future__ import annotations

import contextlib
import os

import mlx.core as mx

from rvclab import runtime
from rvclab.mlx.conv_matmul import (
    conv1d_matmul,
    conv2d_flat,
    conv2d_matmul,
    conv_transpose1d_matmul,
    pair,
)

_PATHS = ("auto", "matmul", "native")
_conv_path = os.environ.get("RVCLAB_CONV_PATH", "auto").strip().lower() or "auto"

# conv2d, auto on the CPU: undilated, ungrouped, stride-1 convs take the flat-tap matmul path
# when they have at least this many output positions (B * H_out * W_out), or a 1x1 kernel (then
# the conv is one plain matmul). Below it MLX's im2col + GEMM wins: few positions, deep channels
# (RMVPE's 64x8 and 32x4 maps with 256-1024 channels). Measured on the 2-core AVX2 machine
# (scripts/bench_rmvpe.py, docs/rmvpe.md): on 1024x128 maps with 16 channels, 26 ms vs 97 ms.
CONV2D_FLAT_MIN_POSITIONS = 2048


# --- path choice --------------------------------------------------------------------------------


def set_conv_path(path: str) -> None:
    """Force ``"matmul"`` or ``"native"`` convolutions, or ``"auto"`` (per platform)."""
    global _conv_path
    if path not in _PATHS:
        raise ValueError(f"conv path must be one of {_PATHS}, found {path!r}")
    _conv_path = path


@contextlib.contextmanager
def conv_path(path: str):
    """Context manager form of :func:`set_conv_path`; restores the previous choice."""
    previous = _conv_path
    set_conv_path(path)
    try:
        yield
    finally:
        set_conv_path(previous)


def _use_matmul_path(op: str = "conv1d", stride=1, dilation=1, groups: int = 1,
                     positions: int | None = None, kernel=None) -> bool:
    """THE path choice, per platform and (on the CPU) per layer kind and shape.

    ``auto``:

    * MLX on a GPU (Metal on macOS, CUDA on Linux; see :mod:`rvclab.runtime`): native kernels.
    * MLX on the CPU (Linux ``mlx[cpu]`` with the OpenBLAS that ``rvclab.runtime`` preloads, or
      ``RVCLAB_MLX_DEVICE=cpu``): MLX's own kernel is an im2col + GEMM for undilated convs and a
      naive loop otherwise. So: the matmul path for every ``conv_transpose1d``, every dilated
      conv, and stride-1 conv1d (tap matmuls beat its im2col copy for wide channels); MLX's
      native kernel for strided undilated conv1d (HuBERT front end, NSF noise convs) and for
      undilated, ungrouped conv2d, where it measured faster (scripts/bench_ops.py) -- except
      stride-1 conv2d with a 1x1 kernel or at least ``CONV2D_FLAT_MIN_POSITIONS`` output
      positions (``positions`` = B * H_out * W_out, ``kernel`` = (kH, kW), both passed by
      :func:`conv2d`; without them the answer is the per-kind one): there the flat-tap matmuls
      win 1.2-4x (RMVPE's U-Net at 128 x 16 and above).
    """
    if _conv_path != "auto":
        return _conv_path == "matmul"
    if mx.default_device() != mx.cpu or not (runtime.IS_LINUX or runtime.IS_MACOS):
        return False
    if op == "conv_transpose1d":
        return True
    if op == "conv1d":
        return dilation > 1 or stride == 1
    undilated = pair(dilation, "dilation") == (1, 1)
    if not (undilated and groups == 1):
        return True
    if pair(stride, "stride") != (1, 1) or positions is None:
        return False
    return positions >= CONV2D_FLAT_MIN_POSITIONS or (
        kernel is not None and pair(kernel, "kernel") == (1, 1))


def active_path(op: str = "conv1d", stride=1, dilation=1, groups: int = 1,
                positions: int | None = None, kernel=None) -> str:
    """``"matmul"`` or ``"native"``: what a call with these arguments would use now."""
    return "matmul" if _use_matmul_path(op, stride, dilation, groups, positions, kernel) \
        else "native"


# --- argument checks ----------------------------------------------------------------------------


def _check(name: str, x, w, b, groups: int, ndim: int) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name}: x must have {ndim} dims (B, ..., C_in), found shape {x.shape}")
    if w.ndim != ndim:
        raise ValueError(
            f"{name}: w must have {ndim} dims (C_out, ..., C_in/groups), found {w.shape}"
        )
    c_in, c_out = x.shape[-1], w.shape[0]
    if groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(f"{name}: groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if w.shape[-1] * groups != c_in:
        raise ValueError(
            f"{name}: w shape {w.shape} expects C_in={w.shape[-1] * groups} "
            f"(groups={groups}), found x shape {x.shape}"
        )
    if b is not None and tuple(b.shape) != (c_out,):
        raise ValueError(f"{name}: b must have shape ({c_out},), found {tuple(b.shape)}")


# --- public API ---------------------------------------------------------------------------------


def conv1d(x, w, b=None, stride: int = 1, padding=0, dilation: int = 1, groups: int = 1):
    """torch ``conv1d`` in MLX layout: x ``(B, T, C_in)``, w ``(C_out, K, C_in/groups)``,
    b ``(C_out,)`` -> ``(B, T_out, C_out)``, ``T_out = (T + 2p - d(K-1) - 1) // stride + 1``.

    ``padding``: int (both sides) or ``(left, right)``; zeros.
    """
    _check("conv1d", x, w, b, groups, 3)
    pad = pair(padding, "padding")
    if _use_matmul_path("conv1d", stride, dilation, groups):
        return conv1d_matmul(x, w, b, stride, pad, dilation, groups)
    if pad[0] != pad[1]:
        x = mx.pad(x, [(0, 0), pad, (0, 0)])
        pad = (0, 0)
    y = mx.conv1d(x, w, stride=stride, padding=pad[0], dilation=dilation, groups=groups)
    return y if b is None else y + b


def conv_transpose1d(
    x, w, b=None, stride: int = 1, padding: int = 0, output_padding: int = 0, dilation: int = 1,
    groups: int = 1,
):
    """torch ``conv_transpose1d`` in MLX layout: x ``(B, T, C_in)``, w ``(C_out, K, C_in/groups)``
    -> ``(B, T_out, C_out)``, ``T_out = (T-1)*stride - 2*padding + d(K-1) + output_padding + 1``.
    """
    _check("conv_transpose1d", x, w, b, groups, 3)
    if output_padding >= max(stride, dilation) or output_padding < 0:
        raise ValueError(
            f"conv_transpose1d: output_padding={output_padding} must be in [0, max(stride, "
            f"dilation)={max(stride, dilation)})"
        )
    if not _use_matmul_path("conv_transpose1d", stride, dilation, groups):
        y = mx.conv_transpose1d(
            x, w, stride=stride, padding=padding, dilation=dilation,
            output_padding=output_padding, groups=groups,
        )
        return y if b is None else y + b
    return conv_transpose1d_matmul(x, w, b, stride, padding, output_padding, dilation, groups)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """torch ``conv2d`` in MLX layout: x ``(B, H, W, C_in)``, w ``(C_out, kH, kW, C_in/groups)``,
    b ``(C_out,)`` -> ``(B, H_out, W_out, C_out)``. ``stride``, ``padding`` (symmetric, zeros) and
    ``dilation`` are ints or ``(h, w)`` pairs.
    """
    _check("conv2d", x, w, b, groups, 4)
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    dh, dw = pair(dilation, "dilation")
    n_b, h, wd, c_in = x.shape
    c_out, kh, kw, c_g = w.shape
    hp, wp = h + 2 * ph, wd + 2 * pw
    h_out = (hp - dh * (kh - 1) - 1) // sh + 1
    w_out = (wp - dw * (kw - 1) - 1) // sw + 1
    positions = n_b * max(h_out, 0) * max(w_out, 0)
    if not _use_matmul_path("conv2d", (sh, sw), (dh, dw), groups, positions, (kh, kw)):
        y = mx.conv2d(x, w, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
        return y if b is None else y + b
    if h_out < 1 or w_out < 1:
        raise ValueError(f"conv2d: input {x.shape} too small for kernel {w.shape} ({dh},{dw})")
    if (sh, sw) == (1, 1) and groups == 1:
        return conv2d_flat(x, w, b, (ph, pw), (dh, dw), h_out, w_out)
    return conv2d_matmul(x, w, b, (sh, sw), (ph, pw), (dh, dw), groups, h_out, w_out)
