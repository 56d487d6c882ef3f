"""End-to-end conversion on both backends: parity, chunking, index, stage swap, bad input, CLI."""

from __future__ import annotations

import argparse
import inspect

import numpy as np
import pytest
import soundfile as sf

from rvclab import metrics
from rvclab.audio import AudioError, clip, load_audio
from rvclab.models.synth.config import SynthConfig
from rvclab.pipeline.batch import add_arguments
from rvclab.pipeline.conversion import DEFAULT_BACKEND, convert_voice
from rvclab.pipeline.networks import PipelineError, VoiceModel
from rvclab.pipeline.parity import SMALL_CHUNKS, build_test_index, run_case
from rvclab.tolerances import E2E_CHECKS, E2E_WAVE_CORR_MIN, guard_failures

WAVE_CORR_GUARD = E2E_CHECKS["wave_corr"].guard

SECONDS = 1.5


@pytest.fixture(scope="module")
def short_clip():
    return load_audio(clip("librivox_male_0880"), 16000)[: int(SECONDS * 16000)]


@pytest.fixture(scope="module")
def small_voice(tmp_path_factory):
    """A seeded v2-40k voice with the real architecture and far fewer channels (fast)."""
    from rvclab.models.synth.seeded import make_one

    path = tmp_path_factory.mktemp("voices") / "small_v2_40k.pth"
    return VoiceModel(make_one(path, SynthConfig.preset("v2-40k").small(), seed=0))


@pytest.fixture(scope="module")
def small_voice_nof0(tmp_path_factory):
    from rvclab.models.synth.seeded import make_one

    path = tmp_path_factory.mktemp("voices") / "small_v1_40k_nof0.pth"
    return VoiceModel(make_one(path, SynthConfig.preset("v1-40k", f0=False).small(), seed=0))


def _assert_parity(row):
    assert row["samples_torch"] == row["samples_mlx"], row
    assert not guard_failures(row, E2E_CHECKS), row  # the guards, far tighter than the goals
    assert row["ok"] and row["guard_ok"], row
    assert 0.999 < row["rms_ratio"] < 1.001, row


def test_e2e_parity_real_v2_40k_rmvpe(short_clip):
    from rvclab.voices import default_voice

    voice = VoiceModel(default_voice("voice_v2_40k.pth"))
    row = run_case(voice, short_clip, f0_method="rmvpe", label="real config")
    _assert_parity(row)
    assert row["chunks"] == 1 and row["sr"] == 40000
    assert row["voicing_agreement"] == 1.0


def test_e2e_parity_chunked_with_index_fcpe(small_voice, tmp_path):
    audio = load_audio(clip("librivox_male_0870"), 16000)[: 4 * 16000]
    index = build_test_index(small_voice, [clip("librivox_male_0880"), clip("codec2_hts2a")], tmp_path)
    row = run_case(small_voice, audio, f0_method="fcpe", index=index, pad_config=SMALL_CHUNKS, label="chunked")
    assert row["chunks"] >= 2
    _assert_parity(row)


def test_independent_noise_would_break_parity(small_voice, short_clip):
    a = convert_voice(short_clip, small_voice, sr=16000, backend="mlx", noise_seed=0)
    b = convert_voice(short_clip, small_voice, sr=16000, backend="mlx", noise_seed=1)
    same = convert_voice(short_clip, small_voice, sr=16000, backend="mlx", noise_seed=0)
    assert np.array_equal(a.audio, same.audio)  # deterministic
    # a different draw is a different waveform: far outside the parity goal
    assert metrics.corr(a.audio, b.audio) < E2E_WAVE_CORR_MIN
    assert metrics.max_abs(a.audio, b.audio) > 1e-3


def test_stage_swap_isolates_the_synthesizer(small_voice, short_clip):
    full_mlx = convert_voice(short_clip, small_voice, sr=16000, backend="mlx")
    swapped = convert_voice(short_clip, small_voice, sr=16000, backend="mlx",
                            backends={"features": "torch", "f0": "torch"})
    torch_run = convert_voice(short_clip, small_voice, sr=16000, backend="torch")
    assert swapped.backends == {"features": "torch", "f0": "torch", "synth": "mlx"}
    assert np.array_equal(swapped.f0, torch_run.f0)
    assert metrics.corr(swapped.audio, torch_run.audio) >= WAVE_CORR_GUARD
    assert metrics.corr(swapped.audio, full_mlx.audio) >= WAVE_CORR_GUARD


def test_no_f0_model_ignores_pitch(small_voice_nof0, short_clip):
    out = convert_voice(short_clip, small_voice_nof0, sr=16000, backend="mlx", f0_method="rmvpe")
    ref = convert_voice(short_clip, small_voice_nof0, sr=16000, backend="torch")
    assert not out.coarse.any() and not out.f0.any()
    assert metrics.corr(out.audio, ref.audio) >= WAVE_CORR_GUARD


