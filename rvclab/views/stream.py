"""Streaming views: the buffers, the latency budget, block times, the quality curve, a widget."""

from __future__ import annotations

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from rvclab.stream import StreamConfig, plan_frames
from rvclab.stream.compare import stream_audio
from rvclab.views.players import ab_player

SEGMENT_COLOURS = {"extra": "#c7d7ea", "crossfade": "#f4c48b", "sola search": "#e88f8f", "block": "#7fbf7f"}


def buffer_diagram(config: StreamConfig, sr: int = 40000):
    """The input buffer's parts (seconds, oldest left) and the span the synthesizer decodes."""
    f = plan_frames(config, sr)
    parts = {"extra": f.extra, "crossfade": f.crossfade, "sola search": f.sola_search, "block": f.block}
    fig, ax = plt.subplots(figsize=(9, 2.2))
    start = 0.0
    for name, n in parts.items():
        ax.barh(1, n / sr, left=start, color=SEGMENT_COLOURS[name], edgecolor="k", label=name)
        start += n / sr
    decoded = f.extra / sr
    ax.barh(0, f.return_length / 100, left=decoded, color="#9a7fd1", edgecolor="k",
            label="decoded (return_length)")
    ax.barh(0, f.block / sr, left=decoded, color="none", edgecolor="k", hatch="//", label="played block")
    ax.set_yticks([0, 1], ["synthesizer", "input"])
    ax.set_xlabel("seconds (oldest left; the newest block enters on the right)")
    ax.legend(ncol=3, fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.35))
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


def latency_bars(blocks=(0.1, 0.25, 0.5, 1.0), crossfade: float = 0.05, sr: int = 40000):
    """Stacked bars: the algorithmic latency budget (ms) per block size."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for i, block in enumerate(blocks):
        lat = plan_frames(StreamConfig(block=block, crossfade=min(crossfade, block)), sr).latency()
        bottom = 0.0
        for j, key in enumerate(("block", "crossfade", "sola_search", "resampler")):
            ax.bar(i, lat[key] * 1000, bottom=bottom, color=list(SEGMENT_COLOURS.values())[::-1][j],
                   edgecolor="k", label=key if i == 0 else None)
            bottom += lat[key] * 1000
    ax.set_xticks(range(len(blocks)), [f"{b} s" for b in blocks])
    ax.set_ylabel("ms")
    ax.set_title("algorithmic latency (device buffers and compute come on top)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


def block_time_hist(rows: list[dict], voice: str, f0_method: str):
    """Per-block compute time histograms per backend and block size (bench rows of part 'timing')."""
    sel = [r for r in rows if r["part"] == "timing" and r["voice"] == voice and r["f0_method"] == f0_method]
    blocks = sorted({r["block_s"] for r in sel})
    fig, axes = plt.subplots(1, max(len(blocks), 1), figsize=(4 * max(len(blocks), 1), 3), squeeze=False)
    for ax, block in zip(axes[0], blocks):
        for r in (r for r in sel if r["block_s"] == block):
            ax.hist(np.array(r["compute_s"]) * 1000, bins=10, alpha=0.6, label=r["backend"])
        ax.axvline(block * 1000, color="k", ls="--", label="deadline")
        ax.set_title(f"block {block} s")
        ax.set_xlabel("compute per block (ms)")
        ax.legend(fontsize=8)
    fig.suptitle(f"{voice}, {f0_method}")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


def quality_curve(rows: list[dict]):
    """Streamed vs offline log-mel correlation per block size and extra (bench rows of part 'quality')."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    sel = [r for r in rows if r["part"] == "quality" and r["fill_unvoiced"]]
    for extra in sorted({r["extra_s"] for r in sel}):
        pts = sorted((r["block_s"], r["spec_corr"], r["noise_floor_spec_corr"]) for r in sel if r["extra_s"] == extra)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"stream, extra {extra} s")
        ax.plot([p[0] for p in pts], [p[2] for p in pts], "k:", alpha=0.5)
        last = max(pts)
        prof = next(r for r in sel if r["extra_s"] == extra and r["block_s"] == last[0])["logmel_diff_by_position"]
        ax2.plot((np.arange(len(prof)) + 0.5) / len(prof), prof, "o-", label=f"block {last[0]} s, extra {extra} s")
    ax.set_xlabel("block (s)")
    ax.set_ylabel("log-mel corr with offline")
    ax.set_title("the price of low latency (dotted: noise floor)")
    ax.legend(fontsize=8)
    ax2.set_xlabel("position in the output block (0 = start)")
    ax2.set_ylabel("mean |log-mel difference|")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


def stream_explorer(voice, audio16: np.ndarray, offline: np.ndarray, backend: str = "mlx"):
    """Sliders for block, crossfade and extra; 'run' streams ``audio16`` (16 kHz) again and shows
    offline (``offline`` at the voice's rate) against the stream."""
    block = w.FloatSlider(value=0.25, min=0.05, max=1.0, step=0.05, description="block s")
    crossfade = w.FloatSlider(value=0.05, min=0.01, max=0.15, step=0.01, description="crossfade s")
    extra = w.FloatSlider(value=1.0, min=0.2, max=2.5, step=0.1, description="extra s")
    button, out, status = w.Button(description="run"), w.Output(), w.HTML("")
    button.add_class("rvclab-run")  # stable handles for tests/test_browser.py
    status.add_class("rvclab-status")

    def run(_):
        out.clear_output()
        button.disabled = True
        status.value = "streaming..."
        try:
            config = StreamConfig(block=block.value, crossfade=min(crossfade.value, block.value),
                                  extra=extra.value, f0_method="fcpe")
            conv, res = stream_audio(voice, audio16, backend, config)
        except ValueError as exc:
            status.value = f"not run: {exc}"
            return
        finally:
            button.disabled = False
        status.value = (f"block {config.block:.2f} s, crossfade {config.crossfade:.2f} s, extra {config.extra:.1f} s: "
                        f"latency {conv.latency['total'] * 1000:.0f} ms, {len(res.blocks)} blocks")
        with out:
            display(ab_player(offline, res.audio, conv.sr, labels=("offline", "streaming")))

    button.on_click(run)
    box = w.VBox([w.HBox([block, crossfade, extra, button]), status, out])
    box.add_class("rvclab-stream-explorer")
    return box
