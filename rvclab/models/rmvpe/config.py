"""RMVPE configuration shared by the torch reference and the MLX port."""

from dataclasses import dataclass

import numpy as np

from rvclab.audio import (
    HOP_16K,
    RMVPE_FMAX,
    RMVPE_FMIN,
    RMVPE_LOG_CLAMP,
    RMVPE_N_FFT,
    RMVPE_N_MELS,
    RMVPE_WIN_LENGTH,
    SAMPLE_RATE_16K,
)
from rvclab.models.crepe.config import CENTS_OFFSET, CENTS_PER_BIN, PITCH_BINS
from rvclab.segments import overlapping_segments

# How the log-mel frame axis is padded at the end to a multiple of ``pad_multiple``: "reflect"
# (Applio) or "constant" (zeros: RVC WebUI since 2023-09); rvclab.profiles picks one per release.
PAD_MODES = ("reflect", "constant")
DEFAULT_PAD_MODE = "reflect"  # the model-level default (Applio's); conversions pass their profile's


def check_rmvpe_framing(pad_mode: str, chunk_frames: int | None, multiple: int) -> None:
    """ValueError naming the value when ``pad_mode`` is not one of PAD_MODES or ``chunk_frames``
    (None: one network call) is not a positive multiple of ``multiple``."""
    if pad_mode not in PAD_MODES:
        raise ValueError(f"RMVPE pad_mode {pad_mode!r}: choose from {', '.join(PAD_MODES)}")
    if chunk_frames is not None and (chunk_frames <= 0 or chunk_frames % multiple):
        raise ValueError(f"chunk_frames must be a positive multiple of {multiple} (or None: one call), "
                         f"got {chunk_frames}")


@dataclass(frozen=True)
class RmvpeConfig:
    """RMVPE pitch estimator; defaults are those of RVC's ``rmvpe.pt`` (E2E(4, 1, (2, 2)))."""

    # log-mel front end @ 16 kHz
    sample_rate: int = SAMPLE_RATE_16K
    n_fft: int = RMVPE_N_FFT
    win_length: int = RMVPE_WIN_LENGTH
    hop_length: int = HOP_16K  # 10 ms frames
    n_mels: int = RMVPE_N_MELS
    fmin: float = RMVPE_FMIN
    fmax: float = RMVPE_FMAX
    clamp: float = RMVPE_LOG_CLAMP  # log(max(mel, clamp))
    # network
    n_blocks: int = 4  # ConvBlockRes per encoder/intermediate/decoder block
    n_gru: int = 1  # BiGRU layers
    kernel_size: tuple = (2, 2)  # pooling and decoder stride
    en_de_layers: int = 5
    inter_layers: int = 4
    in_channels: int = 1
    en_out_channels: int = 16
    gru_hidden: int = 256
    n_classes: int = PITCH_BINS  # CREPE's pitch grid: 20-cent bins
    # framing and decoding
    pad_multiple: int = 32  # 2 ** en_de_layers
    chunk_frames: int = 32000  # padded frames per independent network call (320 s), Applio's
    # U-Net + cnn on inputs longer than segment_frames + 2 * unet_context(): frames kept per
    # overlapping time segment (a multiple of pad_multiple; memory and time: docs/rmvpe.md)
    segment_frames: int = 8192
    threshold: float = 0.03
    decode_window: int = 9  # bins averaged around the argmax
    cents_offset: float = CENTS_OFFSET  # cents (re 10 Hz) of bin 0
    cents_step: float = float(CENTS_PER_BIN)

    def bin_cents(self) -> np.ndarray:
        """(n_classes,) cents (re 10 Hz) of each salience bin, float64."""
        return self.cents_step * np.arange(self.n_classes) + self.cents_offset


