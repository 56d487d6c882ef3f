"""Seeded files record the code that wrote them: stale ones are rewritten, the user's are kept."""

from __future__ import annotations

import json
import threading
import time
import warnings

import pytest

from rvclab import seeding
from rvclab.checkpoints import load_checkpoint
from rvclab.models.hubert import seeded as hubert_seeded
from rvclab.models.hubert.config import HubertConfig
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.seeded import make_one

SMALL = SynthConfig.preset("v2-40k").small()


def _tamper(folder, name):
    record = seeding.read_record(folder)
    record[name]["fingerprint"] = "0" * 16  # as if an older seeding wrote it
    (folder / seeding.RECORD_NAME).write_text(json.dumps(record))


def test_a_current_file_is_kept_and_a_stale_one_rewritten(tmp_path):
    path = make_one(tmp_path / "v.pth", SMALL, seed=0)
    fresh = load_checkpoint(path)["weight"]
    assert seeding.read_record(tmp_path)["v.pth"]["seed"] == 0
    mtime = path.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current file: no warning, no write
        assert make_one(path, SMALL, seed=0) == path
    assert path.stat().st_mtime_ns == mtime
    path.write_bytes(b"not a checkpoint")  # what older seeding code wrote, as far as the test cares
    _tamper(tmp_path, "v.pth")
    with pytest.warns(seeding.StaleSeededFile, match="v.pth: written by older seeding code"):
        make_one(path, SMALL, seed=0)
    rewritten = load_checkpoint(path)["weight"]
    assert rewritten.keys() == fresh.keys()
    assert all(rewritten[k].equal(fresh[k]) for k in fresh)
    assert seeding.read_record(tmp_path)["v.pth"]["fingerprint"] != "0" * 16


def test_another_configuration_is_stale_too(tmp_path):
    path = make_one(tmp_path / "v.pth", SMALL, seed=0)
    other = SynthConfig.preset("v2-32k").small()
    with pytest.warns(seeding.StaleSeededFile):
        make_one(path, other, seed=0)
    fps = {seeding.fingerprint(config=repr(c)) for c in (SMALL, other)}
    assert len(fps) == 2


def test_a_file_rvclab_did_not_write_is_kept_unless_forced(tmp_path):
    path = tmp_path / "voice_v2_40k.pth"
    path.write_bytes(b"the user's own voice")
    assert seeding.is_users(tmp_path, path.name)
    assert make_one(path, SMALL, seed=0) == path
    assert path.read_bytes() == b"the user's own voice"
    make_one(path, SMALL, seed=0, force=True)
    assert path.read_bytes() != b"the user's own voice" and not seeding.is_users(tmp_path, path.name)


def test_default_voice_leaves_the_users_file_alone(tmp_path, monkeypatch):
    from rvclab.voices import default_voice

    monkeypatch.setenv("RVCLAB_WEIGHTS", str(tmp_path))
    (tmp_path / "voice_v2_40k.pth").write_bytes(b"mine")
    assert default_voice("voice_v2_40k.pth").read_bytes() == b"mine"
    with pytest.raises(FileNotFoundError, match="no seeded voice has that name"):
        default_voice("voice_nobody.pth")


def test_hubert_set_never_overwrites_a_users_file(tmp_path):
    small = HubertConfig.small()
    paths = hubert_seeded.make(tmp_path, seed=0, force=False, config=small)
    assert all(p.exists() for p in paths)
    record = seeding.read_record(tmp_path)
    assert set(record) == {str(p.relative_to(tmp_path)) for p in paths}
    paths[2].unlink()  # the ContentVec weights went missing: rvclab's own set is rewritten
    hubert_seeded.make(tmp_path, seed=0, force=False, config=small)
    assert paths[2].exists()
    paths[2].unlink()
    (tmp_path / seeding.RECORD_NAME).write_text(json.dumps({}))  # now hubert_base.pt is the user's
    with pytest.raises(FileExistsError, match="hubert_base.pt: not written by rvclab"):
        hubert_seeded.make(tmp_path, seed=0, force=False, config=small)


def test_a_broken_record_counts_as_none(tmp_path):
    (tmp_path / seeding.RECORD_NAME).write_text("{not json")
    assert seeding.read_record(tmp_path) == {}
    (tmp_path / seeding.RECORD_NAME).write_text("[1, 2]")
    assert seeding.read_record(tmp_path) == {}


def test_makers_at_once_write_each_file_once_and_record_all(tmp_path, monkeypatch):
    """Two workers asking for seeded files in one folder at the same moment (parallel test workers,
    two notebooks): the lock makes them take turns, so each file is written once and the record
    names every file. Without it both would see the file missing and write it, and one record
    update would drop the other's entry."""
    from rvclab.models.synth import seeded as synth_seeded

    writes, real_save = [], synth_seeded.save_torch_atomic
    barrier = threading.Barrier(4)

    def slow_save(obj, path, **kw):
        writes.append(path.name)
        time.sleep(0.2)  # a window in which an unlocked second maker would also find the file missing
        return real_save(obj, path, **kw)

    monkeypatch.setattr(synth_seeded, "save_torch_atomic", slow_save)

    def maker(name):
        barrier.wait()
        make_one(tmp_path / name, SMALL, seed=0)

    threads = [threading.Thread(target=maker, args=(n,)) for n in ("a.pth", "a.pth", "b.pth", "b.pth")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(writes) == ["a.pth", "b.pth"], writes
    assert set(seeding.read_record(tmp_path)) == {"a.pth", "b.pth"}


def test_a_folder_without_write_access_still_serves_its_files(tmp_path, monkeypatch):
    """The lock is a file in the weights folder; where it cannot be made (a read-only folder that
    already holds the seeded files), the files are used as before instead of an error."""
    path = make_one(tmp_path / "v.pth", SMALL, seed=0)
    real_open = open

    def read_only(file, mode="r", *args, **kwargs):
        if str(file).endswith(seeding.LOCK_NAME):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    assert make_one(path, SMALL, seed=0) == path
