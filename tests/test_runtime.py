"""The MLX runtime path: OpenBLAS preloaded before mlx.core on Linux, switchable, honest."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from rvclab import runtime

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, rvclab.mlx, rvclab.runtime as rt
import mlx.core as mx
a = mx.ones((64, 64)); mx.eval(a @ a)
maps = open('/proc/self/maps').read()
print(json.dumps({"status": rt.blas_status(), "openblas_mapped": 'openblas' in maps,
                  "blas": rt.blas_in_use(), "device": str(mx.default_device())}))
"""


def _probe(env_extra: dict) -> dict:
    import os

    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not runtime.IS_LINUX, reason="OpenBLAS preload is the Linux CPU path only")
def test_openblas_preloaded_before_mlx():
    got = _probe({})
    assert got["status"]["preloaded"], got
    assert got["openblas_mapped"] and "openblas" in got["blas"]
    assert not got["status"]["late"]


@pytest.mark.skipif(not runtime.IS_LINUX, reason="OpenBLAS preload is the Linux CPU path only")
def test_preload_can_be_turned_off():
    got = _probe({"RVCLAB_FAST_BLAS": "0"})
    assert got["status"]["preloaded"] is None
    assert "disabled" in got["status"]["error"]
    assert "reference BLAS" in got["blas"]


@pytest.mark.skipif(not runtime.IS_LINUX, reason="OpenBLAS preload is the Linux CPU path only")
def test_missing_blas_warns_naming_the_debian_package():
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always'); import rvclab\n"
        "print([str(x.message) for x in w])"
    )
    import os

    env = {**os.environ, "RVCLAB_BLAS_LIB": "/nonexistent/libopenblas.so.0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert runtime.BLAS_DEBIAN_PACKAGE in out.stdout


def test_openblas_coretype_never_set():
    source = (ROOT / "rvclab" / "runtime.py").read_text()
    assert "os.environ[\"OPENBLAS_CORETYPE\"]" not in source and "putenv" not in source


def test_import_rvclab_makes_a_later_plain_mlx_import_fast():
    """A notebook that runs ``import rvclab`` and then ``import mlx.core`` itself gets the
    preloaded BLAS, whatever the order of its own imports after that."""
    code = (
        "import json, warnings\n"
        "warnings.simplefilter('error')\n"
        "import rvclab\n"
        "import mlx.core as mx\n"
        "from rvclab import runtime\n"
        "print(json.dumps(runtime.blas_status()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    status = json.loads(out.stdout)
    assert status["late"] is False
    if sys.platform.startswith("linux") and not runtime._has_cuda_backend_installed():
        assert status["preloaded"], status


class FakeMx:
    """Just what ``runtime.import_mlx`` touches of ``mlx.core``, with or without a GPU."""

    cpu, gpu = "Device(cpu, 0)", "Device(gpu, 0)"

    def __init__(self, has_gpu: bool):
        self.metal = self.cuda = types.SimpleNamespace(is_available=lambda: has_gpu)
        self.device = None

    def set_default_device(self, device):
        self.device = device

    def default_device(self):
        return self.device

    def set_cache_limit(self, limit):
        return 0


@pytest.mark.parametrize("override, has_gpu, want", [
    ("", True, "gpu"), ("", False, "cpu"),  # no override: the GPU where MLX has one
    ("cpu", True, "cpu"), ("CPU", True, "cpu"),  # forced to the CPU on a GPU machine
    ("gpu", True, "gpu"), ("GPU", False, "gpu"),  # forced to the GPU (MLX fails later if none)
])
def test_device_override_picks_the_device(monkeypatch, override, has_gpu, want):
    """On a real GPU the same override runs in tests/test_gpu.py (test_mlx_device_choice_on_cuda)."""
    runtime.import_mlx()  # the real package first; then its core is swapped for the fake
    fake = FakeMx(has_gpu)
    monkeypatch.setitem(sys.modules, "mlx.core", fake)
    monkeypatch.setattr(sys.modules["mlx"], "core", fake)
    monkeypatch.setenv("RVCLAB_MLX_DEVICE", override)
    monkeypatch.delenv("RVCLAB_MLX_CACHE_GB", raising=False)
    assert runtime.import_mlx() is fake and fake.device == getattr(FakeMx, want)
    gpu_name = "metal" if runtime.IS_MACOS else "cuda"
    assert runtime.mlx_backend_name() == {"cpu": "cpu", "gpu": gpu_name}[want]


def test_seed_everything_repeats_draws():
    import numpy as np
    import torch

    runtime.seed_everything(7)
    a = (np.random.rand(3), torch.rand(3))
    runtime.seed_everything(7)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


MALLOC_PROBE = """
import json, rvclab.runtime as rt
rt.prepare()
import numpy as np
def rss_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
a = np.ones(32 * 2**20, dtype=np.float32)  # 128 MB, touched
before = rss_mb(); del a; after = rss_mb()
print(json.dumps({"tuned": rt.blas_status()["malloc_tuned"], "released_mb": before - after}))
"""


@pytest.mark.skipif(not runtime.IS_LINUX, reason="glibc allocator tuning is the Linux path only")
@pytest.mark.parametrize("setting", ["default", "off"])
def test_malloc_tuning_keeps_freed_blocks(setting):
    import os

    env = {**os.environ, "RVCLAB_MALLOC_TUNE": "1" if setting == "default" else "0"}
    out = subprocess.run([sys.executable, "-c", MALLOC_PROBE], capture_output=True, text=True, env=env, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if setting == "default":
        # a freed 128 MB block stays with the process for the next activation of that size
        assert got["tuned"] is True and got["released_mb"] < 16, got
    else:
        # glibc's default: a block that large is its own mapping, unmapped on free
        assert got["tuned"] is False and got["released_mb"] > 100, got


ORDER_PROBE = """
import json, sys
import rvclab.runtime as rt
rt.IS_LINUX = True
rt._has_cuda_backend_installed = lambda: True  # as on a machine with mlx-cuda
before = "torch" in sys.modules
mx = rt.import_mlx()
print(json.dumps({"torch_before": before, "torch_loaded": "torch" in sys.modules,
                  "order_ok": list(sys.modules).index("torch") < list(sys.modules).index("mlx.core")}))
"""


def test_torch_loads_before_mlx_when_mlx_cuda_is_installed():
    out = subprocess.run([sys.executable, "-c", ORDER_PROBE], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"torch_before": False, "torch_loaded": True, "order_ok": True}, got


def test_torch_not_loaded_for_mlx_without_cuda_backend():
    code = "import sys, rvclab.runtime as rt; rt.import_mlx(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("raw, expected", [("", None), ("4", 4 * 2**30), ("0.5", 2**29), ("0", 0)])
def test_mlx_cache_limit_parsed(monkeypatch, raw, expected):
    monkeypatch.setenv("RVCLAB_MLX_CACHE_GB", raw)
    assert runtime.mlx_cache_limit_bytes() == expected


@pytest.mark.parametrize("raw", ["abc", "-1", "nan"])
def test_bad_mlx_cache_limit_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("RVCLAB_MLX_CACHE_GB", raw)
    with pytest.raises(ValueError, match="RVCLAB_MLX_CACHE_GB"):
        runtime.mlx_cache_limit_bytes()


def test_mlx_cache_limit_applied():
    import os

    code = "import rvclab.runtime as rt; mx = rt.import_mlx(); print(mx.set_cache_limit(0))"
    env = {**os.environ, "RVCLAB_MLX_CACHE_GB": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout.strip().splitlines()[-1]) == 2 * 2**30
