"""Figures of the benchmark rows (matplotlib): per-stage times with ratios, GFLOP/s against the
matmul peak of the same run, and time and peak memory against clip length with linear fits.

Each function takes what :mod:`rvclab.bench.report` returns and gives a matplotlib Figure; the
docs generator saves them as PNG, notebook 07 shows them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rvclab.bench import report as rep

COLORS = {"torch": "#d2691e", "mlx": "#1f77b4"}


def stage_bars(ps: list[rep.Pair], title: str):
    """Median seconds per stage (its longest length), torch vs MLX, log scale; ratio above."""
    chosen = [rep.longest(ps, s) for s in rep.STAGE_ORDER]
    chosen = [p for p in chosen if p is not None]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(chosen))
    for i, backend in enumerate(("torch", "mlx")):
        med = [getattr(p, backend)["median_s"] for p in chosen]
        lo = [m - getattr(p, backend)["min_s"] for m, p in zip(med, chosen, strict=True)]
        hi = [getattr(p, backend)["max_s"] - m for m, p in zip(med, chosen, strict=True)]
        ax.bar(x + (i - 0.5) * 0.38, med, 0.38, yerr=[lo, hi], capsize=3, color=COLORS[backend], label=backend)
    for xi, p in zip(x, chosen, strict=True):
        top = max(p.torch["max_s"], p.mlx["max_s"])
        ax.text(xi, top * 1.15, f"{p.ratio:.2f}x", ha="center", fontsize=9)
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{p.stage}\n{p.seconds:g} s" for p in chosen])
    ax.set_ylabel("median seconds (min-max bars)")
    ax.set_title(title + " — MLX/torch above each pair")
    ax.set_ylim(top=ax.get_ylim()[1] * 2)
    ax.legend(loc="upper left")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


def gflops_bars(ps: list[rep.Pair], title: str):
    """Achieved GFLOP/s per stage and backend (torch's FLOP count), and the fp32 matmul peak."""
    chosen = [p for p in (rep.longest(ps, s) for s in rep.STAGE_ORDER) if p is not None and p.torch.get("flops")]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    x = np.arange(len(chosen))
    for i, backend in enumerate(("torch", "mlx")):
        ax.bar(x + (i - 0.5) * 0.38, [getattr(p, backend)["gflops"] for p in chosen], 0.38,
               color=COLORS[backend], label=backend)
    peaks = {p.torch.get("peak_gflops") for p in chosen} - {None}
    for peak in sorted(peaks):
        ax.axhline(peak, color="grey", ls="--", lw=1)
        ax.text(len(chosen) - 0.5, peak, f"fp32 matmul peak {peak:,.0f}", ha="right", va="bottom", fontsize=8)
    ax.set_xticks(x, [f"{p.stage}\n{p.seconds:g} s" for p in chosen])
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


def scaling(points: dict[str, list[dict]], title: str, what: str = "time"):
    """Time (or peak memory) against clip length per backend, log-log, with the linear fit."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for backend, pts in points.items():
        pts = [p for p in pts if (p["time_s"] if what == "time" else p["peak_bytes"])]
        if not pts:
            continue
        x = np.array([p["seconds"] for p in pts])
        y = np.array([p["time_s"] if what == "time" else p["peak_bytes"] / 2**30 for p in pts])
        single = np.array([p["kind"] == "single run" for p in pts])
        ax.plot(x[~single], y[~single], "o", color=COLORS[backend], label=f"{backend} (median)")
        if single.any():
            ax.plot(x[single], y[single], "s", mfc="none", color=COLORS[backend], label=f"{backend} (single run)")
        fit = rep.linear_fit(x, y)
        if fit:
            xs = np.geomspace(x.min(), x.max(), 50)
            ys = fit["intercept"] + fit["slope"] * xs
            ax.plot(xs[ys > 0], ys[ys > 0], "-", color=COLORS[backend], alpha=0.6,
                    label=f"{backend} fit: {fit['intercept']:.3g} + {fit['slope']:.3g}·s (R² {fit['r2']:.3f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clip length (s)")
    ax.set_ylabel("seconds" if what == "time" else "peak memory (GiB)")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no rows yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig


STEP_GROUPS = {  # Conversion.steps -> the bar segment it is drawn in
    "f0_network": "F0 network", "hubert": "HuBERT", "synth": "synthesizer",
    "copy_in": "copies", "copy_out": "copies", "noise": "noise",
}
GROUP_COLORS = {"F0 network": "#2ca02c", "HuBERT": "#9467bd", "synthesizer": "#1f77b4", "copies": "#ff7f0e",
                "noise": "#d62728", "numpy steps": "#7f7f7f"}


def step_stack(rows: list[dict], title: str):
    """One stacked bar per row with ``steps_s`` (a conversion's steps, :mod:`rvclab.bench.stages`):
    the networks, the copies, the noise and the numpy steps, in seconds; each bar is labelled with
    backend, device, precision and length, and topped by end to end over the networks' sum."""
    rows = [r for r in rows if r.get("steps_s")]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    if not rows:
        ax.text(0.5, 0.5, "no rows with steps yet", ha="center", va="center", transform=ax.transAxes)
        plt.close(fig)
        return fig
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for group, color in GROUP_COLORS.items():
        heights = np.array([sum(v for k, v in r["steps_s"].items() if STEP_GROUPS.get(k, "numpy steps") == group)
                            for r in rows])
        ax.bar(x, heights, 0.6, bottom=bottom, color=color, label=group)
        bottom += heights
    for xi, r, top in zip(x, rows, bottom, strict=True):
        network = sum(v for k, v in r["steps_s"].items() if k in ("f0_network", "hubert", "synth"))
        wall = r.get("wall_s", r.get("median_s", top))
        ax.text(xi, top * 1.02, f"{wall / network:.3f}x", ha="center", va="bottom", fontsize=8)
    labels = [f"{r['backend']} {r.get('device', 'cpu')}\n{r.get('precision', 'fp32')} {r['seconds_audio']:g} s"
              for r in rows]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title(title + " — end to end / networks above each bar")
    ax.set_ylim(top=bottom.max() * 1.15)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    plt.close(fig)  # shown once, as the returned figure
    return fig
