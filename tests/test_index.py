"""FAISS index: upstream's build formulas, reading RVC/Applio files, retrieval vs brute force."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from rvclab.cli import main
from rvclab.pipeline import index as ix

faiss = ix.import_faiss()


def _feats(n, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _brute_force(queries, vectors, k=8):
    d2 = ((queries[:, None, :].astype(np.float64) - vectors[None].astype(np.float64)) ** 2).sum(-1)
    nn = np.argsort(d2, axis=1, kind="stable")[:, :k]
    d = np.take_along_axis(d2, nn, axis=1)
    w = 1.0 / d**2
    w /= w.sum(axis=1, keepdims=True)
    return (vectors[nn] * w[:, :, None]).sum(axis=1)


def test_list_count_and_file_name():
    # min(int(16 sqrt(N)), N // 39), by hand
    assert ix.n_ivf_lists(38) == 0 and ix.n_ivf_lists(39) == 1
    assert ix.n_ivf_lists(1000) == 25  # min(505, 25)
    assert ix.n_ivf_lists(10_000) == 256  # min(1600, 256): the k-means-reduced case
    assert ix.n_ivf_lists(200_000) == 5128  # min(7155, 5128)
    assert ix.n_ivf_lists(1_000_000) == 16000  # min(16000, 25641)
    assert ix.index_file_name(256, "alice", "v2") == "added_IVF256_Flat_nprobe_1_alice_v2.index"
    assert ix.index_file_name(9, "bob", "v1", prefix="trained").startswith("trained_IVF9_")


def test_build_write_load_round_trip(tmp_path):
    feats = _feats(500, 256)
    path, report = ix.build_index_file(feats, tmp_path, "voice", "v1", seed=3)
    assert path.name == "added_IVF12_Flat_nprobe_1_voice_v1.index"  # min(357, 500 // 39 = 12)
    assert (report.n_input, report.n_indexed, report.n_ivf, report.reduced_by) == (
        500,
        500,
        12,
        None,
    )
    loaded = ix.load_index(path, version="v1")
    ivf = faiss.extract_index_ivf(loaded.index)
    assert (ivf.nlist, ivf.nprobe, loaded.dim) == (12, 1, 256)
    # the stored vectors are the input rows, shuffled with the seed
    perm = np.random.default_rng(3).permutation(500)
    np.testing.assert_array_equal(loaded.vectors, feats[perm])
    assert ix.describe(path)["ntotal"] == 500
    with pytest.raises(FileExistsError):
        ix.write_index(loaded.index, tmp_path, "voice", "v1")


def test_reads_files_written_the_rvc_and_applio_way(tmp_path):
    feats = _feats(800, 768, seed=1)
    n_ivf = min(int(16 * np.sqrt(800)), 800 // 39)  # 20
    index = faiss.index_factory(768, f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(feats)
    for i in range(0, 800, 300):
        index.add(feats[i : i + 300])
    rvc = tmp_path / f"added_IVF{n_ivf}_Flat_nprobe_1_mi-test_v2.index"
    applio = tmp_path / "mi-test.index"
    for p in (rvc, applio):
        faiss.write_index(index, str(p))
        fi = ix.load_index(p)
        np.testing.assert_array_equal(fi.vectors, feats)
        assert fi.dim == 768 and re.search(r"IVF20", rvc.name)


def test_retrieval_equals_brute_force_exhaustive():
    stored = _feats(60, 256, seed=2)  # 60 // 39 = 1 list: nprobe 1 searches everything
    index, report = ix.build_index(stored, "v1", seed=0)
    assert report.n_ivf == 1
    vectors = index.reconstruct_n(0, index.ntotal)
    queries = _feats(20, 256, seed=5)
    got = ix.retrieve(queries, index, vectors)
    np.testing.assert_allclose(got, _brute_force(queries, vectors), rtol=1e-4, atol=1e-5)


def test_retrieval_with_all_lists_probed_and_blend(tmp_path):
    stored = _feats(2000, 768, seed=4)
    path, _ = ix.build_index_file(stored, tmp_path, "big", "v2")
    fi = ix.load_index(path, version="v2")
    faiss.extract_index_ivf(fi.index).nprobe = faiss.extract_index_ivf(fi.index).nlist
    queries = _feats(16, 768, seed=6)
    expected = _brute_force(queries, fi.vectors)
    np.testing.assert_allclose(fi.retrieve(queries), expected, rtol=1e-4, atol=1e-5)
    blended = fi.blend(queries, 0.75)
    np.testing.assert_allclose(blended, 0.75 * expected + 0.25 * queries, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(fi.blend(queries, 0.0), queries)
    np.testing.assert_array_equal(ix.apply_index(queries, None, 0.75), queries)
    with pytest.raises(ValueError, match="index_rate"):
        fi.blend(queries, 1.5)


def test_exact_match_and_missing_neighbours_stay_finite():
    w = ix.neighbour_weights(
        np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 3.4e38]], np.float32),
        np.array([[4, 5, 6], [1, 2, -1]]),
    )
    np.testing.assert_allclose(w, [[0.5, 0, 0.5], [0.8, 0.2, 0]], rtol=1e-6)
    stored = _feats(60, 256, seed=2)
    index, _ = ix.build_index(stored, "v1")
    vectors = index.reconstruct_n(0, index.ntotal)
    got = ix.retrieve(vectors[:3], index, vectors)  # queries equal to stored vectors
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, vectors[:3], atol=1e-6)


def test_kmeans_reduction_sklearn_and_faiss(tmp_path, monkeypatch):
    # scaled down: more than 300 rows -> 39 centres (upstream: > 200 000 -> 10 000)
    feats = _feats(400, 256, seed=7)
    kw = {"kmeans_threshold": 300, "kmeans_centers": 39}
    _, report = ix.build_index(feats, "v1", **kw)
    assert (report.n_indexed, report.n_ivf) == (39, 1)  # min(int(16 sqrt(39)), 39 // 39)
    assert report.reduced_by == "sklearn.MiniBatchKMeans"
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)  # scikit-learn unavailable
    index, report = ix.build_index(feats, "v1", **kw)
    assert (report.n_indexed, report.reduced_by, index.ntotal) == (39, "faiss.Kmeans", 39)
    _, report = ix.build_index(feats[:300], "v1", **kw)  # not above the threshold
    assert report.reduced_by is None and report.n_indexed == 300


def test_bad_inputs_name_the_file(tmp_path):
    v1_path, _ = ix.build_index_file(_feats(100, 256), tmp_path, "v1voice", "v1")
    with pytest.raises(ix.IndexFileError, match=rf"{re.escape(str(v1_path))}.*256.*768 \(v2\)"):
        ix.load_index(v1_path, version="v2")
    odd = faiss.IndexFlatL2(100)
    odd.add(_feats(10, 100))
    odd_path = tmp_path / "odd.index"
    faiss.write_index(odd, str(odd_path))
    with pytest.raises(ix.IndexFileError, match=r"odd\.index: index has dimension 100"):
        ix.load_index(odd_path)
    garbage = tmp_path / "garbage.index"
    garbage.write_bytes(b"not an index at all" * 10)
    with pytest.raises(ix.IndexFileError, match=r"garbage\.index: not a readable FAISS index"):
        ix.load_index(garbage)
    truncated = tmp_path / "truncated.index"
    truncated.write_bytes(v1_path.read_bytes()[: v1_path.stat().st_size // 2])
    with pytest.raises(ix.IndexFileError, match=r"truncated\.index"):
        ix.load_index(truncated)
    trained = faiss.index_factory(256, "IVF2,Flat")
    trained.train(_feats(100, 256))
    faiss.write_index(trained, str(tmp_path / "trained_IVF2.index"))
    with pytest.raises(ix.IndexFileError, match="holds no vectors"):
        ix.load_index(tmp_path / "trained_IVF2.index")
    with pytest.raises(FileNotFoundError, match="missing.index"):
        ix.load_index(tmp_path / "missing.index")
    with pytest.raises(ix.IndexFileError, match=r"expected shape \(N, 768\)"):
        ix.build_index(_feats(100, 256), "v2")
    with pytest.raises(ix.IndexFileError, match="at least 39"):
        ix.build_index(_feats(38, 256), "v1")


def test_cli_build_and_info(tmp_path, capsys):
    np.save(tmp_path / "a.npy", _feats(300, 768, seed=8))
    np.save(tmp_path / "b.npy", _feats(200, 768, seed=9))
    out = tmp_path / "out"
    rc = main(
        [
            "index",
            "build",
            "--features",
            str(tmp_path / "a.npy"),
            str(tmp_path / "b.npy"),
            "--name",
            "cli",
            "--version",
            "v2",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    path = out / "added_IVF12_Flat_nprobe_1_cli_v2.index"
    assert ix.load_index(path).index.ntotal == 500
    assert main(["index", "info", str(path)]) == 0
    assert "ntotal  500" in capsys.readouterr().out
    rc = main(
        [
            "index",
            "build",
            "--features",
            str(tmp_path / "a.npy"),
            "--name",
            "cli",
            "--version",
            "v1",
            "--out",
            str(out),
        ]
    )
    assert rc == 2 and "a.npy: expected shape (N, 256)" in capsys.readouterr().err
    (tmp_path / "clips").mkdir()
    np.save(tmp_path / "clips" / "x.npy", np.zeros(3))  # no audio inside
    rc = main(
        ["index", "build", "--audio", str(tmp_path / "clips"), "--name", "c", "--out", str(out)]
    )
    assert rc == 2 and "no audio files" in capsys.readouterr().err


def test_openmp_guard_only_on_macos(monkeypatch):
    from rvclab import runtime

    calls = []

    class FakeFaiss:
        @staticmethod
        def omp_set_num_threads(n):
            calls.append(n)

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setitem(sys.modules, "faiss", FakeFaiss)
    monkeypatch.setattr(runtime, "IS_MACOS", False)
    runtime.guard_faiss_openmp()
    assert calls == [] and "OMP_NUM_THREADS" not in __import__("os").environ
    monkeypatch.setattr(runtime, "IS_MACOS", True)
    monkeypatch.delenv("KMP_DUPLICATE_LIB_OK", raising=False)
    runtime.guard_faiss_openmp()
    import os

    assert calls == [1] and os.environ["OMP_NUM_THREADS"] == "1"
