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
