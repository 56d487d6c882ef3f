"""Stamp stored notebooks so that JupyterLab opens them unmodified (rvclab.cli.lab.stamp_notebook):
the kernelspec ``rvclab lab`` starts, nbformat 4.5 and cell ids. ``make notebooks-sync`` and
``make notebooks-run`` call it; by hand: ``python scripts/stamp_notebooks.py notebooks/*.ipynb``."""

from __future__ import annotations

import sys

from rvclab.cli.lab import stamp_notebook


def main(paths: list[str]) -> int:
    for path in paths:
        if stamp_notebook(path):
            print(f"stamped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
