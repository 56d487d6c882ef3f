"""End to end: the same conversion on torch and MLX (same input, noise and chunking)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from rvclab import help_text as text
from rvclab import metrics
from rvclab.audio import data_clips, load_audio
from rvclab.pipeline import steps as pipeline_steps
from rvclab.pipeline.batch import EXIT_BAD_INPUT
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.index import build_index, load_index, write_index
from rvclab.pipeline.networks import VoiceModel, embedder, features
from rvclab.pipeline.reference import resolve
from rvclab.profiles import DEFAULT_PROFILE, PROFILES
from rvclab.tolerances import E2E_CHECKS, verdicts
from rvclab.voices import default_voice

# Chunking shrunk so a clip of a few seconds is split: the same code path as a 40 s input under
# RVC's fp32 constants (x_center 38 s, x_max 41 s), at a cost a test can afford.
SMALL_CHUNKS = pipeline_steps.PadConfig(x_pad=1, x_query=1, x_center=2, x_max=3)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", default="", help="voice .pth (default: seeded weights/voice_v2_40k.pth)")
    p.add_argument("--f0-methods", default="rmvpe,fcpe",
                   help=f"comma-separated F0 methods, each one the profile offers {text.DEFAULT}")
    p.add_argument("--clips", default="", help="comma-separated clip names (default: every data clip)")
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help=f"cut clips to this many seconds, >= 0 (0: whole clips) {text.DEFAULT}")
    p.add_argument("--no-index", action="store_true", help="skip the cases with a FAISS index")
    p.add_argument("--no-chunked", action="store_true", help="skip the chunked case")
    p.add_argument("--seed", type=int, default=0, help=text.NOISE_SEED)
    p.add_argument("--reference", default=DEFAULT_PROFILE, choices=list(PROFILES),
                   help="reference profile to follow: %(choices)s; every F0 method must be one it offers "
                        + text.DEFAULT)


def compare(a, b, sr: int) -> dict:
    """The e2e row's numbers for two waveforms at ``sr``."""
    n = min(a.size, b.size)
    return {
        "wave_corr": metrics.corr(a[:n], b[:n]),
        "spec_corr": metrics.spectral_corr(a[:n], b[:n], sr),
        "wave_max_abs": metrics.max_abs(a[:n], b[:n]),
        "rms_ratio": metrics.rms_ratio(b[:n], a[:n]),
        "samples_torch": int(a.size),
        "samples_mlx": int(b.size),
    }


def run_case(voice, audio16, *, f0_method: str, index=None, pad_config=None, seed: int = 0, label: str = "",
             reference=DEFAULT_PROFILE) -> dict:
    """Convert once per backend and compare; one JSON-ready row.

    Following ``reference`` (name or profile; ``pad_config`` None: its own), except that both
    outputs stay float32: a profile's int16 quantization (``output_int16``) is the same step on
    both backends, and it would round their near-equal samples to different integers.
    """
    profile = dataclasses.replace(resolve(reference), output_int16=False)
    runs = {
        b: convert_voice(audio16, voice, sr=16000, f0_method=f0_method, index=index, backend=b,
                         noise_seed=seed, pad_config=pad_config, reference=profile)
        for b in ("torch", "mlx")
    }
    t, m = runs["torch"], runs["mlx"]
    row = {"case": label, "reference": t.reference, "f0_method": f0_method if voice.has_f0 else "none",
           "index": index is not None,
           "chunks": len(t.chunks), "seconds": round(audio16.size / 16000, 3), "sr": t.sr,
           **compare(t.audio, m.audio, t.sr),
           "f0_cents_p99": metrics.cents_error(t.f0, m.f0)["p99"],
           "voicing_agreement": metrics.voicing_agreement(t.f0, m.f0),
           "time_torch_s": round(sum(t.timings.values()), 3), "time_mlx_s": round(sum(m.timings.values()), 3)}
    same = row["samples_torch"] == row["samples_mlx"]  # ok / guard_ok: every goal / guard, equal lengths
    row.update({k: bool(same and v) for k, v in verdicts(row, E2E_CHECKS).items()})
    return row


def build_test_index(voice, clips: list, out_dir: Path):
    """A FAISS index of the HuBERT features of ``clips`` (torch), in RVC's file naming."""
    hub = embedder("torch")
    feats = np.concatenate([features(hub, load_audio(c, 16000), voice.version, "torch") for c in clips])
    index, _ = build_index(feats, version=voice.version)
    path = write_index(index, out_dir, "parity", voice.version, force=True)
    return load_index(path, voice.version)


def run(args) -> list[dict]:
    """Every case of ``rvclab parity e2e`` (clips x F0 methods x with/without index, chunked)."""
    profile = resolve(args.reference)
    for method in args.f0_methods.split(","):
        try:
            profile.check_f0_method(method)
        except ValueError as exc:  # before any model loads; bad input, as argparse exits
            print(f"rvclab parity e2e: --f0-methods: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None
    voice = VoiceModel(Path(args.voice) if args.voice else default_voice())
    clips = data_clips()
    if args.clips:
        wanted = set(args.clips.split(","))
        clips = [c for c in clips if c.name in wanted or c.stem in wanted]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = None if args.no_index else build_test_index(voice, data_clips(), Path(tmp))
        for clip in clips:
            audio = load_audio(clip, 16000)
            if args.max_seconds:
                audio = audio[: int(args.max_seconds * 16000)]
            for method in args.f0_methods.split(","):
                for idx in (None, index) if index is not None else (None,):
                    rows.append(run_case(voice, audio, f0_method=method, index=idx, seed=args.seed,
                                         label=clip.stem, reference=args.reference))
        if not args.no_chunked:
            longest = max(data_clips(), key=lambda c: load_audio(c, 16000).size)
            audio = load_audio(longest, 16000)
            rows.append(run_case(voice, audio, f0_method=args.f0_methods.split(",")[0], index=index,
                                 pad_config=SMALL_CHUNKS, seed=args.seed, label=f"{longest.stem} (chunked)",
                                 reference=args.reference))
    return rows
