"""Interactive widgets (ipywidgets): F0 method and clip pickers, the live ``f0_up_key`` slider and
the conversion explorer (torch and MLX on a chosen clip, voice and parameters)."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from rvclab.audio import data_clips, is_audio_name
from rvclab.f0.compare import METHODS, track
from rvclab.pipeline import explore as vc_views
from rvclab.pipeline.networks import VoiceModel
from rvclab.pipeline.steps import coarse_pitch, shift_f0
from rvclab.pitch import available_methods
from rvclab.profiles import get_profile
from rvclab.views.players import ab_player, audio_player, pitch_buzz
from rvclab.views.plots import f0_overlay, f0_tracks_plot, hz_log_axis, legend_outside, spectrogram_diff
from rvclab.views.tables import conversion_table

EXPLORER_LABEL_WIDTH = "130px"  # fits "pitch (semitones)" and "rms_mix_rate" at JupyterLab's font


def f0_method_picker(audio_16k: np.ndarray, methods=None):
    """Dropdowns for F0 method and backend; shows that method's track and its voiced share."""
    method = w.Dropdown(options=list(methods or METHODS[1:]), value="fcpe", description="method")
    backend = w.Dropdown(options=["mlx", "torch"], value="mlx", description="backend")
    out = w.Output()

    def show(_=None):
        out.clear_output(wait=True)
        with out:
            f0 = track(audio_16k, method.value, backend.value)
            label = f"{method.value} ({backend.value}): {float((f0 > 0).mean()):.0%} voiced"
            display(f0_tracks_plot({method.value: f0}, label))

    method.observe(show, names="value")
    backend.observe(show, names="value")
    show()
    return w.VBox([w.HBox([method, backend]), out])


def rmvpe_clip_picker(clips, show, value=None):
    """A Dropdown of clip paths; ``show(path)`` returns what to display for the chosen clip."""
    options = [(Path(p).stem, str(p)) for p in clips]
    pick = w.Dropdown(options=options, value=str(value or clips[0]), description="clip")
    out = w.Output()

    def render(_=None):
        out.clear_output(wait=True)
        with out:
            display(show(pick.value))

    pick.observe(render, names="value")
    render()
    return w.VBox([pick, out])


def pitch_shift_view(f0: np.ndarray, fps: int = 100, value: int = 0):
    """A live ``f0_up_key`` slider (semitones, -12..12) over an F0 track (Hz per frame at
    ``fps``, 0 = unvoiced). Moving it redraws, with no conversion, what the synthesizer receives:
    the shifted F0 in Hz beside the original (top) and RVC's coarse pitch ids 1..255 (bottom),
    a one-line summary, and a player that sounds the shifted contour (:func:`pitch_buzz`).
    The returned box carries ``slider`` and ``out``; the slider has the CSS class ``rvclab-live``.
    """
    f0 = np.ravel(f0).astype(np.float32)
    t = np.arange(f0.size) / fps
    slider = w.IntSlider(value=value, min=-12, max=12, description="f0_up_key", continuous_update=False,
                         style={"description_width": "80px"})
    slider.add_class("rvclab-live")
    summary = w.HTML()
    out = w.Output()

    def render(_=None):
        key = int(slider.value)
        shifted = shift_f0(f0, key)
        coarse = coarse_pitch(shifted.copy())
        voiced = f0 > 0
        ids = coarse[voiced] if voiced.any() else np.array([1])
        before = float(np.median(f0[voiced])) if voiced.any() else 0.0
        summary.value = (f"f0_up_key {key:+d}: median voiced F0 {before:.1f} Hz -> {before * 2 ** (key / 12):.1f} Hz; "
                         f"coarse ids {int(ids.min())}..{int(ids.max())}, {int((ids == 255).sum())} frame(s) at 255")
        fig, (ax, ax_c) = plt.subplots(2, 1, figsize=(10, 3.6), sharex=True, constrained_layout=True,
                                       gridspec_kw={"height_ratios": [2, 1]})
        ax.plot(t, np.where(voiced, f0, np.nan), lw=1.0, color="0.6", label="input F0")
        ax.plot(t, np.where(voiced, shifted, np.nan), lw=1.6, color="tab:purple", label=f"shifted {key:+d}")
        hz_log_axis(ax)
        legend_outside(ax)
        ax_c.step(t, coarse, where="mid", lw=1.0, color="tab:purple")
        ax_c.set_ylim(0, 256)
        ax_c.set_ylabel("coarse id")
        ax_c.set_xlabel("time (s)")
        plt.close(fig)
        out.clear_output(wait=True)
        with out:
            display(fig)
            display(audio_player(pitch_buzz(shifted, fps), 16000, label=f"the shifted F0 as a buzz ({key:+d})"))

    slider.observe(render, names="value")
    render()
    box = w.VBox([slider, summary, out])
    box.slider, box.out = slider, out
    return box


