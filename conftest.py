"""Session-wide test setup for every path pytest collects: tests/ and the nbval notebooks alike.

The seeded weights go to one folder under the session's base temp (``RVCLAB_WEIGHTS``), never into
the repository's ``weights/``; notebook kernels and pytest-xdist workers inherit it. Here, not in
tests/conftest.py, because that one is read only when tests/ is collected: ``make test-nb`` or
``pytest notebooks/X.ipynb`` alone would otherwise use the repository's folder.
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin has set up the session's base temp
def pytest_configure(config):
    """Seeded weights go to one folder under the session's base temp, never into the repository;
    SIGINT raises KeyboardInterrupt (tests, workers and their subprocesses).

    The base temp goes when the session passes (``tmp_path_retention_policy`` in pyproject.toml), so
    a run leaves no weights behind; a failed run keeps them for a look (one session at most).
    """
    # Ctrl+C as in a terminal, however the suite was started: a shell starts a background job with
    # SIGINT ignored, Python keeps it ignored, and every worker and subprocess inherits that. The
    # tests that interrupt a batch, a stream or a conversion with a real SIGINT need the default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "RVCLAB_WEIGHTS" not in os.environ:
        folder = config._tmp_path_factory.getbasetemp() / "weights"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["RVCLAB_WEIGHTS"] = str(folder)


DISK_NEEDED_GB = 3  # seeded weights (about 1 GB), notebooks' and tests' files, JupyterLab's browser profile


def pytest_report_header(config):
    """Free disk where the session writes: a full disk shows up as hundreds of unrelated errors."""
    free = shutil.disk_usage(os.environ["RVCLAB_WEIGHTS"]).free / 2**30
    line = f"rvclab: {free:.1f} GB free in {os.environ['RVCLAB_WEIGHTS']}"
    if free < DISK_NEEDED_GB:
        line += f" -- LOW: the suite needs about {DISK_NEEDED_GB} GB; expect 'No space left on device'"
    return line
