"""How MLX runs on each platform: fast BLAS on Linux CPU, device choice, seeding.

:func:`prepare` runs before ``mlx.core`` loads (``import rvclab`` calls it; :func:`import_mlx`
too). macOS: nothing to do. Linux + CUDA: torch loads first. Linux CPU: the system OpenBLAS is
preloaded and glibc's allocator keeps large blocks. Why, and what it was measured to change:
docs/runtime.md.

Switches: ``RVCLAB_FAST_BLAS=0`` (no OpenBLAS preload), ``RVCLAB_BLAS_LIB=<path>`` (the library
to preload), ``RVCLAB_MLX_DEVICE=cpu|gpu`` (device), ``RVCLAB_MALLOC_TUNE=0`` (glibc defaults),
``RVCLAB_MLX_CACHE_GB=N`` (cap MLX's buffer cache at N GB), ``RVCLAB_GRU_PATH=auto|<path>`` (which
recurrence RMVPE's MLX BiGRU runs: :data:`GRU_PATHS`), ``RVCLAB_TORCH_CUDA_GRAPH=0|1`` (CUDA-graph
capture of the torch reference's RMVPE network: :func:`torch_cuda_graph_enabled`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np

# The only imports allowed inside functions (tests/test_architecture.py): optional extras, which
# a user may not have installed, and the backends, which a module loads only when the caller
# picks one (MLX users on a Mac may have no torch; torch users may have no MLX).
LAZY_IMPORTS = (
    "torchcrepe",  # [f0] extra: the CREPE package, for comparisons with it
    "torchfcpe",  # [f0] extra: the FCPE package, for comparisons with it
    "torchaudio",  # probed only, never needed
    "pyworld",  # [f0] extra: harvest / dio
    "parselmouth",  # [f0] extra: pm
    "faiss",  # feature index
    "ipywidgets",  # notebooks
    "sounddevice",  # live streaming
    "sklearn",  # optional: upstream's MiniBatchKMeans for large feature indexes (faiss otherwise)
    "torch",  # the torch backend
    "mlx",  # the MLX backend (rvclab.mlx prepares its runtime)
    "rvclab.mlx",
)

BLAS_DEBIAN_PACKAGE = "libopenblas0-pthread"
# Sonames tried in order; the Debian package provides the first through update-alternatives.
BLAS_CANDIDATES = (
    "libopenblas.so.0",
    "libopenblasp-r0.so",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "libopenblas.so",
)

IS_MACOS = sys.platform == "darwin"
IS_LINUX = sys.platform.startswith("linux")


@dataclass
class _State:
    prepared: bool = False
    blas_path: str | None = None  # library we preloaded, if any
    blas_error: str | None = None  # why none was preloaded
    late: bool = False  # mlx.core was imported before we could prepare
    preloaded_attempted: bool = False  # the Linux CPU path tried to preload OpenBLAS
    malloc_tuned: bool | None = None  # None: not tried yet


_STATE = _State()


def fast_blas_enabled() -> bool:
    """False when ``RVCLAB_FAST_BLAS`` is set to 0/false/off."""
    return os.environ.get("RVCLAB_FAST_BLAS", "1").strip().lower() not in ("0", "false", "off", "no")


def _preload_openblas() -> None:
    """Load OpenBLAS globally so MLX's BLAS calls resolve to it (Linux CPU path only)."""
    explicit = os.environ.get("RVCLAB_BLAS_LIB")
    candidates = (explicit,) if explicit else BLAS_CANDIDATES
    errors = []
    for name in candidates:
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        _STATE.blas_path = _resolve_loaded(name) or name
        return
    _STATE.blas_error = "; ".join(errors)


def _resolve_loaded(fragment: str) -> str | None:
    """The absolute path of a loaded shared library whose name contains ``fragment``."""
    base = os.path.basename(fragment).split(".so")[0]
    for path in loaded_libraries():
        if base in os.path.basename(path):
            return path
    return None