def test_rates_stereo_and_silence(small_voice, short_clip):
    stereo44 = np.stack([short_clip, short_clip], axis=1)
    import librosa

    stereo44 = librosa.resample(stereo44.T, orig_sr=16000, target_sr=44100).T
    out = convert_voice(stereo44, small_voice, sr=44100, backend="mlx", resample_sr=44100)
    assert out.sr == 44100 and np.isfinite(out.audio).all()
    silent = {b: convert_voice(np.zeros(16000, np.float32), small_voice, sr=16000, backend=b)
              for b in ("torch", "mlx")}
    # silence in, silence out: the RMS envelope of a silent input is zero (rms_mix_rate < 1).
    # Whether F0 calls frames voiced is up to the weights (seeded RMVPE may); both backends agree.
    assert all(np.isfinite(r.audio).all() and not r.audio.any() for r in silent.values())
    assert np.array_equal(silent["torch"].f0 > 0, silent["mlx"].f0 > 0)


@pytest.mark.parametrize(
    "audio, sr, error, match",
    [
        (np.zeros(0, np.float32), 16000, AudioError, "too short"),
        (np.full(16000, np.nan, np.float32), 16000, AudioError, "NaN"),
        (np.zeros(16000, np.float32), None, AudioError, "sample rate"),
        (np.zeros(16000, np.float32), 10**7, AudioError, "outside"),
    ],
)
def test_bad_audio(small_voice, audio, sr, error, match):
    with pytest.raises(error, match=match):
        convert_voice(audio, small_voice, sr=sr)


def test_bad_parameters_and_index(small_voice, small_voice_nof0, short_clip, tmp_path):
    with pytest.raises(PipelineError, match="sid"):
        convert_voice(short_clip, small_voice, sr=16000, sid=999)
    with pytest.raises(PipelineError, match="backend"):
        convert_voice(short_clip, small_voice, sr=16000, backend="cuda")
    corrupt = tmp_path / "added_IVF1_Flat_nprobe_1_x_v2.index"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(Exception, match=str(corrupt.name)):
        convert_voice(short_clip, small_voice, sr=16000, index=corrupt)
    v2_index = build_test_index(small_voice, [clip("librivox_male_0880")], tmp_path)
    with pytest.raises(Exception, match="768|256"):  # a v2 (768-d) index on a v1 model
        convert_voice(short_clip, small_voice_nof0, sr=16000, index=v2_index)


def test_cli_batch_reports_bad_files_and_resumes(small_voice, tmp_path, short_clip):
    from rvclab.cli import main

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        sf.write(src / f"{name}.wav", short_clip[:12000], 16000)
    (src / "broken.wav").write_text("not audio")
    out = tmp_path / "out"
    args = ["convert", "-m", str(small_voice.path), "-i", str(src), "-o", str(out), "--backend", "mlx"]
    assert main(args) == 1  # one file failed, the others converted
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".wav") == ["a.wav", "b.wav"]
    first = (out / "a.wav").read_bytes()
    assert main(args) == 1  # resume: existing outputs skipped, the broken file still reported
    assert (out / "a.wav").read_bytes() == first
    assert main(["convert", "-m", str(small_voice.path), "-i", str(src / "a.wav"), "-o", str(src / "a.wav")]) == 2
    assert sf.info(src / "a.wav").frames == 12000  # input untouched


# --- arrays as users pass them, what a conversion returns ---------------------------------------
def test_integer_pcm_scaled_like_the_float_it_encodes(small_voice, short_clip):
    """int16 as scipy.io.wavfile returns it converts exactly like the float it stands for; so do
    int32 and centred uint8 (stereo too); integer types that are not PCM are refused."""
    pcm16 = np.round(short_clip * 20000).astype(np.int16)
    ref = convert_voice(pcm16.astype(np.float32) / 32768, small_voice, sr=16000)
    assert np.array_equal(convert_voice(pcm16, small_voice, sr=16000).audio, ref.audio)
    stereo32 = np.stack([pcm16, pcm16], axis=1).astype(np.int32) << 16
    assert np.array_equal(convert_voice(stereo32, small_voice, sr=16000).audio, ref.audio)
    pcm8 = np.round(short_clip * 100 + 128).astype(np.uint8)
    ref8 = convert_voice((pcm8.astype(np.float32) - 128) / 128, small_voice, sr=16000)
    assert np.array_equal(convert_voice(pcm8, small_voice, sr=16000).audio, ref8.audio)
    with pytest.raises(AudioError, match="int64"):
        convert_voice(pcm16.astype(np.int64), small_voice, sr=16000)


def test_conversion_repr_is_short(small_voice, short_clip):
    out = convert_voice(short_clip, small_voice, sr=16000)
    text = repr(out)
    assert len(text) < 300 and "array" not in text and "[" not in text, text
    assert f"({out.audio.size},) float32 @ 40000 Hz" in text and "1 chunk" in text, text
    assert f"backend {DEFAULT_BACKEND}" in text, text


def test_api_default_backend_is_documented():
    assert inspect.signature(convert_voice).parameters["backend"].default == DEFAULT_BACKEND
    assert f'"{DEFAULT_BACKEND}"' in convert_voice.__doc__ and "Conversion" in convert_voice.__doc__


def test_cli_default_backend_is_the_api_default():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["-m", "v.pth", "-i", "a.wav", "-o", "b.wav"]).backend == DEFAULT_BACKEND
