"""Overlapping segments of a long axis: how a convolutional network runs over a long input in
pieces and gives the one-call result (RMVPE's U-Net, the synthesizer's decoder)."""

from __future__ import annotations


def overlapping_segments(frames: int, core: int, context: int) -> list[tuple[int, int, int, int]]:
    """``[(lo, hi, a, b)]`` for an axis of ``frames``: run frames lo..hi, keep the output of frames
    a..b (lo <= a < b <= hi; the kept parts tile 0..frames in order).

    One segment ``(0, frames, 0, frames)`` when ``frames <= core + 2 * context``; otherwise cores
    of ``core`` frames, each read with up to ``context`` frames more on either side (fewer at the
    ends). ValueError unless frames, core >= 1 and context >= 0.
    """
    if frames < 1 or core < 1 or context < 0:
        raise ValueError(f"overlapping segments: frames {frames} and core {core} must be >= 1, "
                         f"context {context} >= 0")
    if frames <= core + 2 * context:
        return [(0, frames, 0, frames)]
    return [(max(a - context, 0), min(a + core + context, frames), a, min(a + core, frames))
            for a in range(0, frames, core)]
