"""The GRU recurrence as one kernel launch: CUDA and Metal sources, their layouts and launchers.

All three kernels run every time step of every (direction, batch) row in one launch, in float32,
with torch's equations (gate order r, z, n; ``b_hn`` inside the reset-gated term):

    gh = W_hh h + b_hh                                   (3H,) per row and step
    r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z);  n = tanh(gi_n + r * gh_n)
    h = n + z * (h - n)                                  = (1 - z) * n + z * h

Inputs, as :func:`rvclab.models.rmvpe.gru.gru_scan` takes them: ``gi`` (D, B, T, 3H) input
projections in step order (the reverse direction already reversed), ``w_t`` (D, H, 3H) the
recurrent weights transposed (``w_t[d, k, row] = W_hh[d, row, k]``, so a step reads whole rows of
it), ``b_hh`` (D, 3H). Output ``hs`` (D, B, T, H), the hidden state after each step.

* ``cuda_block``: one thread block per (direction, batch) row. The hidden state lives in shared
  memory; the (3H, H) product is split over ``S`` slices of k, each thread summing three gate rows
  of one hidden unit, the partial sums meeting in shared memory (two barriers a step). The weights
  stream from L2 every step.
* ``cuda_split``: ``G = H / units`` thread blocks per (direction, batch) row, each owning
  ``units`` hidden units: its 3*units rows of W_hh stay in shared memory for the whole launch, so
  no weight leaves the chip. After each step the blocks exchange the new hidden state through
  global memory as 8-byte words holding the value and its step number (one store each, so a
  reader that sees the step sees the value: no separate barrier or fence), double-buffered by
  step parity (a block can run at most one step ahead of the slowest). Readers spin until every
  word carries the step, so every block of the launch must be resident at once: the dispatcher
  uses this kernel only up to :data:`rvclab.runtime.GRU_SPLIT_MAX_BLOCKS` blocks.
* ``metal``: ``cuda_block``'s design in Metal (threadgroup memory, ``threadgroup_barrier``); Metal
  gives no forward-progress guarantee between threadgroups, so there is no split variant.

The sources are function bodies: MLX writes the signatures (inputs ``const float*``, outputs
``float*``, ``gi_shape`` from the use of that name) and the template constants (``H``, ``S``, ...).
Launchers check shapes and cast to float32; which launcher runs is decided in
:mod:`rvclab.models.rmvpe.gru` from :func:`rvclab.runtime.mlx_gru_path`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import mlx.core as mx

CUDA_MAX_THREADS = 1024  # threads per block on every CUDA GPU MLX supports
METAL_MAX_THREADS = 512  # per threadgroup: below the 1024 cap, which a kernel's registers can lower
CUDA_STATIC_SHARED_FLOATS = 12 * 1024  # 48 KB: static shared memory per block on every CUDA GPU
METAL_THREADGROUP_FLOATS = 8 * 1024  # 32 KB: threadgroup memory per threadgroup on Apple GPUs
SPLIT_UNITS = 16  # hidden units per block of cuda_split (H = 256: 16 blocks a row, 49 KB of weights)
SPLIT_SLICES = 8  # k slices per block of cuda_split (each thread sums H / 8 products a step)

# --- CUDA: one block per (direction, batch) row ------------------------------------------------
CUDA_BLOCK_SOURCE = r"""
    constexpr int H3 = 3 * H;
    constexpr int JT = NT / S;  // threads over hidden units; S slices of k
    __shared__ float h_s[H];
    __shared__ float part[S * H3];
    const int tid = threadIdx.x;
    const int row = blockIdx.x;  // d * B + b
    const int batch = gi_shape[1];
    const int steps = gi_shape[2];
    const int d = row / batch;
    const int lane = tid % JT;
    const int slice = tid / JT;
    const float* w = w_t + (size_t)d * H * H3;
    const float* bias = b_hh + (size_t)d * H3;
    const float* x_row = gi + (size_t)row * steps * H3;
    float* out = hs + (size_t)row * steps * H;
    for (int j = tid; j < H; j += NT) h_s[j] = 0.0f;
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        for (int j = lane; j < H; j += JT) {
            float ar = 0.0f, az = 0.0f, an = 0.0f;
#pragma unroll 4
            for (int k = slice; k < H; k += S) {
                const float hk = h_s[k];
                const float* wk = w + (size_t)k * H3;
                ar = fmaf(hk, wk[j], ar);
                az = fmaf(hk, wk[H + j], az);
                an = fmaf(hk, wk[2 * H + j], an);
            }
            part[slice * H3 + j] = ar;
            part[slice * H3 + H + j] = az;
            part[slice * H3 + 2 * H + j] = an;
        }
        __syncthreads();
        const float* x = x_row + (size_t)t * H3;
        for (int j = tid; j < H; j += NT) {
            float sr = bias[j], sz = bias[H + j], sn = bias[2 * H + j];
            for (int s = 0; s < S; ++s) {
                sr += part[s * H3 + j];
                sz += part[s * H3 + H + j];
                sn += part[s * H3 + 2 * H + j];
            }
            const float r = 1.0f / (1.0f + expf(-(x[j] + sr)));
            const float z = 1.0f / (1.0f + expf(-(x[H + j] + sz)));
            const float n = tanhf(x[2 * H + j] + r * sn);
            const float h = n + z * (h_s[j] - n);
            h_s[j] = h;
            out[(size_t)t * H + j] = h;
        }
        __syncthreads();
    }
