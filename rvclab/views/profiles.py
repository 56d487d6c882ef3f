"""Reference profile switcher: one clip converted under two profiles (A, B), their F0 curves, the
spectrogram difference and A/B players, redrawn when a profile or the F0 method changes."""

from __future__ import annotations

import base64
import html
import io

import ipywidgets as w
import numpy as np

from rvclab.pipeline.profile_effect import METHODS, compare_profiles, convert_under
from rvclab.profiles import DEFAULT_PROFILE, PROFILES
from rvclab.views.players import audio_player
from rvclab.views.plots import f0_overlay, spectrogram_diff


def profile_switcher(audio16: np.ndarray, voice, *, a: str = "rvc-webui-2024", b: str = DEFAULT_PROFILE,
                     method: str = "pm", noise_seed: int = 0, runner=convert_under):
    """A VBox: profile A, profile B and F0 method dropdowns over (N,) float32 @ 16 kHz ``audio16``
    converted with ``voice`` (torch backend, one noise seed). Shows the F0 of each (after its
    filling), the log-mel difference B - A, A/B players and the comparison row (``box.last``).
    A profile that lacks the method says which it offers. ``runner(audio, voice, method, profiles,
    noise_seed=...)`` -> {name: Conversion} (default :func:`convert_under`); results are cached."""
    names = list(PROFILES)
    controls = {"a": w.Dropdown(options=names, value=a, description="profile A"),
                "b": w.Dropdown(options=names, value=b, description="profile B"),
                "method": w.Dropdown(options=list(METHODS), value=method, description="F0 method")}
    # figures and players as HTML widget values (PNG data URIs, audio tags), drawn without an Output
    # capture and stored with the notebook as text; no drawing shows while a profile lacks the method
    status, figures, players = w.HTML(), w.HTML(), w.HBox()
    cache: dict = {}
    box = w.VBox([w.HBox(list(controls.values())), status, figures, players])
    box.controls, box.last = controls, {}

    def run(_change=None):
        pa, pb, m = controls["a"].value, controls["b"].value, controls["method"].value
        figures.value, players.children = "", ()
        missing = [p for p in (pa, pb) if m not in PROFILES[p].f0_method_names]
        if missing:
            offered = PROFILES[missing[0]].f0_method_names
            status.value = html.escape(f"A {pa} vs B {pb}, {m}: {missing[0]} does not offer {m}; "
                                       f"it offers: {', '.join(offered)}")
            box.last = {"error": status.value}
            return
        todo = [p for p in dict.fromkeys((pa, pb)) if (m, p) not in cache]
        if todo:
            cache.update({(m, p): r for p, r in runner(audio16, voice, m, todo, noise_seed=noise_seed).items()})
        ra, rb = cache[(m, pa)], cache[(m, pb)]
        row = compare_profiles({pa: ra, pb: rb})[0] if pa != pb else {}
        box.last = row
        figures_text = " | ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
        status.value = html.escape(f"A {pa} vs B {pb}, {m}: {figures_text or 'the same profile on both sides'}")
        figures.value = "".join(_img(fig) for fig in (
            f0_overlay(ra.f0, rb.f0, labels=(pa, pb), title=f"F0 ({m}) as each profile feeds the synthesizer"),
            spectrogram_diff(ra.audio, rb.audio, ra.sr, labels=(pa, pb))))
        players.children = tuple(w.HTML(audio_player(r.audio, r.sr, label=p).data) for p, r in ((pa, ra), (pb, rb)))

    for c in controls.values():
        c.observe(run, names="value")
    box.run = run
    run()
    return box


def _img(fig) -> str:
    """A (closed) matplotlib figure as an HTML <img> with a PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return f'<div><img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"></div>'
