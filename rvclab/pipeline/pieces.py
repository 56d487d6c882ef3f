"""Work in pieces: what lets a long conversion stop on Ctrl+C and give memory back as it goes.

Python raises KeyboardInterrupt between bytecodes, never inside one C call. torch runs a network
op by op, so it returns to Python between ops. MLX builds a lazy graph and runs all of it in the
one call that needs the result (``mx.eval``, ``np.array``): a whole chunk's synthesizer, a whole
clip's RMVPE U-Net. :func:`mlx_module_by_module` evaluates every submodule's output as it is made,
so the graph runs in pieces of one layer each; each element is computed by the same kernels, so
the result is identical.

glibc keeps freed memory for reuse (:func:`rvclab.runtime.tune_malloc`), which is fast but holds
every stage's high-water mark; :func:`release_memory` hands it back between stages and chunks.
"""

from __future__ import annotations

import ctypes
import platform
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rvclab.runtime import import_mlx

_LIBC: list = []  # [CDLL] once loaded, [None] where there is no glibc
_LOCK = threading.Lock()
_SWAPPED: dict[int, list] = {}  # id(model) -> [conversions using it, [(module, class), ...]]
_HOOKS = threading.local()  # this thread's on_piece per model: .fns {id(model): fn}


def release_memory(mlx_used: bool = False) -> None:
    """Return freed heap memory to the system (glibc ``malloc_trim``) and, after MLX work, MLX's
    buffer cache (``mx.clear_cache``). Arrays still referenced are untouched."""
    if mlx_used:
        import_mlx().clear_cache()
    if not _LIBC:
        glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
        _LIBC.append(ctypes.CDLL("libc.so.6") if glibc else None)
    if _LIBC[0] is not None:
        _LIBC[0].malloc_trim(0)


def _arrays(value, array_type) -> list:
    """The arrays in a module's output (an array, or tuples/lists of them)."""
    if isinstance(value, tuple | list):
        return [a for v in value for a in _arrays(v, array_type)]
    return [value] if isinstance(value, array_type) else []


@contextmanager
def mlx_module_by_module(model, on_piece: Callable[[str], None] | None = None) -> Iterator[None]:
    """Within the block, every call of a submodule of the MLX ``model`` evaluates its outputs
    before returning, then calls ``on_piece(path)`` (path as ``model.named_modules()`` names it).

    Done by swapping each submodule's class for a subclass (as :mod:`rvclab.trace` records
    outputs); the classes are restored when the last block using the model ends, however it ends.
    Blocks may overlap in threads sharing one model; each thread sees its own ``on_piece``.
    """
    mx = import_mlx()
    with _LOCK:
        entry = _SWAPPED.setdefault(id(model), [0, None])
        if entry[0] == 0:
            entry[1] = _swap_classes(model, mx)
        entry[0] += 1
    hooks = _HOOKS.__dict__.setdefault("fns", {})
    previous, hooks[id(model)] = hooks.get(id(model)), on_piece
    try:
        yield
    finally:
        hooks[id(model)] = previous
        with _LOCK:
            entry[0] -= 1
            if entry[0] == 0:
                del _SWAPPED[id(model)]
                for module, cls in reversed(entry[1]):
                    module.__class__ = cls
                    del module._rvclab_piece


def _swap_classes(model, mx) -> list:
    swapped, made = [], {}
    for path, module in model.named_modules():
        if any(module is done for done, _ in swapped):  # a module reached by two paths
            continue
        cls = type(module)
        if cls not in made:
            def call(self, *args, __cls=cls, **kwargs):
                out = __cls.__call__(self, *args, **kwargs)
                mx.eval(_arrays(out, mx.array))
                root, path = self._rvclab_piece
                hook = _HOOKS.__dict__.get("fns", {}).get(root)
                if hook is not None:
                    hook(path)
                return out

            made[cls] = type(cls.__name__, (cls,), {"__call__": call})
        module._rvclab_piece = (id(model), path or ".")  # plain attribute; not a parameter
        module.__class__ = made[cls]
        swapped.append((module, cls))
    return swapped
