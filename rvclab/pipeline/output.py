"""Output stage of RVC inference: loudness-envelope mix and final scaling (pure numpy).

Rates: the output is at the voice model's rate; the envelope's source is the 16 kHz high-passed
input. Re-exported by :mod:`rvclab.pipeline.steps`.
"""

from __future__ import annotations

import numpy as np

OUTPUT_PEAK = 0.99  # the output is scaled down if its peak exceeds this
INT16_SCALE = 32768


def frame_rms(x: np.ndarray, sr: int) -> np.ndarray:
    """(N,) @ sr -> (1 + N // (sr//2),) float64 RMS, one value every half second.

    Frame length sr//2*2, hop sr//2, frames centred with zero padding of half a frame on each
    side (librosa.feature.rms with center=True and its default constant padding). Computed in
    float64 like librosa 0.9.1 (the WebUI's pin); librosa >= 0.10 squares in float32 (~1e-7).
    """
    hop = sr // 2
    length = hop * 2
    x = np.asarray(x, dtype=np.float64)
    n_frames = 1 + x.shape[0] // hop
    padded = np.pad(x, (hop, hop))[: (n_frames + 1) * hop]
    blocks = np.sum(padded.reshape(n_frames + 1, hop) ** 2, axis=1)  # each frame = 2 blocks
    power = (blocks[:-1] + blocks[1:]) / length
    return np.sqrt(np.maximum(power, 0.0))


def interp_linear(values: np.ndarray, size: int) -> np.ndarray:
    """(F,) -> (size,) linear resampling with half-pixel centres (align_corners=False), edges held.

    Output i reads source position max((i + 0.5) * F / size - 0.5, 0).
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    pos = np.maximum((np.arange(size) + 0.5) * (n / size) - 0.5, 0.0)
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
    output = np.asarray(output)
    if rate == 1:
        return output.copy()
    rms_in = interp_linear(frame_rms(source, source_sr), output.shape[0])
    rms_out = np.maximum(interp_linear(frame_rms(output, output_sr), output.shape[0]), 1e-6)
    gain = np.power(rms_in, 1 - rate) * np.power(rms_out, rate - 1)
    return (output * gain).astype(output.dtype)


def finalize_audio(audio: np.ndarray) -> np.ndarray:
    """(N,) -> (N,) float32 in [-0.99, 0.99]: divided by peak/0.99 when the peak exceeds 0.99.

    This is what we return. Applio returns the same floats; the WebUI returns int16 instead,
    see :func:`to_int16_webui`.
    """
    x = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(x).max()) / OUTPUT_PEAK if x.size else 0.0
    return x / np.float32(peak) if peak > 1 else x.copy()


def to_int16_webui(audio: np.ndarray) -> np.ndarray:
    """(N,) float -> (N,) int16 as the WebUI writes it: x * 32768 (or 32768 / (peak/0.99) when
    the peak exceeds 0.99), truncated toward zero, not rounded."""
    x = np.asarray(audio)
    peak = float(np.abs(x).max()) / OUTPUT_PEAK if x.size else 0.0
    scale = INT16_SCALE / peak if peak > 1 else INT16_SCALE
    return (x * scale).astype(np.int16)