def conversion_explorer(clips=None, voices=None, *, methods=None, seconds: float = 2.0, noise_seed: int = 0,
                        runner=None, **convert_kwargs):
    """Pick a clip, a voice, an F0 method and the parameters; Run converts with torch and MLX
    (same noise, same chunking) and shows A/B players, the F0 overlay, the spectrogram
    difference and the parity table. Nothing runs until Run is pressed.

    ``clips``/``voices`` default to the shipped clips and the seeded voices in weights/; each clip
    is cut to its first ``seconds``. ``runner`` (default ``rvclab.pipeline.explore.convert_both``) and
    ``convert_kwargs`` (e.g. ``pad_config``) are for tests and special setups. The returned box
    carries ``controls`` (the widgets), ``params()`` (what Run passes), ``run()`` and ``last``
    (the latest runs and parity row). CSS classes: ``rvclab-explorer`` (the box), ``rvclab-run``
    (the button), ``rvclab-status`` (the status line).
    """
    runner = runner or vc_views.convert_both
    clips = [Path(c) for c in (clips or data_clips()) if is_audio_name(c)]  # AUDIO_EXTENSIONS only
    if not clips:
        raise ValueError("conversion_explorer: no audio clips among those given (extensions: "
                         "rvclab.audio.AUDIO_EXTENSIONS)")
    voices = [Path(v) for v in (voices or vc_views.voice_paths())]
    p0 = vc_views.Params()
    offered = get_profile(p0.reference).f0_method_names  # the methods its release offers
    methods = list(methods or [m for m in available_methods() if m in offered])
    default_voice = next((v for v in voices if v.name == vc_views.DEFAULT_VOICE), voices[0])
    by_name = {p.name: p for p in clips + voices}  # options show names; paths differ per checkout
    style = {"description_width": EXPLORER_LABEL_WIDTH}  # wide enough for the longest label
    controls = {
        "clip": w.Dropdown(options=[c.name for c in clips], value=clips[0].name, description="clip",
                           style=style),
        "voice": w.Dropdown(options=[v.name for v in voices], value=default_voice.name, description="voice",
                            style=style),
        "f0_method": w.Dropdown(options=methods, value=p0.f0_method if p0.f0_method in methods else methods[0],
                                description="F0 method", style=style),
        "f0_up_key": w.IntSlider(value=p0.f0_up_key, min=-12, max=12, description="pitch (semitones)",
                                 style=style),
        "index_rate": w.FloatSlider(value=p0.index_rate, min=0, max=1, step=0.05, description="index_rate",
                                    style=style),
        "protect": w.FloatSlider(value=p0.protect, min=0, max=0.5, step=0.01, description="protect", style=style),
        "rms_mix_rate": w.FloatSlider(value=p0.rms_mix_rate, min=0, max=1, step=0.05, description="rms_mix_rate",
                                      style=style),
        "use_index": w.Checkbox(value=False, description="index of the other clips (index_rate applies)",
                                style={"description_width": "initial"}, indent=False,
                                layout=w.Layout(width="auto")),
    }
    button = w.Button(description="Run torch + MLX", button_style="primary")
    status = w.HTML("<i>Choose, then Run (both backends, shared noise; a 2 s clip takes a while "
                    "on a CPU).</i>")
    out = w.Output()
    for widget, css in ((button, "rvclab-run"), (status, "rvclab-status")):
        widget.add_class(css)  # stable handles for tests/test_browser.py
    cache: dict = {}
    last: dict = {}

    def params() -> vc_views.Params:
        return vc_views.Params(**{k: controls[k].value for k in ("f0_method", "f0_up_key", "index_rate",
                                                                   "protect", "rms_mix_rate")})

    def voice_model(path):
        if ("voice", path) not in cache:
            cache[("voice", path)] = VoiceModel(path)
        return cache[("voice", path)]

    def index_for(voice, clip):
        key = ("index", voice.version, clip)
        if key not in cache:
            cache[key] = vc_views.index_from_clips(vc_views.other_clips(clip), voice.version,
                                                   seconds=seconds)[0]
        return cache[key]

    def run(_=None):
        button.disabled = True
        status.value = "<i>running torch and MLX ...</i>"
        out.outputs = ()  # a failed run must not leave the previous run's plots under its error
        try:
            clip, voice = by_name[controls["clip"].value], voice_model(by_name[controls["voice"].value])
            index = index_for(voice, clip) if controls["use_index"].value else None
            audio = vc_views.load_clip(clip, seconds)
            runs = runner(audio, voice, noise_seed=noise_seed, index=index, **params().kwargs(), **convert_kwargs)
            row = vc_views.parity_row(runs["torch"], runs["mlx"])
            last.clear()
            last.update(runs=runs, row=row, params=params(), clip=clip)
            verdict = "meets" if vc_views.passes(row) else "MISSES"
            status.value = f"<b>{clip.name}</b> with <b>{controls['voice'].value}</b>: {verdict} the parity goal"
            out.clear_output(wait=True)
            with out:
                t, m = runs["torch"], runs["mlx"]
                display(ab_player(t.audio, m.audio, t.sr))
                display(f0_overlay(vc_views.trim_pad(t.f0), vc_views.trim_pad(m.f0)))
                display(spectrogram_diff(t.audio, m.audio, t.sr))
                display(conversion_table({"torch vs MLX": row}))
        except Exception as exc:  # shown in the widget, not raised into the event loop
            status.value = (f"<b style='color:red'>run failed, nothing shown: {type(exc).__name__}</b>: "
                            f"{html.escape(str(exc))}")
            out.outputs = ()
            last.clear()
            last["error"] = exc
        finally:
            button.disabled = False

    button.on_click(run)
    box = w.VBox([w.HBox([controls["clip"], controls["voice"], controls["f0_method"]]),
                  w.HBox([controls["f0_up_key"], controls["index_rate"]]),
                  w.HBox([controls["protect"], controls["rms_mix_rate"]]),
                  w.HBox([controls["use_index"], button]), status, out])
    box.add_class("rvclab-explorer")
    box.controls, box.button, box.params, box.run, box.last = controls, button, params, run, last
    return box