def loaded_libraries() -> list[str]:
    """Shared libraries mapped into this process (Linux only; empty elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = {line.split()[-1] for line in fh if ".so" in line and "/" in line}
    except OSError:
        return []
    return sorted(paths)


def prepare() -> None:
    """Run the platform's preparation once; safe to call many times.

    Every call warns while MLX is left with its slow reference BLAS on a Linux CPU (Python shows a
    warning once per calling line), so the import that prepares and a later explicit call both say it.
    """
    _setup()
    for message in _problems():
        warnings.warn(message, RuntimeWarning, stacklevel=2)


def _setup() -> None:
    """The preparation itself, once per process; :func:`prepare` adds the warnings."""
    if _STATE.prepared:
        return
    _STATE.prepared = True
    tune_malloc()
    if not IS_LINUX:
        return
    if _has_cuda_backend_installed():
        _load_torch_before_mlx_cuda()
        return
    if not fast_blas_enabled():
        _STATE.blas_error = "disabled by RVCLAB_FAST_BLAS=0"
        return
    if "mlx.core" in sys.modules:
        _STATE.late = True
    _preload_openblas()
    _STATE.preloaded_attempted = True


def _problems() -> list[str]:
    """Why MLX may be left with its slow reference BLAS after :func:`_setup` (empty when not)."""
    if not _STATE.preloaded_attempted:
        return []
    if _STATE.blas_path is None:
        return [
            "rvclab: no OpenBLAS found, so MLX on this Linux CPU uses its slow reference BLAS "
            f"(about 20x slower matmuls). Install the Debian package {BLAS_DEBIAN_PACKAGE} "
            f"(apt-get install -y {BLAS_DEBIAN_PACKAGE}). Tried: {_STATE.blas_error}"
        ]
    if _STATE.late:
        return [
            "rvclab: mlx.core was imported before rvclab could load OpenBLAS; MLX may keep its "
            "slow reference BLAS. Run `import rvclab` before `import mlx.core`."
        ]
    return []


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def malloc_tune_enabled() -> bool:
    """False when ``RVCLAB_MALLOC_TUNE`` is set to 0/false/off."""
    return os.environ.get("RVCLAB_MALLOC_TUNE", "1").strip().lower() not in ("0", "false", "off", "no")


def tune_malloc() -> bool:
    """Keep large freed blocks for reuse (Linux with glibc only); True when applied."""
    if _STATE.malloc_tuned is not None:
        return _STATE.malloc_tuned
    _STATE.malloc_tuned = False
    if not IS_LINUX or not malloc_tune_enabled() or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = (libc.mallopt(_M_MMAP_MAX, 0) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
              and libc.mallopt(_M_TOP_PAD, 64 << 20) == 1)
    except (OSError, AttributeError):
        return False
    _STATE.malloc_tuned = ok
    return ok


def _has_cuda_backend_installed() -> bool:
    """True when the mlx-cuda wheel is present (then MLX's CPU BLAS is not our concern)."""
    for dist in ("mlx-cuda", "mlx-cuda-12", "mlx-cuda-13"):
        try:
            metadata.version(dist)
            return True
        except metadata.PackageNotFoundError:
            continue
    return False


def _load_torch_before_mlx_cuda() -> None:
    """Linux with MLX's CUDA backend: load torch (and its cuDNN) before MLX loads its own.

    Both bring a cuDNN and whichever loads first serves the process; with MLX's first, torch's
    cuDNN kernels can fail (docs/runtime.md). A no-op when torch is missing.
    """
    if not IS_LINUX or "torch" in sys.modules or "mlx.core" in sys.modules:
        return
    if not _has_cuda_backend_installed():
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        pass


def mlx_cache_limit_bytes() -> int | None:
    """``RVCLAB_MLX_CACHE_GB`` as bytes, or None when unset (MLX's own default).

    MLX keeps freed buffers for reuse up to its memory limit; on a GPU shared with torch in one
    process that cache can starve torch, and this caps it (the trade-off: docs/runtime.md).
    """
    raw = os.environ.get("RVCLAB_MLX_CACHE_GB", "").strip()
    if not raw:
        return None
    try:
        gb = float(raw)
    except ValueError:
        gb = -1.0
    if not gb >= 0:
        raise ValueError(f"RVCLAB_MLX_CACHE_GB must be a number of GB >= 0, got {raw!r}")
    return int(gb * 2**30)


def import_mlx():
    """Prepare the platform, then import and return ``mlx.core``."""
    _setup()
    _load_torch_before_mlx_cuda()
    import mlx.core as mx

    limit = mlx_cache_limit_bytes()
    if limit is not None:
        mx.set_cache_limit(limit)

    device = os.environ.get("RVCLAB_MLX_DEVICE")
    if device:
        mx.set_default_device(mx.gpu if device.lower() == "gpu" else mx.cpu)
    elif _gpu_available(mx):
        mx.set_default_device(mx.gpu)
    else:
        mx.set_default_device(mx.cpu)
    return mx


def _gpu_available(mx) -> bool:
    if IS_MACOS:
        return bool(mx.metal.is_available())
    cuda = getattr(mx, "cuda", None)
    return bool(cuda is not None and cuda.is_available())


def mlx_backend_name() -> str:
    """'metal', 'cuda' or 'cpu': where MLX arrays are computed by default."""
    mx = import_mlx()
    if mx.default_device() == mx.cpu:
        return "cpu"
    return "metal" if IS_MACOS else "cuda"


# --- RMVPE's BiGRU recurrence in MLX: which path runs on which device ---------------------------
GRU_PATH_ENV = "RVCLAB_GRU_PATH"
# name -> (MLX device kind it runs on, what it is); rvclab.models.rmvpe.gru maps names to code.
GRU_PATHS = {
    "cuda_split": ("cuda", "one launch; H/16 blocks per (direction, batch) row, their W_hh rows in shared "
                           "memory, the hidden state exchanged through global memory behind a spin barrier"),
    "cuda_block": ("cuda", "one launch; one block per (direction, batch) row, W_hh streamed from L2 each step"),
    "metal": ("metal", "one launch; one threadgroup per (direction, batch) row"),
    "host": ("cpu", "numpy on the host: one BLAS vector-matrix product and a few vector ops per step"),
    "loop": ("any", "a compiled MLX step per time step, evaluated in blocks (the reference path)"),
}
GRU_DEFAULT_PATHS = {"cuda": ("cuda_split", "cuda_block"), "metal": ("metal",), "cpu": ("host",)}
# cuda_split's blocks wait for each other at every step, so all of them must be resident at once;
# 32 blocks of 384 threads and ~51 KB of shared memory fit at once on any GPU of 16 SMs or more.
GRU_SPLIT_MAX_BLOCKS = 32


def mlx_device_kind(mx) -> str:
    """'metal', 'cuda' or 'cpu': the kind of MLX's current default device (read, never set)."""
    if mx.default_device().type != mx.DeviceType.gpu:
        return "cpu"
    return "metal" if IS_MACOS else "cuda"


def mlx_gru_path(mx, split_blocks: int | None = None) -> str:
    """The GRU recurrence path for MLX's current device: ``RVCLAB_GRU_PATH`` when set (``loop`` forces
    the reference loop everywhere, for A/B runs), else the device's first usable default. On CUDA
    ``cuda_split`` needs a split layout (``split_blocks``, its block count, not None) within
    :data:`GRU_SPLIT_MAX_BLOCKS`; otherwise ``cuda_block`` runs. Raises ValueError for an unknown
    name or a path that cannot run on this device."""
    kind = mlx_device_kind(mx)
    split_ok = split_blocks is not None and split_blocks <= GRU_SPLIT_MAX_BLOCKS
    usable = [p for p in GRU_DEFAULT_PATHS[kind] if p != "cuda_split" or split_ok] + ["loop"]
    asked = os.environ.get(GRU_PATH_ENV, "").strip().lower()
    if asked in ("", "auto"):
        return usable[0]
    if asked not in GRU_PATHS:
        raise ValueError(f"{GRU_PATH_ENV}={asked!r}: choose auto or one of {', '.join(GRU_PATHS)}")
    if asked not in usable:
        why = (f" (split layout: {split_blocks} blocks, at most {GRU_SPLIT_MAX_BLOCKS})"
               if asked == "cuda_split" and kind == "cuda" else "")
        raise ValueError(f"{GRU_PATH_ENV}={asked}: does not run on MLX's {kind} device{why}; "
                         f"usable here: {', '.join(usable)}")
    return asked


# --- the torch reference's RMVPE under CUDA graphs ---------------------------------------------
TORCH_CUDA_GRAPH_ENV = "RVCLAB_TORCH_CUDA_GRAPH"


def torch_cuda_graph_enabled(device: str, requested: bool | None = None, default: bool = False) -> bool:
    """Whether the torch RMVPE on ``device`` captures its network in CUDA graphs: never off CUDA;
    on CUDA ``requested`` when given, else ``RVCLAB_TORCH_CUDA_GRAPH`` (1/0) when set, else
    ``default`` (off for the library, so its output stays that of eager torch)."""
    if not str(device).startswith("cuda"):
        return False
    if requested is not None:
        return bool(requested)
    raw = os.environ.get(TORCH_CUDA_GRAPH_ENV, "").strip().lower()
    if not raw:
        return default
    if raw not in ("0", "1", "false", "true", "off", "on", "no", "yes"):
        raise ValueError(f"{TORCH_CUDA_GRAPH_ENV}={raw!r}: expected 0 or 1")
    return raw in ("1", "true", "on", "yes")


def blas_in_use() -> str:
    """The BLAS library MLX will call on this platform, in words."""
    _setup()
    if IS_MACOS:
        return "Accelerate (macOS)"
    if _STATE.blas_path:
        return _STATE.blas_path
    ref = [p for p in loaded_libraries() if "libblas" in os.path.basename(p)]
    return f"reference BLAS ({ref[0]})" if ref else "reference BLAS bundled with mlx"


def blas_status() -> dict:
    """What :func:`prepare` did, for ``rvclab info`` and tests."""
    _setup()
    return {
        "fast_blas_enabled": fast_blas_enabled(),
        "preloaded": _STATE.blas_path,
        "error": _STATE.blas_error,
        "late": _STATE.late,
        "malloc_tuned": bool(_STATE.malloc_tuned),
        "machine": platform.machine(),
    }


def seed_everything(seed: int) -> None:
    """Seed numpy's legacy generator, torch and MLX (where imported) with one number."""
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "mlx.core" in sys.modules:
        sys.modules["mlx.core"].random.seed(seed)


def torch_sync(device: str = "cpu") -> None:
    """Block until queued torch work on ``device`` is done (no-op on the CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    elif device == "mps":
        import torch

        torch.mps.synchronize()


def guard_faiss_openmp() -> None:
    """On macOS, keep faiss to one OpenMP thread; elsewhere do nothing.

    faiss and torch each bring an OpenMP runtime; on macOS two in one process can abort or
    crash (the seed's fix 13; Applio sets the same variables on Apple Silicon). Call before
    ``import faiss`` (sets ``OMP_NUM_THREADS=1`` and ``KMP_DUPLICATE_LIB_OK=TRUE`` unless the
    user set them) and again after it (``faiss.omp_set_num_threads(1)``).
    rvclab.pipeline.index imports faiss only through this guard. Side effect: torch imported after it
    also sees OMP_NUM_THREADS=1 (fewer CPU threads); set OMP_NUM_THREADS yourself to override.
    """
    if not IS_MACOS:
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("KMP_DUPLICATE_LIB_OK", "TRUE")
    faiss = sys.modules.get("faiss")
    if faiss is not None and hasattr(faiss, "omp_set_num_threads"):
        faiss.omp_set_num_threads(1)
