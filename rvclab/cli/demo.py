"""``rvclab demo`` (``make demo``): the main job on shipped data, written to ``out/``.

1. Prints the runtime report (``rvclab info``).
2. Makes the seeded models if missing (``weights/``; they are not trained: see weights/README.md).
3. Converts a shipped clip with the same pipeline on torch and on MLX (same chunking, same noise).
4. Writes ``out/``: both wavs, PNG plots (waveforms, F0 overlay, spectrogram difference), a JSON
   of the parity numbers and ``report.html`` (:mod:`rvclab.views.demo`).
Every file is written atomically; nothing outside ``out/`` and ``weights/`` is touched.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

from rvclab import help_text as text
from rvclab import metrics
from rvclab.audio import SAMPLE_RATE_16K, clip, load_audio, save_audio_atomic
from rvclab.checkpoints import atomic_write, check_writable_dir
from rvclab.info import collect
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import VoiceModel
from rvclab.views import demo as report
from rvclab.voices import default_voice
from rvclab.weights import default_hubert, default_rmvpe

DEMO_CLIP = "librivox_male_0880"
DEMO_VOICE = "voice_v2_40k.pth"
DEMO_F0 = "fcpe"  # real pretrained weights (torchfcpe), so the pitch track is the speaker's own
PRINTED = ("wave_corr", "spec_corr", "wave_max_abs", "rms_ratio", "voicing_agreement")


def add_arguments(p) -> None:
    p.add_argument("--out", default="out", help=f"folder for the report, audio and plots {text.DEFAULT}")


def run_cli(args) -> int:
    return run_demo(Path(args.out))


def run_demo(out: Path) -> int:
    """Convert the demo clip on both backends and write the report into ``out``; exit code 0."""
    out = check_writable_dir(out)  # fail before the conversion, not after it
    info = collect()
    width = max(len(k) for k in info)
    print("== rvclab info ==")
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")

    print("== seeded models (random, untrained stand-ins in the exact upstream formats) ==")
    voice_path, hubert_path, rmvpe_path = default_voice(DEMO_VOICE), default_hubert(), default_rmvpe()
    for p in (voice_path, hubert_path, rmvpe_path):
        print(f"  {p}")
    voice = VoiceModel(voice_path)
    source = clip(DEMO_CLIP)
    audio16 = load_audio(source, SAMPLE_RATE_16K)
    print(f"== converting {source.name} ({audio16.size / SAMPLE_RATE_16K:.2f} s) with {voice_path.name} ==")
    runs = {}
    for backend in ("torch", "mlx"):
        runs[backend] = convert_voice(audio16, voice, sr=SAMPLE_RATE_16K, backend=backend, f0_method=DEMO_F0,
                                      progress=True)
        save_audio_atomic(out / f"converted_{backend}.wav", runs[backend].audio, runs[backend].sr)
        print(f"  {backend}: {sum(runs[backend].timings.values()):.2f} s -> {out / f'converted_{backend}.wav'}")
    t, m = runs["torch"], runs["mlx"]
    numbers = {
        "clip": source.name, "voice": voice_path.name, "f0_method": DEMO_F0, "sr": t.sr,
        "chunks": len(t.chunks), "wave_corr": metrics.corr(t.audio, m.audio),
        "spec_corr": metrics.spectral_corr(t.audio, m.audio, t.sr),
        "wave_max_abs": metrics.max_abs(t.audio, m.audio), "rms_ratio": metrics.rms_ratio(m.audio, t.audio),
        "f0_cents_p99": metrics.cents_error(t.f0, m.f0)["p99"],
        "voicing_agreement": metrics.voicing_agreement(t.f0, m.f0),
        "seconds_torch": sum(t.timings.values()), "seconds_mlx": sum(m.timings.values()),
    }
    text = json.dumps(numbers, indent=2)
    atomic_write(out / "parity.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    about = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "rvclab version": info["rvclab"],
        "device": f"{platform.machine()} CPU ({platform.processor() or info['platform']}); torch {info['torch']}, "
                  f"MLX {info['mlx']} on {info['mlx_device']}",
        "models": f"voice {voice_path.name}, HuBERT {hubert_path.name}, RMVPE {rmvpe_path.name} (seeded); "
                  f"F0 {DEMO_F0}",
    }
    page = report.write_report(out, source, numbers, t, m, about)
    print("== parity ==")
    for key in PRINTED:
        print(f"  {key:18s} {numbers[key]:.9g}")
    print(f"== done: open {page} ==")
    print("The voice model is seeded, not trained: the output is speech-shaped noise. To use a real")
    print("one: rvclab convert -m your_voice.pth -i in.wav -o out.wav (see weights/README.md).")
    return 0
