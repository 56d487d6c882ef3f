"""``rvclab stream``: realtime conversion of a file block by block (or live), with a timing report.

    rvclab stream -m voice.pth -i in.wav -o out.wav --block 0.25 --crossfade 0.05 --extra 2.5 \\
        --backend mlx --report report.json

The output is aligned with the input (the stream's constant delay removed, its tail flushed)
unless ``--no-align``. Ctrl+C writes the output so far, complete, and exits 130.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rvclab.audio import load_audio_native, resample, save_audio_atomic
from rvclab.checkpoints import atomic_write
from rvclab.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK
from rvclab.pipeline.networks import VoiceModel
from rvclab.profiles import DEFAULT_PROFILE, PROFILES
from rvclab.stream import StreamConfig, StreamConverter
from rvclab.stream.config import GATE_OFF_DB
from rvclab.stream.run import run_live, stream_file


def add_arguments(p) -> None:
    p.add_argument("-m", "--model", required=True, help="voice model (.pth or converted .safetensors)")
    p.add_argument("-i", "--input", help="audio file (any rate: resampled to the stream's rate first)")
    p.add_argument("-o", "--output", help="output audio file (wav/flac/ogg)")
    p.add_argument("--block", type=float, default=StreamConfig.block, help="block seconds (default 0.25)")
    p.add_argument("--crossfade", type=float, default=StreamConfig.crossfade, help="crossfade seconds (0.05)")
    p.add_argument("--extra", type=float, default=StreamConfig.extra, help="context seconds (2.5)")
    p.add_argument("--backend", choices=("torch", "mlx"), default="mlx")
    p.add_argument("--reference", default=StreamConfig.reference,
                   help=f"the release to follow: {', '.join(PROFILES)} (default {DEFAULT_PROFILE}, the current RVC "
                        "WebUI release): its F0 methods and parameters, RMVPE framing, HuBERT v1 layer, F0 filling")
    p.add_argument("--f0-method", default=None, help="F0 method, one the profile offers (default: its default)")
    p.add_argument("--pitch", type=float, default=0.0, help="transpose in semitones (f0_up_key)")
    p.add_argument("--formant", type=float, default=0.0, help="formant shift in semitones")
    p.add_argument("--threshold", type=float, default=GATE_OFF_DB,
                   help=f"silence gate in dB ('threhold' upstream; <= {GATE_OFF_DB}: off)")
    p.add_argument("--index", default=None, help="FAISS .index file")
    p.add_argument("--index-rate", type=float, default=StreamConfig.index_rate)
    p.add_argument("--rms-mix-rate", type=float, default=StreamConfig.rms_mix_rate)
    p.add_argument("--sid", type=int, default=0)
    p.add_argument("--sr", type=int, default=None, help="stream rate in Hz (default: the voice's)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (block i draws with seed + i)")
    p.add_argument("--hubert", default=None, help="HuBERT/ContentVec checkpoint (default: weights/)")
    p.add_argument("--paced", action="store_true", help="feed blocks at the pace of a sound card")
    p.add_argument("--no-align", action="store_true", help="keep the stream's delay in the output")
    p.add_argument("--report", default=None, help="JSON report: settings, latency budget, per-block times")
    p.add_argument("--live", action="store_true", help="microphone to speakers (needs sounddevice)")
    p.add_argument("--seconds", type=float, default=None, help="--live: stop after this long")


def _config(args, sr: int | None) -> StreamConfig:
    return StreamConfig(block=args.block, crossfade=args.crossfade, extra=args.extra, threshold_db=args.threshold,
                        f0_up_key=args.pitch, formant=args.formant, f0_method=args.f0_method,
                        index_rate=args.index_rate, rms_mix_rate=args.rms_mix_rate, sid=args.sid, sr=sr,
                        noise_seed=args.seed, reference=args.reference)


def _write_report(path: str, report: dict) -> None:
    text = json.dumps(report, indent=1, default=float)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text + "\n"))


def run_cli(args) -> int:
    """0 when the stream ran to its end, 2 for unusable settings or files, 130 on Ctrl+C (the
    output so far written, complete)."""
    try:
        if not args.live and (not args.input or not args.output):
            raise ValueError("-i/--input and -o/--output are needed (or --live)")
        audio = native = None
        if not args.live:
            audio, native = load_audio_native(args.input)
        voice = VoiceModel(args.model)
        converter = StreamConverter(voice, args.backend, _config(args, args.sr), index=args.index,
                                    hubert_path=args.hubert)
    except (OSError, ValueError) as exc:
        print(f"rvclab stream: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = {"model": str(args.model), "backend": args.backend, "sr": converter.sr,
              "config": converter.config.to_dict(), "frames": vars(converter.frames),
              "latency_s": converter.latency}
    if args.live:
        try:
            rows = run_live(converter, seconds=args.seconds)
        except ValueError as exc:
            print(f"rvclab stream: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        report.update(mode="live", blocks=rows)
        if args.report:
            _write_report(args.report, report)
        return EXIT_OK
    if native != converter.sr:
        audio = resample(audio, native, converter.sr)
        report["input_resampled_from_hz"] = native
    result = stream_file(converter, audio, paced=args.paced, align=not args.no_align,
                         progress=sys.stderr.isatty())
    out = np.asarray(result.audio, np.float32)
    save_audio_atomic(args.output, out, result.sr, protect=(args.input,))
    summary = result.summary(converter.config.block)
    report.update(mode="paced" if args.paced else "fast", input=str(args.input), output=str(args.output),
                  aligned=result.aligned, output_delay_samples=result.delay_samples,
                  interrupted=result.interrupted, output_seconds=out.size / result.sr, summary=summary,
                  blocks=result.blocks)
    if args.report:
        _write_report(args.report, report)
    line = (f"{summary['blocks']} blocks of {converter.config.block} s, compute p50 "
            f"{summary.get('compute_p50_s', 0) * 1000:.0f} ms, p99 {summary.get('compute_p99_s', 0) * 1000:.0f} ms, "
            f"{summary['deadline_misses']} deadline misses; latency {converter.latency['total'] * 1000:.0f} ms")
    if result.interrupted:
        print(f"rvclab stream: interrupted; {args.output} holds the {out.size / result.sr:.2f} s converted so far",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{args.output}: {line}")
    return EXIT_OK
