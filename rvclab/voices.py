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
    """A seeded voice file in :func:`rvclab.paths.weights_dir`, written if missing or stale
    (:mod:`rvclab.seeding`; only that one file)."""
    path = weights_dir() / name
    match = [(preset, f0) for (preset, f0), fname in FILES.items() if fname == name]
    if match:
        preset, f0 = match[0]
        return make_one(path, SynthConfig.preset(preset, f0=f0), seed=0)  # keeps a current file
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such voice, and no seeded voice has that name")
    return path


def seeded_voices() -> list[Path]:
    """Every ``voice_*.pth`` in the weights folder; the seeded set is written first when none is."""
    paths = sorted(weights_dir().glob("voice_*.pth"))
    return paths or sorted(make(weights_dir(), seed=0, force=False))
