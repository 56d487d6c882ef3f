"""The windows of a synthesizer call, shared by both backends (numpy only): the streaming
window and the decoder's segments on long inputs.

Upstream's realtime ``infer(..., skip_head, return_length, return_length2)`` decodes only frames
``skip_head .. skip_head + return_length`` (100 fps) of its input; the reverse flow starts
``FLOW_CONTEXT`` frames earlier so the kept frames see their whole receptive field.
``return_length2`` (formant shift) stretches the decoder's input to that many frames by linear
interpolation (torch's ``F.interpolate(size=n, mode="linear")``, align_corners False), whose
indices and weights :func:`linear_resize_weights` gives to the MLX port.

The HiFi-GAN decoder is convolutional, so a long input decodes in segments of
``DECODE_SEGMENT_FRAMES`` frames, each with :func:`decoder_context` frames of context on both
sides, whose outputs are joined: the same waveform as one call (to float rounding), with the
decoder's activations bounded by the segment instead of the chunk (:func:`decode_segments`).
"""

from __future__ import annotations

import math

import numpy as np

from rvclab.models.synth.config import FLOW_COUPLINGS, FLOW_DILATION_RATE, FLOW_KERNEL_SIZE, FLOW_LAYERS
from rvclab.segments import overlapping_segments

# Frames of context the reverse flow needs on the left: each coupling's WN stack reaches
# (kernel // 2) * dilation frames per layer. 4 couplings x 3 layers x 2 = 24, upstream's constant.
FLOW_CONTEXT = FLOW_COUPLINGS * FLOW_LAYERS * (FLOW_KERNEL_SIZE // 2) * FLOW_DILATION_RATE


# Frames (100 fps) per decoder call on long inputs: the audio-rate activations of one call stay
# near a tenth of a 100 s chunk's. Inputs up to this plus twice the context decode in one call.
DECODE_SEGMENT_FRAMES = 1000


def decoder_context(upsample_rates, upsample_kernel_sizes, resblock_kernel_sizes, resblock_dilation_sizes,
                    pre_kernel: int = 7, post_kernel: int = 7) -> int:
    """Frames on each side that one decoder output frame depends on (an upper bound), rounded up.

    Summed over the layers, each reach converted to frames by the rate it runs at (``U`` samples per
    frame after the upsamplings so far): conv_pre ``pre_kernel // 2`` frames; per stage, the
    transposed conv ``ceil(k / u)`` input positions, the NSF excitation conv (kernel 2s, stride s)
    two positions, the widest resblock ``sum_d (k - 1) / 2 * (d + 1)`` (type 1: a dilated and a
    plain conv per dilation; type 2 reaches less); conv_post ``post_kernel // 2`` samples.
    """
    reach, rate = float(pre_kernel // 2), 1
    for u, k in zip(upsample_rates, upsample_kernel_sizes):
        reach += math.ceil(k / u) / rate
        rate *= int(u)
        reach += 2 / rate
        reach += max((kr - 1) // 2 * sum(d + 1 for d in dil)
                     for kr, dil in zip(resblock_kernel_sizes, resblock_dilation_sizes)) / rate
    reach += (post_kernel // 2) / rate
    return math.ceil(reach)


def decode_segments(frames: int, context: int, core: int = DECODE_SEGMENT_FRAMES) -> list[tuple[int, int, int, int]]:
    """How a decoder input of ``frames`` frames is cut: ``[(lo, hi, a, b)]``, run frames lo..hi and
    keep its output for frames a..b (:func:`rvclab.segments.overlapping_segments`)."""
    return overlapping_segments(frames, core, context)


def check_window(skip_head: int, return_length: int, frames: int) -> None:
    """Raise ValueError naming the values unless 0 <= skip_head and skip_head + return_length <= frames."""
    if skip_head < 0 or return_length < 1 or skip_head + return_length > frames:
        raise ValueError(f"skip_head {skip_head} + return_length {return_length} must lie within the "
                         f"{frames} input frames (skip_head >= 0, return_length >= 1)")


def linear_resize_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, w0, w1) for resizing n_in samples to n_out: ``y[j] = x[i0[j]] * w0[j] + x[i1[j]] * w1[j]``.

    torch's linear interpolation without corner alignment, in its float32 arithmetic: scale
    ``n_in / n_out``, source ``scale * (j + 0.5) - 0.5`` clamped at 0.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"linear resize: lengths must be >= 1, got {n_in} -> {n_out}")
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.maximum(scale * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5),
                     np.float32(0)).astype(np.float32)
    i0 = src.astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1) - w1).astype(np.float32)
    return i0, i1, w0, w1
