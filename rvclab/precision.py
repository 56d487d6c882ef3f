"""Precision modes of the networks: one registry, applied alike to torch and MLX.

``precision="fp32"|"tf32"|"fp16"|"bf16"`` for every stage (a half mode leaves the stages without
a half path, :data:`HALF_STAGES`, in fp32), or ``{"features": ..., "f0": ..., "synth": ...}`` per
stage (missing stages take the device's default, :data:`DEFAULT`).

* fp32: float32 weights and activations, TF32 off (torch's matmul and cuDNN flags False;
  ``MLX_ENABLE_TF32=0``).
* tf32: float32 with TF32 tensor-core matmuls and convolutions (CUDA only).
* fp16 / bf16: torch runs the network under ``torch.autocast`` (float32 master weights, each op in
  the half type where autocast lists it); MLX runs a copy of the model cast to the half type, its
  inputs cast alike. Outputs come back as float32 and are checked: NaN or Inf raise
  :class:`PrecisionOverflow` naming the stage (never a silent broken file).

MLX reads ``MLX_ENABLE_TF32`` once, when it loads, for the whole process: :func:`configure_mlx`
sets it before, and refuses a mode that disagrees with an MLX already loaded. Quality bars per
mode: ``rvclab.tolerances.PRECISION_BARS``; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import copy
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from rvclab.runtime import import_mlx

PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
STAGES = ("features", "f0", "synth")
TF32_ENV = "MLX_ENABLE_TF32"


@dataclass(frozen=True)
class Mode:
    """How one precision is set: the networks' float type and whether TF32 is allowed."""

    dtype: str  # "float32", "float16" or "bfloat16" (the name torch and MLX share)
    tf32: bool


MODES = {
    "fp32": Mode(dtype="float32", tf32=False),
    "tf32": Mode(dtype="float32", tf32=True),
    "fp16": Mode(dtype="float16", tf32=False),
    "bf16": Mode(dtype="bfloat16", tf32=False),
}
# which modes each device runs (TF32 is an NVIDIA tensor-core format: CUDA only)
SUPPORTED = {
    "cpu": ("fp32", "fp16", "bf16"),
    "cuda": ("fp32", "tf32", "fp16", "bf16"),
    "metal": ("fp32", "fp16", "bf16"),
}
# stages whose networks take a reduced float type so far (the F0 estimators' log-mel front ends
# are float32, which MLX would promote the whole network back to): others run fp32 or tf32 only
HALF_STAGES = ("features", "synth")
# the default per device (docs/benchmarks.md, "Precision modes", has the measured cost of each)
DEFAULT = {"cpu": "fp32", "cuda": "fp32", "metal": "fp32"}


class PrecisionError(ValueError):
    """A precision the device or the loaded MLX cannot run; the message names the supported ones."""


class PrecisionOverflow(FloatingPointError):
    """A network's output holds NaN or Inf in a reduced precision."""


def resolve(precision, device: str) -> dict[str, str]:
    """``precision`` (None, a mode name, or {stage: mode}) -> {stage: mode} for ``device``
    ("cpu", "cuda" or "metal"). Raises PrecisionError naming the supported modes."""
    if device not in SUPPORTED:
        raise PrecisionError(f"precision: unknown device {device!r}; devices {tuple(SUPPORTED)}")
    chosen = dict.fromkeys(STAGES, DEFAULT[device])
    if isinstance(precision, str):
        # one mode for every stage: a stage without a half path keeps fp32 (explicit per-stage
        # requests for one are refused below)
        half = precision in MODES and MODES[precision].dtype != "float32"
        chosen = {s: "fp32" if half and s not in HALF_STAGES else precision for s in STAGES}
    elif isinstance(precision, dict):
        unknown = set(precision) - set(STAGES)
        if unknown:
            raise PrecisionError(f"precision: unknown stage(s) {sorted(unknown)}; stages {STAGES}")
        chosen.update(precision)
    elif precision is not None:
        raise PrecisionError(f"precision: expected a mode name or {{stage: mode}}, got {precision!r}")
    for stage, mode in chosen.items():
        if mode not in MODES:
            raise PrecisionError(f"precision {mode!r} for {stage}: modes are {PRECISIONS}")
        if mode not in SUPPORTED[device]:
            raise PrecisionError(f"precision {mode!r} for {stage} does not run on {device}; "
                                 f"supported there: {SUPPORTED[device]}")
        if MODES[mode].dtype != "float32" and stage not in HALF_STAGES:
            supported = tuple(m for m in SUPPORTED[device] if MODES[m].dtype == "float32")
            raise PrecisionError(f"precision {mode!r} for {stage}: that stage runs {supported} only")
    return chosen


