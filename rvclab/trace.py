"""Layer-by-layer parity: both backends on the same inputs, every named submodule's output
compared, as a table in forward order (path, shape, max_abs, rmse, corr, ok).

Torch records with forward hooks; MLX, which has no hooks, by swapping each submodule's class for
a recording subclass during one call. Rows pair by module path and call index; torch's
channel-first outputs are compared in MLX's channel-last layout (``layout`` says which was used).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import numpy as np

from rvclab import metrics
from rvclab.runtime import import_mlx
from rvclab.tolerances import TRACE_REL_MAX_ABS


class TraceTable(list):
    """Rows (dicts) in forward order, with helpers for tests, notebooks and docs."""

    columns = ("path", "module", "shape", "max_abs", "rmse", "corr", "rel", "ok", "layout")

    def first_failure(self) -> dict | None:
        return next((r for r in self if not r["ok"]), None)

    def worst(self, n: int = 5) -> list[dict]:
        """The ``n`` rows furthest from torch; a NaN ``rel`` (not comparable) ranks first."""
        return sorted(self, key=lambda r: -r["rel"] if metrics.comparable(r["rel"]) else -math.inf)[:n]

    def to_markdown(self, rows: Sequence[dict] | None = None) -> str:
        rows = self if rows is None else rows
        head = "| " + " | ".join(self.columns) + " |\n|" + "---|" * len(self.columns) + "\n"
        return head + "\n".join("| " + " | ".join(_cell(r[c]) for c in self.columns) + " |" for r in rows)

    def _repr_html_(self) -> str:
        first = self.first_failure()
        out = ["<table><tr>" + "".join(f"<th>{c}</th>" for c in self.columns) + "</tr>"]
        for r in self:
            style = ' style="background:#fdd"' if r is first else ""
            out.append(f"<tr{style}>" + "".join(f"<td>{_cell(r[c])}</td>" for c in self.columns) + "</tr>")
        return "".join(out) + "</table>"


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _leaves(value) -> list:
    """Array-like outputs of a module call, flattened (tuples/lists of tensors)."""
    if isinstance(value, tuple | list):
        out = []
        for v in value:
            out += _leaves(v)
        return out
    return [value] if hasattr(value, "shape") else []


def record_torch(model, fn: Callable[[], object]) -> tuple[dict[str, list], object]:
    """Call ``fn()`` with forward hooks on every named submodule of ``model``."""
    import torch

    records: dict[str, list] = {}
    order: list[str] = []
    handles = []

    def hook_for(path):
        def hook(_module, _inputs, output):
            leaves = [t.detach().float().cpu().numpy() for t in _leaves(output) if isinstance(t, torch.Tensor)]
            if path not in records:
                order.append(path)
            records.setdefault(path, []).append((leaves, type(_module).__name__))

        return hook

    for path, module in model.named_modules():
        if path:
            handles.append(module.register_forward_hook(hook_for(path)))
    try:
        with torch.no_grad():
            result = fn()
    finally:
        for h in handles:
            h.remove()
    return {p: records[p] for p in order}, result


@contextmanager
def _recording_mlx(model, records: dict[str, list]):
    swapped = []
    cache: dict[type, type] = {}
    for path, module in model.named_modules():
        if not path:
            continue
        cls = type(module)
        if cls not in cache:
            def call(self, *args, __cls=cls, **kwargs):
                out = __cls.__call__(self, *args, **kwargs)
                records.setdefault(self._rvclab_trace_path, []).append((_leaves(out), __cls.__name__))
                return out

            cache[cls] = type(cls.__name__, (cls,), {"__call__": call})
        module._rvclab_trace_path = path  # plain attribute; not a parameter
        module.__class__ = cache[cls]
        swapped.append((module, cls))
    try:
        yield
    finally:
        for module, cls in swapped:
            module.__class__ = cls
            del module._rvclab_trace_path


def record_mlx(model, fn: Callable[[], object]) -> tuple[dict[str, list], object]:
    """Call ``fn()`` recording every named submodule's outputs of an MLX ``model``."""
    mx = import_mlx()
    records: dict[str, list] = {}
    with _recording_mlx(model, records):
        result = fn()
    for calls in records.values():
        for leaves, _ in calls:
            mx.eval(*leaves) if leaves else None
    return {p: [([np.array(a.astype(mx.float32)) for a in leaves], name) for leaves, name in calls]
            for p, calls in records.items()}, result


def to_channel_last(t: np.ndarray) -> np.ndarray:
    """(B, C, T) -> (B, T, C); (B, C, H, W) -> (B, H, W, C); other ranks unchanged."""
    if t.ndim == 3:
        return t.transpose(0, 2, 1)
    if t.ndim == 4:
        return t.transpose(0, 2, 3, 1)
    return t


def _compare(t: np.ndarray, m: np.ndarray) -> tuple[dict | None, str]:
    options = []
    if t.shape == m.shape:
        options.append(("same", t))
    cl = to_channel_last(t)
    if cl.shape == m.shape and t.ndim in (3, 4) and cl.shape != t.shape:
        options.append(("channel-last", cl))
    if not options:
        return None, f"torch {t.shape} vs mlx {m.shape}"
    rows = [(name, metrics.compare(arr, m)) for name, arr in options]
    name, row = min(rows, key=lambda r: r[1]["max_abs"])
    return row, ("ambiguous" if len(options) > 1 and t.ndim in (3, 4) else name)


def trace(
    torch_model,
    mlx_model,
    torch_fn: Callable[[], object],
    mlx_fn: Callable[[], object],
    rel_tol: float = TRACE_REL_MAX_ABS,
) -> TraceTable:
    """Run ``torch_fn`` and ``mlx_fn`` (closures calling the two models on the same inputs) and
    compare every submodule output present on both sides. ``ok`` is ``max_abs <= rel_tol * RMS``
    of the torch output (and exact equality where the RMS is zero)."""
    t_rec, _ = record_torch(torch_model, torch_fn)
    m_rec, _ = record_mlx(mlx_model, mlx_fn)
    table = TraceTable()
    for path, t_calls in t_rec.items():
        m_calls = m_rec.get(path)
        if not m_calls:
            continue
        for k, ((t_leaves, t_name), (m_leaves, _)) in enumerate(zip(t_calls, m_calls)):
            for j, (t_arr, m_arr) in enumerate(zip(t_leaves, m_leaves)):
                label = path + (f"#{k}" if len(t_calls) > 1 else "") + (f"[{j}]" if len(t_leaves) > 1 else "")
                row, layout = _compare(t_arr, m_arr)
                if row is None:
                    table.append({"path": label, "module": t_name, "shape": layout, "max_abs": float("inf"),
                                  "rmse": float("inf"), "corr": 0.0, "rel": float("inf"), "ok": False,
                                  "layout": "shape mismatch"})
                    continue
                table.append({"path": label, "module": t_name, "shape": row["shape"], "max_abs": row["max_abs"],
                              "rmse": row["rmse"], "corr": row["corr"], "rel": row["max_abs_rel"],
                              "ok": row["max_abs_rel"] <= rel_tol, "layout": layout})
    return table
