"""Reliability sweep, public functions: bad files and bad audio give clear errors, nothing is lost.

Every case asserts the exception type and that its message names the file (or the array) and the
problem. The list of cases and what each got is in docs/reliability.md. The CLI side is in
tests/test_reliability_cli.py, interrupted and concurrent conversions in
tests/test_reliability_batch.py.
"""

from __future__ import annotations

import errno
import os

import numpy as np
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

from rvclab.audio import AudioError, load_audio, save_audio_atomic
from rvclab.checkpoints import CheckpointError, load_checkpoint


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory.getbasetemp() / "small-models")  # made once per session


@pytest.fixture(scope="module")
def voice(models):
    from rvclab.pipeline.networks import VoiceModel

    return VoiceModel(models[0])


@pytest.mark.parametrize("case", [c for c in BAD_AUDIO if c != "1 sample"])
def test_load_audio_bad_files(case, tmp_path):
    path = BAD_AUDIO[case](tmp_path)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    message = str(err.value)
    assert str(path) in message and AUDIO_PROBLEM[case] in message, message


def test_load_audio_one_sample_is_audio(tmp_path):
    """One sample is valid audio for the reader; the converter refuses it (next test)."""
    assert load_audio(BAD_AUDIO["1 sample"](tmp_path)).shape == (1,)


@pytest.mark.parametrize("case", list(BAD_AUDIO))
def test_convert_voice_bad_files(case, voice, models, tmp_path):
    from rvclab.pipeline.conversion import convert_voice

    path = BAD_AUDIO[case](tmp_path)
    before = digest(path) if path.exists() else None
    with pytest.raises(AudioError) as err:
        convert_voice(path, voice, f0_method="pm", hubert_path=models[1])
    message = str(err.value)
    assert AUDIO_PROBLEM[case] in message, message
    assert str(path) in message, message
    assert (digest(path) if path.exists() else None) == before


@pytest.mark.parametrize("audio, sr, words", [
    (np.full(16000, np.nan, np.float32), 16000, "all samples are NaN or Inf"),
    (np.where(np.arange(16000) == 5, np.inf, 0.1).astype(np.float32), 16000, "1 of 16000 samples are NaN or Inf"),
    (np.zeros(1, np.float32), 16000, "too short"),
    (np.zeros(0, np.float32), 16000, "too short"),
    (np.zeros(100, np.float32), 10_000_000, "outside 1 kHz .. 384 kHz"),
    (np.zeros((2, 2, 100), np.float32), 16000, "expected (T,) or (T, channels)"),
    (np.zeros(16000, np.float32), None, "needs its sample rate"),
], ids=["all NaN", "one Inf", "1 sample", "0 samples", "10 MHz", "3-d array", "no sr"])
def test_convert_voice_bad_arrays(audio, sr, words, voice, models):
    from rvclab.pipeline.conversion import convert_voice

    with pytest.raises(AudioError, match=None) as err:
        convert_voice(audio, voice, sr=sr, f0_method="pm", hubert_path=models[1])
    assert words in str(err.value), str(err.value)


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_voice_and_checkpoint_loaders_bad_files(case, tmp_path, models):
    from rvclab.models.hubert.io import load_hubert
    from rvclab.models.rmvpe.io import load_rmvpe
    from rvclab.models.synth.io import load_voice
    from rvclab.pipeline.conversion import convert_voice

    path = BAD_MODELS[case](tmp_path)
    for load in (load_checkpoint, load_voice, load_hubert, load_rmvpe,
                 lambda p: convert_voice(speech_like(0.3), p, sr=16000, f0_method="pm", hubert_path=models[1])):
        with pytest.raises(CheckpointError) as err:
            load(path)
        message = str(err.value)
        assert str(path) in message and MODEL_PROBLEM[case] in message, (load, message)


def test_a_checkpoint_of_another_kind_is_not_a_voice(models):
    from rvclab.models.synth.io import load_voice

    with pytest.raises(CheckpointError, match="not an RVC voice file"):
        load_voice(models[1])  # a HuBERT checkpoint


