"""Outputs and their records, without converting: ``rvclab convert``'s plan of output paths (names,
collisions, hidden files, subfolders, formats) and the provenance verdict a rerun acts on.

Conversions themselves (a rerun that skips or converts again, a user's file, a collision
converted) are in tests/test_reliability_batch.py.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from badfiles import digest, speech_like

from rvclab.audio import AUDIO_EXTENSIONS, OUTPUT_FORMATS, load_audio
from rvclab.cli import main
from rvclab.pipeline import batch, provenance
from rvclab.pipeline.batch import FLAGS, _interrupt_held, output_names, plan


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- names -------------------------------------------------------------------------------------


def test_inputs_sharing_a_stem_get_distinct_outputs(tmp_path):
    files = [Path(n) for n in ("a.flac", "a.wav", "b.mp3")]
    assert [(p.name, name, notes) for p, name, notes in output_names(files)] == [
        ("a.flac", "a.flac.wav", ["renamed: a.wav is the output of a.wav"]),
        ("a.wav", "a.wav", []),
        ("b.mp3", "b.wav", []),
    ]
    # case-insensitive (macOS, Windows), and a second collision on the fallback name
    names = {p.name: name for p, name, _ in output_names([Path(n) for n in ("A.WAV", "a.flac", "a.flac.wav")])}
    assert names == {"A.WAV": "A.wav", "a.flac.wav": "a.flac.wav", "a.flac": "a.flac-2.wav"}
    assert len({n.casefold() for n in names.values()}) == 3
    # with no input in the output's format, the first by name keeps the plain name
    names = {p.name: name for p, name, _ in output_names([Path("a.mp3"), Path("a.flac")])}
    assert names == {"a.flac": "a.wav", "a.mp3": "a.mp3.wav"}


# --- what a folder holds -----------------------------------------------------------------------


def _folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    for name in ("a.wav", "a.flac", "c.opus", "sub/b.wav", "sub/deeper/d.ogg"):
        _touch(src / name)
    for name in (".DS_Store", "._a.wav", ".hidden.wav", ".git/config", "sub/._b.wav", "notes.txt", "cover.jpg"):
        _touch(src / name)
    return src


def test_a_folder_plan_ignores_hidden_files_and_counts_subfolders(tmp_path):
    src, out = _folder(tmp_path), tmp_path / "out"
    found = plan(src, out)
    assert [(j.src.relative_to(src).as_posix(), j.dst.relative_to(out).as_posix()) for j in found.jobs] == [
        ("a.flac", "a.flac.wav"), ("a.wav", "a.wav"), ("c.opus", "c.wav")]
    assert found.ignored == {"hidden": 4, "not audio": 2} and found.subfolders == 1
    assert found.ignored_text() == "ignored 6 (4 hidden, 2 not audio), 1 subfolder not converted " \
                                   "(--recursive converts subfolders)"


def test_recursive_mirrors_subfolders_and_skips_the_output_folder_inside(tmp_path):
    src = _folder(tmp_path)
    out = src / "converted"  # inside the input: its files must not become inputs
    _touch(out / "old.wav")
    found = plan(src, out, recursive=True)
    assert sorted(j.dst.relative_to(out).as_posix() for j in found.jobs) == [
        "a.flac.wav", "a.wav", "c.wav", "sub/b.wav", "sub/deeper/d.wav"]
    assert found.ignored == {"hidden": 5, "not audio": 2} and found.subfolders == 0


# --- output paths refused up front -------------------------------------------------------------


@pytest.mark.parametrize("out, words", [
    ("want.mp3", "cannot write .mp3 files"),
    ("want.opus", "cannot write .opus files"),
    ("noext", "no file extension"),
])
def test_a_file_output_must_be_a_format_rvclab_writes(out, words, tmp_path):
    src = _touch(tmp_path / "a.wav")
    with pytest.raises(ValueError, match=words):
        plan(src, tmp_path / out)
    assert plan(src, tmp_path / "noext", out_is_folder=True).jobs[0].dst == tmp_path / "noext" / "a.wav"
    for suffix in OUTPUT_FORMATS:
        assert plan(src, tmp_path / f"b{suffix}").jobs[0].dst.suffix == suffix


def test_file_and_folder_mismatches_name_both_paths(tmp_path):
    src = _folder(tmp_path)
    with pytest.raises(ValueError) as refused:
        plan(src, tmp_path / "name.wav")
    assert str(src) in str(refused.value) and "name.wav" in str(refused.value)
    a_file = _touch(tmp_path / "a_file")
    with pytest.raises(NotADirectoryError) as refused:
        plan(src, a_file)
    assert str(src) in str(refused.value) and str(a_file) in str(refused.value)
    with pytest.raises(ValueError, match="not an audio file rvclab reads"):
        plan(src / "notes.txt", tmp_path / "x.wav")
    assert not (tmp_path / "name.wav").exists()


def test_one_list_of_extensions_serves_files_and_folders(tmp_path):
    """Every extension a folder converts is one a single file converts, .opus included, and
    libsndfile here reads an Opus file."""
    assert ".opus" in AUDIO_EXTENSIONS
    for suffix in AUDIO_EXTENSIONS:
        single = _touch(tmp_path / f"x{suffix}")
        assert plan(single, tmp_path / "out.wav").jobs[0].src == single
    folder = plan(tmp_path, tmp_path / "out")
    assert sorted(j.src.suffix for j in folder.jobs) == sorted(AUDIO_EXTENSIONS)
    if "OPUS" not in sf.available_subtypes("OGG"):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} here writes no Opus to test reading with")
    opus = tmp_path / "voice.opus"
    sf.write(str(opus), speech_like(0.5, sr=48000), 48000, format="OGG", subtype="OPUS")
    audio = load_audio(opus)
    assert audio.shape[0] == 8000 and float(np.abs(audio).max()) > 0.05


# --- the verdict on an existing output ---------------------------------------------------------


def _record(src: Path, files: dict, **settings) -> dict:
    return provenance.make_record(source=src, files=files, settings={"f0_up_key": 0.0, **settings},
                                  backend="torch")


def test_an_output_is_current_only_while_everything_matches(tmp_path):
    src = _touch(tmp_path / "in.wav", b"input one")
    voice = _touch(tmp_path / "voice.pth", b"voice one")
    out = _touch(tmp_path / "out.wav", b"converted audio")
    files = {"voice": voice, "index": None}
    assert provenance.judge(tmp_path / "none.wav", lambda: {}) == (provenance.NEW, [])
    provenance.write_sidecar(out, _record(src, files))
    written = json.loads(provenance.sidecar_path(out).read_text())
    assert written["output"]["sha256"] == digest(out) and written["input"]["sha256"] == digest(src)
    assert written["rvclab_version"] and written["pipeline_behaviour"] == provenance.PIPELINE_BEHAVIOUR
    assert provenance.judge(out, lambda: _record(src, files), FLAGS) == (provenance.CURRENT, [])

    state, why = provenance.judge(out, lambda: _record(src, files, f0_up_key=12.0), FLAGS)
    assert state == provenance.STALE and why == ["--pitch 0.0 -> 12.0"]
    src.write_bytes(b"input two!")  # another size too: the digest cache keys on the file's stat
    voice.write_bytes(b"voice two!")
    state, why = provenance.judge(out, lambda: _record(src, files), FLAGS)
    assert state == provenance.STALE and [w.split(" file")[0] for w in why] == ["input", "voice"], why
    state, why = provenance.judge(out, lambda: {**_record(src, files), "backend": "mlx"}, FLAGS)
    assert "--backend 'torch' -> 'mlx'" in why


def test_an_output_without_its_record_is_a_users_file(tmp_path):
    src = _touch(tmp_path / "in.wav")
    out = _touch(tmp_path / "out.wav", b"the user's own recording")
    never = lambda: pytest.fail("the input is hashed only for an output with a record")  # noqa: E731
    state, why = provenance.judge(out, never)
    assert state == provenance.FOREIGN and "no out.wav.rvclab.json" in why[0]
    provenance.sidecar_path(out).write_text("{not json")
    assert provenance.judge(out, never)[0] == provenance.FOREIGN
    provenance.write_sidecar(out, _record(src, {}))
    out.write_bytes(b"edited after rvclab wrote it")
    state, why = provenance.judge(out, never)
    assert state == provenance.FOREIGN and "changed since rvclab wrote it" in why[0]


def test_ctrl_c_while_an_output_and_its_record_are_written_waits_for_both(ctrl_c):
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with _interrupt_held():
            signal.raise_signal(signal.SIGINT)
            finished.append("record written")
    assert finished == ["record written"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- the command refuses before any model loads ------------------------------------------------


@pytest.fixture
def no_models(monkeypatch):
    """Every model loader and the conversion raise: a refusal must come before them."""
    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded")

    for name in ("VoiceModel", "embedder", "load_index", "convert_voice", "default_hubert"):
        monkeypatch.setattr(batch, name, loaded)
    monkeypatch.setattr(provenance, "default_rmvpe", loaded)


def _cmd(src, out, *extra):
    return ["convert", "-m", "voice.pth", "--hubert", "hubert.pt", "-i", str(src), "-o", str(out), *extra]


@pytest.mark.parametrize("out, words", [
    ("want.mp3", "cannot write .mp3 files"),
    ("noext", "no file extension"),
    ("{folder}.wav", "is a folder, so the output must be a folder"),
])
def test_bad_output_paths_are_refused_before_any_model_loads(out, words, no_models, tmp_path, capsys):
    src = _touch(tmp_path / "in" / "a.wav")
    folder_input = "{folder}" in out
    target = tmp_path / out.replace("{folder}", "name")
    assert main(_cmd(src.parent if folder_input else src, target, "--f0-method", "rmvpe")) == 2
    captured = capsys.readouterr()
    assert words in captured.err and str(target) in captured.err and captured.out == "", captured
    assert not target.exists()


def test_a_users_file_at_the_output_is_refused_before_any_model_loads(no_models, tmp_path, capsys):
    src = _touch(tmp_path / "a.wav")
    mine = _touch(tmp_path / "mine.wav", b"my own take")
    assert main(_cmd(src, mine, "--f0-method", "pm")) == 2
    err = capsys.readouterr().err
    assert f"{mine}: exists and rvclab did not make it" in err and "--force" in err, err
    assert mine.read_bytes() == b"my own take" and not provenance.sidecar_path(mine).exists()
