"""Synthesizer views (rvclab/models/synth/tables.py) and the Synthesizer widgets: tables have the rows
they claim, the tensor check catches a wrong tensor, plots have their axes. Small config."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from rvclab import tolerances as tol  # noqa: E402
from rvclab.convert import ConversionError  # noqa: E402
from rvclab.models.synth import parity  # noqa: E402
from rvclab.models.synth import tables as sv  # noqa: E402
from rvclab.models.synth.config import SynthConfig  # noqa: E402
from rvclab.models.synth.noise import make_noise  # noqa: E402
from rvclab.models.synth.torch.layers import WNConv1d, WNConvTranspose1d  # noqa: E402
from rvclab.runtime import import_mlx  # noqa: E402
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


# --- the converted tensors, checked independently of the converter's rules and layouts ---------
def _conv_modules(tmodel):
    """{name: module} of every convolution of the torch reference (plain and weight-normed)."""
    kinds = (torch.nn.Conv1d, torch.nn.ConvTranspose1d, WNConv1d, WNConvTranspose1d)
    return {n: m for n, m in tmodel.named_modules() if isinstance(m, kinds)}


def _source_conv(module, weight: dict, name: str, x):
    """The convolution computed by torch from the checkpoint's own tensors (weight norm fused by
    torch's ``_weight_norm``): x (1, C_in, T) -> (1, C_out, T')."""
    if f"{name}.weight_g" in weight:
        w = torch._weight_norm(weight[f"{name}.weight_v"].float(), weight[f"{name}.weight_g"].float(), 0)
    else:
        w = weight[f"{name}.weight"].float()
    b = weight.get(f"{name}.bias")
    b = None if b is None else b.float()
    if isinstance(module, (torch.nn.ConvTranspose1d, WNConvTranspose1d)):
        return F.conv_transpose1d(x, w, b, module.stride, module.padding)
    return F.conv1d(x, w, b, module.stride, module.padding, module.dilation)


def _mlx_conv(module, arrays: dict, name: str, x):
    """The same convolution by MLX's own kernels (``mx.conv1d`` / ``mx.conv_transpose1d``) on the
    converted arrays: x (1, C_in, T) -> (1, C_out, T')."""
    mx = import_mlx()
    one = lambda v: v[0] if isinstance(v, tuple) else v  # noqa: E731 (torch keeps tuples)
    xm, w = mx.array(x.numpy().transpose(0, 2, 1)), mx.array(arrays[f"{name}.weight"])
    if isinstance(module, (torch.nn.ConvTranspose1d, WNConvTranspose1d)):
        y = mx.conv_transpose1d(xm, w, stride=one(module.stride), padding=one(module.padding))
    else:
        y = mx.conv1d(xm, w, stride=one(module.stride), padding=one(module.padding),
                      dilation=one(module.dilation))
    if f"{name}.bias" in arrays:
        y = y + mx.array(arrays[f"{name}.bias"])
    return np.array(y).transpose(0, 2, 1)


def conv_errors(tmodel, weight: dict, arrays: dict, only: str | None = None) -> dict[str, float]:
    """{conv name: max |MLX - torch| / max |torch|} on a seeded input (a few kernel spans long);
    every convolution, or the one named ``only``."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for name, module in _conv_modules(tmodel).items():
        if only not in (None, name):
            continue
        shape = weight[f"{name}.weight_v" if f"{name}.weight_g" in weight else f"{name}.weight"].shape
        transposed = isinstance(module, (torch.nn.ConvTranspose1d, WNConvTranspose1d))
        dilation = 1 if transposed else module.dilation
        span = shape[2] * (dilation[0] if isinstance(dilation, tuple) else dilation)
        x = torch.randn(1, shape[0 if transposed else 1], 2 * span + 16, generator=gen)
        want = _source_conv(module, weight, name, x).numpy()
        got = _mlx_conv(module, arrays, name, x)
        out[name] = float(np.abs(got - want).max() / np.abs(want).max()) if got.shape == want.shape else np.inf
    return out


def test_converted_arrays_match_the_source(voice, converted, run):
    """Every MLX array from the checkpoint, by hand: the key set from the source names (weight_g
    + weight_v -> weight), copies bit-exact under the same name, every convolution kernel by its
    output (torch's conv on the source tensors vs MLX's conv on the converted one). Both the
    converter and the report variant the notebook uses."""
    from rvclab.models.synth.rules import convert_checkpoint

    weight, tmodel = voice["weight"], run[0]
    want_keys = {k.replace(".weight_g", ".weight") for k in weight if not k.endswith(".weight_v")}
    convs = {f"{n}.weight" for n in _conv_modules(tmodel)}
    assert len(convs) > 50 and convs <= want_keys
    for arrays in (converted[0], convert_checkpoint(voice)[0]):
        assert set(arrays) == want_keys
        changed = [k for k in want_keys - convs if not np.array_equal(arrays[k], weight[k].float().numpy())]
        assert not changed, changed[:5]
        errors = conv_errors(tmodel, weight, arrays)
        bad = {k: e for k, e in errors.items() if not e <= tol.OPS_CONV_REL_MAX_ABS}
        assert len(errors) == len(convs) and not bad, bad


def test_conv_check_catches_wrong_kernels(voice, converted, run):
    arrays, tmodel = dict(converted[0]), run[0]
    for key, broken in (("dec.ups.0.weight", arrays["dec.ups.0.weight"][:, ::-1]),  # taps reversed
                        ("dec.conv_pre.weight", arrays["dec.conv_pre.weight"][:, ::-1]),
                        ("flow.flows.0.enc.in_layers.1.weight", arrays["flow.flows.0.enc.in_layers.1.weight"] * 1.001)):
        name = key.removesuffix(".weight")
        assert conv_errors(tmodel, voice["weight"], arrays, only=name)[name] <= tol.OPS_CONV_REL_MAX_ABS
        errors = conv_errors(tmodel, voice["weight"], {**arrays, key: np.ascontiguousarray(broken)}, only=name)
        assert errors[name] > 100 * tol.OPS_CONV_REL_MAX_ABS, key
    rows = sv.rule_counts(converted[2])
    assert sum(r["targets"] for r in rows) == len(arrays)
    assert sum(r["source keys"] for r in rows) == len(voice["weight"])


def test_verify_tensors_catches_a_wrong_tensor(voice, converted):
    """The notebook's per-tensor report flags a wrong g and reversed taps (its pass on the right
    tensors shares the converter's layouts; test_converted_arrays_match_the_source is the
    independent check)."""
    arrays, _, report = converted
    rows = sv.verify_tensors(voice, arrays, report)
    assert len(rows) == len(arrays)
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