@pytest.mark.parametrize("audio, words", [
    (np.full(1600, np.nan, np.float32), "NaN or Inf"),
    (np.where(np.arange(1600) == 3, -np.inf, 0.0).astype(np.float32), "NaN or Inf"),
    (np.zeros(1, np.float32), "shorter than one F0 frame"),
    (np.zeros(0, np.float32), "shorter than one F0 frame"),
    (np.zeros((2, 1600), np.float32), "expected mono audio"),
], ids=["NaN", "-Inf", "1 sample", "0 samples", "stereo"])
def test_estimate_f0_bad_audio(audio, words):
    from rvclab.pitch import estimate_f0

    for method in ("pm", "rmvpe"):
        with pytest.raises(AudioError) as err:
            estimate_f0(audio, method)
        assert words in str(err.value), str(err.value)


@pytest.mark.parametrize("feats, words", [
    (np.zeros((0, 256), np.float32), "at least"),
    (np.full((100, 256), np.nan, np.float32), "NaN"),
    (np.zeros((100, 300), np.float32), "256"),
    (np.zeros(256, np.float32), "(N, 256)"),
], ids=["no rows", "NaN", "300-d", "1-d"])
def test_build_index_bad_features(feats, words):
    from rvclab.pipeline.index import build_index

    with pytest.raises(ValueError) as err:
        build_index(feats, "v1")
    assert words in str(err.value), str(err.value)


@pytest.mark.parametrize("case", ["missing", "empty", "text", "wav"])
def test_load_index_bad_files(case, tmp_path):
    import badfiles

    from rvclab.pipeline.index import IndexFileError, load_index

    path = {"missing": badfiles.missing, "empty": badfiles.empty, "text": badfiles.text,
            "wav": badfiles.wav_named}[case](tmp_path, "x.index")
    expected = FileNotFoundError if case == "missing" else IndexFileError
    with pytest.raises(expected) as err:
        load_index(path, "v2")
    assert str(path) in str(err.value), str(err.value)


def test_save_audio_refuses_its_own_input(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(str(src), speech_like(0.2), 16000)
    before = digest(src)
    audio = load_audio(src)
    with pytest.raises(AudioError, match="is an input file"):
        save_audio_atomic(src, audio * 0.5, 16000)
    other = tmp_path / "never_read.wav"
    sf.write(str(other), audio, 16000)
    with pytest.raises(AudioError, match="is an input file"):
        save_audio_atomic(tmp_path / "." / "never_read.wav", audio, 16000, protect=(other,))
    assert digest(src) == before


def test_save_audio_non_finite_is_refused_and_nothing_written(tmp_path):
    out = tmp_path / "out.wav"
    with pytest.raises(AudioError, match="NaN or Inf"):
        save_audio_atomic(out, np.array([0.0, np.nan], np.float32), 16000)
    assert not out.exists() and not leftovers(tmp_path)


def test_save_audio_read_only_folder(tmp_path):
    with read_only_dir(tmp_path / "ro") as ro:
        with pytest.raises(OSError) as err:
            save_audio_atomic(ro / "out.wav", speech_like(0.1), 16000)
        assert str(ro / "out.wav") in str(err.value) and "cannot write" in str(err.value), str(err.value)
        assert list(ro.iterdir()) == []


def test_save_audio_disk_full_keeps_the_old_file(tmp_path, monkeypatch):
    """The writer runs out of space halfway: the old output stays as it was, no temp file remains."""
    out = tmp_path / "out.wav"
    save_audio_atomic(out, speech_like(0.2), 16000)
    before = digest(out)
    real_write = sf.write

    def write_then_fail(file, data, *args, **kwargs):
        real_write(file, data[: len(data) // 2], *args, **kwargs)  # half the bytes land, then ENOSPC
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sf, "write", write_then_fail)
    with pytest.raises(OSError) as err:
        save_audio_atomic(out, speech_like(0.4), 16000)
    assert err.value.errno == errno.ENOSPC and str(out) in str(err.value), str(err.value)
    assert digest(out) == before and not leftovers(tmp_path)
