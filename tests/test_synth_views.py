"""Synthesizer views (rvclab/models/synth/tables.py) and the Synthesizer widgets: tables have the rows
they claim, the tensor check catches a wrong tensor, plots have their axes. Small config."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rvclab import tolerances as tol  # noqa: E402
from rvclab.convert import ConversionError  # noqa: E402
from rvclab.models.synth import parity  # noqa: E402
from rvclab.models.synth import tables as sv  # noqa: E402
from rvclab.models.synth.config import SynthConfig  # noqa: E402
from rvclab.models.synth.noise import make_noise  # noqa: E402
from rvclab.views import widgets  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))
SMALL = SynthConfig.preset("v2-48k").small()
FRAMES = 6


@pytest.fixture(scope="module")
def voice():
    return parity.torch_voice(SMALL, seed=5, weights="init")


@pytest.fixture(scope="module")
def converted(voice):
    return sv.convert_with_report(voice)


@pytest.fixture(scope="module")
def run(voice):
    tmodel, mmodel = parity.models_from_voice(voice)
    rng = np.random.default_rng(0)
    f0 = np.where(np.arange(FRAMES) < 2, 0.0, 150.0 + 10 * np.arange(FRAMES))
    f0 = f0.astype(np.float32)[None]
    inp = {"phone": rng.standard_normal((1, FRAMES, SMALL.phone_dim)).astype(np.float32),
           "lengths": np.array([FRAMES]), "pitch": parity.coarse_pitch(f0), "f0": f0,
           "sid": np.array([0])}
    noise = make_noise(SMALL, 1, FRAMES, 0)
    table, ref, out = sv.traced_run(tmodel, mmodel, inp, noise)
    return tmodel, mmodel, inp, table, ref, out


def test_key_table_and_summary_count_every_tensor(voice):
    rows = sv.key_table(voice["weight"])
    assert len(rows) == len(voice["weight"])
    summary = {r["module"]: r for r in sv.key_summary(voice["weight"])}
    assert set(summary) == {"enc_p", "flow", "dec", "emb_g"}
    assert sum(r["tensors"] for r in summary.values()) == len(rows)
    total = sum(v.numel() for v in voice["weight"].values())
    assert sum(r["params"] for r in summary.values()) == total
    assert summary["emb_g"]["params"] == SMALL.spk_embed_dim * SMALL.gin_channels


def test_config_rows_cover_every_field():
    rows = {r["field"]: r["value"] for r in sv.config_rows(SMALL)}
    assert rows["upsample_rates"] == (12, 10, 2, 2) and rows["hop_length (derived)"] == 480
    assert len(rows) == 20 + 3


def test_conversion_report_matches_converter(voice, converted):
    from rvclab.models.synth.rules import convert_checkpoint

    arrays, meta, report = converted
    ref_arrays, ref_meta = convert_checkpoint(voice)
    assert meta == ref_meta and set(arrays) == set(ref_arrays)
    assert all(np.array_equal(arrays[k], ref_arrays[k]) for k in arrays)
    counts = sv.rule_counts(report)
    assert sum(r["targets"] for r in counts) == len(arrays)
    assert sum(r["source keys"] for r in counts) == len(voice["weight"])


def test_verify_tensors_passes_and_catches_a_wrong_tensor(voice, converted):
    arrays, _, report = converted
    rows = sv.verify_tensors(voice, arrays, report)
    assert len(rows) == len(arrays)
    summary = {r["kind"]: r for r in sv.verify_summary(rows)}
    assert summary["copy"]["bit-exact"] == summary["copy"]["tensors"] > 0
    assert summary["fused"]["tensors"] > 0 and summary["fused"]["ok"]
    assert summary["fused"]["max_rel"] <= tol.WEIGHT_NORM_FUSION_REL
    bad = dict(arrays)
    bad["dec.ups.0.weight"] = bad["dec.ups.0.weight"] * np.float32(1 + 1e-6)  # a slightly wrong g
    bad["dec.conv_pre.weight"] = np.ascontiguousarray(  # kernel taps reversed
        bad["dec.conv_pre.weight"][:, ::-1])
    worse = {r["key"]: r for r in sv.verify_tensors(voice, bad, report)}
    assert worse["dec.ups.0.weight"]["rel"] > tol.WEIGHT_NORM_FUSION_REL
    assert not worse["dec.conv_pre.weight"]["exact"]
    assert not {r["kind"]: r for r in sv.verify_summary(list(worse.values()))}["copy"]["ok"]


def test_broken_checkpoints_name_the_key(voice):
    from rvclab.models.synth.rules import convert_checkpoint

    lines = sv.error_lines(convert_checkpoint, sv.broken(voice, drop="emb_g.weight"))
    assert lines[0].startswith("ConversionError")
    assert any("emb_g.weight: missing" in x for x in lines)
    bad = sv.broken(voice, reshape=("enc_p.emb_pitch.weight", (3, SMALL.hidden_channels)))
    lines = sv.error_lines(convert_checkpoint, bad)
    want = "enc_p.emb_pitch.weight: expected shape (256, 16), found (3, 16)"
    assert any(want in x for x in lines)
    with pytest.raises(AssertionError, match="accepted"):
        sv.error_lines(convert_checkpoint, voice)
    with pytest.raises(ConversionError):
        sv.convert_with_report({"weight": {}, "config": []})


def test_mlx_matches_arrays(voice, converted, run):
    arrays = converted[0]
    mmodel = run[1]
    assert sv.mlx_matches_arrays(mmodel, arrays)
    changed = dict(arrays)
    changed["emb_g.weight"] = changed["emb_g.weight"] + 1
    assert not sv.mlx_matches_arrays(mmodel, changed)


def test_traced_run_table_and_outputs(run):
    _, _, _, table, ref, out = run
    assert len(table) > 50 and table.first_failure() is None
    assert ref["wave"].shape == out["wave"].shape == (1, FRAMES * SMALL.hop_length)
    stages = {r["stage"]: r for r in sv.stage_summary(table)}
    assert list(stages) == ["enc_p", "flow", "dec"]
    assert all(r["layers"] > 0 and r["all_ok"] for r in stages.values())
    assert sum(r["layers"] for r in stages.values()) <= len(table)
    checks = sv.wave_checks(ref, out)
    assert checks["wave_corr_ok"] and checks["wave_max_abs_ok"] and checks["textenc_ok"]
    failing = sv.stage_summary(table, tol=0.0)
    assert not all(r["below_tol"] for r in failing)  # some layer differs in the last bits


def test_noise_study_and_prediction(run):
    tmodel, mmodel, inp, _, ref, out = run
    rows, other = sv.noise_study(mmodel, inp, ref, out, SMALL, seed=0)
    assert [r["stage"].split()[0] for r in rows] == ["z_p", "z", "waveform"]
    assert all(r["shared"] > 0.99999 for r in rows)
    assert rows[0]["independent"] < 0.99
    assert abs(rows[0]["predicted"] - rows[0]["independent"]) < 0.3
    assert other["wave"].shape == ref["wave"].shape
    m = np.ones((1, 4, 2)) * np.array([[[1.0], [-1.0], [1.0], [-1.0]]])  # Var(m) = 1
    assert sv.predicted_zp_corr(m, np.full_like(m, np.log(1 / 0.66666))) == pytest.approx(0.5)


def test_widgets(run, converted):
    _, _, _, table, ref, out = run
    a, b = ref["wave"][0], out["wave"][0]
    html = widgets.parity_table(table).data
    assert html.count("<tr") == len(table) + 1 and "first failure: <code>none</code>" in html
    fig = widgets.layer_error_plot(table)
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "log"
    fig = widgets.waveform_compare(a, b, SMALL.sr)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    fig = widgets.spectrogram_diff(a, b, SMALL.sr)
    assert len(fig.axes) == 4 and len(fig.axes[0].images) == 1  # three panels and a colour bar
    rows = [{"stage": "z_p", "shared": 1.0, "independent": 0.4, "predicted": 0.38},
            {"stage": "waveform", "shared": 1.0, "independent": 0.9}]
    fig = widgets.noise_corr_plot(rows)
    assert len(fig.axes[0].patches) >= 4
    assert widgets.rows_table(sv.rule_counts(converted[2]), max_rows=2).data.count("<tr>") == 3
    assert "more rows" in widgets.rows_table(sv.rule_counts(converted[2]), max_rows=2).data
    box = widgets.ab_player(a, b, SMALL.sr)
    assert len(box.children) == 2


def test_layer_error_plot_marks_the_first_failure(run):
    from rvclab.trace import TraceTable

    table = TraceTable(dict(r) for r in run[3])
    table[3]["ok"], table[3]["rel"] = False, 1e-2
    table[5]["ok"], table[5]["rel"] = False, float("inf")  # a shape mismatch row
    fig = widgets.layer_error_plot(table)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(table[3]["path"] in t for t in texts)
    assert "first failure: <code>" + table[3]["path"] in widgets.parity_table(table).data
