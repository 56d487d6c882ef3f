"""Audio I/O: formats, mono, resampling, clear errors, atomic input-safe writes, shipped clips."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from rvclab import audio
from rvclab.audio import AudioError, load_audio, save_audio_atomic


def _tone(sr, seconds=0.5, f=220.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_constants_are_consistent():
    assert audio.F0_FRAME_RATE == 100 and audio.HUBERT_FRAME_RATE == 50
    assert audio.RMVPE_FMAX == audio.SAMPLE_RATE_16K / 2


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
def test_formats_resample_and_mono(tmp_path, ext):
    x = _tone(48000)
    stereo = np.stack([x, x], axis=1)
    path = tmp_path / f"tone{ext}"
    sf.write(path, stereo, 48000)
    y = load_audio(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 8000) <= 1
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / len(y) - 220.0) < 4.0  # the tone survives resampling


def test_mp3_is_read(tmp_path):
    path = tmp_path / "tone.mp3"
    try:
        sf.write(path, _tone(16000, 1.0), 16000, format="MP3")
    except Exception as exc:  # libsndfile built without MP3
        pytest.skip(f"this libsndfile cannot write MP3 to make a fixture: {exc}")
    y = load_audio(path, 16000)
    assert y.ndim == 1 and 0.9 * 16000 < len(y) < 1.2 * 16000


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("not audio at all"), "not a readable audio file"),
        (lambda p: sf.write(p, np.full(100, np.nan, np.float32), 16000, subtype="FLOAT"), "NaN"),
        (lambda p: sf.write(p, np.zeros((0,), np.float32), 16000, subtype="FLOAT"), "no samples"),
    ],
)
def test_bad_audio_names_the_file(tmp_path, make, expected):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_save_is_atomic_and_refuses_inputs(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _tone(16000), 16000)
    x = load_audio(src)
    with pytest.raises(AudioError, match="input file"):
        save_audio_atomic(src, x, 16000)
    assert np.allclose(sf.read(src)[0], x, atol=1e-4)  # untouched
    out = save_audio_atomic(tmp_path / "out.wav", x, 16000)
    assert np.array_equal(sf.read(out, dtype="float32")[0], x)
    with pytest.raises(AudioError, match="NaN"):
        save_audio_atomic(tmp_path / "nan.wav", np.array([0.0, np.nan], np.float32), 16000)
    assert not (tmp_path / "nan.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.wav"]


def test_shipped_clips(clips):
    rates, total = set(), 0
    for path in clips:
        info = sf.info(path)
        rates.add(info.samplerate)
        total += path.stat().st_size
        assert 2.0 <= info.duration <= 15.0, path
        y = load_audio(path, 16000)
        assert np.isfinite(y).all() and 0.05 < np.abs(y).max() <= 1.0
    assert {8000, 16000, 48000} <= rates
    assert total < 5 * 2**20
    names = " ".join(p.name for p in clips)
    assert "male" in names and "female" in names
    readme = (clips[0].parent / "README.md").read_text()
    assert all(p.name in readme for p in clips), "every clip needs a provenance row"


def test_mel_filterbank_matches_librosa_htk():
    import librosa

    fb = audio.mel_filterbank(16000, 1024, 128, 30.0, 8000.0, True)
    ref = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True)
    assert fb.shape == (128, 513) and np.allclose(fb, ref, atol=1e-7)


def test_stft_matches_librosa():
    import librosa

    x = _tone(16000, 0.3)
    ref = librosa.stft(x, n_fft=1024, hop_length=160, center=True, pad_mode="reflect")
    got = audio.stft(x, 1024, 160)
    assert got.shape == ref.shape and np.allclose(np.abs(got), np.abs(ref), atol=1e-3)
