"""Precision modes: the registry's errors, MLX's once-per-process TF32 switch, overflow detection,
and the quality of every mode the CPU runs (fp16, bf16) against fp32 on both backends."""

import numpy as np
import pytest

from rvclab import metrics, precision
from rvclab.bench.stages import speech
from rvclab.models.synth.parity import clip_inputs
from rvclab.pipeline import networks
from rvclab.pipeline.networks import VoiceModel, embedder, features, synthesize
from rvclab.tolerances import PRECISION_BARS
from rvclab.voices import default_voice


def test_resolve_per_device_and_stage():
    assert precision.resolve(None, "cpu") == dict.fromkeys(precision.STAGES, "fp32")
    assert precision.resolve("tf32", "cuda") == dict.fromkeys(precision.STAGES, "tf32")
    assert precision.resolve({"synth": "bf16"}, "cpu") == {"features": "fp32", "f0": "fp32", "synth": "bf16"}
    supported = r"does not run on cpu; supported there: \('fp32', 'fp16', 'bf16'\)"
    with pytest.raises(precision.PrecisionError, match=supported):
        precision.resolve("tf32", "cpu")
    with pytest.raises(precision.PrecisionError, match="modes are"):
        precision.resolve("fp8", "cuda")
    with pytest.raises(precision.PrecisionError, match="unknown stage"):
        precision.resolve({"vocoder": "fp16"}, "cuda")
    with pytest.raises(precision.PrecisionError, match=r"f0: that stage runs \('fp32', 'tf32'\) only"):
        precision.resolve({"f0": "fp16"}, "cuda")
    assert precision.resolve("fp16", "cuda") == {"features": "fp16", "f0": "fp32", "synth": "fp16"}
    assert set(precision.SUPPORTED["metal"]) == {"fp32", "fp16", "bf16"}


def test_tf32_is_one_switch_per_process(monkeypatch):
    assert precision.wants_tf32({"features": "tf32", "synth": "fp16"}) is True
    assert precision.wants_tf32({"synth": "bf16"}) is None
    with pytest.raises(precision.PrecisionError, match="once per process"):
        precision.wants_tf32({"features": "fp32", "synth": "tf32"})
    import mlx.core  # noqa: F401  (loaded: the switch can only be checked now)

    monkeypatch.setenv(precision.TF32_ENV, "0")
    precision.configure_mlx(False)
    with pytest.raises(precision.PrecisionError, match="MLX loaded with MLX_ENABLE_TF32=0; this precision needs 1"):
        precision.configure_mlx(True)
    monkeypatch.delenv(precision.TF32_ENV)  # unset is MLX's default: on
    with pytest.raises(precision.PrecisionError, match="needs 0"):
        precision.configure_mlx(False)


def test_overflow_names_the_stage():
    ok = np.ones(4, np.float32)
    assert precision.check_finite("synth", "fp16", ok) is ok
    bad = np.array([1.0, np.inf, np.nan, 0.0], np.float32)
    with pytest.raises(precision.PrecisionOverflow, match=r"synth: 2 of 4 outputs are NaN/Inf in precision fp16"):
        precision.check_finite("synth", "fp16", bad)


@pytest.fixture(scope="module")
def voice():
    return VoiceModel(default_voice("voice_v2_48k.pth"))


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_cpu_modes_meet_their_bars(voice, backend):
    inp = clip_inputs(voice.config, 30, 0)
    frames, pitch, pitchf = inp["phone"][0], inp["pitch"][0], inp["f0"][0]
    synth, hubert, x = voice.model(backend), embedder(backend), speech(0.4)
    ref_wave = synthesize(synth, voice, frames, pitch, pitchf, 0, 0, backend, mode="fp32")
    ref_feats = features(hubert, x, "v2", backend, mode="fp32")
    for mode in ("fp16", "bf16"):
        bars = PRECISION_BARS[mode]
        wave = synthesize(synth, voice, frames, pitch, pitchf, 0, 0, backend, mode=mode)
        feats = features(hubert, x, "v2", backend, mode=mode)
        got = {"synth_spec_corr": metrics.spectral_corr(wave, ref_wave, voice.sr),
               "synth_max_abs": metrics.max_abs(wave, ref_wave),
               "hubert_cos": metrics.worst_cosine(metrics.cosine_per_frame(feats, ref_feats))}
        for name, value in got.items():
            assert bars[name].guard_ok(value), (mode, name, value)
        assert got["synth_max_abs"] > 0  # the mode really ran in a reduced type
    # the fp32 model is left as it was (the half copy is separate)
    again = synthesize(synth, voice, frames, pitch, pitchf, 0, 0, backend, mode="fp32")
    np.testing.assert_array_equal(again, ref_wave)


def test_bench_precision_only_where_it_runs(capsys):
    from rvclab.bench import run as bench

    assert bench.main(["--stage", "synth", "--precision", "fp16"]) == 2
    assert "only the e2e stage" in capsys.readouterr().err
    assert bench.precision_as_set().startswith("as set: MLX_ENABLE_TF32=")


def test_mixed_backends_never_ask_an_mlx_synth_for_torch_weights():
    """features and F0 by torch, the synthesizer by MLX (notebook 05's stage swap)."""
    class MlxLike(dict):  # MLX modules are dicts: parameters() gives a dict, not an iterator
        def parameters(self):
            return {}

    chosen = {"features": "torch", "f0": "torch", "synth": "mlx"}
    assert networks.precision_modes(None, chosen, MlxLike()) == dict.fromkeys(precision.STAGES)
    assert networks.precision_modes("bf16", chosen, MlxLike())["synth"] == "bf16"
    for mode in (None, "fp32", "bf16"):
        with networks.torch_mode(chosen, "f0", mode, MlxLike()):
            pass
