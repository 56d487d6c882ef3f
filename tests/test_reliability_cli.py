"""Reliability sweep, command line: every command given bad files, bad outputs and bad arguments.

Each case runs ``rvclab.cli.main`` in this process and asserts the exit code scripts rely on
(``rvclab --help``: 0 ok, 1 checks or some files of a folder failed, 2 usage/bad input/unwritable
output, 130 interrupted), that stderr names the file and the problem, and that inputs are
untouched and no partial output remains. docs/reliability.md lists the cases and the messages.
"""

from __future__ import annotations

import errno
import os
import shutil

import badfiles
import pytest
import soundfile as sf
from badfiles import (
    AUDIO_PROBLEM,
    BAD_AUDIO,
    BAD_MODELS,
    MODEL_PROBLEM,
    digest,
    leftovers,
    read_only_dir,
    small_models,
    speech_like,
)

from rvclab.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory.getbasetemp() / "small-models")  # made once per session


@pytest.fixture
def good_wav(tmp_path):
    path = tmp_path / "good.wav"
    sf.write(str(path), speech_like(0.4), 16000)
    return path


def _convert(models, inp, out, *extra):
    return ["convert", "-m", str(models[0]), "--hubert", str(models[1]), "--f0-method", "pm",
            "-i", str(inp), "-o", str(out), *extra]


def _err(capsys) -> str:
    return capsys.readouterr().err


# --- convert -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_AUDIO))
def test_convert_bad_input_file(case, models, tmp_path, capsys):
    src = BAD_AUDIO[case](tmp_path)
    before = digest(src) if src.exists() else None
    out = tmp_path / "out" / "converted.wav"
    assert main(_convert(models, src, out)) == 2
    err = _err(capsys)
    assert src.name in err and AUDIO_PROBLEM[case] in err, err
    assert not out.exists() and not leftovers(tmp_path)
    assert (digest(src) if src.exists() else None) == before


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_convert_bad_model_file(case, models, good_wav, tmp_path, capsys):
    model = BAD_MODELS[case](tmp_path)
    args = _convert(models, good_wav, tmp_path / "out.wav")
    args[2] = str(model)
    assert main(args) == 2
    err = _err(capsys)
    assert str(model) in err and MODEL_PROBLEM[case] in err, err
    assert not (tmp_path / "out.wav").exists()


def test_convert_a_hubert_file_as_the_voice(models, good_wav, tmp_path, capsys):
    args = _convert(models, good_wav, tmp_path / "out.wav")
    args[2] = str(models[1])
    assert main(args) == 2
    assert "not an RVC voice file" in _err(capsys)


@pytest.mark.parametrize("case", ["missing", "wav"])
def test_convert_bad_index_fails_before_converting(case, models, good_wav, tmp_path, capsys):
    index = (badfiles.missing if case == "missing" else badfiles.wav_named)(tmp_path, "voice.index")
    assert main(_convert(models, good_wav, tmp_path / "out.wav", "--index", str(index))) == 2
    err = _err(capsys)
    assert str(index) in err and ("not found" in err or "not a readable FAISS index" in err), err
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("extra, words", [
    (["--index-rate", "2"], "--index-rate 2.0: must be in [0, 1.0]"),
    (["--protect", "0.9"], "--protect 0.9: must be in [0, 0.5]"),
    (["--f0-method", "nonsense"], "F0 method 'nonsense' is not offered by reference profile 'rvc-webui-2026'"),
    (["--f0-method", "crepe"], "it offers: pm, rmvpe, fcpe"),
    (["--reference", "webui"], "unknown reference profile 'webui'; known profiles: rvc-webui-2026, rvc-webui-2024"),
    (["--filter-radius", "3"], "--filter-radius: F0 method 'pm' of reference profile 'rvc-webui-2026' takes none"),
    (["--f0-file", "missing_f0.txt"], "--f0-file: reference profile 'rvc-webui-2026' (RVC 20260716) takes no F0 curve"),
    (["--reference", "rvc-webui-2024", "--f0-file", "missing_f0.txt"], "missing_f0.txt: no such F0 file"),
    (["--hubert", "{wav}"], "not a checkpoint"),
], ids=["index-rate", "protect", "f0-method", "f0-method not offered", "unknown reference", "filter-radius",
        "f0-file without curves", "f0-file", "hubert is a wav"])
