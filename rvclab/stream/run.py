"""Driving a StreamConverter: from a file (paced like a sound card, or as fast as possible) or live.

File-driven streaming records, per block, the compute time and whether it met its deadline: in
``paced`` mode block i becomes available at ``t0 + (i + 1) * block`` (as a sound card delivers
it) and must be finished one block later; in fast mode (no waiting) a block misses when its
compute time exceeds the block's duration. A miss is counted, never raised.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from rvclab.stream.config import StreamError
from rvclab.stream.converter import StreamConverter

INTERRUPT_ENV = "RVCLAB_STREAM_INTERRUPT_AFTER"  # tests: a real SIGINT after this many blocks


@dataclass
class StreamResult:
    """What a file-driven stream produced: ``audio`` (N,) float32 at ``sr``, aligned with the
    input when ``aligned`` (the constant output delay removed, tail flushed), per-block rows."""

    audio: np.ndarray
    sr: int
    blocks: list = field(default_factory=list)
    interrupted: bool = False
    aligned: bool = True
    delay_samples: int = 0

    def summary(self, block_seconds: float) -> dict:
        return block_time_summary(self.blocks, block_seconds)


def block_time_summary(blocks: list[dict], block_seconds: float) -> dict:
    """p50 / p99 / max compute seconds, their ratio to the block, and the deadline misses."""
    times = np.array([b["compute_s"] for b in blocks], np.float64)
    if times.size == 0:
        return {"blocks": 0, "deadline_misses": 0}
    p50, p99, worst = (float(v) for v in np.percentile(times, [50, 99, 100]))
    return {"blocks": int(times.size), "compute_p50_s": p50, "compute_p99_s": p99, "compute_max_s": worst,
            "p99_over_block": p99 / block_seconds,
            "deadline_misses": int(sum(bool(b.get("missed")) for b in blocks))}


def output_delay(converter: StreamConverter) -> int:
    """Samples by which the stream's output trails its input when the SOLA offset is 0:
    crossfade + SOLA search (the block's own wait is not in the signal, only in the clock)."""
    f = converter.frames
    return f.crossfade + f.sola_search


def _interrupt_hook():
    after = os.environ.get(INTERRUPT_ENV)
    if not after:
        return None
    limit = int(after)

    def hook(i: int) -> None:
        if i + 1 == limit:
            signal.raise_signal(signal.SIGINT)

    return hook


def stream_file(converter: StreamConverter, audio: np.ndarray, *, paced: bool = False, align: bool = True,
                progress: bool = False, on_block=None) -> StreamResult:
    """Feed ``audio`` (N,) at the converter's rate through it block by block.

    The last block is zero-padded; with ``align`` the output drops its constant delay
    (:func:`output_delay`) and enough zero blocks are fed after the input to return its end, so
    the output has the input's length. Ctrl+C stops the loop: the result holds the output so far
    with ``interrupted`` set (the caller writes it).
    """
    f = converter.frames
    x = np.asarray(audio, np.float32)
    delay = output_delay(converter) if align else 0
    n_blocks = -(-(x.size + delay) // f.block)
    padded = np.zeros(n_blocks * f.block, np.float32)
    padded[:x.size] = x
    hook = on_block or _interrupt_hook()
    pieces, rows = [], []
    interrupted = False
    bar = tqdm(total=n_blocks, desc=f"streaming ({converter.backend})", unit="block", disable=not progress)
    t0 = time.perf_counter()
    try:
        for i in range(n_blocks):
            available = t0 + (i + 1) * converter.config.block if paced else time.perf_counter()
            if paced:
                time.sleep(max(0.0, available - time.perf_counter()))
            start = time.perf_counter()
            pieces.append(converter.process(padded[i * f.block:(i + 1) * f.block]))
            done = time.perf_counter()
            row = dict(converter.stats[-1])
            row["waited_s"] = max(0.0, start - available)  # a late previous block delays this one
            row["missed"] = bool(done - available > converter.config.block)
            rows.append(row)
            bar.update(1)
            if hook is not None:
                hook(i)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    out = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if align:
        out = out[delay:delay + x.size]
    return StreamResult(audio=out, sr=converter.sr, blocks=rows, interrupted=interrupted, aligned=align,
                        delay_samples=delay)


def run_live(converter: StreamConverter, *, device=None, seconds: float | None = None) -> list[dict]:
    """Microphone -> converter -> speakers through sounddevice (PortAudio) until Ctrl+C or ``seconds``.

    Returns the per-block rows (a PortAudio over/underflow marks the block ``missed``).
    StreamError when sounddevice, PortAudio or an audio device is missing.
    """
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: the package is there but PortAudio is not
        raise StreamError(f"--live needs the optional sounddevice package and PortAudio "
                          f"(pip install sounddevice): {exc}") from exc
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudio without a sound system
        raise StreamError(f"--live: no audio devices ({exc})") from exc
    if not any(d["max_input_channels"] > 0 for d in devices) or not any(d["max_output_channels"] > 0 for d in devices):
        raise StreamError("--live: no audio input and output device found")
    rows: list[dict] = []

    def callback(indata, outdata, frames, when, status):
        outdata[:, 0] = converter.process(indata[:, 0])
        row = dict(converter.stats[-1])
        row["missed"] = bool(status.input_overflow or status.output_underflow)
        rows.append(row)

    with sd.Stream(samplerate=converter.sr, blocksize=converter.frames.block, channels=1, dtype="float32",
                   device=device, callback=callback):
        start = time.perf_counter()
        try:
            while seconds is None or time.perf_counter() - start < seconds:
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
    return rows
