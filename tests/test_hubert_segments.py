"""MLX HuBERT on long inputs in bounded memory: the conv front end in segments (its first layer's
GroupNorm statistics summed over the whole input first) and attention in blocks of query rows give
the one-call features."""

from __future__ import annotations

import numpy as np
import pytest

from rvclab.models.hubert import io as hubert_io
from rvclab.models.hubert import mlx as hubert_mlx
from rvclab.models.hubert import parity, seeded
from rvclab.models.hubert.config import HubertConfig
from rvclab.runtime import import_mlx
from rvclab.weights import default_hubert

mx = import_mlx()
SMALL = HubertConfig.small()
SAME = 1e-5  # relative to the features' scale: summation order only


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("hubert_small")
    seeded.make(out, seed=0, force=False, config=SMALL)
    return hubert_io.mlx_model(hubert_io.read_hubert(out / seeded.FAIRSEQ_NAME))


def _speech(n: int) -> np.ndarray:
    x = parity.test_inputs((33601,), clips=False)[0][1]
    return np.tile(x, -(-n // x.size))[:n].astype(np.float32)


def _close(a, b):
    a, b = np.array(a), np.array(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= SAME * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


def test_front_end_in_segments_equals_one_call(small_model):
    fe = small_model.feature_extractor
    wav = mx.array(_speech(SMALL.hop * 230 + 123))[None]  # 230 frames, an odd tail
    whole = fe(wav, segment_frames=10**9)
    assert whole.shape[1] == SMALL.num_frames(wav.shape[-1])
    _close(fe(wav, segment_frames=50), whole)  # five segments
    _close(fe(wav, segment_frames=229), whole)  # a last segment of one frame
    assert float(mx.abs(whole).max()) > 0.05


def test_front_end_statistics_are_global(small_model):
    """Normalising each segment by its own statistics would differ: the test above depends on the
    statistics being those of the whole input."""
    fe = small_model.feature_extractor
    x = _speech(SMALL.hop * 200 + 80)
    x[: x.size // 2] *= 0.05  # a quiet first half: per-segment statistics would be far off
    wav = mx.array(x)[None]
    whole = np.array(fe(wav, segment_frames=10**9))
    per_segment = np.concatenate([np.array(fe(wav[:, i * SMALL.hop * 50:(i + 1) * SMALL.hop * 50 + 80],
                                             segment_frames=10**9)) for i in range(4)], axis=1)
    assert per_segment.shape == whole.shape
    assert np.abs(per_segment - whole).max() > 100 * SAME * np.abs(whole).max()
    _close(fe(wav, segment_frames=50), whole)


def test_attention_in_row_blocks_equals_full_scores(small_model, monkeypatch):
    wav = _speech(SMALL.hop * 140 + 80)
    whole = small_model.extract_features(wav, version="v2")
    monkeypatch.setattr(hubert_mlx, "ATTN_ROW_BLOCK", 32)  # five blocks of query rows
    calls = []
    eval_ = mx.eval
    monkeypatch.setattr(hubert_mlx.mx, "eval", lambda *a: calls.append(1) or eval_(*a))
    _close(small_model.extract_features(wav, version="v2"), whole)
    assert len(calls) >= 5 * len(small_model.encoder.layers)  # the row-block path ran in every layer


def test_real_config_long_input_takes_the_segmented_path(monkeypatch):
    """The shipped (seeded) HuBERT base at its real size: features of a long input through both
    bounded-memory paths equal the one-call ones."""
    model = hubert_io.mlx_model(hubert_io.read_hubert(default_hubert()))
    wav = _speech(model.config.hop * 120 + 80)
    whole = model.extract_features(wav, version="v2")
    monkeypatch.setattr(hubert_mlx, "FRONT_END_SEGMENT_FRAMES", 40)
    monkeypatch.setattr(hubert_mlx, "ATTN_ROW_BLOCK", 48)
    segmented = hubert_mlx.ConvFeatureExtractor._segmented
    seen = []
    monkeypatch.setattr(hubert_mlx.ConvFeatureExtractor, "_segmented",
                        lambda self, w, n: seen.append(n) or segmented(self, w, n))
    _close(model.extract_features(wav, version="v2"), whole)
    assert seen == [40]
