"""Execute notebooks and store their outputs (the reference nbval compares against).

    python scripts/run_notebooks.py [--timeout S] notebooks/NN_name.ipynb ...

Each notebook runs in a fresh kernel with its own folder as the working directory, through
nbclient's ``NotebookClient.execute()``; each cell's time is printed as it finishes. The executed
notebook replaces the stored one atomically (a temp file in the same folder, then a rename), and
only when every cell ran: a failed run leaves the stored notebook as it was. ``make notebooks-run``
calls this, then ``scripts/stamp_notebooks.py``. (``jupyter nbconvert --execute`` was used before;
it waited forever after the last cell of a notebook whose kernel was idle.)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def run(path: Path, timeout: int) -> None:
    nb = nbformat.read(path, as_version=4)
    started: dict[int, float] = {}

    def began(cell, cell_index, **_):
        started[cell_index] = time.perf_counter()

    def ended(cell, cell_index, **_):
        print(f"  cell {cell_index}: {time.perf_counter() - started[cell_index]:.1f} s", flush=True)

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_execute=began, on_cell_executed=ended)
    client.execute()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ipynb", dir=path.parent)
    os.close(fd)
    try:
        nbformat.write(nb, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--timeout", type=int, default=1200, help="seconds a cell may take (default %(default)s)")
    args = p.parse_args(argv)
    missing = [str(n) for n in args.notebooks if not n.is_file()]
    if missing:
        print(f"run_notebooks: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for path in args.notebooks:
        print(f"{path}:", flush=True)
        start = time.perf_counter()
        try:
            run(path.resolve(), args.timeout)
        except CellExecutionError as exc:
            print(f"{path}: a cell failed; the stored notebook is unchanged\n{exc}", file=sys.stderr)
            return 1
        print(f"{path}: {time.perf_counter() - start:.0f} s, stored", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
