"""Peak RSS and wall time of RMVPE salience alone on a long input, one backend per process.

    .venv/bin/python scripts/rmvpe_memory.py [--seconds 600] [--backends torch,mlx]
        [--segment-frames N] [--reference rvc-webui-2026] [--json out.json]

Each backend runs in a process of its own: it loads the RMVPE weights (weights/rmvpe.pt, seeded if
missing), makes one warm-up call on 1 s, resets the kernel's RSS high-water mark and computes the
salience of ``--seconds`` of a shipped speech clip tiled to that length, framed as the reference
profile frames it (its pad mode and chunking). The row gives VmHWM after that call (models,
libraries and buffers included) and the call's wall time. ``--segment-frames`` replaces the
config's U-Net segment core (``RmvpeConfig.segment_frames``) for the run. ``--paired N`` times
instead of measuring memory: N rounds, each one call with the U-Net in segments and one with the
whole U-Net in one call (alternating, so changes in machine load hit both alike), medians. Prints
JSON rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rvclab.audio import SAMPLE_RATE_16K, clip, load_audio
from rvclab.bench.memory import peak_rss_of
from rvclab.models.rmvpe import f0 as f0_rmvpe
from rvclab.profiles import DEFAULT_PROFILE, get_profile

CLIP = "librivox_male_0870"
TAG = "RMVPE_MEMORY_ROW "


def tiled(seconds: float) -> np.ndarray:
    """(N,) float32 @ 16 kHz: the shipped clip repeated to ``seconds``."""
    audio = load_audio(clip(CLIP), SAMPLE_RATE_16K).astype(np.float32)
    n = int(seconds * SAMPLE_RATE_16K)
    return np.tile(audio, -(-n // audio.size))[:n]


def measure(backend: str, seconds: float, segment_frames: int | None, reference: str) -> dict:
    """This process: one salience call on ``backend``, its peak RSS and wall time."""
    profile = get_profile(reference)
    est = f0_rmvpe.get_estimator(backend)
    if segment_frames is not None:
        est.cfg = est.model.cfg = dataclasses.replace(est.model.cfg, segment_frames=segment_frames)
    framing = dict(chunk_frames=profile.rmvpe_chunk_frames, pad_mode=profile.rmvpe_pad_mode)
    est.salience(tiled(1.0), **framing)
    audio = tiled(seconds)
    out = {}
    mem = peak_rss_of(lambda: out.setdefault("salience", est.salience(audio, **framing)))
    return {"backend": backend, "seconds_audio": seconds, "frames": int(out["salience"].shape[0]),
            "reference": reference, **framing,
            "segment_frames": getattr(est.model.cfg, "segment_frames", None),
            "peak_rss_gib": mem["peak_rss_bytes"] / 2**30, "rss_before_gib": mem["rss_before_bytes"] / 2**30,
            "wall_s": mem["wall_s"], "method": mem["method"], "loadavg_1m": os.getloadavg()[0]}


def paired(backend: str, seconds: float, segment_frames: int | None, reference: str, rounds: int) -> dict:
    """This process: ``rounds`` x (segmented call, whole call), alternating; median wall times."""
    profile = get_profile(reference)
    est = f0_rmvpe.get_estimator(backend)
    cfgs = {"segmented": est.model.cfg if segment_frames is None else
            dataclasses.replace(est.model.cfg, segment_frames=segment_frames),
            "whole": dataclasses.replace(est.model.cfg, segment_frames=1 << 40)}
    framing = dict(chunk_frames=profile.rmvpe_chunk_frames, pad_mode=profile.rmvpe_pad_mode)
    est.salience(tiled(1.0), **framing)
    audio = tiled(seconds)
    walls = {name: [] for name in cfgs}
    for _ in range(rounds):
        for name, cfg in cfgs.items():
            est.cfg = est.model.cfg = cfg
            t = time.perf_counter()
            est.salience(audio, **framing)
            walls[name].append(time.perf_counter() - t)
    med = {f"{name}_median_s": statistics.median(w) for name, w in walls.items()}
    return {"backend": backend, "seconds_audio": seconds, "reference": reference, **framing,
            "segment_frames": cfgs["segmented"].segment_frames, "rounds": rounds, **med,
            "segmented_over_whole": med["segmented_median_s"] / med["whole_median_s"],
            "walls_s": walls, "loadavg_1m": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--backends", default="torch,mlx")
    ap.add_argument("--segment-frames", type=int, default=None)
    ap.add_argument("--reference", default=DEFAULT_PROFILE)
    ap.add_argument("--paired", type=int, default=0, help="time N rounds of segmented vs whole U-Net instead")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child: measure this backend
    args = ap.parse_args(argv)
    if args.one:
        row = paired(args.one, args.seconds, args.segment_frames, args.reference, args.paired) if args.paired \
            else measure(args.one, args.seconds, args.segment_frames, args.reference)
        print(TAG + json.dumps(row), flush=True)
        return 0
    rows = []
    for backend in args.backends.split(","):
        cmd = [sys.executable, __file__, "--one", backend, "--seconds", str(args.seconds),
               "--reference", args.reference, "--paired", str(args.paired)]
        if args.segment_frames is not None:
            cmd += ["--segment-frames", str(args.segment_frames)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [json.loads(line[len(TAG):]) for line in proc.stdout.splitlines() if line.startswith(TAG)]
        if not found:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            raise SystemExit(f"{backend}: the measuring process failed (exit {proc.returncode}): {tail}")
        rows.append({**found[0], "process_s": time.perf_counter() - t})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
