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
    threshold: float = 0.03
    decode_window: int = 9  # bins averaged around the argmax
    cents_offset: float = CENTS_OFFSET  # cents (re 10 Hz) of bin 0
    cents_step: float = float(CENTS_PER_BIN)

    def bin_cents(self) -> np.ndarray:
        """(n_classes,) cents (re 10 Hz) of each salience bin, float64."""
        return self.cents_step * np.arange(self.n_classes) + self.cents_offset
