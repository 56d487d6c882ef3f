"""Output stage of RVC inference: loudness-envelope mix and final scaling (pure numpy).

Rates: the output is at the voice model's rate; the envelope's source is the 16 kHz high-passed
input. Re-exported by :mod:`rvclab.pipeline.steps`.

Every step works through the audio in blocks of ``BLOCK_SAMPLES``, so its temporaries stay the
same size whatever the length; each element is computed by the same float64 operations as on the
whole array, so the result is identical to the one-pass formula the docstrings state.
"""

from __future__ import annotations

import numpy as np

OUTPUT_PEAK = 0.99  # the output is scaled down if its peak exceeds this
INT16_SCALE = 32768
BLOCK_SAMPLES = 1 << 18  # samples per block of element-wise work (float64 temporaries of 2 MiB)
RMS_FLOOR = 1e-6  # the output's envelope is clamped here before its negative power


# ReferenceProfile.rms_dtype -> (input envelope dtype, output envelope dtype): "signal" keeps each
# signal's own (the float64 high-passed input, the float32 output: librosa 0.9.1)
RMS_DTYPES = {"signal": (np.float64, np.float32), "float32": (np.float32, np.float32),
              "float64": (np.float64, np.float64)}


def frame_rms(x: np.ndarray, sr: int, dtype=np.float64) -> np.ndarray:
    """(N,) @ sr -> (1 + N // (sr//2),) RMS in ``dtype``, one value every half second.

    Frame length sr//2*2, hop sr//2, frames centred with zero padding of half a frame on each
    side (librosa.feature.rms with center=True and its default constant padding). Squares and
    sums in ``dtype``: float64 as librosa 0.9.1 does for a float64 signal, float32 as librosa
    >= 0.10 does for any (:data:`RMS_DTYPES`).
    """
    hop = sr // 2
    length = hop * 2
    x = np.asarray(x)
    n_frames = 1 + x.shape[0] // hop
    blocks = _hop_energies(x, hop, n_frames + 1, dtype)  # each frame = 2 blocks
    power = (blocks[:-1] + blocks[1:]) / np.asarray(length, dtype)
    return np.sqrt(np.maximum(power, 0.0)).astype(dtype, copy=False)


