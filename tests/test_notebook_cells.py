"""Every notebook cell that nbval runs compares something, or says why it cannot.

nbval compares a cell's stored text outputs with a fresh run; a cell whose only output is a figure
(``<Figure size ...>``) or nothing proves no more than that it ran. Such a cell either prints the
data behind it (compactly, rounded) or starts with ``# display-only: <what checks its data>``.
Reads the stored notebooks; executes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MARK = "# display-only:"
EXEMPT = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")  # nbval's own marks: compared with nothing, on purpose
COMPARED = ("text/plain", "text/html", "application/vnd.jupyter.widget-view+json")


def _compared_outputs(cell: dict) -> list[str]:
    """The stored outputs nbval would compare, less figure reprs."""
    found = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            found.append("".join(out.get("text", "")))
        for kind in COMPARED:
            value = out.get("data", {}).get(kind)
            if value is not None:
                text = "".join(value) if isinstance(value, list) else str(value)
                if not text.startswith("<Figure size"):
                    found.append(text)
    return [t for t in found if t.strip()]


def _code_cells(path: Path):
    cells = json.loads(path.read_text())["cells"]
    return [(i, c, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_compares_something_or_says_why(path):
    silent = []
    for i, cell, source in _code_cells(path):
        if any(mark in source for mark in EXEMPT) or _compared_outputs(cell):
            continue
        first = source.splitlines()[0] if source else ""
        if not first.startswith(MARK) or not first[len(MARK):].strip():
            silent.append(f"cell {i}: {source.strip().splitlines()[-1][:80] if source.strip() else '(empty)'}")
    assert not silent, f"{path.name}: cells that compare nothing and are not marked '{MARK} <reason>': {silent}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_display_only_marks_hide_no_text(path):
    """A mark on a cell that prints is stale: the printed data are compared, so drop the mark."""
    stale = [f"cell {i}" for i, cell, source in _code_cells(path)
             if source.startswith(MARK) and _compared_outputs(cell)]
    assert not stale, f"{path.name}: '{MARK}' on cells whose output nbval compares: {stale}"


def test_the_check_sees_a_figure_only_cell():
    figure = {"outputs": [{"output_type": "display_data", "data": {"text/plain": "<Figure size 640x480 with 1 Axes>",
                                                                     "image/png": "iVBOR"}}]}
    printed = {"outputs": [{"output_type": "stream", "name": "stdout", "text": ["corr 0.99\n"]}]}
    assert _compared_outputs(figure) == [] and _compared_outputs({"outputs": []}) == []
    assert _compared_outputs(printed) == ["corr 0.99\n"]


def test_sanitizers_stay_linear_on_embedded_media():
    """nbval runs every sanitizer over every output, embedded audio and images included (one line
    of base64, up to about 1 MB). A pattern that backtracks over such a line (``\\S+\\.py:`` did:
    minutes per output) stalls the suite without failing it; each must finish on 400 KB of base64
    well inside a hang guard of 20 s (linear patterns take milliseconds)."""
    import base64
    import configparser
    import re
    import signal

    cfg = configparser.ConfigParser()
    cfg.read(NOTEBOOKS[0].parent / "sanitize.cfg")
    line = base64.b64encode(np.random.default_rng(0).bytes(300_000)).decode()
    line = f'<audio controls><source src="data:audio/wav;base64,{line}"></audio>'

    def hang(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, hang)
    try:
        for section in cfg.sections():
            signal.alarm(20)
            try:
                re.sub(cfg[section]["regex"], cfg[section]["replace"], line)
            except TimeoutError:
                pytest.fail(f"notebooks/sanitize.cfg [{section}] backtracks over a base64 line")
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
