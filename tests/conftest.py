"""Shared fixtures. Everything is seeded; files are written only under tmp_path."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt during the test, as in a terminal, whatever the process was
    given: a shell starts a background job with SIGINT ignored, and a test worker's handler depends
    on what ran before it in that process. Every test that sends itself a real SIGINT uses this."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


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
def seeded_weights():
    """Every seeded upstream-format file, in the session's weights folder (made once, where missing)."""
    from rvclab.cli import main
    from rvclab.paths import weights_dir

    out = weights_dir()
    assert main(["weights", "make", "--out", str(out)]) == 0
    return out


GPU_SKIP_REASON = ("needs a CUDA GPU (torch.cuda) and MLX's CUDA backend; "
                   "run scripts/gpu_test.sh on the lent GPU")
# Debugging switch, never set in CI: run the `gpu` tests on the CPU to catch mistakes before a
# device run (tests/test_gpu.py says what that does and does not prove).
GPU_ON_CPU_ENV = "RVCLAB_GPU_TEST_ON_CPU"


def gpu_available() -> bool:
    """torch sees a CUDA device and MLX has its CUDA backend (or the debugging switch is on)."""
    if os.environ.get(GPU_ON_CPU_ENV) == "1":
        return True
    from rvclab import runtime  # before torch: on Linux with MLX's CUDA backend it orders the loads

    mx = runtime.import_mlx()
    import torch

    cuda = getattr(mx, "cuda", None)
    return bool(torch.cuda.is_available() and cuda is not None and cuda.is_available())


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not gpu_available():
        skip = pytest.mark.skip(reason=GPU_SKIP_REASON)
        for item in gpu_items:
            item.add_marker(skip)
