"""Static figures (matplotlib): a clip's waveform and log-mel, F0 tracks, torch vs MLX differences
of waveforms, spectrograms and F0, per-layer trace errors and noise correlations.

Every function returns a closed Figure (shown once, by the notebook or saved by the caller).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from rvclab.audio import load_audio_native, log_mel, resample
from rvclab.metrics import cents
from rvclab.tolerances import TRACE_REL_MAX_ABS

_STAGE_COLORS = {"enc_p": "tab:blue", "flow": "tab:green", "dec": "tab:orange"}
HZ_TICK_STEPS = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)  # log-axis ticks per decade: 70, 100, 150, 200, 300, 500 Hz


def hz_log_axis(ax, label: str = "F0 (Hz)") -> None:
    """A log y axis in Hz whose ticks read as plain numbers (``70``, ``100``, ``150``), not ``7x10^1``."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(mticker.LogLocator(base=10, subs=HZ_TICK_STEPS))
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:.0f}"))
    ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    ax.set_ylabel(label)


def legend_outside(ax, **kwargs) -> None:
    """The legend to the right of the axes, where it cannot cover a curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, **kwargs)


def clip_overview(path: str | Path, sr: int | None = None):
    """Waveform and log-mel spectrogram of one clip, as a Figure."""
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


def f0_tracks_plot(tracks: dict, title: str = ""):
    """Every method's F0 (Hz, 10 ms frames; unvoiced frames left blank) on one log-F0 axis."""
    fig, ax = plt.subplots(figsize=(10, 3.5), constrained_layout=True)
    for name, f0 in tracks.items():
        t = np.arange(len(f0)) / 100.0
        ax.plot(t, np.where(f0 > 0, f0, np.nan), label=name, lw=1.2)
    hz_log_axis(ax)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    legend_outside(ax)
    plt.close(fig)
    return fig


def layer_error_plot(table, tol: float | None = None, title: str = ""):
    """Per-layer error of a TraceTable (max_abs / RMS of the torch output, log scale, forward
    order), coloured by stage, the tolerance as a dashed line and the first failure marked."""
    tol = TRACE_REL_MAX_ABS if tol is None else tol
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
    a, b = np.ravel(a), np.ravel(b)
    t = np.arange(a.size) / sr
    fig, (ax, ax_d) = plt.subplots(2, 1, figsize=(11, 4), sharex=True, constrained_layout=True)
    ax.plot(t, a, lw=0.8, label=labels[0])
    ax.plot(t, b, lw=0.8, alpha=0.7, label=labels[1])  # translucent: the first shows through
    ax.set_ylabel("amplitude")
    legend_outside(ax)
    ax_d.plot(t, b - a, lw=0.6, color="tab:red")
    ax_d.set_ylabel(f"{labels[1]} - {labels[0]}")
    ax_d.set_xlabel("time (s)")
    plt.close(fig)
    return fig


def spectrogram_diff(a: np.ndarray, b: np.ndarray, sr: int, labels=("torch", "MLX")):
    """Log-mel spectrograms of both signals and their difference (dB), as one Figure."""
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


def f0_overlay(f0_a: np.ndarray, f0_b: np.ndarray, labels=("torch", "MLX"), fps: int = 100, title: str = ""):
    """Two F0 tracks (Hz per frame at ``fps``, 0 = unvoiced, drawn blank) overlaid on a log axis
    (top) and their difference in cents on frames voiced in both (bottom)."""
    a, b = np.ravel(f0_a).astype(np.float64), np.ravel(f0_b).astype(np.float64)
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    t = np.arange(n) / fps
    fig, (ax, ax_d) = plt.subplots(2, 1, figsize=(10, 4), sharex=True, constrained_layout=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(t, np.where(a > 0, a, np.nan), lw=1.6, label=labels[0])
    ax.plot(t, np.where(b > 0, b, np.nan), lw=1.0, ls="--", label=labels[1])
    hz_log_axis(ax)
    ax.set_title(title or f"F0: {labels[0]} vs {labels[1]}")
    legend_outside(ax)
    both = (a > 0) & (b > 0)
    diff = np.full(n, np.nan)
    diff[both] = cents(b[both], a[both])
    ax_d.plot(t, diff, lw=0.8, color="tab:red")
    ax_d.axhline(0, color="k", lw=0.5)
    ax_d.set_ylabel(f"{labels[1]} - {labels[0]}\n(cents)")
    ax_d.set_xlabel("time (s)")
    plt.close(fig)
    return fig
