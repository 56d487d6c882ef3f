"""The tracer finds every mirrored layer, compares in the right layout, and points at the first
layer that disagrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rvclab.mlx  # noqa: F401  (prepares the MLX runtime before mlx.core loads)
import mlx.core as mx
import mlx.nn as mnn

from rvclab.trace import trace


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(6, 8)
        self.convs = torch.nn.ModuleList([torch.nn.Conv1d(8, 8, 3, padding=1) for _ in range(2)])
        self.out = torch.nn.Conv1d(8, 4, 1)

    def forward(self, x):  # x (B, T, 6)
        h = self.proj(x).transpose(1, 2)  # (B, 8, T)
        for conv in self.convs:
            h = torch.tanh(conv(h)) + h
        return self.out(h)  # (B, 4, T)


class MlxNet(mnn.Module):
    def __init__(self):
        super().__init__()
        self.proj = mnn.Linear(6, 8)
        self.convs = [mnn.Conv1d(8, 8, 3, padding=1) for _ in range(2)]
        self.out = mnn.Conv1d(8, 4, 1)

    def __call__(self, x):  # x (B, T, 6)
        h = self.proj(x)
        for conv in self.convs:
            h = mx.tanh(conv(h)) + h
        return self.out(h)  # (B, T, 4)


def _pair():
    torch.manual_seed(0)
    t = TorchNet().eval()
    m = MlxNet()
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    weights = []
    for k, v in sd.items():
        if v.ndim == 3:
            v = v.transpose(0, 2, 1)
        weights.append((k, mx.array(v)))
    m.load_weights(weights)
    return t, m


def test_trace_matches_every_layer():
    t, m = _pair()
    x = np.random.default_rng(0).standard_normal((1, 11, 6)).astype(np.float32)
    table = trace(t, m, lambda: t(torch.from_numpy(x)), lambda: m(mx.array(x)))
    assert [r["path"] for r in table] == ["proj", "convs.0", "convs.1", "out"]
    assert all(r["ok"] for r in table), table.to_markdown()
    assert table[1]["layout"] == "channel-last" and table[0]["layout"] == "same"
    assert table.first_failure() is None
    # the model is restored: plain classes, no leftover attributes
    assert type(m.convs[0]) is mnn.Conv1d and not hasattr(m.convs[0], "_rvclab_trace_path")


def test_trace_marks_first_bad_layer():
    t, m = _pair()
    m.convs[1].weight = m.convs[1].weight * 1.01  # a subtle porting bug in one layer
    x = np.random.default_rng(1).standard_normal((1, 9, 6)).astype(np.float32)
    table = trace(t, m, lambda: t(torch.from_numpy(x)), lambda: m(mx.array(x)))
    first = table.first_failure()
    assert first is not None and first["path"] == "convs.1"
    assert table[0]["ok"] and table[1]["ok"]
    assert "convs.1" in table.to_markdown() and "<table>" in table._repr_html_()


def test_trace_restores_classes_on_error():
    t, m = _pair()

    def boom():
        m(mx.zeros((1, 4, 6)))
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        trace(t, m, lambda: t(torch.zeros(1, 4, 6)), boom)
    assert type(m.proj) is mnn.Linear
