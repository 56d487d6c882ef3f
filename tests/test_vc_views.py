"""Conversion views (rvclab.pipeline.explore) and the conversion explorer widget.

A small seeded voice (same architecture and hop, few channels) keeps the real runs short; the
full-size voices are exercised by the pipeline tests and notebook 05.
"""

from __future__ import annotations

import numpy as np
import pytest

from rvclab.audio import clip
from rvclab.pipeline import explore as vc_views
from rvclab.pipeline.conversion import Conversion


@pytest.fixture(scope="module")
def small_voice(tmp_path_factory):
    from rvclab.models.synth.config import SynthConfig
    from rvclab.models.synth.seeded import make_one

    config = SynthConfig.preset("v2-32k", f0=True).small()
    return make_one(tmp_path_factory.mktemp("voice") / "voice_small_v2_32k.pth", config, seed=0)


def _conversion(audio, f0=None, seconds=1.0) -> Conversion:
    f0 = np.full(10, 100.0, np.float32) if f0 is None else f0
    return Conversion(audio=np.asarray(audio, np.float32), sr=32000, backends={}, f0=f0,
                      coarse=np.zeros(f0.size, np.int32), chunks=[], timings={"synth": seconds})


def test_parity_row_identical_and_different():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(3200).astype(np.float32) * 0.1
    row = vc_views.parity_row(_conversion(a), _conversion(a.copy()))
    assert row["wave_corr"] == pytest.approx(1.0) and row["max_abs"] == 0.0
    assert row["rms_ratio"] == pytest.approx(1.0) and vc_views.passes(row)
    b = a + 0.05 * rng.standard_normal(a.size).astype(np.float32)
    row = vc_views.parity_row(_conversion(a), _conversion(b, f0=np.full(10, 101.0, np.float32)))
    assert row["wave_corr"] < 0.99 and not vc_views.passes(row)
    assert row["f0_cents_p99"] == pytest.approx(1200 * np.log2(101 / 100), rel=1e-6)
    row = vc_views.parity_row(_conversion(a), _conversion(a[:-10]))
    assert not row["same_length"] and not vc_views.passes(row)


def test_stable_rounds_thresholds_and_masks():
    row = {"wave_corr": 0.99999998, "max_abs": 5.1e-6, "f0_cents_p99": 0.0, "rms_ratio": 1.00004,
           "same_length": True, "time_ref_s": 12.3456}
    out = vc_views.stable(row)
    assert out == {"wave_corr": "1.0000", "max_abs": "< 1e-05", "f0_cents_p99": "0", "rms_ratio": "1.0000",
                   "same_length": True, "time_ref_s": "12.35 s"}
    assert vc_views.stable({"max_abs": 0.3})["max_abs"] == "< 1e+00"
    assert vc_views.stable({"max_abs": 2.0})["max_abs"] == "< 1e+01"


def test_trim_pad_drops_one_second_each_side():
    f0 = np.arange(350, dtype=np.float32)
    assert np.array_equal(vc_views.trim_pad(f0), f0[100:250])
    assert vc_views.trim_pad(f0[:150]).size == 150  # too short to hold the padding: unchanged


def test_plots_return_figures():
    from rvclab.views import widgets

    f0 = np.where(np.arange(200) % 50 < 30, 120.0, 0.0)
    fig = widgets.f0_overlay(f0, f0 * 1.001)
    assert len(fig.axes) == 2
    lines = fig.axes[1].get_lines()[0].get_ydata()
    assert np.nanmax(lines) == pytest.approx(1200 * np.log2(1.001), rel=1e-6)
    a = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    assert len(widgets.spectrogram_diff(a, a * 0.9, 16000).axes) == 4  # 3 panels + colour bar
    html = widgets.conversion_table({"torch vs MLX": vc_views.parity_row(_conversion(a), _conversion(a))}).data
    assert "wave_corr" in html and "1.0000" in html


