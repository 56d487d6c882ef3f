"""Notebook 02 (RMVPE walkthrough): the plots, beside the walkthrough's data functions.

The data (stages, the hand-decoded frame, the bug catalogue) come from
:mod:`rvclab.models.rmvpe.walkthrough` and are re-exported here, so the notebook imports one
module. Every plot returns a closed matplotlib Figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from rvclab.audio import SAMPLE_RATE_16K, load_audio
from rvclab.models.rmvpe.walkthrough import (
    bug_table,
    closest_to_seed,
    decode_frame,
    estimators,
    rounded,
    stages,
)
from rvclab.views.plots import legend_outside

__all__ = [
    "bug_answer", "bug_table", "closest_to_seed", "decode_frame", "estimators", "f0_overlay", "plot_f0",
    "plot_image", "plot_unet", "rounded", "stages",
]


def _fig(n=1, h=2.6, w=9.0):
    fig, axes = plt.subplots(n, 1, figsize=(w, h * n), constrained_layout=True, squeeze=False)
    plt.close(fig)
    return fig, axes[:, 0]


def plot_image(arr: np.ndarray, title: str, ylabel: str = "", cmap: str = "magma"):
    """(rows, frames) array as an image, one column per 10 ms frame."""
    fig, (ax,) = _fig()
    im = ax.imshow(arr, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_title(title)
    ax.set_xlabel("frame (10 ms)")
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax)
    return fig


def plot_unet(st: dict):
    """Channel-mean feature map at every encoder and decoder scale (time x mel)."""
    maps = [(f"encoder {i}: {m.shape}", m) for i, m in enumerate(st["encoder"])]
    maps += [("intermediate " + str(st["intermediate"].shape), st["intermediate"])]
    maps += [(f"decoder {i}: {m.shape}", m) for i, m in enumerate(st["decoder"])]
    fig, axes = _fig(len(maps), h=1.3)
    for ax, (title, m) in zip(axes, maps):
        ax.imshow(m.mean(0).T, origin="lower", aspect="auto", cmap="viridis")
        ax.set_title(title, fontsize=8)
        ax.set_yticks([])
    return fig


def plot_f0(tracks: dict, title: str = ""):
    """F0 tracks {label: (T,) Hz}, unvoiced frames hidden."""
    fig, (ax,) = _fig(h=3.0)
    for i, (label, f0) in enumerate(tracks.items()):
        y = np.where(np.asarray(f0) > 0, f0, np.nan)
        ax.plot(y, lw=1.6 - 0.6 * i, ls="-" if i == 0 else "--", label=label)
    ax.set_xlabel("frame (10 ms)")
    ax.set_ylabel("F0 (Hz)")
    ax.set_title(title)
    legend_outside(ax)
    return fig


def f0_overlay(est_t, est_m, path):
    """F0 of both backends on one clip (a Figure)."""
    audio = load_audio(path, SAMPLE_RATE_16K)
    return plot_f0({"torch": est_t.infer(audio), "MLX": est_m.infer(audio)},
                   f"{Path(path).stem}: RMVPE F0 (seeded weights)")


def _pct(v: float) -> str:
    return f"{v * 100:+.1f}%".replace("+0.0%", "0%").replace("-0.0%", "0%")


def bug_answer(rows: list[dict]) -> Markdown:
    """The answer to "what makes F0 18% low?", every figure read from :func:`bug_table`'s rows
    (apparent_rel_err for mel and decoding bugs, voicing_agreement for the network bugs)."""
    by_kind: dict[str, list[dict]] = {}
    for r in rows[1:]:
        by_kind.setdefault(r["bug"].split(":", 1)[0], []).append(r)
    seed = rows[0]["apparent_rel_err"]
    mel = sorted(by_kind.get("mel", []), key=lambda r: abs(r["apparent_rel_err"] - seed))
    best, others = mel[0], mel[1:]
    decoding = by_kind.get("cents", []) + by_kind.get("decoding", [])
    network = [r for k in ("padding", "GRU", "BatchNorm") for r in by_kind.get(k, [])]
    low = min(network, key=lambda r: r["voicing_agreement"])
    high = max(network, key=lambda r: r["voicing_agreement"])
    text = (
        f"**Answer** (every figure from the table above). The mel filterbank slip closest to the seed's "
        f"{_pct(seed)} is *{best['bug'].split(': ', 1)[1]}*: {_pct(best['apparent_rel_err'])} on this clip. "
        "A filterbank built for the wrong range puts every harmonic lower (or higher) on the mel axis than "
        "the trained network expects, so it reads the pitch off by a nearly constant ratio. "
        "The other mel slips: " + "; ".join(f"{r['bug'].split(': ', 1)[1]} {_pct(r['apparent_rel_err'])}"
                                            for r in others) + ". "
        "The decoding bugs give exact errors that do not depend on the input: "
        + "; ".join(f"{r['bug'].split(': ', 1)[1]} {_pct(r['apparent_rel_err'])}" for r in decoding) + ". "
        f"Padding, GRU and BatchNorm bugs change voicing (agreement with the correct network from "
        f"{low['voicing_agreement']:.0%}, {low['bug']}, to {high['voicing_agreement']:.0%}, {high['bug']}) "
        "and the salience shape rather than scaling F0 by one ratio; their size "
        "on the trained network cannot be measured with seeded weights. Our port uses upstream's filterbank "
        "(HTK, 30-8000 Hz) on both backends."
    )
    return Markdown(text)
