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

Two paths, chosen in ONE place, :func:`_use_matmul_path`:

* **native** — ``mx.conv1d`` / ``mx.conv_transpose1d`` / ``mx.conv2d``. Used on Metal and CUDA,
  where MLX has tuned kernels, and on the CPU for strided undilated conv1d and plain conv2d.
* **matmul** — used when MLX computes on the CPU (Linux ``mlx[cpu]``) for transposed, dilated and
  stride-1 convs. MLX's CPU kernels for dilated and transposed convolutions are far slower than
  torch's (docs/runtime.md, scripts/bench_ops.py), while its matmul (with the OpenBLAS that
  :mod:`rvclab.runtime` preloads) is as fast as torch's. So:

  - conv1d/conv2d = a sum over kernel taps of shifted matmuls, accumulated in place by BLAS
    (``mx.addmm``, beta = 1; the bias seeds the accumulator). Taps are grouped into blocks
    (a small im2col through a strided view) when the channel count alone would make a too-shallow
    matmul (e.g. ``C_in = 1``); a block of all taps is plain im2col.
  - stride-1 ungrouped conv2d ("flat taps"): the zero-padded input ``(B, Hp, Wp, C)`` is seen as
    ``(B, Hp * Wp, C)`` rows; tap ``(i, j)`` is then the contiguous row range starting at
    ``i * Wp + j`` (a free view, no copy), so the conv is ``kH * kW`` plain matmuls over
    ``H_out * Wp`` output rows. The ``Wp - W_out`` extra columns per output row (reads that wrap
    into the next padded row) are computed and dropped by a view. No im2col copy at all, which is
    what makes it faster than MLX's CPU conv2d on wide maps with few channels (RMVPE's
    full-resolution U-Net blocks).
  - stride-1, ungrouped conv1d with at most ``PAIR_MAX_CHANNELS`` channels in and out ("sample
    pairs", undilated or with at least ``PAIR_MIN_TAPS_DILATED`` taps): rows of two samples (for
    undilated convs a free reshape to ``(T/2, 2C)``), so each of the ``K // 2 + 1`` pair taps is
    a matmul twice as deep and wide as a single tap. Narrow matmuls are where OpenBLAS is far
    from its peak (the synthesizer's 12-48 kHz stages).
  - conv_transpose1d = a polyphase conv1d: the kernel (dilation zeros inserted, padded to a
    multiple of the stride) is split into ``m = ceil(K_eff / stride)`` taps of ``stride * C_out``
    output channels each, run over the input padded by ``m - 1``; the result reshapes (for free)
    from ``(T + m - 1, stride, C_out)`` to ``(T + m - 1) * stride`` samples, i.e. the overlap-add
    happens inside the BLAS accumulation, with no scatter. Then ``padding`` is cropped.

  Results are exact up to fp32 summation order (tests/test_ops.py bounds the difference).

``RVCLAB_CONV_PATH=auto|matmul|native`` (or :func:`set_conv_path` / :func:`conv_path`) overrides
the choice, e.g. for benchmarks and tests.
"""

from __future__ import annotations

import contextlib
import os

import mlx.core as mx
import numpy as np

from rvclab import runtime

_PATHS = ("auto", "matmul", "native")
_conv_path = os.environ.get("RVCLAB_CONV_PATH", "auto").strip().lower() or "auto"

# conv1d: taps are grouped into im2col blocks (a copy through a strided view) only when C_in/groups
# is below this; otherwise each tap is its own matmul on a free view of the input. Measured on a
# 2-core AVX2 machine: for C_in >= 32, single taps beat im2col blocks by 2-3x (MLX's strided
# copies are slow; BLAS handles depth-32 products fine).
MIN_GEMM_DEPTH = 16
# conv1d, stride 1, undilated, ungrouped, at most this many channels in and out: "sample pairs"
# (see _conv1d_pairs). Measured on the 2-core AVX2 machine on the synthesizer's shapes (2 s at
# 12/24/48 kHz with 128/64/32 channels, kernels 3/7/11): 0.60-0.93x the single-tap time; at 256
# channels single taps already run near the BLAS peak.
PAIR_MAX_CHANNELS = 128
# Dilated convs take the sample pairs from this many taps on (with 3 taps the two regrouping copies
# cost more than the pairs save: 1.04-1.2x; with 7 and 11 taps 0.71-0.97x on the same shapes).
PAIR_MIN_TAPS_DILATED = 7
# conv2d: every tap is a strided view there (the W axis), so matmul copies anyway; whole-kernel
# im2col when kH*kW*Cg is at most CONV2D_IM2COL_DEPTH, kernel-row blocks when kW*Cg is at most
# CONV2D_ROW_DEPTH, single taps otherwise.
CONV2D_IM2COL_DEPTH = 128
CONV2D_ROW_DEPTH = 256
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
    undilated = _pair(dilation, "dilation") == (1, 1)
    if not (undilated and groups == 1):
        return True
    if _pair(stride, "stride") != (1, 1) or positions is None:
        return False
    return positions >= CONV2D_FLAT_MIN_POSITIONS or (
        kernel is not None and _pair(kernel, "kernel") == (1, 1))


def active_path(op: str = "conv1d", stride=1, dilation=1, groups: int = 1,
                positions: int | None = None, kernel=None) -> str:
    """``"matmul"`` or ``"native"``: what a call with these arguments would use now."""
    return "matmul" if _use_matmul_path(op, stride, dilation, groups, positions, kernel) \
        else "native"


# --- argument checks ----------------------------------------------------------------------------


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, found {v!r}")


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


# --- shared tap engine --------------------------------------------------------------------------


def _taps_per_block(c_group: int, n_taps: int) -> int:
    return max(1, min(n_taps, -(-MIN_GEMM_DEPTH // c_group)))


def _tap_matmul(xg, wg, bg, t_out: int, stride: int, dilation: int):
    """Core of the matmul path, one spatial axis.

    xg: ``(G, B, T_pad, Cg)`` padded input, row contiguous; wg: ``(G, K, Cg, Og)``;
    bg: ``(G, 1, 1, Og)`` or None. Returns ``(G, B, t_out, Og)`` =
    ``sum_k xg[:, :, k*dilation + stride*t] @ wg[:, k]`` (+ bias).
    """
    n_g, n_b, t_pad, c_g = xg.shape
    n_taps, o_g = wg.shape[1], wg.shape[3]
    per = _taps_per_block(c_g, n_taps)
    row = t_pad * c_g
    y = bg
    for k0 in range(0, n_taps, per):
        j = min(per, n_taps - k0)
        if j == 1 and stride == 1:
            cols = xg[:, :, k0 * dilation : k0 * dilation + t_out, :]
        else:
            cols = mx.as_strided(
                xg,
                (n_g, n_b, t_out, j, c_g),
                (n_b * row, row, stride * c_g, dilation * c_g, 1),
                k0 * dilation * c_g,
            ).reshape(n_g, n_b, t_out, j * c_g)
        wb = wg[:, k0 : k0 + j].reshape(n_g, 1, j * c_g, o_g)
        y = cols @ wb if y is None else mx.addmm(y, cols, wb)
    return y


def _group_input(x, groups: int):
    """(B, T, C) -> (G, B, T, C/G), row contiguous (a copy only when groups > 1)."""
    n_b, t, c = x.shape
    if groups == 1:
        return x[None]
    return mx.contiguous(x.reshape(n_b, t, groups, c // groups).transpose(2, 0, 1, 3))


def _ungroup_output(y):
    """(G, B, T, Og) -> (B, T, G*Og)."""
    n_g, n_b, t, o_g = y.shape
    if n_g == 1:
        return y[0]
    return y.transpose(1, 2, 0, 3).reshape(n_b, t, n_g * o_g)


def _conv1d_matmul(x, w, b, stride: int, pad: tuple[int, int], dilation: int, groups: int):
    n_b, t, c_in = x.shape
    c_out, n_taps, c_g = w.shape
    t_pad = t + pad[0] + pad[1]
    t_out = (t_pad - dilation * (n_taps - 1) - 1) // stride + 1
    if t_out < 1:
        raise ValueError(
            f"conv1d: input length {t} (padded {t_pad}) is shorter than the dilated kernel "
            f"{dilation * (n_taps - 1) + 1}"
        )
    o_g = c_out // groups
    bg = None if b is None else b.reshape(groups, 1, 1, o_g)
    if stride > 1 and dilation == 1:
        # Polyphase: the input seen as (T/stride, stride*C) is a free reshape; the kernel, zero
        # padded to m*stride taps, becomes m taps of depth stride*C and the conv has stride 1.
        m = -(-n_taps // stride)
        right = (t_out - 1 + m) * stride - t - pad[0]  # may be < pad[1]: the tail is unused
        x = mx.pad(x, [(0, 0), (pad[0], max(right, 0)), (0, 0)]) if pad[0] or right > 0 else x
        if right < 0:
            x = x[:, : x.shape[1] + right]
        xg = _group_input(x, groups)
        xg = xg.reshape(groups, n_b, t_out - 1 + m, stride * c_g)
        wg = w.reshape(groups, o_g, n_taps, c_g)
        if m * stride > n_taps:
            wg = mx.pad(wg, [(0, 0), (0, 0), (0, m * stride - n_taps), (0, 0)])
        wg = wg.reshape(groups, o_g, m, stride * c_g).transpose(0, 2, 3, 1)  # (G, m, s*Cg, Og)
        return _ungroup_output(_tap_matmul(xg, wg, bg, t_out, 1, 1))
    if (stride, groups) == (1, 1) and max(c_in, c_out) <= PAIR_MAX_CHANNELS and (
            n_taps > 1 if dilation == 1 else n_taps >= PAIR_MIN_TAPS_DILATED):
        return _conv1d_pairs(x, w, b, pad, t_out, dilation)
    if pad != (0, 0):
        x = mx.pad(x, [(0, 0), pad, (0, 0)])
    xg = _group_input(x, groups)
    wg = w.reshape(groups, o_g, n_taps, c_g).transpose(0, 2, 3, 1)  # (G, K, Cg, Og)
    return _ungroup_output(_tap_matmul(xg, wg, bg, t_out, stride, dilation))


def _pair_weights(w):
    """(O, K, C) -> (M, 2C, 2O) with M = K // 2 + 1: block (v, u) of pair tap m holds kernel tap
    2m + v - u (zero outside 0..K-1); v indexes the input pair's sample, u the output's."""
    c_out, n_taps, c_in = w.shape
    m_taps = n_taps // 2 + 1
    idx = np.full((m_taps, 2, 2), n_taps, np.int32)
    for m in range(m_taps):
        for v in range(2):
            for u in range(2):
                if 0 <= 2 * m + v - u < n_taps:
                    idx[m, v, u] = 2 * m + v - u
    taps = mx.concatenate([w.transpose(1, 2, 0), mx.zeros((1, c_in, c_out), dtype=w.dtype)])  # (K+1, C, O)
    return taps[mx.array(idx)].transpose(0, 1, 3, 2, 4).reshape(m_taps, 2 * c_in, 2 * c_out)


def _conv1d_pairs(x, w, b, pad: tuple[int, int], t_out: int, dilation: int = 1):
    """Stride-1 conv1d on "sample pairs": rows holding two samples ``dilation`` apart (2C),
    output rows of two samples (2O), and K // 2 + 1 pair taps of depth 2C. The kernel taps land
    in the blocks of the pair weights (:func:`_pair_weights`). About 1.1-1.3x the multiply-adds
    of the single taps, but matmuls twice as wide and deep, which OpenBLAS runs much closer to
    its peak at 32-128 channels, and fewer accumulation passes over the output.

    Undilated, the pairs are a free reshape of the padded input to (T/2, 2C) and each pair tap a
    free row view. Dilated by d, the input is regrouped once into blocks of 2d samples, rows
    (block, residue) holding samples (2d·q + r, 2d·q + r + d): the sequence of every residue is
    then an undilated conv over q, a pair tap is a view d rows further on, and the output is
    regrouped back (two copies, which pay for themselves from ``PAIR_MIN_TAPS_DILATED`` taps on).
    """
    n_b, t, c_in = x.shape
    c_out = w.shape[0]
    d = dilation
    m_taps = w.shape[1] // 2 + 1
    s_out = -(-t_out // (2 * d))  # output rows per residue
    rows = s_out + m_taps - 1
    right = 2 * d * rows - t - pad[0]
    x = mx.pad(x, [(0, 0), (pad[0], max(right, 0)), (0, 0)])
    if right < 0:
        x = x[:, : 2 * d * rows]
    if d == 1:
        pairs = x.reshape(n_b, rows, 2 * c_in)
    else:
        pairs = x.reshape(n_b, rows, 2, d, c_in).transpose(0, 1, 3, 2, 4).reshape(n_b, rows * d, 2 * c_in)
    wp = _pair_weights(w)
    y = None if b is None else mx.concatenate([b, b])
    for m in range(m_taps):
        a = pairs[:, m * d:(m + s_out) * d]
        y = a @ wp[m] if y is None else mx.addmm(y, a, wp[m])
    if d == 1:
        y = y.reshape(n_b, 2 * s_out, c_out)
    else:
        y = y.reshape(n_b, s_out, d, 2, c_out).transpose(0, 1, 3, 2, 4).reshape(n_b, 2 * d * s_out, c_out)
    return y if y.shape[1] == t_out else y[:, :t_out]


# --- public API ---------------------------------------------------------------------------------


def conv1d(x, w, b=None, stride: int = 1, padding=0, dilation: int = 1, groups: int = 1):
    """torch ``conv1d`` in MLX layout: x ``(B, T, C_in)``, w ``(C_out, K, C_in/groups)``,
    b ``(C_out,)`` -> ``(B, T_out, C_out)``, ``T_out = (T + 2p - d(K-1) - 1) // stride + 1``.

    ``padding``: int (both sides) or ``(left, right)``; zeros.
    """
    _check("conv1d", x, w, b, groups, 3)
    pad = _pair(padding, "padding")
    if _use_matmul_path("conv1d", stride, dilation, groups):
        return _conv1d_matmul(x, w, b, stride, pad, dilation, groups)
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
    return _conv_transpose1d_matmul(x, w, b, stride, padding, output_padding, dilation, groups)


def _conv_transpose1d_matmul(x, w, b, stride, padding, output_padding, dilation, groups):
    n_b, t, c_in = x.shape
    c_out, n_taps, c_g = w.shape
    o_g = c_out // groups
    k_eff = dilation * (n_taps - 1) + 1
    m = -(-k_eff // stride)  # taps of the polyphase kernel
    t_out = (t - 1) * stride - 2 * padding + k_eff + output_padding
    if t_out < 1:
        raise ValueError(f"conv_transpose1d: output length {t_out} < 1 for input length {t}")
    # Effective kernel (C_out, m*stride, Cg) with dilation zeros, as (G, Og, m, stride, Cg).
    if dilation > 1:
        we = mx.zeros((c_out, n_taps, dilation, c_g), dtype=w.dtype)
        we = mx.concatenate([w[:, :, None, :], we[:, :, 1:, :]], axis=2)
        we = we.reshape(c_out, n_taps * dilation, c_g)[:, :k_eff]
    else:
        we = w
    if m * stride > k_eff:
        we = mx.pad(we, [(0, 0), (0, m * stride - k_eff), (0, 0)])
    we = we.reshape(groups, o_g, m, stride, c_g)
    # Polyphase conv weight: out channel (g, r, o), tap k' = m-1-j  ->  (G*stride*Og, m, Cg).
    wp = we[:, :, ::-1].transpose(0, 3, 1, 2, 4).reshape(groups * stride * o_g, m, c_g)
    bp = None
    if b is not None:
        bp = mx.broadcast_to(b.reshape(groups, 1, o_g), (groups, stride, o_g)).reshape(-1)
    y = _conv1d_matmul(x, wp, bp, 1, (m - 1, m - 1), 1, groups)  # (B, T+m-1, G*stride*Og)
    t_full = (t + m - 1) * stride
    if groups > 1:
        y = y.reshape(n_b, t + m - 1, groups, stride, o_g).transpose(0, 1, 3, 2, 4)
    y = y.reshape(n_b, t_full, c_out)
    end = padding + t_out
    if end > t_full:  # output_padding reaching past the last tap: zeros (plus bias)
        tail = mx.zeros((n_b, end - t_full, c_out), dtype=y.dtype)
        if b is not None:
            tail = tail + b
        y = mx.concatenate([y, tail], axis=1)
    return y[:, padding:end]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """torch ``conv2d`` in MLX layout: x ``(B, H, W, C_in)``, w ``(C_out, kH, kW, C_in/groups)``,
    b ``(C_out,)`` -> ``(B, H_out, W_out, C_out)``. ``stride``, ``padding`` (symmetric, zeros) and
    ``dilation`` are ints or ``(h, w)`` pairs.
    """
    _check("conv2d", x, w, b, groups, 4)
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
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
        return _conv2d_flat(x, w, b, (ph, pw), (dh, dw), h_out, w_out)
    o_g = c_out // groups
    if ph or pw:
        x = mx.pad(x, [(0, 0), (ph, ph), (pw, pw), (0, 0)])
    if groups == 1:
        xg = x[None]
    else:
        xg = mx.contiguous(x.reshape(n_b, hp, wp, groups, c_g).transpose(3, 0, 1, 2, 4))
    wg = w.reshape(groups, o_g, kh, kw, c_g).transpose(0, 2, 3, 4, 1)  # (G, kH, kW, Cg, Og)
    y = None if b is None else b.reshape(groups, 1, 1, o_g)
    # Blocks: whole kernel rows (kW taps) if shallow enough, else single taps.
    all_in_one = kh * kw * c_g <= CONV2D_IM2COL_DEPTH
    row_blocks = kw * c_g <= CONV2D_ROW_DEPTH
    s_b, s_h, s_w = hp * wp * c_g, wp * c_g, c_g
    n_g = groups
    blocks = (
        [(0, kh, 0, kw)] if all_in_one
        else [(i, 1, 0, kw) for i in range(kh)] if row_blocks
        else [(i, 1, j, 1) for i in range(kh) for j in range(kw)]
    )
    for i0, ni, j0, nj in blocks:
        cols = mx.as_strided(
            xg,
            (n_g, n_b, h_out, w_out, ni, nj, c_g),
            (n_b * s_b, s_b, sh * s_h, sw * s_w, dh * s_h, dw * s_w, 1),
            i0 * dh * s_h + j0 * dw * s_w,
        ).reshape(n_g, n_b, h_out * w_out, ni * nj * c_g)
        wb = wg[:, i0 : i0 + ni, j0 : j0 + nj].reshape(n_g, 1, ni * nj * c_g, o_g)
        y = cols @ wb if y is None else mx.addmm(y, cols, wb)
    y = y.reshape(n_g, n_b, h_out, w_out, o_g)
    if n_g == 1:
        return y[0]
    return y.transpose(1, 2, 3, 0, 4).reshape(n_b, h_out, w_out, c_out)


def _conv2d_flat(x, w, b, padding, dilation, h_out: int, w_out: int):
    """Stride-1, ungrouped conv2d as ``kH * kW`` matmuls on free row views (see the module doc).

    x ``(B, H, W, C)``, w ``(O, kH, kW, C)`` -> ``(B, h_out, w_out, O)`` (a view that drops the
    ``Wp - w_out`` wrap-around columns of each output row).
    """
    n_b, h, wd, c_in = x.shape
    c_out, kh, kw, _ = w.shape
    (ph, pw), (dh, dw) = padding, dilation
    hp, wp = h + 2 * ph, wd + 2 * pw
    m = h_out * wp  # output rows, wrap-around columns included
    last = (kh - 1) * dh * wp + (kw - 1) * dw + m  # rows read by the last tap
    extra = max(0, -(-(last - hp * wp) // wp))  # zero rows below, for the last tap's tail
    if ph or pw or extra:
        x = mx.pad(x, [(0, 0), (ph, ph + extra), (pw, pw), (0, 0)])
    rows = x.reshape(n_b, (hp + extra) * wp, c_in)
    if c_in < MIN_GEMM_DEPTH and kh * kw * c_in <= CONV2D_IM2COL_DEPTH:
        # A shallow input (RMVPE's first conv: one channel) would make every tap a depth-C_in
        # matmul that rereads and rewrites the whole output; one im2col copy of the (small)
        # input through a strided view makes it a single matmul of depth kH * kW * C_in.
        n_rows = rows.shape[1]
        cols = mx.as_strided(rows, (n_b, m, kh, kw, c_in),
                             (n_rows * c_in, c_in, dh * wp * c_in, dw * c_in, 1))
        cols = cols.reshape(n_b, m, kh * kw * c_in)
        wk = w.transpose(1, 2, 3, 0).reshape(kh * kw * c_in, c_out)
        y = cols @ wk if b is None else mx.addmm(b, cols, wk)
        y = y.reshape(n_b, h_out, wp, c_out)
        return y if w_out == wp else y[:, :, :w_out]
    wt = w.transpose(1, 2, 3, 0)  # (kH, kW, C, O)
    y = b
    for i in range(kh):
        for j in range(kw):
            off = i * dh * wp + j * dw
            a = rows if (off == 0 and m == rows.shape[1]) else rows[:, off:off + m]
            y = a @ wt[i, j] if y is None else mx.addmm(y, a, wt[i, j])
    y = y.reshape(n_b, h_out, wp, c_out)
    return y if w_out == wp else y[:, :, :w_out]