def _hop_energies(x: np.ndarray, hop: int, n_rows: int, dtype=np.float64) -> np.ndarray:
    """(n_rows,) sums of squares (in ``dtype``) of ``hop``-sample rows of ``[zeros(hop), x, zeros]``.

    Row r >= 1 holds x[(r-1)*hop : r*hop] (zero-filled past the end); row 0 is all zeros. Rows are
    squared and summed a group at a time (same per-row reduction as on the whole padded array).
    """
    out = np.zeros(n_rows, dtype)
    group = max(1, BLOCK_SAMPLES // hop)
    for r0 in range(1, n_rows, group):
        r1 = min(n_rows, r0 + group)
        rows = np.zeros((r1 - r0) * hop, dtype)
        seg = x[(r0 - 1) * hop : (r1 - 1) * hop]
        rows[: seg.shape[0]] = seg
        out[r0:r1] = np.sum(rows.reshape(r1 - r0, hop) ** 2, axis=1)
    return out


def interp_linear(values: np.ndarray, size: int) -> np.ndarray:
    """(F,) -> (size,) linear resampling with half-pixel centres (align_corners=False), edges held.

    Output i reads source position max((i + 0.5) * F / size - 0.5, 0).
    """
    return _interp_range(np.asarray(values, dtype=np.float64), size, 0, size)


def _interp_range(values: np.ndarray, size: int, start: int, stop: int) -> np.ndarray:
    """Outputs ``start:stop`` of :func:`interp_linear` (values float64)."""
    n = values.shape[0]
    pos = np.maximum((np.arange(start, stop) + 0.5) * (n / size) - 0.5, 0.0)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = pos - i0
    return values[i0] * (1 - frac) + values[i1] * frac


def change_rms(
    source: np.ndarray, source_sr: int, output: np.ndarray, output_sr: int, rate: float
) -> np.ndarray:
    """Blend the output's loudness envelope toward the input's; (M,) @ output_sr -> (M,).

    RMS every half second of the 16 kHz high-passed input and of the output (:func:`frame_rms`),
    each stretched to M samples (:func:`interp_linear`); the output is multiplied by
    rms_in**(1 - rate) * max(rms_out, 1e-6)**(rate - 1). rate 1 returns the output unchanged
    (upstream skips the call); rate 0 gives the output the input's envelope. Keeps output's dtype.
    """
    output = np.array(output, copy=True)
    if rate != 1:
        mix_rms_(output, output_sr, frame_rms(source, source_sr), rate)
    return output


def mix_rms_(output: np.ndarray, output_sr: int, source_rms: np.ndarray, rate: float,
             output_dtype=np.float64) -> np.ndarray:
    """:func:`change_rms` in place, block by block, from the source's :func:`frame_rms` (F,).

    Takes the input's half-second RMS frames rather than the input, so a caller can let the
    16 kHz input go before the output exists. The output's envelope is computed in
    ``output_dtype`` (:data:`RMS_DTYPES`). Returns ``output`` (M,), modified.
    The envelopes are interpolated and mixed in float32, as one power of their ratio,
    (rms_in / max(rms_out, 1e-6))**(1 - rate); tests/test_steps_vectorised.py holds it within
    one int16 step of the float64 form.
    """
    if rate == 1:
        return output
    size = output.shape[0]
    source_rms = np.asarray(source_rms, dtype=np.float32)
    output_rms = frame_rms(output, output_sr, output_dtype).astype(np.float32)
    exponent, floor = np.float32(1 - rate), np.float32(RMS_FLOOR)
    if source_rms.shape[0] != output_rms.shape[0]:
        for a in range(0, size, BLOCK_SAMPLES):
            b = min(size, a + BLOCK_SAMPLES)
            ratio = _lerp(source_rms, *_interp_weights(source_rms.shape[0], size, a, b))
            ratio /= np.maximum(_lerp(output_rms, *_interp_weights(output_rms.shape[0], size, a, b)), floor)
            np.power(ratio, exponent, out=ratio)
            output[a:b] *= ratio.astype(output.dtype, copy=False)
        return output
    # equal frame counts (the usual case): one pass per source frame k, over the outputs whose
    # interpolation reads frames k and k + 1, with no index arrays
    n = source_rms.shape[0]
    step = n / size
    bounds = [0] + [max(0, -((n - (2 * k + 1) * size) // (2 * n))) for k in range(1, n)] + [size]
    for k in range(n):
        a, b = min(bounds[k], size), min(bounds[k + 1], size)
        if b <= a:
            continue
        k1 = min(k + 1, n - 1)
        frac = np.arange(b - a, dtype=np.float32)
        frac *= np.float32(step)
        frac += np.float32((a + 0.5) * step - 0.5 - k)
        np.maximum(frac, np.float32(0), out=frac)  # positions before the first frame hold it
        ratio = source_rms[k] + (source_rms[k1] - source_rms[k]) * frac
        ratio /= np.maximum(output_rms[k] + (output_rms[k1] - output_rms[k]) * frac, floor)
        np.power(ratio, exponent, out=ratio)
        output[a:b] *= ratio.astype(output.dtype, copy=False)
    return output


def _interp_weights(n: int, size: int, start: int, stop: int):
    """Source indices and float32 weights of outputs ``start:stop`` of :func:`interp_linear`.

    The block's first position is split (in float64) into its integer and fractional parts; the
    rest advance from it in float32 over at most one block (errors ~1e-6 of a frame).
    """
    step = n / size
    first = max((start + 0.5) * step - 0.5, 0.0)
    base = int(first)
    local = np.arange(stop - start, dtype=np.float32)
    local *= np.float32(step)
    local += np.float32((start + 0.5) * step - 0.5 - base)
    np.maximum(local, np.float32(-base), out=local)  # the clamp at position 0
    whole = np.floor(local)
    i0 = whole.astype(np.int64) + base
    frac = local - whole
    return i0, np.minimum(i0 + 1, n - 1), frac


def _lerp(values: np.ndarray, i0: np.ndarray, i1: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """values[i0] * (1 - frac) + values[i1] * frac in ``values``' dtype (float32 here)."""
    lo = values[i0]
    return lo + (values[i1] - lo) * frac


def finalize_audio(audio: np.ndarray) -> np.ndarray:
    """(N,) -> (N,) float32 in [-0.99, 0.99]: divided by peak/0.99 when the peak exceeds 0.99.

    This is what we return. Applio returns the same floats; the WebUI returns int16 instead,
    see :func:`to_int16_webui`.
    """
    return finalize_audio_(np.array(audio, dtype=np.float32, copy=True))


def finalize_audio_(x: np.ndarray) -> np.ndarray:
    """:func:`finalize_audio` in place on a float32 array (no copy of a long output)."""
    peak = _peak(x) / OUTPUT_PEAK
    if peak > 1:
        for a in range(0, x.shape[0], BLOCK_SAMPLES):
            x[a : a + BLOCK_SAMPLES] /= np.float32(peak)
    return x


def _peak(x: np.ndarray) -> float:
    """max |x| (0 for an empty array), without an |x| copy of the whole array."""
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def to_int16_webui(audio: np.ndarray) -> np.ndarray:
    """(N,) float -> (N,) int16 as the WebUI writes it: x * 32768 (or 32768 / (peak/0.99) when
    the peak exceeds 0.99), truncated toward zero, not rounded."""
    x = np.asarray(audio)
    peak = float(np.abs(x).max()) / OUTPUT_PEAK if x.size else 0.0
    scale = INT16_SCALE / peak if peak > 1 else INT16_SCALE
    return (x * scale).astype(np.int16)
