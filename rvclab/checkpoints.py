"""Reading and writing checkpoint files safely. Loading never runs code from a file.

Every checkpoint goes through torch's ``weights_only`` unpickler. The harmless non-tensor classes
upstream files carry (fairseq's ``argparse.Namespace`` and ``Dictionary``, omegaconf configs) map
to inert stand-ins (:data:`KNOWN_HARMLESS`) that only store their state; any other global is
refused with a :class:`CheckpointError` naming it. Writes are atomic (:func:`atomic_write`).
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file


class CheckpointError(ValueError):
    """A checkpoint could not be read; the message names the file and the problem."""


class InertObject:
    """Stand-in for a known harmless class: records constructor args and pickled state."""

    _rvclab_source = "object"

    def __init__(self, *args, **kwargs):
        self._args = args
        self._kwargs = kwargs
        self._state = None

    def __setstate__(self, state):
        self._state = state

    def __repr__(self) -> str:
        return f"<inert {self._rvclab_source}>"


class InertNamespace:
    """Stand-in for ``argparse.Namespace``: attributes come from the pickled state only."""

    def __init__(self, *args, **kwargs):
        self.__dict__.update(kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple):  # (dict_state, slots_state)
            state = state[0] or {}
        self.__dict__.update(state or {})

    def __repr__(self) -> str:
        return f"InertNamespace({', '.join(sorted(self.__dict__))})"


def _inert(qualified: str) -> type:
    """A distinct InertObject subclass per source class, so the allow-list maps one-to-one."""
    return type(f"Inert[{qualified}]", (InertObject,), {"_rvclab_source": qualified})


# The classes upstream checkpoints are known to carry. Nothing else is ever resolved.
KNOWN_HARMLESS = (
    "fairseq.data.dictionary.Dictionary",
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.listconfig.ListConfig",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
    "omegaconf.nodes.AnyNode",
    "omegaconf.nodes.StringNode",
    "omegaconf.nodes.IntegerNode",
    "omegaconf.nodes.FloatNode",
    "omegaconf.nodes.BooleanNode",
    "omegaconf.nodes.EnumNode",
    "typing.Any",
)
_STAND_INS: list[tuple[type, str]] = [(InertNamespace, "argparse.Namespace")] + [
    (_inert(name), name) for name in KNOWN_HARMLESS
]


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """Load a torch checkpoint (zip or legacy format) or a .safetensors file, safely.

    Returns what the file holds (usually a dict); tensors are torch tensors on ``map_location``.
    Raises :class:`CheckpointError` for a missing, empty, truncated or non-checkpoint file and
    for any pickled global outside the allow-list.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)

    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        raise CheckpointError(
            f"{path}: not a checkpoint: it starts with {head!r}, neither a torch zip archive "
            "nor a pickle"
        )

    import torch

    try:
        with torch.serialization.safe_globals(_STAND_INS), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True, mmap=False)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_explain_refusal(path, str(exc))) from None
    except Exception as exc:  # a corrupt file can fail anywhere inside the unpickler
        raise CheckpointError(_explain_corrupt(path, size, exc)) from None


def _explain_refusal(path: Path, message: str) -> str:
    found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", message)
    if found:
        name = found.group(1)
        return (
            f"{path}: refused to load: the file asks for the global '{name}', which is not a "
            "known harmless class. rvclab never runs code from a checkpoint; if this is a "
            "legitimate file of a format rvclab does not know yet, please report it."
        )
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    first = next((ln for ln in lines if "Weights only load failed" not in ln), "unknown reason")
    if "WeightsUnpickler error" in message and not first.strip().endswith(":"):
        return f"{path}: refused to load: {first.strip()}"
    if "WeightsUnpickler error" in message or "magic number" in message:
        return (
            f"{path}: not a torch checkpoint (a pickle without torch's layout, or a damaged "
            "file)"
        )
    return f"{path}: refused to load: {first}"


def _explain_corrupt(path: Path, size: int, exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        return f"{path}: truncated or corrupt checkpoint archive ({size} bytes): {text}"
    return f"{path}: not a readable checkpoint ({size} bytes): {text}"


def _load_safetensors(path: Path) -> dict:
    import torch

    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file: {exc}") from None
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata block of a .safetensors file (empty dict if none)."""
    with safe_open(str(path), framework="numpy") as fh:
        return dict(fh.metadata() or {})


def to_plain(obj: Any) -> Any:
    """Turn stand-ins (and containers of them) into plain dicts/lists for reading configs."""
    if isinstance(obj, InertNamespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, InertObject):
        state = obj._state
        if isinstance(state, Mapping) and "_content" in state:  # omegaconf containers
            return to_plain(state["_content"])
        if isinstance(state, Mapping) and "_val" in state:  # omegaconf value nodes
            return to_plain(state["_val"])
        if isinstance(state, Mapping):
            return {k: to_plain(v) for k, v in state.items()}
        return to_plain(state) if state is not None else None
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def state_dict_to_numpy(sd: Mapping[str, Any], dtype=None) -> dict[str, np.ndarray]:
    """Tensors of a state dict as numpy arrays; ``dtype`` (e.g. np.float32) upcasts floats."""
    out = {}
    for key, value in sd.items():
        if not hasattr(value, "detach"):
            raise CheckpointError(f"state dict entry '{key}' is a {type(value).__name__}, not a tensor")
        arr = value.detach().cpu().numpy()
        if dtype is not None and np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(dtype)
        out[key] = arr
    return out


# --- writing ---------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike, write_fn, *, overwrite: bool = True) -> Path:
    """Call ``write_fn(tmp_path)`` then rename the temp file over ``path`` in one step.

    The temp file lives in the target directory (same file system, so the rename is atomic).
    On any error the temp file is removed and ``path`` is untouched; an OSError (read-only
    folder, disk full) comes back as the same kind of OSError naming ``path``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; refusing to overwrite it")
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # read-only or missing folder, no space for even an empty file
        _raise_naming(exc, path)
    os.close(fd)
    try:
        write_fn(Path(tmp))
        # mkstemp creates 0600; give the file the mode a plain open() would (or the old file's)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # disk full, quota, I/O error: say which output failed
            _raise_naming(exc, path)
        raise
    return path


def check_writable_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove a file can be created in it (then removed).

    Raises an OSError naming the folder (read-only, not a folder, no space) before any work
    is spent on outputs that could not be saved.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rvclab-write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, f"cannot write into {folder}: {exc.strerror or exc}") from exc
    return folder


def _raise_naming(exc: OSError, path: Path):
    """Raise the same kind of OSError (same errno) with a message naming the output ``path``."""
    if exc.errno is None:
        raise exc
    raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: os.umask is process-wide, not safe to poke from threads


def save_torch_atomic(obj: Any, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp), overwrite=overwrite)
