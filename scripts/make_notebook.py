"""Write a thin notebook from a compact spec (markdown and code cells), then execute it in place.

    python scripts/make_notebook.py notebooks/specs/00_environment.py

A spec module defines CELLS = [("md", "..."), ("code", "..."), ...] and NOTEBOOK = "name.ipynb".
Keeping the spec as Python makes notebooks reviewable as text and regenerable; the executed
.ipynb with its outputs is what nbval checks.
"""

import runpy
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def build(spec_path: Path) -> Path:
    spec = runpy.run_path(str(spec_path))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in spec["CELLS"]:
        text = text.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"cell-{i:02d}"
    out = ROOT / "notebooks" / spec["NOTEBOOK"]
    nbformat.write(nb, out)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
         "--ExecutePreprocessor.timeout=1200", str(out)],
        check=True, cwd=ROOT / "notebooks",
    )
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(build(Path(arg)))