def unet_half_width(cfg: RmvpeConfig) -> int:
    """Receptive-field half-width, in input frames along time, of the U-Net + ``cnn``.

    Walks one output frame's dependency interval back to the input: every 3x3 conv widens it by
    one frame each side at its own scale (two per ConvBlockRes, ``n_blocks`` per block; the 1x1
    shortcut and BatchNorm add nothing); a pooling of factor f = ``kernel_size[0]`` maps frames
    [a, b] of the coarser scale to [f a, f b + f - 1]; the transposed conv (kernel 3, stride f,
    padding 1) makes fine frame o from coarse frames ceil((o - 1) / f) .. floor((o + 1) / f).
    From the ``cnn``, each decoder level reads its skip (the encoder block of the same scale,
    down to the input) and the level below, down to the ``inter_layers`` blocks at the coarsest
    scale and the encoder under them; the interval is the hull of those paths. Pooling makes it
    depend on the frame's phase modulo f ** ``en_de_layers``: the half-width is the largest
    distance from the frame to either end over all phases.
    """
    f, levels = cfg.kernel_size[0], cfg.en_de_layers
    convs = 2 * cfg.n_blocks  # 3x3 convs per block of ConvBlockRes, each +-1 frame

    def encoder(level, a, b):  # input frames behind encoder block ``level``'s pre-pool output
        a, b = a - convs, b + convs
        return (a, b) if level == 0 else encoder(level - 1, f * a, f * b + f - 1)

    def decoder(level, a, b):  # input frames behind the decoder output at scale ``level``
        a, b = a - convs, b + convs
        skip = encoder(level, a, b)
        lo, hi = -((1 - a) // f), (b + 1) // f  # the transposed conv's coarse inputs
        if level == levels - 1:
            lo, hi = lo - convs * cfg.inter_layers, hi + convs * cfg.inter_layers
            deep = encoder(levels - 1, f * lo, f * hi + f - 1)
        else:
            deep = decoder(level + 1, lo, hi)
        return min(skip[0], deep[0]), max(skip[1], deep[1])

    spans = (decoder(0, o - 1, o + 1) for o in range(f ** levels))  # o -+ 1: the cnn
    return max(max(o - lo, hi - o) for o, (lo, hi) in enumerate(spans))


def unet_context(cfg: RmvpeConfig) -> int:
    """Frames of context each side of a segment's core: :func:`unet_half_width` rounded up to a
    multiple of ``pad_multiple``, so every segment starts on the poolings' grid."""
    m = cfg.pad_multiple
    return m * -(-unet_half_width(cfg) // m)


def unet_segments(frames: int, cfg: RmvpeConfig, core: int | None = None) -> list[tuple[int, int, int, int]]:
    """How E2E runs the U-Net + ``cnn`` over ``frames`` (padded) frames: ``(lo, hi, keep_lo, keep_hi)``
    per segment, in order; the network reads frames [lo, hi) and keeps its outputs [keep_lo, keep_hi).

    ``core`` (default ``cfg.segment_frames``) frames are kept per segment, each read with
    :func:`unet_context` frames more on either side (clipped to [0, frames)), so the kept frames
    equal those of one whole call. Up to ``core + 2 * context`` frames: one segment, the whole
    input. ValueError when segmenting with ``core`` or ``frames`` not a positive multiple of
    ``pad_multiple``, or ``pad_multiple`` not a multiple of the U-Net's time reduction.
    """
    core = cfg.segment_frames if core is None else core
    ctx, m = unet_context(cfg), cfg.pad_multiple
    if frames <= core + 2 * ctx:
        return [(0, frames, 0, frames)]
    if core <= 0 or core % m or frames % m or m % cfg.kernel_size[0] ** cfg.en_de_layers:
        raise ValueError(f"RMVPE U-Net segments need segment_frames ({core}) and the padded frame "
                         f"count ({frames}) to be positive multiples of pad_multiple ({m}), itself a "
                         f"multiple of {cfg.kernel_size[0]} ** en_de_layers ({cfg.en_de_layers})")
    return overlapping_segments(frames, core, ctx)
