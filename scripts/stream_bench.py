"""Streaming measurements: backend parity, streamed vs offline quality, per-block compute time.

    python scripts/stream_bench.py --part parity|quality|timing [--device cpu|gpu] [--backends torch,mlx]
        [--json docs/bench/stream_cpu.json]

Each call adds its rows to the JSON file (rows of the same part, device and backend are replaced),
so the parts and each backend can run in processes of their own. ``--device gpu`` puts torch on
CUDA (HuBERT, RMVPE, FCPE and the voice) and MLX on its GPU (MLX's CUDA backend;
docs/streaming.md). Timing: ``--warmup`` blocks are dropped, then ``--blocks`` blocks are timed per
configuration (the per-block cost depends on the context, ``extra``, not on the clip's length), or
as many blocks as ``--seconds`` of audio holds (the realtime check over a whole clip), fed as fast as
possible; a block misses its deadline when its compute time exceeds its length.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rvclab.audio import clip, load_audio, resample  # noqa: E402
from rvclab.bench.stages import StageOptions, place_pipeline_models  # noqa: E402
from rvclab.bench.timing import machine_info  # noqa: E402
from rvclab.models.fcpe import f0 as f0_fcpe  # noqa: E402
from rvclab.pipeline.networks import VoiceModel  # noqa: E402
from rvclab.runtime import import_mlx  # noqa: E402
from rvclab.stream import StreamConfig, StreamConverter  # noqa: E402
from rvclab.stream.compare import backend_parity, stream_vs_offline  # noqa: E402
from rvclab.stream.run import block_time_summary  # noqa: E402
from rvclab.voices import default_voice  # noqa: E402

CLIP = "librivox_male_0870"
VOICES = ("voice_v2_40k.pth", "voice_v1_32k.pth")
F0_METHODS = ("fcpe", "rmvpe")
TIMING_BLOCKS = (0.1, 0.25, 0.5)
QUALITY_BLOCKS = (0.1, 0.25, 0.5, 1.0)
QUALITY_EXTRAS = (1.0, 2.5)


def speech(seconds: float) -> np.ndarray:
    x = load_audio(clip(CLIP), 16000)
    return np.tile(x, int(np.ceil(seconds * 16000 / x.size)))[:int(seconds * 16000)].astype(np.float32)


def voice_on(name: str, device: str) -> VoiceModel:
    voice = VoiceModel(default_voice(name))
    if device == "gpu":
        voice.model("torch").to("cuda")
        f0_fcpe.get_model("torch")  # loaded here so that it is placed with the others
        place_pipeline_models(StageOptions(device="gpu"))
    return voice


def part_parity(args) -> list[dict]:
    voice = voice_on(VOICES[0], args.device)
    row = backend_parity(voice, speech(args.quality_seconds), StreamConfig(block=0.25, extra=1.0, f0_method="rmvpe"))
    return [{"part": "parity", "voice": VOICES[0], "seconds": args.quality_seconds, **row}]


def part_quality(args) -> list[dict]:
    rows = []
    voice = voice_on(args.quality_voice, args.device)
    x = speech(args.quality_seconds)
    for backend in args.backends:
        for extra in QUALITY_EXTRAS:
            for block in QUALITY_BLOCKS:
                for fill in (True, False) if block == 0.25 else (True,):  # upstream fills; offline does not
                    config = StreamConfig(block=block, extra=extra, f0_method="fcpe", fill_unvoiced=fill)
                    row = stream_vs_offline(voice, x, backend, config, skip_seconds=args.skip)
                    rows.append({"part": "quality", "voice": args.quality_voice, "fill_unvoiced": fill, **row})
                    print(json.dumps({k: v for k, v in rows[-1].items() if k != "logmel_diff_by_position"}))
    return rows


def _sync(backend: str, device: str) -> None:
    if backend == "mlx":
        import_mlx().synchronize()
    elif device == "gpu":
        import torch

        torch.cuda.synchronize()


def part_timing(args) -> list[dict]:
    rows = []
    for name in VOICES:
        voice = voice_on(name, args.device)
        for method in F0_METHODS:
            for backend in args.backends:
                for block in args.block_sizes:
                    config = StreamConfig(block=block, extra=args.extra, f0_method=method)
                    conv = StreamConverter(voice, backend, config)
                    timed = int(round(args.seconds / block)) if args.seconds else args.blocks
                    x = resample(speech((args.warmup + timed) * block + 0.1), 16000, conv.sr)
                    b = conv.frames.block
                    for i in range(args.warmup + timed):
                        conv.process(x[i * b:(i + 1) * b])
                        _sync(backend, args.device)
                    stats = [dict(s, missed=s["compute_s"] > block) for s in conv.stats[args.warmup:]]
                    summary = block_time_summary(stats, block)
                    stages = {k: float(np.median([s[k] for s in stats])) for k in ("features_s", "f0_s", "synth_s")}
                    row = {"part": "timing", "voice": name, "f0_method": method, "backend": backend, "block_s": block,
                           "extra_s": args.extra, "latency_s": conv.latency["total"], "audio_s": timed * block,
                           **summary,
                           **{f"median_{k}": v for k, v in stages.items()},
                           "compute_s": [s["compute_s"] for s in stats]}
                    rows.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "compute_s"}))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("parity", "quality", "timing"), required=True)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--backends", default="torch,mlx")
    p.add_argument("--json", default=None, help="default docs/bench/stream_<device>.json")
    p.add_argument("--blocks", type=int, default=6, help="timed blocks per configuration")
    p.add_argument("--seconds", type=float, default=0.0,
                   help="timing: time as many blocks as this much audio holds, instead of --blocks")
    p.add_argument("--block-sizes", default=",".join(map(str, TIMING_BLOCKS)), help="timing: block lengths (s)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--extra", type=float, default=StreamConfig.extra)
    p.add_argument("--quality-seconds", type=float, default=4.0)
    p.add_argument("--quality-voice", default="voice_v1_32k.pth")
    p.add_argument("--skip", type=float, default=1.0, help="quality: seconds left out at the start")
    args = p.parse_args()
    args.backends = args.backends.split(",")
    args.block_sizes = [float(b) for b in args.block_sizes.split(",")]
    if args.device == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("stream_bench: --device gpu needs CUDA", file=sys.stderr)
            return 2
    path = Path(args.json or ROOT / "docs" / "bench" / f"stream_{args.device}.json")
    start = time.perf_counter()
    rows = {"parity": part_parity, "quality": part_quality, "timing": part_timing}[args.part](args)
    meta = {**machine_info(args.device), "command": "scripts/stream_bench.py " + " ".join(sys.argv[1:]),
            "wall_s": time.perf_counter() - start}
    for row in rows:
        row.update(device=args.device, meta=meta)
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    replaced = args.backends + ["both"]
    keep = [r for r in old["rows"]
            if not (r["part"] == args.part and r.get("backend", "both") in replaced and r["device"] == args.device)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": keep + rows}, indent=1, default=float) + "\n")
    print(f"{path}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
