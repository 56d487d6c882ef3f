"""Reference profiles in the pipeline (rvclab.pipeline.reference): every field applied or listed as
not reproduced, F0 settings per profile, chunking rows, the pieces each field changes, and
convert_voice / the sidecar following the profile they are given."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from rvclab.audio import clip, load_audio
from rvclab.models.synth.config import SynthConfig
from rvclab.pipeline import chunks, output, provenance, steps
from rvclab.pipeline.batch import output_samples
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import PipelineError, VoiceModel, embedder, features
from rvclab.pipeline.reference import (
    FIELD_USE,
    ReferenceGapWarning,
    device_pad_config,
    f0_keywords,
    reference_gaps,
    warn_gaps,
)
from rvclab.profiles import PROFILES, ReferenceProfile, get_profile

P26, P24, APPLIO = (get_profile(n) for n in ("rvc-webui-2026", "rvc-webui-2024", "applio"))


@pytest.fixture(scope="module")
def small_voice(tmp_path_factory):
    from rvclab.models.synth.seeded import make_one

    path = tmp_path_factory.mktemp("voices") / "small_v2_40k.pth"
    return VoiceModel(make_one(path, SynthConfig.preset("v2-40k").small(), seed=0))


@pytest.fixture(scope="module")
def speech():
    return load_audio(clip("librivox_male_0880"), 16000)[:16000]


# --- the table ---------------------------------------------------------------------------------
def test_every_field_is_applied_or_listed_as_not_reproduced():
    """A ReferenceProfile field missing from FIELD_USE (or a stale entry) fails here; an entry
    that leaves values unreproduced says why."""
    fields = [f.name for f in dataclasses.fields(ReferenceProfile)]
    assert list(FIELD_USE) == fields
    for name, use in FIELD_USE.items():
        assert use.where or use.reproduced is not None, name  # applied somewhere, or a named gap
        assert (use.reproduced is None) or use.why, name


def test_gaps_per_profile():
    assert reference_gaps(P26) == reference_gaps(P24) == ("input_resampler",)
    assert reference_gaps(APPLIO) == ("input_dtype",)


def test_gaps_warn_once_per_process():
    mine = dataclasses.replace(APPLIO, name="applio-test-copy")
    with pytest.warns(ReferenceGapWarning) as caught:
        assert warn_gaps(mine) == ("input_dtype",)
    assert [str(w.message).split(": ")[1].split("=")[0] for w in caught] == ["input_dtype"]
    assert "applio-test-copy" in str(caught[0].message) and "'float64'" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_gaps(mine)  # the second time: silent


# --- F0 -------------------------------------------------------------------------------------------
def test_f0_keywords_are_the_releases():
    assert f0_keywords(P26, "fcpe") == {"decoder": "local_argmax", "threshold": 0.006}
    assert f0_keywords(P26, "rmvpe") == {"threshold": 0.03, "pad_mode": "constant", "chunk_frames": None}
    assert f0_keywords(APPLIO, "rmvpe") == {"threshold": 0.03, "pad_mode": "reflect", "chunk_frames": 32000}
    assert f0_keywords(P24, "harvest", filter_radius=5)["filter_radius"] == 5
    assert f0_keywords(P24, "harvest")["filter_radius"] == 3
    with pytest.raises(ValueError, match="'pm' of reference profile 'rvc-webui-2026' takes no filter_radius"):
        f0_keywords(P26, "pm", filter_radius=3)
    with pytest.raises(ValueError, match="it offers: pm, rmvpe, fcpe"):
        f0_keywords(P26, "harvest")


def test_fill_unvoiced_interpolates_inside_and_holds_the_edges():
    f0 = np.array([0, 0, 100, 0, 0, 200, 0], np.float32)
    np.testing.assert_allclose(steps.fill_unvoiced(f0), [100, 100, 100, 133.33333, 166.66667, 200, 200])
    assert not steps.fill_unvoiced(np.zeros(5)).any()
    coarse, f0bak = steps.postprocess_f0(f0, 12, fill=True)  # filled first, then shifted an octave
    np.testing.assert_allclose(f0bak, 2 * steps.fill_unvoiced(f0), rtol=1e-6)
    assert steps.postprocess_f0(f0, 12)[1][0] == 0  # without: unvoiced stays 0


# --- chunking, RMS -----------------------------------------------------------------------------------
def test_device_rows():
    assert device_pad_config(P26, half=False, gpu_memory_gb=None) == (1, 6, 38, 41)
    assert device_pad_config(P26, half=True, gpu_memory_gb=24.0) == (3, 10, 60, 65)
    assert device_pad_config(APPLIO, half=True, gpu_memory_gb=None) == (1, 6, 38, 41)  # fp32 only
    assert device_pad_config(P24, half=True, gpu_memory_gb=4.2) == (1, 5, 30, 32)


def test_split_quietness_modes_pick_their_own_points():
    """A loud zero-mean stretch is 'quiet' for |sum of x| (Applio) but not for sum of |x|
    (WebUI); each mode's sums are upstream's loop over the reflect-padded signal."""
    rng = np.random.default_rng(0)
    n, w = 4000, chunks.WINDOW
    x = 0.1 * rng.standard_normal(n) + 0.3
    x[1000:1400] = np.tile([0.9, -0.9], 200)  # loud, zero sum over any even window
    x[2500:2900] = 0.001 * rng.standard_normal(400) + 0.001  # truly quiet
    padded = np.pad(x, (w // 2, w // 2), mode="reflect")
    signed = np.zeros(n)
    absolute = np.zeros(n)
    for i in range(w):
        signed += padded[i : i - w]
        absolute += np.abs(padded[i : i - w])
    np.testing.assert_array_equal(chunks.quietness(x, w, "sum-abs"), absolute)
    np.testing.assert_array_equal(chunks.quietness(x, w, "abs-sum"), np.abs(signed))
    pad = chunks.Padding(t_pad=0, t_pad_tgt=0, t_pad2=0, t_query=1500, t_center=2000, t_max=100)
    (webui,) = chunks.split_points(x, pad, "sum-abs")
    (applio,) = chunks.split_points(x, pad, "abs-sum")
    assert 2500 <= webui < 2900 and 1000 <= applio < 1400
    with pytest.raises(ValueError, match="split quietness 'max'"):
        chunks.quietness(x, w, "max")


def test_rms_dtypes():
    x = np.random.default_rng(1).standard_normal(48000).astype(np.float32)
    r64, r32 = output.frame_rms(x, 16000), output.frame_rms(x, 16000, np.float32)
    assert r64.dtype == np.float64 and r32.dtype == np.float32
    assert 0 < np.abs(r64 - r32).max() < 1e-5
    assert set(output.RMS_DTYPES) == {p.rms_dtype for p in PROFILES.values()} | {"float64"}


# --- HuBERT v1 layer on both backends -------------------------------------------------------------
def test_hubert_v1_layer_on_both_backends(seeded_weights, speech):
    x = speech[:8000].astype(np.float32)
    path = seeded_weights / "hubert_base.pt"
    t9, t12 = (features(embedder("torch", path), x, "v1", "torch", v1_layer=k) for k in (9, 12))
    m12 = features(embedder("mlx", path), x, "v1", "mlx", v1_layer=12)
    assert t9.shape == t12.shape == m12.shape and t9.shape[1] == 256
    assert np.abs(t9 - t12).max() > 1e-2  # another layer
    assert np.abs(m12 - t12).max() < 1e-3
    np.testing.assert_array_equal(features(embedder("torch", path), x, "v1", "torch"), t9)  # default 9


# --- convert_voice -----------------------------------------------------------------------------------
def test_convert_voice_refuses_what_the_profile_lacks(small_voice, speech):
    with pytest.raises(ValueError, match="'crepe' is not offered by reference profile 'rvc-webui-2026'.*pm, rmvpe"):
        convert_voice(speech, small_voice, sr=16000, f0_method="crepe", backend="torch")
    with pytest.raises(PipelineError, match="f0_curve: reference profile 'rvc-webui-2026'"):
        convert_voice(speech, small_voice, sr=16000, f0_curve=np.array([[0.0, 100.0]]), backend="torch")
    with pytest.raises(PipelineError, match="resample_sr=48000: reference profile 'applio'"):
        convert_voice(speech, small_voice, sr=16000, resample_sr=48000, backend="torch", reference="applio")
    with pytest.raises(ValueError, match="takes no filter_radius"):
        convert_voice(speech, small_voice, sr=16000, filter_radius=3, backend="torch")
    with pytest.raises(ValueError, match="unknown reference profile 'rvc'.*rvc-webui-2026"):
        convert_voice(speech, small_voice, sr=16000, backend="torch", reference="rvc")


def test_convert_voice_follows_the_profile(small_voice, speech):
    """pm leaves many frames unvoiced: 2026 fills them before the key shift, 2024 keeps 0 Hz;
    the Conversion names the profile and its gaps; a file holds int16 where the release writes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReferenceGapWarning)
        new = convert_voice(speech, small_voice, sr=16000, f0_method="pm", backend="torch")
        old = convert_voice(speech, small_voice, sr=16000, f0_method="pm", backend="torch", reference=P24)
    assert (new.reference, new.reference_gaps) == ("rvc-webui-2026", ())  # 16 kHz: nothing to resample
    assert old.reference == "rvc-webui-2024"
    assert (old.f0 == 0).mean() > 0.2 and (new.f0 > 0).all()
    voiced = old.f0 > 0
    np.testing.assert_allclose(new.f0[voiced], old.f0[voiced], rtol=1e-6)
    assert new.audio.size == old.audio.size and np.abs(new.audio - old.audio).max() > 1e-3
    pcm = output_samples(new)
    assert pcm.dtype == np.int16 and np.array_equal(pcm, steps.to_int16_webui(new.audio))
    applio_like = dataclasses.replace(new, reference="applio")
    assert output_samples(applio_like) is applio_like.audio