def wants_tf32(modes: dict[str, str]) -> bool | None:
    """Whether the float32 stages want TF32 (None: no float32 stage). MLX's switch is one per
    process, so float32 stages that disagree raise PrecisionError."""
    flags = {MODES[m].tf32 for m in modes.values() if MODES[m].dtype == "float32"}
    if len(flags) > 1:
        raise PrecisionError(f"precision {modes}: fp32 and tf32 stages in one conversion; MLX sets TF32 "
                             f"once per process ({TF32_ENV}), so choose one for every float32 stage")
    return flags.pop() if flags else None


def configure_mlx(tf32: bool | None) -> None:
    """Set ``MLX_ENABLE_TF32`` for ``tf32`` before MLX loads; once it is loaded, raise
    PrecisionError if it loaded with the other setting (unset counts as on, MLX's default)."""
    if tf32 is None:
        return
    want = "1" if tf32 else "0"
    if "mlx.core" in sys.modules:
        have = "0" if os.environ.get(TF32_ENV, "1") == "0" else "1"
        if have != want:
            raise PrecisionError(f"MLX loaded with {TF32_ENV}={have}; this precision needs {want}. MLX reads "
                                 f"it once: set {TF32_ENV}={want} (or call rvclab.precision.configure_mlx) "
                                 "before MLX is imported")
        return
    os.environ[TF32_ENV] = want


@contextmanager
def torch_precision(mode: str | None, device_type: str):
    """Within the block, torch runs ``mode`` on ``device_type`` ("cpu" or "cuda"): TF32 flags
    set (and restored after), autocast for the half types. None: torch as it is set."""
    import torch

    if mode is None:
        yield
        return
    spec = MODES[mode]
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = spec.tf32
    try:
        if spec.dtype == "float32":
            yield
        else:
            with torch.autocast(device_type, dtype=getattr(torch, spec.dtype)):
                yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


_MLX_CASTS: dict[tuple[int, str], object] = {}


def mlx_model(model, mode: str | None):
    """The MLX ``model`` for ``mode``: itself for float32 (and None), else a cached copy cast to
    the half type (the float32 model is left as it is)."""
    dtype = MODES[mode or "fp32"].dtype
    if dtype == "float32":
        return model
    key = (id(model), dtype)
    if key not in _MLX_CASTS:
        cast = copy.deepcopy(model)
        cast.set_dtype(getattr(import_mlx(), dtype))
        _MLX_CASTS[key] = cast
    return _MLX_CASTS[key]


def mlx_dtype(mode: str | None):
    """MLX's float type of ``mode`` (None: float32)."""
    return getattr(import_mlx(), MODES[mode or "fp32"].dtype)


def check_finite(stage: str, mode: str | None, array: np.ndarray) -> np.ndarray:
    """``array`` (a network's float32 output on the host) if every element is finite; else raise
    PrecisionOverflow naming the stage and mode."""
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        hint = " (fp16 overflows above 65504; bf16 or fp32 avoid it)" if mode == "fp16" else ""
        raise PrecisionOverflow(f"{stage}: {bad} of {array.size} outputs are NaN/Inf in precision {mode}{hint}")
    return array
