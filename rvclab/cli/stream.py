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

from rvclab import help_text as text
from rvclab.audio import OUTPUT_FORMATS, SAMPLE_RATE_16K, load_audio_native, resample, save_audio_atomic
from rvclab.checkpoints import atomic_write
from rvclab.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK
from rvclab.pipeline.batch_options import add_reference_arguments
from rvclab.pipeline.conversion import BACKENDS, DEFAULT_BACKEND
from rvclab.pipeline.networks import VoiceModel
from rvclab.stream import StreamConfig, StreamConverter
from rvclab.stream.config import (
    EXTRA_MAX_S,
    FORMANT_MAX,
    FRAME_RATE,
    GATE_OFF_DB,
    HUBERT_FRAME_16K,
    SOLA_BUFFER_MAX_FRAMES,
)
from rvclab.stream.run import run_live, stream_file


def add_arguments(p) -> None:
    p.add_argument("-m", "--model", required=True, help=text.MODEL)
    p.add_argument("-i", "--input",
                   help="audio file, any rate (resampled to the stream's rate first); none with --live")
    p.add_argument("-o", "--output", help=f"output audio file ({', '.join(OUTPUT_FORMATS)}); none with --live")
    p.add_argument("--block", type=float, default=StreamConfig.block,
                   help=f"block length in seconds, >= {HUBERT_FRAME_16K / SAMPLE_RATE_16K} (one HuBERT frame), "
                        f"rounded to 10 ms {text.DEFAULT}")
    p.add_argument("--crossfade", type=float, default=StreamConfig.crossfade,
                   help=f"crossfade in seconds, in [0.01, block]; SOLA matches at most "
                        f"{SOLA_BUFFER_MAX_FRAMES / FRAME_RATE} s of it {text.DEFAULT}")
    p.add_argument("--extra", type=float, default=StreamConfig.extra,
                   help=f"past context in seconds, in [0, {EXTRA_MAX_S}]: costs compute, not latency {text.DEFAULT}")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help=text.BACKEND)
    add_reference_arguments(p, stream=True)
    p.add_argument("--pitch", type=float, default=StreamConfig.f0_up_key, help=text.PITCH)
    p.add_argument("--formant", type=float, default=StreamConfig.formant,
                   help=f"formant shift in semitones, in [-{FORMANT_MAX}, {FORMANT_MAX}] {text.DEFAULT}")
    p.add_argument("--threshold", type=float, default=StreamConfig.threshold_db,
                   help=f"silence gate in dB re full scale ('threhold' upstream), any value; <= {GATE_OFF_DB}: off "
                        + text.DEFAULT)
    p.add_argument("--index", default=None, help=text.INDEX)
    p.add_argument("--index-rate", type=float, default=StreamConfig.index_rate,
                   help=f"{text.INDEX_RATE} {text.DEFAULT}")
    p.add_argument("--rms-mix-rate", type=float, default=StreamConfig.rms_mix_rate,
                   help=f"{text.RMS_MIX_RATE} {text.DEFAULT}")
    p.add_argument("--sid", type=int, default=StreamConfig.sid, help=text.SID)
    p.add_argument("--sr", type=int, default=StreamConfig.sr,
                   help=f"stream rate in Hz, a multiple of {FRAME_RATE}, >= {SAMPLE_RATE_16K} (default: none, the "
                        "voice's rate)")
    p.add_argument("--seed", type=int, default=StreamConfig.noise_seed, help=text.NOISE_SEED)
    p.add_argument("--hubert", default=None, help=text.HUBERT)
    p.add_argument("--paced", action="store_true", help="feed blocks at the pace of a sound card")
    p.add_argument("--no-align", action="store_true", help="keep the stream's delay in the output")
    p.add_argument("--report", default=None,
                   help="JSON report to write: settings, latency budget, per-block times (default: none)")
    p.add_argument("--live", action="store_true", help="microphone to speakers (needs sounddevice)")
    p.add_argument("--seconds", type=float, default=None,
                   help="with --live: stop after this many seconds, > 0 (default: none, at Ctrl+C)")


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