def test_explorer_passes_the_chosen_parameters(small_voice):
    from rvclab.views import widgets

    calls = []

    def fake_runner(audio, voice, **kw):
        calls.append(kw)
        wave = np.sin(np.arange(3200) * 0.03).astype(np.float32)
        return {"torch": _conversion(wave), "mlx": _conversion(wave)}

    box = widgets.conversion_explorer(clips=[clip("librivox_male_0880")], voices=[small_voice],
                                      methods=["pm", "rmvpe"], seconds=0.5, runner=fake_runner)
    assert not calls  # nothing runs on display
    box.controls["f0_up_key"].value = 5
    box.controls["protect"].value = 0.1
    box.controls["f0_method"].value = "rmvpe"
    box.button.click()
    assert "error" not in box.last, box.last.get("error")
    assert calls[-1]["f0_up_key"] == 5 and calls[-1]["protect"] == pytest.approx(0.1)
    assert calls[-1]["f0_method"] == "rmvpe" and calls[-1]["index"] is None
    assert calls[-1]["reference"] == "rvc-webui-2026"  # the defaults above are its
    assert calls[-1]["index_rate"] == pytest.approx(0.75) and calls[-1]["noise_seed"] == 0
    box.controls["rms_mix_rate"].value = 1.0
    box.controls["f0_up_key"].value = -3
    box.run()
    assert calls[-1]["rms_mix_rate"] == 1.0 and calls[-1]["f0_up_key"] == -3
    assert box.last["row"]["wave_corr"] == pytest.approx(1.0)


def test_explorer_run_converts_on_both_backends(small_voice):
    from rvclab.views import widgets

    box = widgets.conversion_explorer(clips=[clip("librivox_male_0880")], voices=[small_voice], methods=["pm"],
                                      seconds=0.5)
    box.controls["f0_up_key"].value = 2
    box.button.click()
    assert "error" not in box.last, box.last.get("error")
    torch_run, mlx_run = box.last["runs"]["torch"], box.last["runs"]["mlx"]
    assert torch_run.sr == 32000 and torch_run.audio.size == mlx_run.audio.size
    # as upstream, the output ends where the last whole HuBERT frame does: up to 2 frames short
    assert 0 <= int(0.5 * 32000) - torch_run.audio.size <= 2 * 640
    assert np.abs(torch_run.audio).max() > 0
    assert vc_views.passes(box.last["row"]), box.last["row"]
    assert "meets" in box.children[4].value


def test_index_from_clips_writes_rvc_name(tmp_path):
    clips = [clip("librivox_male_0870"), clip("librivox_male_0880")]
    index, report, path = vc_views.index_from_clips(clips, "v2", tmp_path, seconds=0.5)
    assert path.parent == tmp_path and path.name.startswith("added_IVF") and path.name.endswith("_clips_v2.index")
    assert index.dim == 768 and report.n_input == index.vectors.shape[0] >= 40
    assert vc_views.other_clips(clips[1]) == [c for c in vc_views.data_clips() if c.name != clips[1].name]


def test_explorer_offers_only_audio_and_a_failed_run_clears_the_plots(small_voice):
    from rvclab.views import widgets

    def failing_runner(audio, voice, **kw):
        raise RuntimeError("no luck")

    box = widgets.conversion_explorer(clips=[clip("librivox_male_0880"), small_voice], voices=[small_voice],
                                      methods=["pm"], seconds=0.5, runner=failing_runner)
    assert list(box.controls["clip"].options) == [clip("librivox_male_0880").name]  # the .pth is no clip
    out = box.children[5]
    out.outputs = ({"output_type": "display_data", "data": {"text/plain": "previous run's plot"}},)
    box.button.click()
    assert isinstance(box.last["error"], RuntimeError)
    assert out.outputs == (), "the previous run's plots stay under the error"
    assert "failed" in box.children[4].value and "no luck" in box.children[4].value
    with pytest.raises(ValueError, match="no audio clips"):
        widgets.conversion_explorer(clips=[small_voice], voices=[small_voice], methods=["pm"])