def test_convert_bad_parameters_stop_a_batch_before_it_starts(extra, words, models, good_wav, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        shutil.copy(good_wav, folder / name)
    wav = badfiles.wav_named(tmp_path, "hubert.pt")
    args = _convert(models, folder, tmp_path / "out")
    for flag, value in zip(extra[::2], extra[1::2]):
        value = value.replace("{wav}", str(wav))
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert main(args) == 2
    err = _err(capsys)
    assert words in err and "FAILED" not in err, err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_convert_output_is_the_input(models, good_wav, capsys):
    before = digest(good_wav)
    assert main(_convert(models, good_wav, good_wav)) == 2
    assert "is the input file" in _err(capsys)
    assert main(_convert(models, good_wav, good_wav.parent / "." / good_wav.name)) == 2
    assert "is the input file" in _err(capsys)
    assert main(_convert(models, good_wav.parent, good_wav.parent)) == 2  # folder onto itself
    assert "output folder is the input folder" in _err(capsys)
    assert digest(good_wav) == before


def test_convert_into_a_read_only_folder(models, good_wav, tmp_path, capsys):
    with read_only_dir(tmp_path / "ro") as ro:
        assert main(_convert(models, good_wav, ro / "out.wav")) == 2
        err = _err(capsys)
        assert f"cannot write into {ro}" in err, err
        assert list(ro.iterdir()) == []
        folder = tmp_path / "in"
        folder.mkdir()
        shutil.copy(good_wav, folder / "a.wav")
        assert main(_convert(models, folder, ro / "batch")) == 2
        assert "cannot write into" in _err(capsys)


def test_convert_disk_full_while_writing(models, good_wav, tmp_path, capsys, monkeypatch):
    """The output's write fails with ENOSPC after half the bytes: no partial file, input untouched."""
    real_write = sf.write

    def write_then_fail(file, data, *args, **kwargs):
        real_write(file, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    before = digest(good_wav)
    out = tmp_path / "out" / "converted.wav"
    monkeypatch.setattr(sf, "write", write_then_fail)
    assert main(_convert(models, good_wav, out)) == 2
    err = _err(capsys)
    assert f"cannot write {out}" in err and "No space left on device" in err, err
    assert not out.exists() and not leftovers(tmp_path) and digest(good_wav) == before


def test_convert_folder_with_bad_files_converts_the_rest(models, good_wav, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(good_wav, folder / "a_good.wav")
    for case in ("empty", "text named .wav", "NaN sample", "header claims 10 MHz"):
        BAD_AUDIO[case](folder)
    out = tmp_path / "out"
    assert main(_convert(models, folder, out)) == 1
    printed = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["a_good.wav", "a_good.wav.rvclab.json"]  # output, record
    assert "converted 1" in printed.out and "failed 4" in printed.out, printed.out
    assert printed.err.count("FAILED") == 4, printed.err
    assert sf.info(str(out / "a_good.wav")).frames > 0


# --- convert-weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_convert_weights_bad_input(case, tmp_path, capsys):
    src = BAD_MODELS[case](tmp_path)
    assert main(["convert-weights", str(src), str(tmp_path / "out.safetensors")]) == 2
    err = _err(capsys)
    assert str(src) in err and MODEL_PROBLEM[case] in err, err
    assert not (tmp_path / "out.safetensors").exists()


def test_convert_weights_outputs(models, tmp_path, capsys, monkeypatch):
    voice = models[0]
    before = digest(voice)
    assert main(["convert-weights", str(voice), str(voice)]) == 2
    assert "is the input file" in _err(capsys)
    with read_only_dir(tmp_path / "ro") as ro:
        assert main(["convert-weights", str(voice), str(ro / "v.safetensors")]) == 2
        assert f"cannot write {ro / 'v.safetensors'}" in _err(capsys)
        assert list(ro.iterdir()) == []

    import safetensors.numpy

    def full_disk(arrays, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.numpy, "save_file", full_disk)
    out = tmp_path / "full" / "v.safetensors"
    assert main(["convert-weights", str(voice), str(out)]) == 2
    assert "No space left on device" in _err(capsys)
    assert not out.exists() and not leftovers(tmp_path) and digest(voice) == before


# --- index -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "empty", "text", "wav"])
def test_index_build_and_info_bad_files(case, tmp_path, capsys):
    make = {"missing": badfiles.missing, "empty": badfiles.empty, "text": badfiles.text,
            "wav": badfiles.wav_named}[case]
    feats = make(tmp_path, "feats.npy")
    out = tmp_path / "indexes"
    assert main(["index", "build", "--features", str(feats), "--name", "v", "--version", "v1", "--out", str(out)]) == 2
    err = _err(capsys)
    assert str(feats) in err, err
    index = make(tmp_path, "v.index")
    assert main(["index", "info", str(index)]) == 2
    err = _err(capsys)
    assert str(index) in err, err
    assert not out.exists() or list(out.iterdir()) == []


def test_index_build_bad_features_and_read_only_out(tmp_path, capsys):
    import numpy as np

    bad = tmp_path / "nan.npy"
    np.save(bad, np.full((100, 256), np.nan, np.float32))
    assert main(["index", "build", "--features", str(bad), "--name", "v", "--version", "v1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "NaN" in _err(capsys)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((100, 768), np.float32))
    assert main(["index", "build", "--features", str(wrong), "--name", "v", "--version", "v1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "expected shape (N, 256)" in _err(capsys)
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).standard_normal((200, 256)).astype(np.float32))
    with read_only_dir(tmp_path / "ro") as ro:
        assert main(["index", "build", "--features", str(good), "--name", "v", "--version", "v1",
                     "--out", str(ro)]) == 2
        assert f"cannot write {ro}/added_IVF" in _err(capsys)
        assert list(ro.iterdir()) == []


# --- parity, weights, bench, demo, lab, info ---------------------------------------------------


@pytest.mark.parametrize("command", [
    ["parity", "e2e", "--voice", "{model}", "--clips", "librivox_male_0880", "--max-seconds", "0.5"],
    ["parity", "synth", "--voice", "{model}"],
    ["parity", "rmvpe", "--model-path", "{model}"],
    ["parity", "hubert", "--weights", "{model}"],
], ids=["e2e", "synth", "rmvpe", "hubert"])
@pytest.mark.parametrize("case", ["missing", "wav named .pth"])
def test_parity_bad_weight_files(command, case, tmp_path, capsys):
    model = BAD_MODELS[case](tmp_path)
    where = model
    if command[1] == "hubert":  # --weights names a folder holding hubert_base.pt
        where = tmp_path / "weights"
        where.mkdir()
        model = BAD_MODELS[case](where)
        if model.exists():
            model.rename(where / "hubert_base.pt")
        model = where / "hubert_base.pt"
    assert main([part.replace("{model}", str(where)) for part in command]) == 2
    err = _err(capsys)
    assert str(model) in err and MODEL_PROBLEM[case] in err, err


def test_weights_make_bad_outputs(tmp_path, capsys):
    with read_only_dir(tmp_path / "ro") as ro:
        assert main(["weights", "make", "--out", str(ro), "--only", "rmvpe"]) == 2
        assert str(ro) in _err(capsys)
        assert list(ro.iterdir()) == []
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert main(["weights", "make", "--out", str(a_file), "--only", "rmvpe"]) == 2
    assert str(a_file) in _err(capsys)
    assert a_file.read_text() == "keep me"
    assert main(["weights", "make", "--out", str(tmp_path), "--only", "nonsense"]) == 2
    assert "unknown family" in _err(capsys)


def test_demo_into_a_read_only_folder_fails_at_once(tmp_path, capsys):
    with read_only_dir(tmp_path / "ro") as ro:
        assert main(["demo", "--out", str(ro / "out")]) == 2
        captured = capsys.readouterr()
        # refused before the info table, the model list and the conversions, which all print
        assert captured.out == "", "the demo should refuse before converting anything"
        assert f"cannot write into {ro / 'out'}" in captured.err
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert main(["demo", "--out", str(a_file)]) == 2
    assert str(a_file) in _err(capsys) and a_file.read_text() == "keep me"


@pytest.mark.parametrize("args, words", [
    (["info", "-n", "-5"], "-n -5"),
    (["info", "-n", "0"], "-n 0"),
    (["bench", "--stage", "nonsense"], "nonsense"),
    (["bench", "--seconds", "abc"], "abc"),
    (["bench", "--repeats", "0"], "--repeats"),
])
def test_info_and_bench_bad_arguments(args, words, capsys):
    assert main(args) == 2
    assert words in _err(capsys)


def test_lab_bad_arguments(tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["lab", "--port", str(port), "--no-browser"]) == 2
        assert f"port {port}" in _err(capsys)
    assert main(["lab", "--port", "70000", "--no-browser"]) == 2
    assert "not a TCP port" in _err(capsys)
    assert main(["lab", "--dir", str(tmp_path / "nowhere"), "--no-browser"]) == 2
    assert "no such folder" in _err(capsys)


@pytest.mark.parametrize("args", [
    [], ["nonsense"], ["convert"], ["convert", "-m", "x.pth"], ["convert-weights", "a"], ["index"],
    ["index", "build", "--name", "x"], ["parity"], ["parity", "nonsense"], ["weights"], ["bench", "--device", "tpu"],
    ["info", "-n", "many"], ["lab", "--port", "eighty"], ["demo", "--bogus"],
], ids=lambda a: " ".join(a) or "(nothing)")
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "usage: rvclab" in _err(capsys)


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for line in ("0    success", "1    a check failed", "2    usage", "130  interrupted"):
        assert line in out
    for command in ("info", "weights", "parity", "convert-weights", "convert", "bench", "demo", "index", "lab"):
        assert command in out


@pytest.mark.parametrize("extra, words", [
    (["--reference", "webui"], "invalid choice: 'webui'"),
    (["--f0-methods", "pm,harvest"], "'harvest' is not offered by reference profile 'rvc-webui-2026'"),
], ids=["unknown reference", "method not offered"])
def test_parity_e2e_bad_reference_is_bad_input(extra, words, capsys):
    """Before any model loads: an unknown profile lists the known ones, a method the profile
    lacks names those it offers; exit 2."""
    with pytest.raises(SystemExit) as exit_:
        main(["parity", "e2e", "--json", *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert "rvc-webui-2026" in err and ("applio" in err or "pm, rmvpe, fcpe" in err), err
