"""Shared fixtures. Everything is seeded; files are written only under tmp_path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_configure(config):
    """Seeded weights go to one temp folder per session, never into the repository."""
    if "RVCLAB_WEIGHTS" not in os.environ:
        base = config._tmp_path_factory.getbasetemp() if hasattr(config, "_tmp_path_factory") else None
        folder = Path(base or tempfile.mkdtemp(prefix="rvclab-")) / "weights"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["RVCLAB_WEIGHTS"] = str(folder)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def clips():
    from rvclab.audio import data_clips

    found = data_clips()
    assert len(found) >= 4, f"expected the shipped clips in data/, found {found}"
    return found


@pytest.fixture(scope="session")
def seeded_weights(tmp_path_factory):
    """Seeded upstream-format weights written once per test session into a temp dir."""
    from rvclab.cli import main

    out = tmp_path_factory.mktemp("weights")
    assert main(["weights", "make", "--out", str(out)]) == 0
    return out


def gpu_available() -> bool:
    from rvclab import runtime

    mx = runtime.import_mlx()
    return runtime.mlx_backend_name() != "cpu" and mx is not None


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs an accelerator (MLX Metal/CUDA); this machine has none")
    if any("gpu" in item.keywords for item in items) and not gpu_available():
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
