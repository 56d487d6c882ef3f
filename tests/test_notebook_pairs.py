"""Each notebooks/NN_name.ipynb and its NN_name.py (jupytext percent format) hold the same cells.

The .py is what reviews and ruff read; the .ipynb also holds the outputs nbval compares. Both are
read with jupytext's own reader and compared cell by cell (type and source), so no kernel runs.
A failure names the notebook and the first differing cell; `make notebooks-sync` mends it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import pytest
from jupytext.config import load_jupytext_config

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PAIR_FORMAT = "py:percent"


def _first_line_apart(a: str, b: str) -> tuple[int, str, str]:
    """1-based number of the first differing line of two sources, and that line in each."""
    left, right = a.splitlines(), b.splitlines()
    for i in range(max(len(left), len(right))):
        x = left[i] if i < len(left) else "<no line>"
        y = right[i] if i < len(right) else "<no line>"
        if x != y:
            return i + 1, x, y
    return 1, repr(a), repr(b)  # only line endings differ


def pair_difference(ipynb: Path) -> str | None:
    """None when ``ipynb`` and its .py pair hold the same cells; else what differs first, by notebook and cell."""
    py = ipynb.with_suffix(".py")
    if not py.exists():
        return f"{ipynb.name} has no pair {py.name}: run `jupytext --sync {ipynb.name}` in notebooks/"
    notebook = jupytext.read(ipynb)
    nb_cells = [(c.cell_type, c.source) for c in notebook.cells]
    py_cells = [(c.cell_type, c.source) for c in jupytext.read(py, fmt=PAIR_FORMAT).cells]
    ids = [c.get("id", "?") for c in notebook.cells]
    hint = "run `make notebooks-sync` (the newer file wins)"
    for i, (a, b) in enumerate(zip(nb_cells, py_cells, strict=False)):
        if a == b:
            continue
        where = f"{ipynb.name} and {py.name} differ at cell {i} (id {ids[i]})"
        if a[0] != b[0]:
            return f"{where}: {a[0]} in the .ipynb, {b[0]} in the .py; {hint}"
        line, x, y = _first_line_apart(a[1], b[1])
        return f"{where}, {a[0]} line {line}:\n  .ipynb: {x}\n  .py:    {y}\n{hint}"
    if len(nb_cells) != len(py_cells):
        return (f"{ipynb.name} has {len(nb_cells)} cells, {py.name} has {len(py_cells)} "
                f"(first {min(len(nb_cells), len(py_cells))} agree); {hint}")
    return None


def test_every_notebook_has_a_pair_and_back():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.with_suffix(".py").name for p in NOTEBOOKS if not p.with_suffix(".py").exists()] == []
    orphans = [p.name for p in sorted(NOTEBOOK_DIR.glob("*.py")) if not p.with_suffix(".ipynb").exists()]
    assert orphans == [], f"{orphans} have no .ipynb: run `make notebooks-sync`"


def test_pairing_config():
    """notebooks/jupytext.toml pairs the formats, so `jupytext --sync` and Jupyter keep both files."""
    config = load_jupytext_config(str(NOTEBOOK_DIR))
    assert config is not None, "notebooks/jupytext.toml is missing"
    for ipynb in NOTEBOOKS:
        assert config.default_formats(str(ipynb)) == f"ipynb,{PAIR_FORMAT}", ipynb.name


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_pair_in_sync(ipynb):
    difference = pair_difference(ipynb)
    assert difference is None, difference


@pytest.fixture
def pair_copy(tmp_path):
    """A tmp copy of one pair (the first notebook), in sync."""
    src = NOTEBOOKS[0]
    for path in (src, src.with_suffix(".py")):
        shutil.copy2(path, tmp_path / path.name)
    ipynb = tmp_path / src.name
    assert pair_difference(ipynb) is None
    return ipynb


def test_desync_is_named(pair_copy):
    py = pair_copy.with_suffix(".py")
    cells = jupytext.read(pair_copy).cells
    k = next(i for i, c in enumerate(cells) if c.cell_type == "code")
    first = cells[k].source.splitlines()[0]
    text = py.read_text()
    assert text.count(first + "\n") == 1
    py.write_text(text.replace(first + "\n", first + "  # edited\n"))
    difference = pair_difference(pair_copy)
    assert difference is not None
    assert f"{pair_copy.name} and {py.name} differ at cell {k} (id {cells[k].id}), code line 1" in difference
    assert first + "  # edited" in difference


def test_missing_cell_and_missing_pair_are_named(pair_copy):
    py = pair_copy.with_suffix(".py")
    py.write_text(py.read_text() + "\n# %%\nprint('only in the .py')\n")
    difference = pair_difference(pair_copy)
    assert difference is not None and f"{py.name} has" in difference
    py.unlink()
    assert f"has no pair {py.name}" in pair_difference(pair_copy)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_notebook_opens_unmodified_with_its_widgets(ipynb, tmp_path):
    """JupyterLab marks a notebook modified on open when it has to add anything: a kernelspec other
    than the one `rvclab lab` starts, an older nbformat minor or missing cell ids. A widget output
    whose model is not in the saved widget state shows "model not found" without a kernel."""
    import json

    from rvclab.cli.lab import NOTEBOOK_KERNELSPEC, stamp_notebook

    copy = tmp_path / ipynb.name
    shutil.copy2(ipynb, copy)
    assert not stamp_notebook(copy), f"{ipynb.name} is not stamped: python scripts/stamp_notebooks.py {ipynb}"
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"] == NOTEBOOK_KERNELSPEC and "language_info" in nb["metadata"]
    views = [o["data"][WIDGET_VIEW]["model_id"] for c in nb["cells"] if c["cell_type"] == "code"
             for o in c["outputs"] if WIDGET_VIEW in o.get("data", {})]
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = [m for m in views if m not in state]
    assert not missing, f"{ipynb.name}: widget outputs without saved state (re-run with make notebooks-run): {missing}"
