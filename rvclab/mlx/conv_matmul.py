"""The matmul path of :mod:`rvclab.mlx.ops`: convolutions as sums of BLAS matmuls over kernel taps.

Layouts as :mod:`rvclab.mlx.ops` (channels last). Techniques, each chosen by shape:

* tap matmuls: ``y = sum_k x[shifted by k] @ w[k]``, accumulated in place (``mx.addmm``, the bias
  seeds the accumulator); taps grouped into im2col blocks through a strided view when the channel
  count alone would make too shallow a matmul (``MIN_GEMM_DEPTH``);
* "sample pairs" (stride-1 conv1d, at most ``PAIR_MAX_CHANNELS`` channels): rows of two samples, so
  each of the ``K // 2 + 1`` pair taps is a matmul twice as deep and wide;
* transposed conv1d as a polyphase conv1d: ``ceil(K_eff / stride)`` taps of ``stride * C_out``
  outputs, whose result reshapes for free into the upsampled signal (overlap-add inside BLAS);
* "flat taps" (stride-1 ungrouped conv2d): the padded input ``(B, Hp, Wp, C)`` seen as
  ``(B, Hp * Wp, C)`` rows, tap ``(i, j)`` a contiguous row range from ``i * Wp + j``; the
  ``Wp - W_out`` wrap-around columns per output row are computed and dropped by a view.

Exact up to fp32 summation order (tests/test_ops.py bounds the difference). Why and where each
wins: docs/runtime.md.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

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

def pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, found {v!r}")



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


def conv1d_matmul(x, w, b, stride: int, pad: tuple[int, int], dilation: int, groups: int):
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
        return conv1d_pairs(x, w, b, pad, t_out, dilation)
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


def conv1d_pairs(x, w, b, pad: tuple[int, int], t_out: int, dilation: int = 1):
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


def conv_transpose1d_matmul(x, w, b, stride, padding, output_padding, dilation, groups):
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
    y = conv1d_matmul(x, wp, bp, 1, (m - 1, m - 1), 1, groups)  # (B, T+m-1, G*stride*Og)
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



def conv2d_matmul(x, w, b, stride, padding, dilation, groups: int, h_out: int, w_out: int):
    """conv2d as blocks of tap matmuls (any stride, dilation, groups); arguments as :func:`conv2d_flat`,
    ``stride`` a pair too."""
    n_b, h, wd, c_in = x.shape
    c_out, kh, kw, c_g = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    hp, wp = h + 2 * ph, wd + 2 * pw
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




def conv2d_flat(x, w, b, padding, dilation, h_out: int, w_out: int):
    """Stride-1, ungrouped conv2d as ``kH * kW`` matmuls on free row views (module doc).

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
