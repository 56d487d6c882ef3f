"""Metrics and the converter engine's strictness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvclab import convert, metrics
from rvclab import tolerances as tol
from rvclab.convert import WEIGHT_G, ConversionError, Rule, apply_rules


def test_metrics_basics(rng):
    a = rng.standard_normal(1000)
    assert metrics.corr(a, a) == pytest.approx(1.0)
    assert metrics.corr(a, -a) == pytest.approx(-1.0)
    assert metrics.max_abs(a, a + 0.5) == pytest.approx(0.5)
    assert metrics.rmse(a, a + 0.5) == pytest.approx(0.5)
    f = np.array([0, 100, 200, 400.0])
    err = metrics.cents_error(f, f * 2 ** (1 / 1200))
    assert err["frames"] == 3 and err["median"] == pytest.approx(1.0)
    assert metrics.voicing_agreement(f, np.array([0, 100, 0, 400.0])) == 0.75
    assert metrics.relative_f0_error(f * 0.82, f) == pytest.approx(-0.18)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.corr(a, a[:10])


def test_cosine_per_frame(rng):
    a = rng.standard_normal((20, 8))
    assert np.allclose(metrics.cosine_per_frame(a, 2 * a), 1.0)
    assert metrics.worst_cosine(metrics.cosine_per_frame(a, 2 * a)) == pytest.approx(1.0)


# --- not comparable: NaN, which every check fails --------------------------------------------
VOICED = np.array([0, 100, 200, 400.0])
UNVOICED = np.zeros(4)
NAN_F0 = np.array([0, 100, np.nan, 400.0])
EMPTY = np.zeros(0)


@pytest.mark.parametrize("case, a, b", [
    ("no frame voiced in both", VOICED * [0, 1, 0, 1], VOICED * [1, 0, 1, 0]),
    ("both unvoiced", UNVOICED, UNVOICED),
    ("empty", EMPTY, EMPTY),
    ("NaN in one curve", NAN_F0, VOICED),
])
def test_f0_metrics_never_pass_vacuously(case, a, b):
    err = metrics.cents_error(a, b)
    assert err["frames"] == 0 or case == "NaN in one curve", case
    for key in ("median", "p99", "max"):
        assert not metrics.comparable(err[key]), (case, err)
        assert not tol.RMVPE_CHECKS["f0_p99_cents"].guard_ok(err[key]), case
        assert not tol.RMVPE_CHECKS["f0_p99_cents"].goal_ok(err[key]), case
    assert not metrics.comparable(metrics.relative_f0_error(a, b)), case


@pytest.mark.parametrize("a, b", [(EMPTY, EMPTY), (NAN_F0, VOICED), (VOICED, NAN_F0)])
def test_voicing_agreement_not_comparable(a, b):
    value = metrics.voicing_agreement(a, b)
    assert not metrics.comparable(value)
    assert not tol.RMVPE_CHECKS["voicing_agreement"].guard_ok(value)
    assert not tol.RMVPE_CHECKS["voicing_agreement"].goal_ok(value)


def _with_nan(x):
    x = np.array(x, dtype=np.float64)
    x.flat[x.size // 2] = np.nan
    return x


@pytest.mark.parametrize("case", ["empty", "NaN", "inf"])
def test_waveform_metrics_never_pass_vacuously(rng, case):
    a = rng.standard_normal(4000)
    a, b = {"empty": (EMPTY, EMPTY), "NaN": (a, _with_nan(a)), "inf": (a, np.where(a > 1, np.inf, a))}[case]
    values = {"corr": metrics.corr(a, b), "spectral_corr": metrics.spectral_corr(a, b, 16000),
              "max_abs": metrics.max_abs(a, b), "rmse": metrics.rmse(a, b), "snr_db": metrics.snr_db(a, b),
              "max_abs_rel": metrics.compare(a, b)["max_abs_rel"], "rms_ratio": metrics.rms_ratio(b, a)}
    for name, value in values.items():
        assert not metrics.comparable(value), (case, name, value)
    for check, name in ((tol.E2E_CHECKS["wave_corr"], "corr"), (tol.E2E_CHECKS["spec_corr"], "spectral_corr"),
                        (tol.SYNTH_CHECKS["wave_max_abs"], "max_abs"),
                        (tol.HUBERT_CHECKS["max_abs_rel"], "max_abs_rel")):
        assert not check.guard_ok(values[name]) and not check.goal_ok(values[name]), (case, name)


def test_correlation_of_a_constant_is_not_comparable():
    """Two silent (or constant) outputs are equal sample for sample, but their correlation is
    undefined: NaN, so a silent port cannot pass a correlation check."""
    ones = np.ones(64)
    assert metrics.max_abs(ones, ones) == 0.0 and metrics.compare(ones, ones)["max_abs_rel"] == 0.0
    for a, b in ((ones, ones), (np.zeros(64), np.zeros(64)), (ones, np.arange(64.0))):
        value = metrics.corr(a, b)
        assert not metrics.comparable(value)
        assert not tol.SYNTH_CHECKS["wave_corr"].guard_ok(value)
        assert not tol.SYNTH_CHECKS["wave_corr"].goal_ok(value)


def test_cosine_of_a_zero_frame_or_nothing_is_not_comparable(rng):
    a = rng.standard_normal((5, 8))
    z = a.copy()
    z[2] = 0.0
    cos = metrics.cosine_per_frame(z, z)
    assert np.isnan(cos[2]) and np.allclose(np.delete(cos, 2), 1.0)
    for frames in (cos, metrics.cosine_per_frame(a[:0], a[:0]), metrics.cosine_per_frame(a, _with_nan(a))):
        worst = metrics.worst_cosine(frames)
        assert not metrics.comparable(worst)
        assert not tol.HUBERT_CHECKS["cos_min"].guard_ok(worst)
        assert not tol.HUBERT_CHECKS["cos_min"].goal_ok(worst)


@pytest.mark.parametrize("new_form", [False, True])
def test_weight_norm_fusion_matches_torch(new_form):
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(8, 16, 5)
    if new_form:
        conv = torch.nn.utils.parametrizations.weight_norm(conv)
    else:
        conv = torch.nn.utils.weight_norm(conv)
    with torch.no_grad():  # a non-trivial magnitude
        g = "parametrizations.weight.original0" if new_form else "weight_g"
        conv.get_parameter(g).mul_(torch.linspace(0.5, 2, 16).view(16, 1, 1))
    sd = {f"c.{k}": v.detach().numpy() for k, v in conv.state_dict().items()}
    rules = [
        Rule("weight_norm", WEIGHT_G, convert.fuse_weight_norm(0, convert.conv1d_layout)),
        Rule("bias", r"c\.bias", convert.copy()),
    ]
    out, report = apply_rules(sd, rules, {"c.weight": (16, 5, 8), "c.bias": (16,)})
    g_t, v_t = (torch.from_numpy(sd[k]) for k in convert.weight_norm_pair(sd, "c"))
    ref = torch._weight_norm(v_t, g_t, 0).numpy().transpose(0, 2, 1)  # torch's own fusion
    assert np.max(np.abs(out["c.weight"] - ref)) / np.max(np.abs(ref)) < 2e-7
    pair = ("weight_g", "weight_v") if not new_form else (g, "parametrizations.weight.original1")
    g64, v64 = (sd[f"c.{k}"].astype(np.float64) for k in pair)
    exact = g64 * v64 / np.sqrt(np.sum(v64 * v64, axis=(1, 2), keepdims=True))  # g v / ||v||, (O, I, K)
    assert np.array_equal(out["c.weight"], exact.astype(np.float32).transpose(0, 2, 1))  # (O, K, I)
    assert np.array_equal(out["c.bias"], sd["c.bias"])  # copies are bit-exact
    assert report.by_rule() == {"weight_norm": 1, "bias": 1}


def test_layouts():
    w = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert convert.conv1d_layout(w)[1, 2, 0] == w[1, 0, 2]
    assert convert.conv_transpose1d_layout(w).shape == (3, 4, 2)
    w4 = np.zeros((2, 3, 4, 5))
    assert convert.conv2d_layout(w4).shape == (2, 4, 5, 3)
    assert convert.conv_transpose2d_layout(w4).shape == (3, 4, 5, 2)


def test_strictness_names_every_problem():
    src = {"a.weight": np.zeros((2, 3)), "b.weight": np.zeros(4), "stray": np.zeros(1)}
    rules = [Rule("copy", r"[ab]\.weight", convert.copy())]
    with pytest.raises(ConversionError) as err:
        apply_rules(src, rules, {"a.weight": (3, 2), "b.weight": (4,), "c.weight": (1,)})
    text = str(err.value)
    assert "stray (1,): unused source key" in text
    assert "c.weight: missing (expected shape (1,))" in text
    assert "a.weight: expected shape (3, 2), found (2, 3)" in text
    assert len(err.value.problems) == 3


def test_fp16_is_upcast_and_dtype_kept_on_request():
    src = {"w": np.ones(3, np.float16), "i": np.arange(3)}
    rules = [Rule("copy", r".*", convert.copy())]
    out, _ = apply_rules(src, rules)
    assert out["w"].dtype == np.float32 and out["i"].dtype == src["i"].dtype
    out, _ = apply_rules(src, rules, dtype=None)
    assert out["w"].dtype == np.float16


def test_save_safetensors_atomic(tmp_path):
    from rvclab.checkpoints import load_checkpoint, safetensors_metadata

    path = convert.save_safetensors_atomic(tmp_path / "m.safetensors", {"w": np.ones(3, np.float32)},
                                           {"config": [1, 2], "sr": "48k"})
    assert safetensors_metadata(path) == {"config": "[1, 2]", "sr": "48k"}
    assert load_checkpoint(path)["w"].tolist() == [1.0, 1.0, 1.0]