"""

# --- CUDA: G blocks per row, weights resident in shared memory ---------------------------------
CUDA_SPLIT_SOURCE = r"""
    constexpr int H3 = 3 * H;
    constexpr int R = 3 * U;  // rows of W_hh this block owns: U units x (r, z, n)
    constexpr int G = H / U;  // blocks per (direction, batch) row
    extern __shared__ float shared_mem[];
    float* ws = shared_mem;   // (H, R): ws[k * R + gate * U + u] = W_hh[gate * H + g * U + u, k]
    float* h_s = ws + H * R;  // (H,) the hidden state of the previous step, whole
    float* part = h_s + H;    // (S, R) partial sums
    const int tid = threadIdx.x;
    const int g = blockIdx.x % G;
    const int row = blockIdx.x / G;  // d * B + b
    const int batch = gi_shape[1];
    const int steps = gi_shape[2];
    const int d = row / batch;
    const float* w = w_t + (size_t)d * H * H3;
    const float* bias = b_hh + (size_t)d * H3;
    const float* x_row = gi + (size_t)row * steps * H3;
    float* out = hs + (size_t)row * steps * H;
    // exchange words (2, H) of this row: (step + 1) << 32 | float bits, by step parity
    uint64_t* slots = xch + (size_t)row * 2 * H;
    for (int i = tid; i < H * R; i += NT) {
        const int k = i / R, c = i % R;
        ws[i] = w[(size_t)k * H3 + (c / U) * H + g * U + (c % U)];
    }
    for (int k = tid; k < H; k += NT) h_s[k] = 0.0f;
    __syncthreads();
    const int c = tid % R;      // the row this thread sums
    const int slice = tid / R;  // its slice of k: slice, slice + S, ...
    for (int t = 0; t < steps; ++t) {
        float acc = 0.0f;
#pragma unroll 8
        for (int k = slice; k < H; k += S) acc = fmaf(h_s[k], ws[k * R + c], acc);
        part[slice * R + c] = acc;
        __syncthreads();
        const uint64_t tag = (uint64_t)(t + 1) << 32;
        volatile uint64_t* slot = slots + (t & 1) * H;
        if (tid < U) {
            const int j = g * U + tid;
            const float* x = x_row + (size_t)t * H3;
            float sr = bias[j], sz = bias[H + j], sn = bias[2 * H + j];
            for (int s = 0; s < S; ++s) {
                sr += part[s * R + tid];
                sz += part[s * R + U + tid];
                sn += part[s * R + 2 * U + tid];
            }
            const float r = 1.0f / (1.0f + expf(-(x[j] + sr)));
            const float z = 1.0f / (1.0f + expf(-(x[H + j] + sz)));
            const float n = tanhf(x[2 * H + j] + r * sn);
            const float h = n + z * (h_s[j] - n);
            out[(size_t)t * H + j] = h;
            slot[j] = tag | __float_as_uint(h);  // one 8-byte store: value and step arrive together
        }
        __syncthreads();
        if (t + 1 == steps) break;
        for (int k = tid; k < H; k += NT) {  // wait for every unit's word of this step
            uint64_t v = slot[k];
            while ((v >> 32) != (uint64_t)(t + 1)) v = slot[k];
            h_s[k] = __uint_as_float((unsigned int)(v & 0xffffffffu));
        }
        __syncthreads();
    }
