"""The safe loader: refuses code, explains bad files, reads what upstream files carry."""

from __future__ import annotations

import argparse
import os
import sys
import types

import pytest
import torch

from rvclab.checkpoints import (
    CheckpointError,
    InertNamespace,
    atomic_write,
    load_checkpoint,
    save_torch_atomic,
    state_dict_to_numpy,
    to_plain,
)


class _Payload:
    """Pickles to a call of os.system: loading it must never run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"weight": {"a": torch.ones(2)}, "x": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg and "system" in msg and "refused" in msg
    assert not marker.exists()


def test_legacy_format_malicious_pickle_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil_legacy.pt"
    torch.save({"x": _Payload(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (b"this is a text file, not a model\n", "not a checkpoint"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_truncated_checkpoint(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"weight": {"w": torch.randn(64, 64)}}, good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value) and "truncated or corrupt" in str(err.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)


def test_rvc_style_dict_round_trip(tmp_path):
    ckpt = {
        "weight": {"enc_p.emb_phone.weight": torch.randn(192, 768).half()},
        "config": [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11]],
        "info": "300epoch",
        "sr": "48k",
        "f0": 1,
        "version": "v2",
    }
    path = save_torch_atomic(ckpt, tmp_path / "voice.pth")
    got = load_checkpoint(path)
    assert got["config"] == ckpt["config"] and got["sr"] == "48k" and got["version"] == "v2"
    assert got["weight"]["enc_p.emb_phone.weight"].dtype == torch.float16
    arrays = state_dict_to_numpy(got["weight"], dtype="float32")
    assert arrays["enc_p.emb_phone.weight"].dtype.name == "float32"


def test_fairseq_payload_maps_to_inert_stand_ins(tmp_path, monkeypatch):
    # A class pickled under fairseq's name, as the real hubert_base.pt carries it.
    module = types.ModuleType("fairseq.data.dictionary")

    class Dictionary:
        def __init__(self):
            self.symbols = ["<s>", "<pad>", "</s>", "<unk>"]
            self.count = [1, 1, 1, 1]
            self.indices = {s: i for i, s in enumerate(self.symbols)}

    Dictionary.__module__ = "fairseq.data.dictionary"
    Dictionary.__qualname__ = "Dictionary"
    module.Dictionary = Dictionary
    for name in ("fairseq", "fairseq.data"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "fairseq.data.dictionary", module)
    path = tmp_path / "hubert_base.pt"
    torch.save(
        {
            "args": argparse.Namespace(encoder_layers=12, encoder_embed_dim=768, label_rate=50),
            "model": {"final_proj.weight": torch.randn(256, 768)},
            "task_state": {"dictionaries": [Dictionary()]},
        },
        path,
    )
    monkeypatch.delitem(sys.modules, "fairseq.data.dictionary")  # the reader has no fairseq
    got = load_checkpoint(path)
    assert isinstance(got["args"], InertNamespace)
    assert got["args"].encoder_layers == 12
    plain = to_plain(got["task_state"])
    assert plain["dictionaries"][0]["symbols"][:2] == ["<s>", "<pad>"]
    assert tuple(got["model"]["final_proj.weight"].shape) == (256, 768)


def test_atomic_write_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "keep.bin"
    target.write_bytes(b"original")

    def failing(tmp):
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert target.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]
    with pytest.raises(FileExistsError):
        atomic_write(target, lambda tmp: tmp.write_bytes(b"x"), overwrite=False)
