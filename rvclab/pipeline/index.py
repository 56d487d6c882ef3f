"""FAISS feature index as RVC WebUI and Applio build and use it.

Build: :func:`build_index` (``IVF{n_ivf},Flat``, nprobe 1, RVC's file naming). Use:
:func:`apply_index` blends each frame with its k = 8 nearest stored vectors. faiss is imported only
through :func:`import_faiss`, behind the macOS OpenMP guard (:func:`rvclab.runtime.guard_faiss_openmp`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rvclab.checkpoints import atomic_write
from rvclab.runtime import guard_faiss_openmp

FEATURE_DIMS = {"v1": 256, "v2": 768}
TOP_K = 8  # neighbours per frame at retrieval
NPROBE = 1  # lists searched per query (set at build time, as upstream)
KMEANS_THRESHOLD = 200_000  # more rows than this are reduced by k-means ("> 2e5" upstream)
KMEANS_CENTERS = 10_000
MIN_VECTORS = 39  # n_ivf = N // 39 must be at least one list
ADD_BATCH = 8192
FILE_PATTERN = "added_IVF{n_ivf}_Flat_nprobe_{nprobe}_{name}_{version}.index"


class IndexFileError(ValueError):
    """An index or feature file that cannot be used; the message names the file."""


def import_faiss():
    """faiss, imported behind the macOS OpenMP guard (one thread on macOS)."""
    guard_faiss_openmp()
    import faiss

    guard_faiss_openmp()
    return faiss


# --- build --------------------------------------------------------------------------------
def n_ivf_lists(n_vectors: int) -> int:
    """Upstream's inverted-list count: min(int(16 * sqrt(N)), N // 39)."""
    return min(int(16 * np.sqrt(n_vectors)), n_vectors // 39)


def index_file_name(
    n_ivf: int, name: str, version: str, nprobe: int = NPROBE, prefix: str = "added"
) -> str:
    """The WebUI's file name, e.g. ``added_IVF256_Flat_nprobe_1_alice_v2.index``."""
    return FILE_PATTERN.replace("added", prefix, 1).format(
        n_ivf=n_ivf, nprobe=nprobe, name=name, version=version
    )


def check_features(feats: np.ndarray, version: str, source: str = "features") -> np.ndarray:
    """(N, D) -> C-contiguous float32, checking D against the version and finite values."""
    if version not in FEATURE_DIMS:
        raise ValueError(f"version must be one of {sorted(FEATURE_DIMS)}, got {version!r}")
    arr = np.asarray(feats)
    dim = FEATURE_DIMS[version]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise IndexFileError(
            f"{source}: expected shape (N, {dim}) for a {version} model, found {arr.shape}"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise IndexFileError(f"{source}: contains NaN or Inf values")
    return arr


def kmeans_reduce(
    feats: np.ndarray, n_centers: int = KMEANS_CENTERS, seed: int = 0, n_threads: int | None = None
) -> tuple[np.ndarray, str]:
    """(N, D) float32 -> ((n_centers, D) float32 centres, method name).

    Upstream: scikit-learn MiniBatchKMeans(n_clusters=10000, init="random", batch_size=256 *
    cpu count, compute_labels=False). Without scikit-learn we use faiss.Kmeans (Lloyd's
    algorithm on a random subsample of at most 256 points per centre, 20 iterations): also
    n_centers centres of the same data, but not the same centres, so indexes built the two
    ways differ (both are valid RVC indexes).
    """
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    try:
        from sklearn.cluster import MiniBatchKMeans
    except ImportError:
        faiss = import_faiss()
        km = faiss.Kmeans(feats.shape[1], n_centers, niter=20, seed=seed, verbose=False)
        km.train(feats)
        return np.asarray(km.centroids, dtype=np.float32), "faiss.Kmeans"
    batch = 256 * (n_threads or os.cpu_count() or 1)
    km = MiniBatchKMeans(
        n_clusters=n_centers,
        batch_size=batch,
        compute_labels=False,
        init="random",
        random_state=seed,
        n_init=3,
    )
    return km.fit(feats).cluster_centers_.astype(np.float32), "sklearn.MiniBatchKMeans"


@dataclass
class BuildReport:
    """What :func:`build_index` did."""

    n_input: int
    n_indexed: int
    n_ivf: int
    reduced_by: str | None  # k-means method when the rows were reduced


def build_index(
    feats: np.ndarray,
    version: str = "v2",
    seed: int = 0,
    kmeans_threshold: int = KMEANS_THRESHOLD,
    kmeans_centers: int = KMEANS_CENTERS,
):
    """(N, D) float32 features (D = 256 for v1, 768 for v2) -> (trained and filled faiss index,
    BuildReport).

    Rows are shuffled with ``seed`` (upstream shuffles unseeded); when N > kmeans_threshold
    (200 000) they are replaced by kmeans_centers (10 000) k-means centres; then an inverted-file
    index ``IVF{n_ivf},Flat`` with n_ivf = min(int(16*sqrt(N)), N // 39) lists and nprobe 1 is
    trained on all rows and filled in batches of 8192. :func:`write_index` names the file
    ``added_IVF{n_ivf}_Flat_nprobe_1_{name}_{version}.index``.
    """
    faiss = import_faiss()
    feats = check_features(feats, version)
    n_input = feats.shape[0]
    feats = feats[np.random.default_rng(seed).permutation(n_input)]
    reduced_by = None
    if n_input > kmeans_threshold:
        feats, reduced_by = kmeans_reduce(feats, kmeans_centers, seed)
    n = feats.shape[0]
    n_ivf = n_ivf_lists(n)
    if n_ivf < 1:
        raise IndexFileError(
            f"features: an IVF index needs at least {MIN_VECTORS} feature vectors "
            f"(about 0.4 s of audio), found {n}"
        )
    index = faiss.index_factory(feats.shape[1], f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = NPROBE
    index.train(feats)
    for start in range(0, n, ADD_BATCH):
        index.add(feats[start : start + ADD_BATCH])
    return index, BuildReport(n_input, n, n_ivf, reduced_by)


def write_index(index, out_dir: str | Path, name: str, version: str, force: bool = False) -> Path:
    """Write ``index`` as ``out_dir/added_IVF..._{name}_{version}.index`` atomically."""
    faiss = import_faiss()
    if not name or not re.fullmatch(r"[\w.\-]+", name):
        raise ValueError(f"name {name!r}: use letters, digits, '.', '-' or '_' only")
    ivf = faiss.extract_index_ivf(index)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / index_file_name(ivf.nlist, name, version, ivf.nprobe)
    if path.exists() and not force:
        raise FileExistsError(f"{path}: exists; pass force=True (--force) to replace it")
    # temp file + rename; errors name ``path``
    return atomic_write(path, lambda tmp: faiss.write_index(index, str(tmp)))


def build_index_file(
    feats: np.ndarray,
    out_dir: str | Path,
    name: str,
    version: str = "v2",
    seed: int = 0,
    force: bool = False,
    **kw,
) -> tuple[Path, BuildReport]:
    """Build and write in one call; returns (path, report)."""
    index, report = build_index(feats, version, seed, **kw)
    return write_index(index, out_dir, name, version, force), report


# --- read and retrieve --------------------------------------------------------------------
@dataclass
class FeatureIndex:
    """A loaded index with its stored vectors (N, D) float32 in id order."""

    index: object
    vectors: np.ndarray
    path: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def retrieve(self, feats: np.ndarray, k: int = TOP_K) -> np.ndarray:
        return retrieve(feats, self.index, self.vectors, k)

    def blend(self, feats: np.ndarray, index_rate: float, k: int = TOP_K) -> np.ndarray:
        return apply_index(feats, self, index_rate, k)


def load_index(path: str | Path, version: str | None = None) -> FeatureIndex:
    """Read an index written by RVC WebUI, Applio or us; check it is usable.

    ``version`` 'v1'/'v2' requires 256/768 dimensions; None accepts either. Raises
    FileNotFoundError for a missing file and IndexFileError (naming the file) for one faiss
    cannot read, a wrong dimension, or an empty index (a ``trained_`` file: use ``added_``).
    """
    faiss = import_faiss()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index file not found")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1][:200]
        raise IndexFileError(f"{path}: not a readable FAISS index ({detail})") from None
    allowed = [FEATURE_DIMS[version]] if version else sorted(FEATURE_DIMS.values())
    if index.d not in allowed:
        want = f"{allowed[0]} ({version})" if version else "256 (v1) or 768 (v2)"
        raise IndexFileError(f"{path}: index has dimension {index.d}, expected {want}")
    if index.ntotal == 0:
        raise IndexFileError(
            f"{path}: index holds no vectors (a 'trained_' file? use the 'added_' one)"
        )
    vectors = np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
    return FeatureIndex(index=index, vectors=vectors, path=str(path))


def neighbour_weights(dist: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(T, k) squared distances -> (T, k) float32 weights summing to 1 per row.

    1/dist**2 normalised, as upstream. Two cases upstream turns into NaN are defined here:
    a zero distance (a frame equal to a stored vector) gives the exact matches equal weight and
    the rest 0 (the limit of the formula); a missing neighbour (label -1, when fewer than k
    vectors sit in the probed list) gets weight 0 (upstream's weight is also 0 there, 1/3.4e38
    squared underflows, unless a row has no neighbour at all).
    """
    dist = np.asarray(dist, dtype=np.float32)
    valid = labels >= 0
    exact = (dist == 0) & valid
    with np.errstate(divide="ignore", over="ignore"):
        w = np.square(np.float32(1) / dist)
    w = np.where(valid, w, np.float32(0))
    has_exact = exact.any(axis=1, keepdims=True)
    w = np.where(has_exact, exact.astype(np.float32), w)
    total = w.sum(axis=1, keepdims=True)
    return (w / np.where(total > 0, total, 1)).astype(np.float32)


def retrieve(feats: np.ndarray, index, vectors: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """(T, D) float32 @ 50 fps -> (T, D) float32: weighted mean of each frame's k neighbours.

    The stored vectors are read back with ``reconstruct_n`` (upstream's ``big_npy``); weights are
    1/score**2 normalised (faiss reports *squared* L2 distances, so this is 1/|x-y|**4). Frames
    with no neighbour at all keep their own features.
    """
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != vectors.shape[1]:
        raise ValueError(
            f"features: expected shape (T, {vectors.shape[1]}) to match the index, "
            f"found {feats.shape}"
        )
    dist, labels = index.search(feats, k)
    w = neighbour_weights(dist, labels)
    out = np.sum(vectors[np.where(labels >= 0, labels, 0)] * w[:, :, None], axis=1)
    none = ~(labels >= 0).any(axis=1)
    out[none] = feats[none]
    return out.astype(np.float32)


def apply_index(
    feats: np.ndarray, index: FeatureIndex | None, index_rate: float, k: int = TOP_K
) -> np.ndarray:
    """(T, D) -> (T, D): retrieved * index_rate + feats * (1 - index_rate).

    Returns the features unchanged (a copy) when there is no index or index_rate is 0, as
    upstream skips retrieval then.
    """
    feats = np.asarray(feats, dtype=np.float32)
    if index is None or index_rate == 0:
        return feats.copy()
    if not 0 <= index_rate <= 1 or math.isnan(index_rate):
        raise ValueError(f"index_rate must be in [0, 1], got {index_rate}")
    retrieved = index.retrieve(feats, k)
    return retrieved * np.float32(index_rate) + np.float32(1 - index_rate) * feats


def describe(path: str | Path) -> dict:
    """Facts about an index file: dimension, vectors, lists, nprobe, type."""
    faiss = import_faiss()
    fi = load_index(path)
    ivf = faiss.try_extract_index_ivf(fi.index)
    return {
        "path": fi.path,
        "type": type(fi.index).__name__,
        "dim": fi.dim,
        "ntotal": int(fi.index.ntotal),
        "nlist": int(ivf.nlist) if ivf else None,
        "nprobe": int(ivf.nprobe) if ivf else None,
    }
