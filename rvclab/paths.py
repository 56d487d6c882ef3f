"""Where rvclab finds its weights. One place, read at call time (``RVCLAB_WEIGHTS`` overrides).

Default: the project's git-ignored ``weights/`` folder. Tests point ``RVCLAB_WEIGHTS`` at a temp
directory so they never write into the repository. Missing default files are written by the
seeded makers (``rvclab weights make``): they are stand-ins, see weights/README.md.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def weights_dir() -> Path:
    """The weights folder: ``$RVCLAB_WEIGHTS`` or ``<project>/weights``."""
    return Path(os.environ.get("RVCLAB_WEIGHTS", ROOT / "weights"))


def default_voice(name: str = "voice_v2_40k.pth") -> Path:
    """A seeded voice file in :func:`weights_dir`, written if missing (only that one file)."""
    from rvclab.models.synth.config import SynthConfig
    from rvclab.models.synth.seeded import FILES, make_one

    path = weights_dir() / name
    if not path.exists():
        match = [(preset, f0) for (preset, f0), fname in FILES.items() if fname == name]
        if not match:
            raise FileNotFoundError(f"{path}: no such voice, and no seeded voice has that name")
        preset, f0 = match[0]
        make_one(path, SynthConfig.preset(preset, f0=f0), seed=0)
    return path


def default_hubert() -> Path:
    """weights/hubert_base.pt (seeded fairseq format), written with its ContentVec twin if missing."""
    path = weights_dir() / "hubert_base.pt"
    if not path.exists():
        from rvclab.models.hubert.seeded import make

        make(weights_dir(), seed=0, force=False)
    return path


def default_rmvpe() -> Path:
    """weights/rmvpe.pt (seeded), written if missing."""
    path = weights_dir() / "rmvpe.pt"
    if not path.exists():
        from rvclab.models.rmvpe.seeded import make

        make(weights_dir(), seed=0, force=False)
    return path
