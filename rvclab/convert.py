"""Torch state dict -> MLX weights: a table of pure (pattern -> rule) entries, applied strictly.

A :class:`Rule` matches source keys (``re.fullmatch``) and turns the matched arrays into target
arrays; :func:`apply_rules` fails loudly, naming keys and shapes, on an unused, doubly consumed,
missing, unexpected or mis-shaped key. Rules are pure numpy (no model, no I/O); each family's table
is ``rvclab/models/<family>/rules.py``. Generic bodies live here: copy, weight-norm fusion, and the
conv layouts (torch -> MLX): conv1d (O, I, K) -> (O, K, I), conv_transpose1d (I, O, K) -> (O, K, I),
conv2d (O, I, H, W) -> (O, H, W, I), conv_transpose2d (I, O, H, W) -> (O, H, W, I).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors.numpy

from rvclab.checkpoints import atomic_write

Arrays = dict[str, np.ndarray]
# A rule body: (source dict, matched key, match) -> (outputs, extra consumed source keys)
RuleFn = Callable[[Mapping[str, np.ndarray], str, re.Match], tuple[Arrays, list[str]]]


class ConversionError(ValueError):
    """A conversion problem; ``problems`` lists every offending key with what was expected."""

    def __init__(self, problems: Sequence[str], context: str = ""):
        self.problems = list(problems)
        head = f"{context}: " if context else ""
        shown = "\n  ".join(self.problems[:40])
        more = f"\n  ... and {len(self.problems) - 40} more" if len(self.problems) > 40 else ""
        super().__init__(f"{head}{len(self.problems)} conversion problem(s):\n  {shown}{more}")


@dataclass(frozen=True)
class Rule:
    """One table entry: source keys matching ``pattern`` are converted by ``fn``."""

    name: str
    pattern: str
    fn: RuleFn
    doc: str = ""
    _regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def match(self, key: str) -> re.Match | None:
        return self._regex.fullmatch(key)


@dataclass
class ConversionReport:
    """What each rule did: rows of (rule, source keys, target key, target shape)."""

    rows: list[dict] = field(default_factory=list)

    def by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["rule"]] = counts.get(row["rule"], 0) + 1
        return counts


# --- layouts ---------------------------------------------------------------------------------


def conv1d_layout(w: np.ndarray) -> np.ndarray:
    """(O, I, K) -> (O, K, I)."""
    return np.ascontiguousarray(w.transpose(0, 2, 1))


def conv_transpose1d_layout(w: np.ndarray) -> np.ndarray:
    """(I, O, K) -> (O, K, I)."""
    return np.ascontiguousarray(w.transpose(1, 2, 0))


def conv2d_layout(w: np.ndarray) -> np.ndarray:
    """(O, I, H, W) -> (O, H, W, I)."""
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


def conv_transpose2d_layout(w: np.ndarray) -> np.ndarray:
    """(I, O, H, W) -> (O, H, W, I)."""
    return np.ascontiguousarray(w.transpose(1, 2, 3, 0))


def identity_layout(w: np.ndarray) -> np.ndarray:
    return w


# --- rule bodies -----------------------------------------------------------------------------


def copy(target: str = r"\g<0>") -> RuleFn:
    """Copy the tensor unchanged (bit-exact) to ``target`` (a ``re`` template)."""

    def body(src, key, m):
        return {m.expand(target): src[key]}, []

    return body


def rename(target: str) -> RuleFn:
    """Alias of :func:`copy` with an explicit new name."""
    return copy(target)


def transform(fn: Callable[[np.ndarray], np.ndarray], target: str = r"\g<0>") -> RuleFn:
    """Apply an array function (e.g. a layout) and store under ``target``."""

    def body(src, key, m):
        return {m.expand(target): fn(src[key])}, []

    return body


def weight_norm_pair(src: Mapping[str, np.ndarray], prefix: str) -> tuple[str, str] | None:
    """Names of (g, v) for a weight-normed parameter, in either the old or the new key form."""
    for g, v in (
        (f"{prefix}.weight_g", f"{prefix}.weight_v"),
        (f"{prefix}.parametrizations.weight.original0", f"{prefix}.parametrizations.weight.original1"),
    ):
        if g in src and v in src:
            return g, v
    return None


def fused_weight(g: np.ndarray, v: np.ndarray, dim: int = 0) -> np.ndarray:
    """w = g * v / ||v||, the norm over every axis but ``dim`` (computed in float64)."""
    v64 = v.astype(np.float64)
    axes = tuple(i for i in range(v.ndim) if i != dim % v.ndim)
    norm = np.sqrt(np.sum(v64 * v64, axis=axes, keepdims=True))
    return (g.astype(np.float64) * v64 / norm).astype(np.result_type(v.dtype, np.float32))


def fuse_weight_norm(dim: int = 0, layout=identity_layout, target: str = r"\g<prefix>.weight") -> RuleFn:
    """Rule body for ``(?P<prefix>...)\\.(weight_g|parametrizations.weight.original0)``.

    Consumes the matching ``weight_v``/``original1`` too, fuses, applies ``layout``.
    """

    def body(src, key, m):
        prefix = m.group("prefix")
        pair = weight_norm_pair(src, prefix)
        if pair is None:
            raise ConversionError([f"{key}: weight-norm magnitude without its direction tensor"])
        g, v = pair
        if src[g].ndim != src[v].ndim:
            raise ConversionError(
                [f"{g}: expected {src[v].ndim} dims like {v} {src[v].shape}, found {src[g].shape}"]
            )
        return {m.expand(target): layout(fused_weight(src[g], src[v], dim))}, [v]

    return body


WEIGHT_G = r"(?P<prefix>.+)\.(?:weight_g|parametrizations\.weight\.original0)"


# --- the engine ------------------------------------------------------------------------------


def apply_rules(
    src: Mapping[str, np.ndarray],
    rules: Sequence[Rule],
    expected_shapes: Mapping[str, tuple] | None = None,
    *,
    dtype=np.float32,
    context: str = "",
) -> tuple[Arrays, ConversionReport]:
    """Run ``rules`` over ``src`` strictly; return (target arrays, report).

    Floating-point outputs are cast to ``dtype`` (fp16 checkpoints are upcast; pass None to keep
    dtypes). Raises :class:`ConversionError` listing every problem at once.
    """
    out: Arrays = {}
    consumed: dict[str, str] = {}
    problems: list[str] = []
    report = ConversionReport()
    for key in sorted(src):
        if key in consumed:
            continue
        rule, m = next(((r, r.match(key)) for r in rules if r.match(key)), (None, None))
        if rule is None:
            problems.append(f"{key} {tuple(np.shape(src[key]))}: unused source key (no rule matches)")
            continue
        try:
            produced, extra = rule.fn(src, key, m)
        except ConversionError as exc:
            problems.extend(exc.problems)
            continue
        for used in [key, *extra]:
            if used in consumed:
                problems.append(f"{used}: consumed twice (by {consumed[used]} and {rule.name})")
            consumed[used] = rule.name
        for name, arr in produced.items():
            if name in out:
                problems.append(f"{name}: produced twice (second time by rule {rule.name})")
            if dtype is not None and np.issubdtype(arr.dtype, np.floating):
                arr = arr.astype(dtype, copy=False)
            out[name] = arr
            report.rows.append(
                {"rule": rule.name, "source": [key, *extra], "target": name, "shape": tuple(arr.shape)}
            )
    if expected_shapes is not None:
        problems.extend(check_shapes(out, expected_shapes))
    if problems:
        raise ConversionError(problems, context)
    return out, report


def check_shapes(arrays: Mapping[str, np.ndarray], expected: Mapping[str, tuple]) -> list[str]:
    """Problems between produced arrays and the expected {name: shape}: missing, extra, shape."""
    problems = []
    for name in sorted(set(expected) - set(arrays)):
        problems.append(f"{name}: missing (expected shape {tuple(expected[name])})")
    for name in sorted(set(arrays) - set(expected)):
        problems.append(f"{name} {tuple(arrays[name].shape)}: unexpected target key")
    for name in sorted(set(arrays) & set(expected)):
        if tuple(arrays[name].shape) != tuple(expected[name]):
            problems.append(
                f"{name}: expected shape {tuple(expected[name])}, found {tuple(arrays[name].shape)}"
            )
    return problems


def mlx_param_shapes(model) -> dict[str, tuple]:
    """{dotted path: shape} of every parameter of an MLX module (the converter's target)."""
    from mlx.utils import tree_flatten

    return {k: tuple(v.shape) for k, v in tree_flatten(model.parameters())}


def load_into_mlx(model, arrays: Mapping[str, np.ndarray]) -> None:
    """Set every parameter of ``model`` from ``arrays`` (strict: keys and shapes must match)."""
    import mlx.core as mx

    problems = check_shapes(arrays, mlx_param_shapes(model))
    if problems:
        raise ConversionError(problems, type(model).__name__)
    model.load_weights([(k, mx.array(v)) for k, v in arrays.items()], strict=True)


def save_safetensors_atomic(
    path: str | os.PathLike, arrays: Mapping[str, np.ndarray], metadata: Mapping | None = None
) -> Path:
    """Write arrays (+ string metadata; non-strings are JSON-encoded) atomically."""
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    return atomic_write(Path(path), lambda tmp: safetensors.numpy.save_file(arrays, str(tmp), metadata=meta))


def rules_table(rules: Sequence[Rule]) -> list[dict]:
    """The rule table as rows (name, pattern, doc) for notebooks and docs."""
    return [{"rule": r.name, "pattern": r.pattern, "doc": r.doc} for r in rules]
