"""Content-feature side of :mod:`rvclab.fixes.registry`: HuBERT's GELU and the faiss OpenMP guard.

HuBERT bench: the seeded fairseq ``hubert_base.pt`` (weights folder of :mod:`rvclab.paths`), the
first half second of a shipped clip, v2 features (layer 12, 768-d), compared as the HuBERT parity
runner does (per-frame cosine, max abs over the features' RMS).
"""

from __future__ import annotations

import functools
import os
import sys
from types import SimpleNamespace

import mlx.nn as nn
import numpy as np

from rvclab import paths, runtime
from rvclab.audio import SAMPLE_RATE_16K, clip, load_audio
from rvclab.models.hubert import io as hubert_io
from rvclab.models.hubert.parity import compare
from rvclab.pipeline import index
from rvclab.runtime import import_mlx
from rvclab.weights import default_hubert

CLIP = "librivox_male_0870_16k"
SECONDS = 0.5
VERSION = "v2"


# --- buggy variants -----------------------------------------------------------------------------
def gelu_tanh_method(original):
    """GELU.__call__ with the tanh approximation."""
    def __call__(self, x):
        return nn.gelu_approx(x)

    return __call__


def layer_with_tanh_gelu(original):
    """TransformerLayer.__call__ whose feed-forward uses the tanh-approximated GELU."""
    def __call__(self, x, key_padding_mask=None):
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_padding_mask)
            return x + self.fc2(nn.gelu_approx(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, key_padding_mask))
        return self.final_layer_norm(x + self.fc2(nn.gelu_approx(self.fc1(x))))

    return __call__


def guard_missing(original):
    """No OpenMP guard at all."""

    def guard_faiss_openmp() -> None:
        return None

    return guard_faiss_openmp


# --- HuBERT bench -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _bench(weights_dir: str):
    import torch

    weights = hubert_io.read_hubert(default_hubert())
    tmodel, mmodel = hubert_io.torch_model(weights), hubert_io.mlx_model(weights)
    audio = load_audio(clip(CLIP), SAMPLE_RATE_16K)[:int(SECONDS * SAMPLE_RATE_16K)]
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    with torch.no_grad():
        ref = tmodel.extract_features(torch.from_numpy(audio), VERSION)[0].numpy()
    return SimpleNamespace(mmodel=mmodel, audio=audio, ref=ref)


def bench():
    return _bench(str(paths.weights_dir()))


def prepare():
    """Build the bench now (see :func:`rvclab.fixes.registry.reintroduce`)."""
    bench()


def measure_hubert() -> dict:
    """The MLX HuBERT as the code stands against the torch features: max_abs_rel, cos_min."""
    mx = import_mlx()
    b = bench()
    out = b.mmodel.extract_features(mx.array(b.audio), VERSION)[0]
    mx.eval(out)
    out = np.array(out)
    row = compare(b.ref, out)
    curve = np.abs(out.astype(np.float64) - b.ref).max(axis=1) / np.sqrt(np.mean(b.ref ** 2))
    return {"max_abs_rel": row["max_abs_rel"], "cos_min": row["cos_min"], "curve_features": curve}


# --- the faiss guard, on a simulated macOS ------------------------------------------------------
class _FaissProbe:
    """Stands in for the faiss module while the guard runs: records the thread count it sets."""

    def __init__(self):
        self.threads = None

    def omp_set_num_threads(self, n: int) -> None:
        self.threads = n


def measure_faiss_guard() -> dict:
    """Call the guard the index module calls, with the platform flag set to macOS, a clean
    environment and a probe in place of faiss; everything is put back afterwards.

    guard_sets_one_thread: 1.0 when OMP_NUM_THREADS became "1" and faiss was asked for one
    thread, else 0.0. The crash itself needs macOS and cannot be reproduced here."""
    keys = ("OMP_NUM_THREADS", "KMP_DUPLICATE_LIB_OK")
    saved_env = {k: os.environ.pop(k, None) for k in keys}
    saved_faiss = sys.modules.get("faiss")
    saved_flag = runtime.IS_MACOS
    probe = _FaissProbe()
    try:
        runtime.IS_MACOS = True
        sys.modules["faiss"] = probe  # the guard's second call sees faiss imported
        index.guard_faiss_openmp()
        env = {k: os.environ.get(k) for k in keys}
    finally:
        runtime.IS_MACOS = saved_flag
        if saved_faiss is None:
            sys.modules.pop("faiss", None)
        else:
            sys.modules["faiss"] = saved_faiss
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    ok = env["OMP_NUM_THREADS"] == "1" and probe.threads == 1
    return {"guard_sets_one_thread": float(ok), "omp_num_threads": env["OMP_NUM_THREADS"],
            "kmp_duplicate_lib_ok": env["KMP_DUPLICATE_LIB_OK"], "faiss_threads": probe.threads}
