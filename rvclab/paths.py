"""Where rvclab finds its weights. One place, read at call time (``RVCLAB_WEIGHTS`` overrides).

Default: the project's git-ignored ``weights/`` folder. Tests point ``RVCLAB_WEIGHTS`` at a temp
directory so they never write into the repository. The seeded stand-ins for missing default
files (weights/README.md) are written by :mod:`rvclab.weights` and :mod:`rvclab.voices`.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def weights_dir() -> Path:
    """The weights folder: ``$RVCLAB_WEIGHTS`` or ``<project>/weights``."""
    return Path(os.environ.get("RVCLAB_WEIGHTS", ROOT / "weights"))