def test_convert_voice_and_the_stream_build_the_profiles_sine_phase(small_voice, speech, monkeypatch):
    """The synthesizer is run with the profile's NSF phase form (Applio: "frame-wrapped")."""
    from rvclab.pipeline import conversion
    from rvclab.stream import converter
    from rvclab.stream.config import StreamConfig

    seen = []

    def recording(real):
        def run(*args):
            seen.append(args[-1])
            return real(*args)
        return run

    monkeypatch.setattr(conversion, "synthesize", recording(conversion.synthesize))
    monkeypatch.setattr(converter, "run_synth", recording(converter.run_synth))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReferenceGapWarning)
        for name in ("applio", "rvc-webui-2026"):
            convert_voice(speech[:8000], small_voice, sr=16000, f0_method="rmvpe", backend="torch", reference=name)
    assert seen == ["frame-wrapped", "interpolated-cumsum"]
    seen.clear()
    stream = converter.StreamConverter(small_voice, "torch", StreamConfig(block=0.25, crossfade=0.05, extra=0.5,
                                                                          f0_method="rmvpe", reference="applio"))
    stream.process(np.resize(speech, stream.frames.block).astype(np.float32))
    assert seen == ["frame-wrapped"]


def test_sidecar_records_the_profile_and_its_gaps(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(b"x")
    record = provenance.make_record(source=src, files={}, settings={}, backend="mlx", reference="applio")
    assert record["reference_profile"] == "applio"
    assert record["reference_gaps"] == ["input_dtype"]
    default = provenance.make_record(source=src, files={}, settings={}, backend="mlx")
    assert provenance.differences(record, default) == [
        "reference_profile 'applio' -> 'rvc-webui-2026'",
        "reference_gaps ['input_dtype'] -> ['input_resampler']"]


def test_the_resampler_gap_applies_only_to_inputs_not_at_16k(small_voice, speech):
    """The releases' ffmpeg resampling (not reproduced) acts only on inputs at another rate."""
    at_32k = np.repeat(speech[:8000], 2)  # 0.5 s at 32 kHz
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReferenceGapWarning)
        resampled = convert_voice(at_32k, small_voice, sr=32000, f0_method="pm", backend="torch")
        native = convert_voice(speech[:8000], small_voice, sr=16000, f0_method="pm", backend="torch")
    assert resampled.reference_gaps == ("input_resampler",)
    assert native.reference_gaps == ()
