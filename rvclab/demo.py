"""``rvclab demo``: the main job on the shipped data, written to an output folder.

The environment report (``rvclab info``) is printed, then notebooks/00_environment.ipynb is
executed into ``out/`` as .ipynb and .html. Nothing outside ``out/`` is written.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_NOTEBOOKS = ("00_environment.ipynb",)


def run_demo(out: Path) -> int:
    from rvclab.info import collect

    out.mkdir(parents=True, exist_ok=True)
    info = collect()
    width = max(len(k) for k in info)
    print("== rvclab info ==")
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    for name in DEMO_NOTEBOOKS:
        src = ROOT / "notebooks" / name
        print(f"== executing {src.relative_to(ROOT)} ==")
        for fmt in ("notebook", "html"):
            subprocess.run(
                [sys.executable, "-m", "jupyter", "nbconvert", "--to", fmt, "--execute",
                 "--ExecutePreprocessor.timeout=1200", "--output-dir", str(out.resolve()), str(src)],
                check=True, cwd=src.parent, stderr=subprocess.DEVNULL,
            )
    print(f"== done: open {out / DEMO_NOTEBOOKS[0].replace('.ipynb', '.html')} ==")
    return 0
