"""The default HuBERT and RMVPE weights in :func:`rvclab.paths.weights_dir`, written if missing.

Missing files are written by the seeded makers (``rvclab weights make``): stand-ins with upstream
keys and formats, not trained weights (weights/README.md). Importing this module loads no torch
(the MLX path uses it); writing a file does. Seeded voices: :mod:`rvclab.voices`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab import seeding
from rvclab.models.hubert import seeded as hubert_seeded
from rvclab.models.rmvpe import seeded as rmvpe_seeded
from rvclab.paths import weights_dir


def default_hubert() -> Path:
    """weights/hubert_base.pt (seeded fairseq format), written with its ContentVec twin if missing or
    stale (:mod:`rvclab.seeding`)."""
    folder = weights_dir()
    if not seeding.is_users(folder, hubert_seeded.FAIRSEQ_NAME):  # a file of the user's is used as it is
        hubert_seeded.make(folder, seed=0, force=False)  # keeps current files
    return folder / hubert_seeded.FAIRSEQ_NAME


def default_rmvpe() -> Path:
    """weights/rmvpe.pt (seeded), written if missing or stale (:mod:`rvclab.seeding`)."""
    return rmvpe_seeded.make(weights_dir(), seed=0, force=False)[0]  # keeps current files
