"""The seeded RVC voices in :func:`rvclab.paths.weights_dir`, written if missing.

Stand-ins with upstream keys and ``.pth`` layout, not trained voices (weights/README.md). The
voice maker builds torch models, so importing this module loads torch; the HuBERT and RMVPE
defaults the MLX path needs are in :mod:`rvclab.weights`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.seeded import FILES, make, make_one
from rvclab.paths import weights_dir


def default_voice(name: str = "voice_v2_40k.pth") -> Path:
    """A seeded voice file in :func:`rvclab.paths.weights_dir`, written if missing (only that one file)."""
    path = weights_dir() / name
    if not path.exists():
        match = [(preset, f0) for (preset, f0), fname in FILES.items() if fname == name]
        if not match:
            raise FileNotFoundError(f"{path}: no such voice, and no seeded voice has that name")
        preset, f0 = match[0]
        make_one(path, SynthConfig.preset(preset, f0=f0), seed=0)
    return path


def seeded_voices() -> list[Path]:
    """Every ``voice_*.pth`` in the weights folder; the seeded set is written first when none is."""
    paths = sorted(weights_dir().glob("voice_*.pth"))
    return paths or sorted(make(weights_dir(), seed=0, force=False))
