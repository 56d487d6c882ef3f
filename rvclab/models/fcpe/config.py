"""FCPE constants shared by the torch reference, the MLX port and the F0 method, and the mel
filterbank both backends use.

Sizes are those of torchfcpe's bundled ``fcpe_c_v001`` (its config_dict: hidden 512, 6 layers,
conv-only); the front end is torchfcpe's Wav2Mel at 16 kHz.
"""

from __future__ import annotations

import numpy as np

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K, mel_filterbank

# --- log-mel front end -------------------------------------------------------------------------
SAMPLE_RATE = SAMPLE_RATE_16K
HOP = HOP_16K  # 10 ms
N_FFT = 1024
WIN = 1024  # periodic Hann
N_MELS = 128
FMIN, FMAX = 0.0, 8000.0  # Slaney mel scale and norm (librosa's defaults)
MAG_EPS = 1e-9  # |X| = sqrt(re^2 + im^2 + MAG_EPS)
LOG_CLAMP = 1e-5  # log(max(mel, LOG_CLAMP))

# --- network -------------------------------------------------------------------------------------
HIDDEN, N_LAYERS, OUT_DIMS = 512, 6, 360
DW_KERNEL = 31  # depthwise conv of the conformer conv module
GROUPS = 4  # GroupNorm of the input stack
CENT_F0_MIN, CENT_F0_MAX = 32.7, 1975.5  # Hz: the span of ``cent_table`` (360 bins)

# --- decoding, as RVC / Applio call torchfcpe --------------------------------------------------
DEFAULT_THRESHOLD = 0.006  # frames whose largest latent is <= this are unvoiced
DECODERS = ("local_argmax", "argmax")
LOCAL_HALF = 4  # local_argmax: the 9 bins argmax - 4 .. argmax + 4


def mel_basis() -> np.ndarray:
    """(128, 513) Slaney mel filterbank, 0-8000 Hz, librosa's default norm, float32 (read-only)."""
    return mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, FMIN, FMAX, htk=False)