def test_f0_axes_read_plain_hz_and_legends_sit_beside_the_data():
    from rvclab.views import widgets

    f0 = np.where(np.arange(200) % 50 < 30, np.linspace(70, 300, 200), 0.0)
    for fig in (widgets.f0_overlay(f0, f0 * 1.001), widgets.f0_tracks_plot({"a": f0, "b": f0 * 1.01})):
        ax = fig.axes[0]
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert labels and all(t.isdigit() for t in labels), labels  # "100", not "10^2" or "7x10^1"
        assert {"100", "200"} <= set(labels), labels
        legend = ax.get_legend().get_window_extent()
        assert legend.x0 >= ax.get_window_extent().x1, "legend overlaps the axes"


def test_profile_switcher_compares_two_profiles_and_names_missing_methods():
    """Profile A vs B: the row compares their conversions (cached per method and profile); a
    profile lacking the method says which it offers."""
    from rvclab.views import widgets

    calls = []
    wave = 0.5 * np.sin(np.arange(3200) * 0.03).astype(np.float32)

    def fake_runner(audio, voice, method, profiles, noise_seed=0):
        calls.append((method, tuple(profiles)))
        f0 = {"rvc-webui-2024": np.array([0, 100, 0, 200] * 25, np.float32),
              "rvc-webui-2026": np.array([100, 100, 150, 200] * 25, np.float32),
              "applio": np.array([0, 100, 0, 200] * 25, np.float32)}
        return {p: _conversion(wave * (1.0 + 0.1 * i), f0[p]) for i, p in enumerate(profiles)}

    box = widgets.profile_switcher(np.zeros(16000, np.float32), None, runner=fake_runner)
    assert calls == [("pm", ("rvc-webui-2024", "rvc-webui-2026"))]
    assert box.last["voicing_agreement"] == pytest.approx(0.5)  # 2024 leaves half unvoiced, 2026 fills
    assert box.last["f0_within_50_cents"] == pytest.approx(1.0)
    status, figures, players = box.children[1:]
    assert figures.value.count('<img src="data:image/png;base64,iVBOR') == 2  # F0 and spectrogram
    assert status.value.startswith("A rvc-webui-2024 vs B rvc-webui-2026, pm: ")
    assert len(players.children) == 2 and "rvc-webui-2024" in players.children[0].value
    box.controls["b"].value = "applio"  # applio offers no pm
    assert "applio does not offer pm; it offers: crepe, crepe-tiny, rmvpe, fcpe" in box.last["error"]
    assert figures.value == "" and players.children == ()  # no stale drawing
    assert status.value.startswith("A rvc-webui-2024 vs B applio, pm: applio does not offer pm")
    box.controls["method"].value = "rmvpe"
    assert calls[-1] == ("rmvpe", ("rvc-webui-2024", "applio")) and "error" not in box.last
    assert figures.value.count("<img") == 2 and len(players.children) == 2
    box.controls["b"].value = "rvc-webui-2024"
    assert box.last == {} and len(calls) == 2  # the same profile twice; nothing converted again


def test_table_cells_are_escaped_and_long_tokens_may_break():
    """A regex's named group shows as written (it was taken for an HTML tag and vanished), and a
    long token without spaces may break anywhere so the table fits the notebook."""
    from rvclab.views.tables import LONG_TOKEN, f0_agreement_table, info_table, rows_table

    pattern = r"(?P<prefix>dec\.ups\.\d+)\.(?:weight_g|parametrizations\.weight\.original0)"
    for table in (rows_table([{"pattern": pattern, "n": 3}]), f0_agreement_table([{"pattern": pattern}]),
                  info_table({"pattern": pattern})):
        body = table.data
        assert "(?P&lt;prefix&gt;dec" in body and "<prefix>" not in body
        assert '<span style="word-break:break-all">(?P&lt;' in body
    short = rows_table([{"key": "x" * (LONG_TOKEN - 1), "words": "a b " * 20}]).data
    assert "word-break" not in short  # short tokens and text with spaces wrap as usual
