"""Reference profiles (rvclab.profiles): the registry, its errors, and the 2024 profile against
what today's rvclab code does, read from its own modules."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import numpy as np
import pytest
import torch

from rvclab import audio, pitch
from rvclab.f0 import F0_MAX, F0_MIN, world
from rvclab.f0 import pm as pm_f0
from rvclab.models.crepe import config as crepe_config
from rvclab.models.crepe import f0 as crepe_f0
from rvclab.models.fcpe import config as fcpe_config
from rvclab.models.fcpe import f0 as fcpe_f0
from rvclab.models.hubert.config import V1_LAYER
from rvclab.models.hubert.torch import HubertModel
from rvclab.models.rmvpe.config import RmvpeConfig
from rvclab.models.rmvpe.torch import pad_frames
from rvclab.pipeline import index, output, steps
from rvclab.profiles import DEFAULT_PROFILE, PROFILES, SHARED_FIELDS, F0Method, ReferenceProfile, get_profile

NAMES = ("rvc-webui-2026", "rvc-webui-2024", "applio")
FIELDS = tuple(f.name for f in dataclasses.fields(ReferenceProfile))

# Where rvclab's functions, called without a profile, depart from the 20240604 release
# (docs/reference_profiles.md, "Defaults without a profile"); conversions pass their profile's
# value instead (tests/test_reference.py): the field, and where the release's value was read.
DEPARTURES_2024 = {
    "f0_methods": "infer-web.py: pm, harvest, crepe, rmvpe (rvclab also offers crepe-tiny, fcpe, dio)",
    "rmvpe_pad_mode": "infer/lib/rmvpe.py RMVPE.mel2hidden: F.pad(mode='constant')",
    "rmvpe_chunk_frames": "infer/lib/rmvpe.py RMVPE.mel2hidden: one network call",
    "rms_dtype": "librosa 0.9.1 rms keeps each signal's dtype (float32 output envelope)",
    "input_resampler": "infer/lib/audio.py load_audio: the ffmpeg CLI",
    "output_resampler": "librosa 0.9.1 resample: res_type='kaiser_best'",
    "output_int16": "infer/modules/vc/pipeline.py Pipeline.pipeline: astype(np.int16)",
}


def _rmvpe_pad_mode() -> str:
    """Today's frame padding of the RMVPE log-mel, seen on a 20-frame ramp padded to 32."""
    mel = torch.arange(1.0, 21.0).reshape(1, 1, 20)
    padded = pad_frames(mel, 32)
    return "reflect" if float(padded[0, 0, 20]) == float(mel[0, 0, 18]) else "constant"


def _split_quietness() -> str:
    """Today's quietness of an alternating +-1 signal: 160 (sum of |x|) or 0 (|sum of x|)."""
    x = np.tile([1.0, -1.0], 400)
    return "sum-abs" if steps.quietness(x)[400] == steps.WINDOW else "abs-sum"


def _index_weight_power() -> int:
    """Today's neighbour weights for scores 1 and 2: 1 : 2**-power."""
    w = index.neighbour_weights(np.array([[1.0, 2.0]], np.float32), np.array([[0, 1]]))
    return round(float(np.log2(w[0, 0] / w[0, 1])))


def _resampler() -> str:
    """The res_type rvclab.audio.resample passes to librosa when no profile names one."""
    assert inspect.signature(audio.resample).parameters["res_type"].default == audio.RES_TYPE
    return audio.RES_TYPE


def todays_values() -> dict[str, object]:
    """Each profile field rvclab's functions fix when called without a profile, read from its
    modules: a constant or default where one exists, otherwise what the function does on a small
    input."""
    filled = steps.postprocess_f0(np.array([0, 100, 0, 200, 0], np.float32))[1]
    return {
        "f0_methods": tuple(pitch.METHODS),
        "f0_fill_unvoiced": bool(np.all(filled > 0)),
        "f0_curve_file": callable(getattr(steps, "apply_f0_curve", None)),
        "rmvpe_pad_mode": _rmvpe_pad_mode(),
        "rmvpe_chunk_frames": RmvpeConfig.chunk_frames,
        "hubert_v1_layer": V1_LAYER,
        "hubert_attention": inspect.signature(HubertModel.extract_features).parameters["attention"].default,
        "index_k": index.TOP_K,
        "index_weight_power": _index_weight_power(),
        "protect_off": steps.PROTECT_OFF,
        "pad_config": dataclasses.astuple(steps.FP32_CONFIG),
        "half_pad_config": dataclasses.astuple(steps.HALF_CONFIG),
        "low_memory_pad_config": dataclasses.astuple(steps.LOW_MEMORY_CONFIG),
        "split_quietness": _split_quietness(),
        "input_resampler": _resampler(),
        "input_dtype": str(steps.normalize_input(np.zeros(4)).dtype),
        "rms_dtype": str(output.frame_rms(np.ones(64, np.float32), 32).dtype),
        "output_resampler": _resampler(),
        "output_int16": output.finalize_audio(np.zeros(4)).dtype == np.int16,
    }


def _default(module, keyword: str):
    """The default of ``keyword`` in ``module.estimate`` (what rvclab runs when not told)."""
    return inspect.signature(module.estimate).parameters[keyword].default


