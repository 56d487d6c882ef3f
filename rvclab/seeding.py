"""Which seeded files in a weights folder rvclab wrote, and whether the code that wrote them is current.

``.rvclab-seeded.json`` beside the files maps each file rvclab's seeded makers wrote (its path
relative to the folder) to the fingerprint of the code that wrote it and the seed. A maker asked
for a file rewrites it when the record names it with another fingerprint (the seeding changed, so
the file no longer matches what notebooks, docs and tests expect of it). A file the record does not
name is kept as it is: it may be the user's (``--force`` replaces it).

Makers check, write and record under :func:`exclusive`, a lock on the folder, so processes that
need the same files at once (two notebooks, parallel test workers) take turns: each file is
written once and the record keeps every entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from rvclab.checkpoints import atomic_write

RECORD_NAME = ".rvclab-seeded.json"
LOCK_NAME = ".rvclab-seeded.lock"


class StaleSeededFile(UserWarning):
    """A seeded file written by older seeding code was rewritten."""


@functools.cache
def fingerprint(*modules: ModuleType, config: str = "") -> str:
    """sha256 (16 hex digits) of the source of ``modules`` (the seeded maker and what it reads) and
    of ``config``, the repr of a non-default configuration the files were made with."""
    digest = hashlib.sha256(config.encode())
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


def read_record(folder: Path) -> dict[str, dict]:
    """The folder's record ({} when there is none, or it is not a JSON object of objects)."""
    try:
        record = json.loads((Path(folder) / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if isinstance(v, dict)}


def is_users(folder: Path, name: str) -> bool:
    """``folder / name`` exists and the record does not name it: rvclab did not write it."""
    return (Path(folder) / name).exists() and name not in read_record(folder)


def needs_writing(folder: Path, names: Iterable[str], fp: str, force: bool = False) -> bool:
    """True when ``force``, when a file in ``names`` is missing, or when the record says one was
    written by code with another fingerprint (a :class:`StaleSeededFile` warning names it)."""
    folder, names = Path(folder), list(names)
    if force or not all((folder / n).exists() for n in names):
        return True
    record = read_record(folder)
    stale = [n for n in names if n in record and record[n].get("fingerprint") != fp]
    for name in stale:
        warnings.warn(f"{folder / name}: written by older seeding code "
                      f"({record[name].get('fingerprint')} != {fp}); rewriting it", StaleSeededFile,
                      stacklevel=3)
    return bool(stale)


def record(folder: Path, names: Iterable[str], fp: str, seed: int) -> None:
    """Note ``names`` (relative to ``folder``) as written now by code ``fp`` with ``seed``."""
    folder = Path(folder)
    entries = read_record(folder)
    entries.update({n: {"fingerprint": fp, "seed": seed} for n in names})
    text = json.dumps(entries, indent=1, sort_keys=True) + "\n"
    atomic_write(folder / RECORD_NAME, lambda tmp: tmp.write_text(text))


@contextlib.contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold the folder's seeding lock (``LOCK_NAME``, an exclusive ``flock``) for the block; another
    process or thread asking for it waits. Not re-entrant: a maker takes it once. In a folder this
    process cannot write (a read-only weights folder that already holds the files), no writer can
    race it: the block runs unlocked, and a file that must be written fails as it would anyway."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a")  # noqa: SIM115 - closed below, after the unlock
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
