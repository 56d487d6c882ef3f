"""What made an output: the record ``rvclab convert`` keeps beside each file, and a rerun's verdict.

Each output ``out.wav`` gets a sidecar ``out.wav.rvclab.json`` (written atomically, after the
audio) holding the sha256 of the input file, of every model file the conversion read (voice,
HuBERT, index, F0 curve, F0 network weights), every conversion setting, the backend, the
reference profile followed and its fields rvclab does not reproduce, the pipeline's behaviour
version, the rvclab version, and the sha256 of the output file itself. docs/reliability.md says
why a sidecar and not the audio's own metadata.

:func:`judge` gives an existing output one of four states: ``NEW`` (no file), ``CURRENT`` (its
record matches what would be made now), ``STALE`` (made from other inputs or settings: the
differences are listed, old -> new), ``FOREIGN`` (no record, or the file changed since its record
was written: a user's own file, never replaced without being asked).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from rvclab import __version__
from rvclab.checkpoints import CheckpointError, atomic_write
from rvclab.models.f0_packages import asset_path
from rvclab.pipeline.reference import reference_gaps, resolve
from rvclab.profiles import DEFAULT_PROFILE, ReferenceProfile
from rvclab.weights import default_rmvpe

SIDECAR_SUFFIX = ".rvclab.json"
RECORD_FORMAT = "rvclab-output/1"
# A revision of the pipeline, to bump whenever a change alters output samples for the same inputs,
# settings and reference profile (old outputs then convert again); the release followed is the
# record's reference_profile (rvclab.profiles).
PIPELINE_BEHAVIOUR = "rvclab-reference-profiles/2"
F0_ASSETS = {"crepe": "crepe-full", "crepe-tiny": "crepe-tiny", "fcpe": "fcpe"}  # packaged weights
NEW, CURRENT, STALE, FOREIGN = "new", "current", "stale", "foreign"
_CHUNK = 1 << 20  # bytes read at a time when hashing

_DIGESTS: dict[tuple, str] = {}


def sidecar_path(output: str | os.PathLike) -> Path:
    """``out.wav`` -> ``out.wav.rvclab.json``, in the same folder."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes; cached per (path, inode, size, mtime), so a file read
    twice in one run is hashed once and a file changed in between is hashed again."""
    path = Path(path)
    st = path.stat()
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(_CHUNK), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def f0_weights(method: str) -> Path | None:
    """The weight file an F0 method reads (rmvpe: weights/rmvpe.pt, written if missing; crepe and
    fcpe: their packages' files), None for methods without a network (pm, harvest, dio)."""
    if method == "rmvpe":
        return default_rmvpe()
    if method in F0_ASSETS:
        try:
            return asset_path(F0_ASSETS[method])
        except (ImportError, CheckpointError):  # package missing: the conversion itself says so
            return None
    return None


def _file(path) -> dict | None:
    if path is None:
        return None
    path = Path(path)
    return {"path": str(path.resolve()), "sha256": file_digest(path) if path.is_file() else None}


def make_record(*, source: str | os.PathLike, files: Mapping[str, str | os.PathLike | None],
                settings: Mapping[str, object], backend: str,
                reference: str | ReferenceProfile = DEFAULT_PROFILE) -> dict:
    """The record of converting ``source``, before its output exists (:func:`write_sidecar` adds that).

    ``files``: name -> path of each model file read (None: not used); ``settings``: name -> value
    as :func:`rvclab.pipeline.conversion.convert_voice` names them (JSON numbers and strings);
    ``reference``: the reference profile followed (its name and gaps are recorded).
    """
    profile = resolve(reference)
    record = {
        "format": RECORD_FORMAT,
        "input": _file(source),
        "files": {name: _file(p) for name, p in files.items()},
        "settings": dict(settings),
        "backend": backend,
        "reference_profile": profile.name,
        "reference_gaps": list(reference_gaps(profile)),
        "pipeline_behaviour": PIPELINE_BEHAVIOUR,
        "rvclab_version": __version__,
    }
    return json.loads(json.dumps(record))  # the values as a reread sidecar holds them


def write_sidecar(output: str | os.PathLike, record: Mapping) -> Path:
    """Write ``record`` plus the output's own name and sha256 beside ``output``, atomically."""
    output = Path(output)
    full = {**record, "output": {"name": output.name, "sha256": file_digest(output)}}
    text = json.dumps(full, indent=2) + "\n"
    return atomic_write(sidecar_path(output), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_sidecar(output: str | os.PathLike) -> dict | None:
    """The record beside ``output``; None when there is none or it is not one of ours."""
    try:
        record = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == RECORD_FORMAT else None


def _values(record: Mapping) -> dict[str, object]:
    """The compared values of a record, flat: digests of files (not their paths) and settings."""
    def digest(entry):
        return entry.get("sha256") if isinstance(entry, dict) else None

    flat = {"input": digest(record.get("input"))}
    flat.update({name: digest(entry) for name, entry in (record.get("files") or {}).items()})
    flat.update(record.get("settings") or {})
    for key in ("backend", "reference_profile", "reference_gaps", "pipeline_behaviour", "rvclab_version"):
        flat[key] = record.get(key)
    return flat


def differences(old: Mapping, new: Mapping, labels: Mapping[str, str] | None = None) -> list[str]:
    """What differs between two records, one ``"name old -> new"`` each (digests shortened);
    ``labels`` renames settings for the reader (e.g. ``f0_up_key`` -> ``--pitch``)."""
    labels = labels or {}
    a, b = _values(old), _values(new)
    files = {"input", *(new.get("files") or {}), *(old.get("files") or {})}
    out = []
    for key in [*b, *(k for k in a if k not in b)]:
        if a.get(key) == b.get(key):
            continue
        if key in files:
            short = [v[:12] if isinstance(v, str) else "none" for v in (a.get(key), b.get(key))]
            out.append(f"{key} file sha256 {short[0]} -> {short[1]}")
        else:
            out.append(f"{labels.get(key, key)} {a.get(key)!r} -> {b.get(key)!r}")
    return out


def judge(output: str | os.PathLike, expected: Callable[[], Mapping],
          labels: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """(state, reasons) of ``output`` against the record a conversion would write now.

    ``expected`` is called only when ``output`` has a record of ours (it hashes the input).
    """
    output = Path(output)
    if not output.exists():
        return NEW, []
    if not output.is_file():
        return FOREIGN, ["not a file"]
    record = read_sidecar(output)
    if record is None:
        return FOREIGN, [f"no {sidecar_path(output).name} beside it"]
    if (record.get("output") or {}).get("sha256") != file_digest(output):
        return FOREIGN, [f"changed since rvclab wrote it (its sha256 differs from {sidecar_path(output).name})"]
    found = differences(record, expected(), labels)
    return (STALE, found) if found else (CURRENT, [])
