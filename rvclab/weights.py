"""The default HuBERT and RMVPE weights in :func:`rvclab.paths.weights_dir`, written if missing.

Missing files are written by the seeded makers (``rvclab weights make``): stand-ins with upstream
keys and formats, not trained weights (weights/README.md). Importing this module loads no torch
(the MLX path uses it); writing a file does. Seeded voices: :mod:`rvclab.voices`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab.models.hubert import seeded as hubert_seeded
from rvclab.models.rmvpe import seeded as rmvpe_seeded
from rvclab.paths import weights_dir


def default_hubert() -> Path:
    """weights/hubert_base.pt (seeded fairseq format), written with its ContentVec twin if missing."""
    path = weights_dir() / "hubert_base.pt"
    if not path.exists():
        hubert_seeded.make(weights_dir(), seed=0, force=False)
    return path


def default_rmvpe() -> Path:
    """weights/rmvpe.pt (seeded), written if missing."""
    path = weights_dir() / "rmvpe.pt"
    if not path.exists():
        rmvpe_seeded.make(weights_dir(), seed=0, force=False)
    return path
