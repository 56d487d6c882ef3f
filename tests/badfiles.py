"""Bad inputs for the reliability sweep (tests/test_reliability*.py): files users really pass.

Each maker writes one file into a folder and returns its path; ``BAD_AUDIO`` lists the audio
cases, ``BAD_MODELS`` the model-file cases. :func:`read_only_dir` gives a folder nobody can
write to (root included: ``chattr +i``), :func:`small_models` a seeded voice and HuBERT with the
real architectures and few channels, so a conversion takes a second, not a minute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def speech_like(seconds: float = 0.5, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A voiced, speech-shaped test signal (T,) float32 @ ``sr``: 140 Hz harmonics, a syllable envelope."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    f0 = 140 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (0.2 * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def missing(folder: Path, name: str = "missing.wav") -> Path:
    return folder / name


def empty(folder: Path, name: str = "empty.wav") -> Path:
    path = folder / name
    path.write_bytes(b"")
    return path


def text(folder: Path, name: str = "text.wav") -> Path:
    path = folder / name
    path.write_text("this is a text file, not audio\n")
    return path


def wav_named(folder: Path, name: str) -> Path:
    """A real wav under another name (``voice.pth``, ``x.index``, ``feats.npy``)."""
    path = folder / name
    sf.write(str(path), speech_like(0.2), SR, format="WAV")
    return path


def huge_rate(folder: Path, name: str = "huge_rate.wav") -> Path:
    """A valid wav whose header claims 10 MHz (100 samples)."""
    path = folder / name
    sf.write(str(path), speech_like(0.2)[:100], 10_000_000)
    return path


def one_sample(folder: Path, name: str = "one_sample.wav") -> Path:
    path = folder / name
    sf.write(str(path), np.array([0.1], np.float32), SR)
    return path


def non_finite(folder: Path, value: float, name: str) -> Path:
    """A float wav with ``value`` (NaN or Inf) in one sample of 0.5 s of speech."""
    x = speech_like(0.5)
    x[1000] = value
    path = folder / name
    sf.write(str(path), x, SR, subtype="FLOAT")
    return path


BAD_AUDIO = {
    "missing": lambda d: missing(d),
    "empty": lambda d: empty(d),
    "text named .wav": lambda d: text(d),
    "header claims 10 MHz": lambda d: huge_rate(d),
    "1 sample": lambda d: one_sample(d),
    "NaN sample": lambda d: non_finite(d, np.nan, "nan.wav"),
    "Inf sample": lambda d: non_finite(d, np.inf, "inf.wav"),
}

BAD_MODELS = {
    "missing": lambda d: missing(d, "missing.pth"),
    "empty": lambda d: empty(d, "empty.pth"),
    "text named .pth": lambda d: text(d, "text.pth"),
    "wav named .pth": lambda d: wav_named(d, "voice.pth"),
}


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temp or partial files an interrupted write could leave behind."""
    return sorted(p.name for p in Path(folder).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp"))


@contextlib.contextmanager
def read_only_dir(path: Path):
    """A folder nobody can create files in, root included (``chattr +i`` as root, else mode 0555)."""
    path.mkdir(parents=True, exist_ok=True)
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(path)], check=True)
        undo = ["chattr", "-i", str(path)]
    else:
        path.chmod(0o555)
        undo = None
    try:
        yield path
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            path.chmod(0o755)


def small_models(folder: Path) -> tuple[Path, Path]:
    """(voice .pth, hubert_base.pt): a seeded v1 32k voice with few channels and a seeded small
    HuBERT whose final projection gives the v1 voice its 256-d features. Files already in
    ``folder`` are kept, so test modules can share one folder."""
    from rvclab.models.hubert import seeded as hubert
    from rvclab.models.hubert.config import HubertConfig
    from rvclab.models.synth.config import SynthConfig
    from rvclab.models.synth.seeded import make_one

    folder.mkdir(parents=True, exist_ok=True)
    voice = make_one(folder / "small_v1_32k.pth", SynthConfig.preset("v1-32k").small(), seed=0)
    config = dataclasses.replace(HubertConfig.small(), final_dim=256)
    hubert.make(folder / "hubert", seed=0, force=False, config=config)
    return voice, folder / "hubert" / "hubert_base.pt"


# the words each bad input's error must contain (functions and commands alike)
AUDIO_PROBLEM = {  # case -> words the error must contain
    "missing": "no such file",
    "empty": "empty (0 bytes)",
    "text named .wav": "not a readable audio file",
    "header claims 10 MHz": "10000000 Hz",
    "1 sample": "too short",
    "NaN sample": "NaN or Inf",
    "Inf sample": "NaN or Inf",
}
MODEL_PROBLEM = {
    "missing": "no such file",
    "empty": "empty (0 bytes)",
    "text named .pth": "not a checkpoint",
    "wav named .pth": "not a checkpoint",
}
