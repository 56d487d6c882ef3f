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


def test_stft_matches_a_direct_dft():
    """Centred, reflect-padded, periodic-Hann frames; the DFT written out in float64."""
    x = _tone(16000, 0.3) + 0.01 * np.random.default_rng(0).standard_normal(4800).astype(np.float32)
    n_fft, hop = 1024, 160
    got = audio.stft(x, n_fft, hop)
    assert got.shape == (n_fft // 2 + 1, 1 + len(x) // hop) and got.dtype == np.complex64
    padded = np.concatenate([x[1:n_fft // 2 + 1][::-1], x, x[-n_fft // 2 - 1:-1][::-1]]).astype(np.float64)
    n = np.arange(n_fft)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
    basis = np.exp(-2j * np.pi * np.outer(np.arange(n_fft // 2 + 1), n) / n_fft)  # (513, 1024)
    for t in (0, 1, 15, got.shape[1] - 1):  # both padded edges and the middle
        want = basis @ (padded[t * hop:t * hop + n_fft] * window)
        np.testing.assert_allclose(got[:, t], want, atol=2e-4 * np.abs(want).max())