"""

# --- Metal: one threadgroup per (direction, batch) row -----------------------------------------
METAL_SOURCE = r"""
    constexpr int H3 = 3 * H;
    constexpr int JT = NT / S;
    threadgroup float h_s[H];
    threadgroup float part[S * H3];
    const int tid = int(thread_position_in_threadgroup.x);
    const int row = int(threadgroup_position_in_grid.x);
    const int batch = gi_shape[1];
    const int steps = gi_shape[2];
    const int d = row / batch;
    const int lane = tid % JT;
    const int slice = tid / JT;
    const device float* w = w_t + size_t(d) * H * H3;
    const device float* bias = b_hh + size_t(d) * H3;
    const device float* x_row = gi + size_t(row) * steps * H3;
    device float* out = hs + size_t(row) * steps * H;
    for (int j = tid; j < H; j += NT) h_s[j] = 0.0f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (int t = 0; t < steps; ++t) {
        for (int j = lane; j < H; j += JT) {
            float ar = 0.0f, az = 0.0f, an = 0.0f;
            for (int k = slice; k < H; k += S) {
                const float hk = h_s[k];
                const device float* wk = w + size_t(k) * H3;
                ar = metal::fma(hk, wk[j], ar);
                az = metal::fma(hk, wk[H + j], az);
                an = metal::fma(hk, wk[2 * H + j], an);
            }
            part[slice * H3 + j] = ar;
            part[slice * H3 + H + j] = az;
            part[slice * H3 + 2 * H + j] = an;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        const device float* x = x_row + size_t(t) * H3;
        for (int j = tid; j < H; j += NT) {
            float sr = bias[j], sz = bias[H + j], sn = bias[2 * H + j];
            for (int s = 0; s < S; ++s) {
                sr += part[s * H3 + j];
                sz += part[s * H3 + H + j];
                sn += part[s * H3 + 2 * H + j];
            }
            const float r = 1.0f / (1.0f + metal::precise::exp(-(x[j] + sr)));
            const float z = 1.0f / (1.0f + metal::precise::exp(-(x[H + j] + sz)));
            const float n = metal::precise::tanh(x[2 * H + j] + r * sn);
            const float h = n + z * (h_s[j] - n);
            h_s[j] = h;
            out[size_t(t) * H + j] = h;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
"""


# --- layouts: threads and memory per launch (pure arithmetic, checked on any machine) -----------
@dataclass(frozen=True)
class BlockLayout:
    """``cuda_block`` / ``metal``: ``threads`` per block = ``lanes`` (over units) x ``slices`` (of k)."""

    hidden: int
    slices: int
    lanes: int
    threads: int

    @property
    def shared_floats(self) -> int:
        return self.hidden + self.slices * 3 * self.hidden


def block_layout(hidden: int, max_threads: int, max_shared_floats: int) -> BlockLayout | None:
    """Threads for one block per row: a warp multiple of lanes, up to 4 slices of k; None when the
    hidden state and partial sums do not fit ``max_shared_floats`` of shared memory."""
    lanes = min(-(-hidden // 32) * 32, max_threads)
    slices = 1
    while slices < 4 and lanes * slices * 2 <= max_threads and slices * 2 <= hidden:
        slices *= 2
    layout = BlockLayout(hidden, slices, lanes, lanes * slices)
    return layout if layout.shared_floats <= max_shared_floats else None


@dataclass(frozen=True)
class SplitLayout:
    """``cuda_split``: ``blocks`` per row of ``units`` hidden units each, ``threads`` = 3 * units
    rows x ``slices`` of k, ``shared_bytes`` of dynamic shared memory (weights, state, sums)."""

    hidden: int
    units: int
    slices: int
    blocks: int
    threads: int
    shared_bytes: int


def split_layout(hidden: int, units: int = SPLIT_UNITS, slices: int = SPLIT_SLICES) -> SplitLayout | None:
    """The split launch for ``hidden`` units, or None when it does not apply (``hidden`` not a
    multiple of ``units``, one block a row, or a block over 1024 threads)."""
    if hidden % units or hidden // units < 2 or slices > hidden:
        return None
    threads = 3 * units * slices
    if threads > CUDA_MAX_THREADS:
        return None
    floats = hidden * 3 * units + hidden + slices * 3 * units
    return SplitLayout(hidden, units, slices, hidden // units, threads, 4 * floats)


# --- launchers ---------------------------------------------------------------------------------
@cache
def _cuda_kernel(name: str, source: str, outputs: tuple[str, ...], shared_bytes: int = 0):
    return mx.fast.cuda_kernel(name=name, input_names=["gi", "w_t", "b_hh"], output_names=list(outputs),
                               source=source, shared_memory=shared_bytes)


@cache
def _metal_kernel():
    return mx.fast.metal_kernel(name="rvclab_gru_metal", input_names=["gi", "w_t", "b_hh"],
                                output_names=["hs"], source=METAL_SOURCE)


def _checked(gi: mx.array, w_t: mx.array, b_hh: mx.array) -> tuple[mx.array, mx.array, mx.array]:
    """float32 copies of the inputs after checking their shapes against each other."""
    if gi.ndim != 4 or w_t.ndim != 3 or b_hh.ndim != 2:
        raise ValueError(f"GRU kernel: expected gi (D, B, T, 3H), w_t (D, H, 3H), b_hh (D, 3H); got "
                         f"{tuple(gi.shape)}, {tuple(w_t.shape)}, {tuple(b_hh.shape)}")
    d, _, _, h3 = gi.shape
    if h3 % 3 or tuple(w_t.shape) != (d, h3 // 3, h3) or tuple(b_hh.shape) != (d, h3):
        raise ValueError(f"GRU kernel: gi {tuple(gi.shape)} needs w_t {(d, h3 // 3, h3)} and b_hh {(d, h3)}; "
                         f"got {tuple(w_t.shape)} and {tuple(b_hh.shape)}")
    return gi.astype(mx.float32), w_t.astype(mx.float32), b_hh.astype(mx.float32)


def cuda_block_scan(gi: mx.array, w_t: mx.array, b_hh: mx.array) -> mx.array:
    """(D, B, T, 3H), (D, H, 3H), (D, 3H) -> (D, B, T, H) float32: ``cuda_block``, one launch."""
    gi, w_t, b_hh = _checked(gi, w_t, b_hh)
    d, b, t, h3 = gi.shape
    lay = block_layout(h3 // 3, CUDA_MAX_THREADS, CUDA_STATIC_SHARED_FLOATS)
    if lay is None:
        raise ValueError(f"cuda_block: hidden size {h3 // 3} does not fit 48 KB of shared memory")
    kernel = _cuda_kernel("rvclab_gru_block", CUDA_BLOCK_SOURCE, ("hs",))
    return kernel(inputs=[gi, w_t, b_hh], template=[("H", lay.hidden), ("S", lay.slices), ("NT", lay.threads)],
                  grid=(lay.threads * d * b, 1, 1), threadgroup=(lay.threads, 1, 1),
                  output_shapes=[(d, b, t, lay.hidden)], output_dtypes=[mx.float32])[0]


def cuda_split_scan(gi: mx.array, w_t: mx.array, b_hh: mx.array, units: int = SPLIT_UNITS,
                    slices: int = SPLIT_SLICES) -> mx.array:
    """(D, B, T, 3H), (D, H, 3H), (D, 3H) -> (D, B, T, H) float32: ``cuda_split``, one launch of
    D * B * H / units blocks (all must be resident at once: the caller checks the count)."""
    gi, w_t, b_hh = _checked(gi, w_t, b_hh)
    d, b, t, h3 = gi.shape
    lay = split_layout(h3 // 3, units, slices)
    if lay is None:
        raise ValueError(f"cuda_split: hidden size {h3 // 3} with {units} units and {slices} slices a block "
                         "has no layout")
    kernel = _cuda_kernel(f"rvclab_gru_split_{lay.shared_bytes}", CUDA_SPLIT_SOURCE, ("hs", "xch"),
                          lay.shared_bytes)
    out = kernel(inputs=[gi, w_t, b_hh],
                 template=[("H", lay.hidden), ("U", lay.units), ("S", lay.slices), ("NT", lay.threads)],
                 grid=(lay.threads * lay.blocks * d * b, 1, 1), threadgroup=(lay.threads, 1, 1),
                 output_shapes=[(d, b, t, lay.hidden), (d * b, 2, lay.hidden)],
                 output_dtypes=[mx.float32, mx.uint64],
                 init_value=0)  # exchange words start at step 0 = nothing written (hs is written in full)
    return out[0]


def metal_scan(gi: mx.array, w_t: mx.array, b_hh: mx.array) -> mx.array:
    """(D, B, T, 3H), (D, H, 3H), (D, 3H) -> (D, B, T, H) float32: ``metal``, one launch."""
    gi, w_t, b_hh = _checked(gi, w_t, b_hh)
    d, b, t, h3 = gi.shape
    lay = block_layout(h3 // 3, METAL_MAX_THREADS, METAL_THREADGROUP_FLOATS)
    if lay is None:
        raise ValueError(f"metal GRU kernel: hidden size {h3 // 3} does not fit 32 KB of threadgroup memory")
    return _metal_kernel()(inputs=[gi, w_t, b_hh], template=[("H", lay.hidden), ("S", lay.slices), ("NT", lay.threads)],
                           grid=(lay.threads * d * b, 1, 1), threadgroup=(lay.threads, 1, 1),
                           output_shapes=[(d, b, t, lay.hidden)], output_dtypes=[mx.float32])[0]