def _profile_value(profile: ReferenceProfile, name: str):
    return profile.f0_method_names if name == "f0_methods" else getattr(profile, name)


# --- the registry ------------------------------------------------------------------------------------
def test_three_profiles_and_the_default():
    assert tuple(PROFILES) == NAMES
    assert all(p.name == name for name, p in PROFILES.items())
    assert DEFAULT_PROFILE == "rvc-webui-2026"
    assert get_profile() is PROFILES["rvc-webui-2026"]
    assert get_profile("applio") is PROFILES["applio"]


@pytest.mark.parametrize("name", ["rvc-webui", "Applio", "", None, ["applio"]])
def test_unknown_profile_lists_the_known_ones(name):
    with pytest.raises(ValueError, match="unknown reference profile") as err:
        get_profile(name)
    assert all(known in str(err.value) for known in NAMES), err.value


def test_missing_f0_method_names_the_offered_ones():
    p = get_profile("rvc-webui-2026")
    with pytest.raises(ValueError, match="'crepe' is not offered") as err:
        p.check_f0_method("crepe")
    assert "pm, rmvpe, fcpe" in str(err.value)
    with pytest.raises(ValueError, match="crepe, crepe-tiny, rmvpe, fcpe"):
        get_profile("applio").f0_params("pm")
    assert p.check_f0_method("fcpe") == "fcpe"


def test_f0_params_are_the_releases_and_a_fresh_dict():
    p = get_profile("rvc-webui-2026")
    assert p.f0_params("fcpe") == {"decoder": "local_argmax", "threshold": 0.006}
    assert p.f0_params("pm") == {"f0_min": 50.0, "f0_max": 1100.0, "voicing_threshold": 0.6}
    p.f0_params("rmvpe")["threshold"] = 1.0
    assert p.f0_params("rmvpe") == {"threshold": 0.03}


def test_profiles_are_frozen_and_hashable():
    p = get_profile()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.rmvpe_pad_mode = "reflect"
    assert len({hash(q) for q in PROFILES.values()}) == 3
    assert dataclasses.replace(p) == p and hash(dataclasses.replace(p)) == hash(p)
    with pytest.raises(TypeError):
        PROFILES["mine"] = p


def test_every_field_differs_or_is_documented_as_shared():
    """A field either takes one value in every profile and is in SHARED_FIELDS, or differs
    between at least two profiles and is not."""
    wrong = []
    for name in FIELDS:
        values = {_profile_value(p, name) for p in PROFILES.values()}
        if (len(values) == 1) != (name in SHARED_FIELDS):
            wrong.append(f"{name}: {len(values)} value(s), {'listed' if name in SHARED_FIELDS else 'not listed'}")
    assert not wrong, wrong
    assert SHARED_FIELDS <= set(FIELDS)


def test_f0_params_are_keywords_of_rvclabs_estimators():
    """Each parameter can be passed to rvclab's estimator of that method (through estimate_f0)."""
    bad = []
    for p in PROFILES.values():
        for method in p.f0_methods:
            assert method.name in pitch.METHODS, (p.name, method.name)
            module = importlib.import_module(pitch.METHODS[method.name][0])
            accepted = set(inspect.signature(module.estimate).parameters)
            bad += [f"{p.name}/{method.name}: {key}" for key, _ in method.params if key not in accepted]
    assert not bad, bad


# --- the 2024 profile against today's code ----------------------------------------------------------
def test_2024_profile_is_today_except_the_named_departures():
    """Every field rvclab's functions fix without a profile equals the 2024 profile's value,
    except the departures named above, each of which really differs."""
    p = get_profile("rvc-webui-2024")
    today = todays_values()
    assert set(today) | {"name", "release", "source", "default_f0_method", "default_index_rate",
                         "default_protect", "default_rms_mix_rate", "sine_phase"} == set(FIELDS)
    differ = {name for name, value in today.items() if _profile_value(p, name) != value}
    assert differ == set(DEPARTURES_2024), {n: (_profile_value(p, n), today[n]) for n in differ}


def test_2024_f0_methods_are_todays_with_todays_parameters():
    p = get_profile("rvc-webui-2024")
    assert set(p.f0_method_names) <= set(pitch.METHODS)
    assert p.f0_params("pm") == {"f0_min": F0_MIN, "f0_max": F0_MAX, "voicing_threshold": pm_f0.VOICING_THRESHOLD}
    assert p.f0_params("harvest") == {"f0_min": F0_MIN, "f0_max": F0_MAX, "filter_radius": world.FILTER_RADIUS}
    assert p.f0_params("crepe") == {"f0_min": F0_MIN, "f0_max": F0_MAX, "decoder": _default(crepe_f0, "decoder"),
                                    "threshold": crepe_config.PERIODICITY_THRESHOLD,
                                    "batch_size": crepe_config.BATCH_SIZE}
    assert p.f0_params("rmvpe") == {"threshold": RmvpeConfig.threshold}
    fcpe = get_profile("rvc-webui-2026").f0_params("fcpe")
    assert fcpe == {"decoder": _default(fcpe_f0, "decoder"), "threshold": fcpe_config.DEFAULT_THRESHOLD}


def test_f0_method_records_sort_their_parameters():
    assert F0Method.of("x", b=1, a=2) == F0Method("x", (("a", 2), ("b", 1)))
