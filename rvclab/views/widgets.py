"""Notebook UI: audio players, plots and interactive widgets. The only module that imports
ipywidgets; the core library never does. Every function returns a displayable object (a widget,
an IPython display object or a matplotlib Figure) so notebooks stay one line per view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# --- foundation: runtime table, clips ---------------------------------------------------------


def info_table(info: dict):
    """A two-column HTML table of ``rvclab.info.collect()``."""
    from IPython.display import HTML

    rows = "".join(f"<tr><td><code>{k}</code></td><td>{v}</td></tr>" for k, v in info.items())
    return HTML(f"<table>{rows}</table>")


def audio_player(audio: np.ndarray, sr: int, label: str = ""):
    """An HTML5 audio player for a mono float signal (with an optional caption)."""
    from IPython.display import HTML, Audio

    player = Audio(np.asarray(audio, dtype=np.float32), rate=sr, normalize=False)
    caption = f"<div><b>{label}</b></div>" if label else ""
    return HTML(caption + player._repr_html_())


def clip_overview(path: str | Path, sr: int | None = None):
    """Waveform and log-mel spectrogram of one clip, as a Figure."""
    import matplotlib.pyplot as plt

    from rvclab.audio import load_audio_native, log_mel, resample

    audio, native = load_audio_native(path)
    if sr is not None and sr != native:
        audio, native = resample(audio, native, sr), sr
    fig, (ax_w, ax_m) = plt.subplots(2, 1, figsize=(9, 4), sharex=True, constrained_layout=True)
    t = np.arange(audio.size) / native
    ax_w.plot(t, audio, lw=0.5, color="tab:blue")
    ax_w.set_ylabel("amplitude")
    ax_w.set_title(f"{Path(path).name} ({native} Hz, {audio.size / native:.2f} s)")
    mel = log_mel(audio, native)
    ax_m.imshow(mel, origin="lower", aspect="auto", extent=(0, audio.size / native, 0, mel.shape[0]),
                cmap="magma")
    ax_m.set_ylabel("mel bin")
    ax_m.set_xlabel("time (s)")
    plt.close(fig)
    return fig


def ab_player(a: np.ndarray, b: np.ndarray, sr: int, labels=("torch", "MLX")):
    """Two players side by side (A/B listening)."""
    import ipywidgets as w
    from IPython.display import Audio

    boxes = []
    for audio, label in zip((a, b), labels):
        out = w.Output()
        with out:
            from IPython.display import display

            display(Audio(np.asarray(audio, np.float32), rate=sr, normalize=False))
        boxes.append(w.VBox([w.HTML(f"<b>{label}</b>"), out]))
    return w.HBox(boxes)


# --- F0 methods ------------------------------------------------------------------------------


def f0_tracks_plot(tracks: dict, title: str = ""):
    """Every method's F0 (Hz, 10 ms frames; unvoiced frames left blank) on one log-F0 axis."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.5))
    for name, f0 in tracks.items():
        t = np.arange(len(f0)) / 100.0
        ax.plot(t, np.where(f0 > 0, f0, np.nan), label=name, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("F0 (Hz)")
    ax.set_title(title)
    ax.legend(ncol=4, fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def f0_agreement_table(rows: list[dict]):
    """An HTML table of a list of dicts (one row each)."""
    from IPython.display import HTML

    if not rows:
        return HTML("<i>(empty)</i>")
    head = "".join(f"<th>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in r.values()) + "</tr>" for r in rows)
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


def f0_method_picker(audio_16k: np.ndarray, methods=None):
    """Dropdowns for F0 method and backend; shows that method's track and its voiced share."""
    import ipywidgets as w

    from rvclab.f0.compare import METHODS, track

    method = w.Dropdown(options=list(methods or METHODS[1:]), value="fcpe", description="method")
    backend = w.Dropdown(options=["mlx", "torch"], value="mlx", description="backend")
    out = w.Output()

    def show(_=None):
        out.clear_output(wait=True)
        with out:
            from IPython.display import display

            f0 = track(audio_16k, method.value, backend.value)
            label = f"{method.value} ({backend.value}): {float((f0 > 0).mean()):.0%} voiced"
            display(f0_tracks_plot({method.value: f0}, label))

    method.observe(show, names="value")
    backend.observe(show, names="value")
    show()
    return w.VBox([w.HBox([method, backend]), out])


# --- Synthesizer -----------------------------------------------------------------------------

_STAGE_COLORS = {"enc_p": "tab:blue", "flow": "tab:green", "dec": "tab:orange"}


def _fmt(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "NO"
    if isinstance(v, float | np.floating):
        return f"{v:.3g}" if v != 0 else "0"
    return str(v)


def rows_table(rows: list[dict], max_rows: int | None = None, caption: str = ""):
    """An HTML table of a list of dicts (one row each); ``max_rows`` keeps the first rows and
    says how many were left out."""
    from IPython.display import HTML

    if not rows:
        return HTML("<i>(empty)</i>")
    shown = rows if max_rows is None else rows[:max_rows]
    head = "".join(f"<th>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>"
                   for r in shown)
    more = (f"<div><i>... {len(rows) - len(shown)} more rows</i></div>"
            if len(shown) < len(rows) else "")
    cap = f"<caption>{caption}</caption>" if caption else ""
    return HTML(f"<table>{cap}<tr>{head}</tr>{body}</table>{more}")


def parity_table(table, columns=("path", "module", "shape", "max_abs", "rel", "corr", "ok")):
    """A TraceTable as HTML: one row per traced layer in forward order, layers past tolerance
    in red and the first failure in bold, with a one-line summary on top."""
    from IPython.display import HTML

    first = table.first_failure()
    n_bad = sum(not r["ok"] for r in table)
    summary = (f"<div>{len(table)} layer outputs; {n_bad} past tolerance; first failure: "
               f"<code>{first['path'] if first else 'none'}</code></div>")
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for r in table:
        style = "" if r["ok"] else ' style="background:#fdd"'
        style = ' style="background:#fbb;font-weight:bold"' if r is first else style
        cells = "".join(f"<td>{_fmt(r[c])}</td>" for c in columns)
        body.append(f"<tr{style}>{cells}</tr>")
    return HTML(summary + f"<table><tr>{head}</tr>{''.join(body)}</table>")


def layer_error_plot(table, tol: float | None = None, title: str = ""):
    """Per-layer error of a TraceTable (max_abs / RMS of the torch output, log scale, forward
    order), coloured by stage, the tolerance as a dashed line and the first failure marked."""
    import matplotlib.pyplot as plt

    from rvclab.tolerances import TRACE_REL_MAX_ABS

    tol = TRACE_REL_MAX_ABS if tol is None else tol
    import re

    rel = np.array([r["rel"] for r in table], dtype=np.float64)
    positive = rel[(rel > 0) & np.isfinite(rel)]
    floor = positive.min() / 10 if positive.size else tol / 1e6  # exact layers drawn here
    fig, ax = plt.subplots(figsize=(11, 3.5), constrained_layout=True)
    x = np.arange(len(table))
    stages = [re.split(r"[.\[#]", r["path"], maxsplit=1)[0] for r in table]
    stages = [s if s in _STAGE_COLORS else "other" for s in stages]
    for stage in dict.fromkeys(stages):
        sel = np.array([s == stage for s in stages]) & (rel > 0)
        if not sel.any():
            continue
        ax.scatter(x[sel], rel[sel], s=10, label=stage,
                   color=_STAGE_COLORS.get(stage, "tab:gray"))
    if (rel == 0).any():
        ax.scatter(x[rel == 0], np.full(int((rel == 0).sum()), floor), s=14, marker="x",
                   color="k", label="exact (0)")
    ax.axhline(tol, color="k", ls="--", lw=1, label=f"tolerance {tol:g} x RMS")
    first = table.first_failure()
    if first is not None:
        i = next(k for k, r in enumerate(table) if r is first)
        ax.axvline(i, color="red", lw=1)
        y = rel[i] if np.isfinite(rel[i]) and rel[i] > 0 else tol  # inf: shape mismatch
        ax.annotate(f"first failure: {first['path']}", (i, y), color="red",
                    xytext=(5, 5), textcoords="offset points", fontsize=8)
    else:
        ax.text(0.01, 0.95, "no layer past tolerance", transform=ax.transAxes, va="top",
                fontsize=8, color="green")
    ax.set_yscale("log")
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel("max |MLX - torch| / RMS")
    ax.set_title(title or "per-layer error")
    ax.legend(fontsize=8, ncol=4, loc="lower right")
    plt.close(fig)
    return fig


def waveform_compare(a: np.ndarray, b: np.ndarray, sr: int, labels=("torch", "MLX")):
    """Two waveforms overlaid (top) and their difference b - a (bottom), time in seconds."""
    import matplotlib.pyplot as plt

    a, b = np.ravel(a), np.ravel(b)
    t = np.arange(a.size) / sr
    fig, (ax, ax_d) = plt.subplots(2, 1, figsize=(11, 4), sharex=True, constrained_layout=True)
    ax.plot(t, a, lw=0.8, label=labels[0])
    ax.plot(t, b, lw=0.8, ls="--", label=labels[1])
    ax.set_ylabel("amplitude")
    ax.legend(fontsize=8, loc="upper right")
    ax_d.plot(t, b - a, lw=0.6, color="tab:red")
    ax_d.set_ylabel(f"{labels[1]} - {labels[0]}")
    ax_d.set_xlabel("time (s)")
    plt.close(fig)
    return fig


def spectrogram_diff(a: np.ndarray, b: np.ndarray, sr: int, labels=("torch", "MLX")):
    """Log-mel spectrograms of both signals and their difference (dB), as one Figure."""
    import matplotlib.pyplot as plt

    from rvclab.audio import log_mel

    a, b = np.ravel(a), np.ravel(b)
    ma, mb = log_mel(a, sr), log_mel(b, sr)
    extent = (0, a.size / sr, 0, ma.shape[0])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3), constrained_layout=True)
    for ax, mel, label in zip(axes[:2], (ma, mb), labels):
        ax.imshow(mel, origin="lower", aspect="auto", extent=extent, cmap="magma")
        ax.set_title(label)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("mel bin")
    diff = mb - ma
    lim = float(np.abs(diff).max()) or 1.0
    im = axes[2].imshow(diff, origin="lower", aspect="auto", extent=extent, cmap="coolwarm",
                        vmin=-lim, vmax=lim)
    axes[2].set_title(f"{labels[1]} - {labels[0]} (log-mel)")
    axes[2].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[2])
    plt.close(fig)
    return fig


def noise_corr_plot(rows: list[dict], seed_band=(0.36, 0.40)):
    """Correlation torch vs MLX per stage with shared and independent noise (bars), the seed
    project's waveform figure as a shaded band and the predicted z_p correlation as a marker."""
    import matplotlib.pyplot as plt

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 3.2), constrained_layout=True)
    ax.bar(x - 0.2, [r["shared"] for r in rows], 0.4, label="shared noise")
    ax.bar(x + 0.2, [r["independent"] for r in rows], 0.4, label="independent noise")
    for i, r in enumerate(rows):
        if "predicted" in r:
            ax.plot(i + 0.2, r["predicted"], "k_", ms=20, mew=2,
                    label="expected z_p corr (closed form)")
    ax.axhspan(*seed_band, color="tab:red", alpha=0.15, label="seed's waveform corr")
    ax.set_xticks(x, [r["stage"] for r in rows])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("corr(torch, MLX)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plt.close(fig)
    return fig


# --- RMVPE -----------------------------------------------------------------------------------


def rmvpe_clip_picker(clips, show, value=None):
    """A Dropdown of clip paths; ``show(path)`` returns what to display for the chosen clip."""
    import ipywidgets as w
    from IPython.display import display

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


# --- Conversion explorer ---------------------------------------------------------------------


def f0_overlay(f0_a: np.ndarray, f0_b: np.ndarray, labels=("torch", "MLX"), fps: int = 100, title: str = ""):
    """Two F0 tracks (Hz per frame at ``fps``, 0 = unvoiced, drawn blank) overlaid on a log axis
    (top) and their difference in cents on frames voiced in both (bottom)."""
    import matplotlib.pyplot as plt

    from rvclab.metrics import cents

    a, b = np.ravel(f0_a).astype(np.float64), np.ravel(f0_b).astype(np.float64)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    t = np.arange(n) / fps
    fig, (ax, ax_d) = plt.subplots(2, 1, figsize=(10, 4), sharex=True, constrained_layout=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, np.where(a > 0, a, np.nan), lw=1.6, label=labels[0])
    ax.plot(t, np.where(b > 0, b, np.nan), lw=1.0, ls="--", label=labels[1])
    ax.set_yscale("log")
    ax.set_ylabel("F0 (Hz)")
    ax.set_title(title or f"F0: {labels[0]} vs {labels[1]}")
    ax.legend(fontsize=8, loc="upper right")
    both = (a > 0) & (b > 0)
    diff = np.full(n, np.nan)
    diff[both] = cents(b[both], a[both])
    ax_d.plot(t, diff, lw=0.8, color="tab:red")
    ax_d.axhline(0, color="k", lw=0.5)
    ax_d.set_ylabel(f"{labels[1]} - {labels[0]}\n(cents)")
    ax_d.set_xlabel("time (s)")
    plt.close(fig)
    return fig


def pitch_buzz(f0: np.ndarray, fps: int = 100, sr: int = 16000, harmonics: int = 12) -> np.ndarray:
    """An F0 track (Hz per frame at ``fps``, 0 = unvoiced) rendered as a buzz (T * sr / fps,)
    float32 @ ``sr``: harmonics 1/k below Nyquist, silent where unvoiced. For hearing a contour."""
    f0 = np.ravel(f0).astype(np.float64)
    n = f0.size * sr // fps
    hz = np.interp(np.arange(n) / sr, np.arange(f0.size) / fps, f0)
    voiced = np.interp(np.arange(n) / sr, np.arange(f0.size) / fps, (f0 > 0).astype(np.float64))
    phase = 2 * np.pi * np.cumsum(np.where(voiced > 0.5, hz, 0.0)) / sr
    k = np.arange(1, harmonics + 1)[:, None]
    below = (k * hz[None] < sr / 2).astype(np.float64)
    wave = (np.sin(k * phase[None]) * below / k).sum(0) * voiced
    peak = np.abs(wave).max()
    return (0.3 * wave / peak if peak > 0 else wave).astype(np.float32)


def pitch_shift_view(f0: np.ndarray, fps: int = 100, value: int = 0):
    """A live ``f0_up_key`` slider (semitones, -12..12) over an F0 track (Hz per frame at
    ``fps``, 0 = unvoiced). Moving it redraws, with no conversion, what the synthesizer receives:
    the shifted F0 in Hz beside the original (top) and RVC's coarse pitch ids 1..255 (bottom),
    a one-line summary, and a player that sounds the shifted contour (:func:`pitch_buzz`).
    The returned box carries ``slider`` and ``out``; the slider has the CSS class ``rvclab-live``.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from rvclab.pipeline.steps import coarse_pitch, shift_f0

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
        ax.set_yscale("log")
        ax.set_ylabel("F0 (Hz)")
        ax.legend(fontsize=8, loc="upper right")
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


def conversion_table(rows: dict):
    """{label: parity row} (``rvclab.pipeline.explore.parity_row``) as an HTML table, with numbers
    rounded and thresholded so the table reads the same on every machine (timings aside)."""
    from rvclab.pipeline import explore as vc_views

    return rows_table([{"case": label, **vc_views.stable(row)} for label, row in rows.items()])


def conversion_explorer(clips=None, voices=None, *, methods=None, seconds: float = 2.0, noise_seed: int = 0,
                        runner=None, **convert_kwargs):
    """Pick a clip, a voice, an F0 method and the parameters; Run converts with torch and MLX
    (same noise, same chunking) and shows A/B players, the F0 overlay, the spectrogram
    difference and the parity table. Nothing runs until Run is pressed.

    ``clips``/``voices`` default to the shipped clips and the seeded voices in weights/; each clip
    is cut to its first ``seconds``. ``runner`` (default ``rvclab.pipeline.explore.convert_both``) and
    ``convert_kwargs`` (e.g. ``pad_config``) are for tests and special setups. The returned box
    carries ``controls`` (the widgets), ``params()`` (what Run passes), ``run()`` and ``last``
    (the latest runs and parity row).
    """
    import ipywidgets as w
    from IPython.display import display

    from rvclab.audio import data_clips
    from rvclab.pipeline import explore as vc_views
    from rvclab.pitch import available_methods

    runner = runner or vc_views.convert_both
    clips = [Path(c) for c in (clips or data_clips())]
    voices = [Path(v) for v in (voices or vc_views.voice_paths())]
    methods = list(methods or available_methods())
    default_voice = next((v for v in voices if v.name == vc_views.DEFAULT_VOICE), voices[0])
    by_name = {p.name: p for p in clips + voices}  # options show names; paths differ per checkout
    p0 = vc_views.Params()
    style = {"description_width": "110px"}
    controls = {
        "clip": w.Dropdown(options=list(by_name), value=clips[0].name, description="clip", style=style),
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
                                style=style),
    }
    button = w.Button(description="Run torch + MLX", button_style="primary")
    status = w.HTML("<i>Choose, then Run (both backends, shared noise; a 2 s clip takes a while "
                    "on a CPU).</i>")
    out = w.Output()
    cache: dict = {}
    last: dict = {}

    def params() -> vc_views.Params:
        return vc_views.Params(**{k: controls[k].value for k in ("f0_method", "f0_up_key", "index_rate",
                                                                   "protect", "rms_mix_rate")})

    def voice_model(path):
        from rvclab.pipeline.conversion import VoiceModel

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
            status.value = f"<b style='color:red'>{type(exc).__name__}</b>: {exc}"
            last.clear()
            last["error"] = exc
        finally:
            button.disabled = False

    button.on_click(run)
    box = w.VBox([w.HBox([controls["clip"], controls["voice"], controls["f0_method"]]),
                  w.HBox([controls["f0_up_key"], controls["index_rate"]]),
                  w.HBox([controls["protect"], controls["rms_mix_rate"]]),
                  w.HBox([controls["use_index"], button]), status, out])
    box.controls, box.button, box.params, box.run, box.last = controls, button, params, run, last
    return box
