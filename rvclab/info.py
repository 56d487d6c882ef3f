"""What this machine runs: versions, MLX device, BLAS in use, a matmul timed in both backends."""

from __future__ import annotations

import platform
import sys
import time

import numpy as np

from rvclab import __version__, runtime


def time_matmul(n: int, repeats: int = 5) -> dict:
    """Median seconds of an (n, n) fp32 matmul in torch and in MLX (after a warm-up)."""
    mx = runtime.import_mlx()
    import torch

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ta, ma = torch.from_numpy(a), mx.array(a)
    mx.eval(ma)

    def t_torch():
        t = time.perf_counter()
        torch.mm(ta, ta)
        return time.perf_counter() - t

    def t_mlx():
        t = time.perf_counter()
        mx.eval(ma @ ma)
        return time.perf_counter() - t

    t_torch(), t_mlx()  # warm-up
    torch_s = float(np.median([t_torch() for _ in range(repeats)]))
    mlx_s = float(np.median([t_mlx() for _ in range(repeats)]))
    return {"torch_s": torch_s, "mlx_s": mlx_s, "ratio_mlx_over_torch": mlx_s / torch_s}


def collect(matmul_n: int = 1024) -> dict:
    """Versions, MLX device and BLAS, and an (n, n) matmul timed in both backends."""
    mx = runtime.import_mlx()
    import torch

    status = runtime.blas_status()
    mm = time_matmul(matmul_n)
    return {
        "rvclab": __version__,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mlx": mx.__version__,
        "mlx_device": f"{mx.default_device()} ({runtime.mlx_backend_name()})",
        "mlx_blas": runtime.blas_in_use(),
        "fast_blas_enabled": status["fast_blas_enabled"],
        f"matmul_{matmul_n}_torch_ms": round(mm["torch_s"] * 1e3, 2),
        f"matmul_{matmul_n}_mlx_ms": round(mm["mlx_s"] * 1e3, 2),
        "matmul_ratio_mlx_over_torch": round(mm["ratio_mlx_over_torch"], 3),
    }
