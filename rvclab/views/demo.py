"""``rvclab demo`` (``make demo``): the main job on shipped data, written to ``out/``.

1. Prints the runtime report (``rvclab info``).
2. Makes the seeded models if missing (``weights/``; they are not trained — see weights/README.md).
3. Converts a shipped clip with the same pipeline on torch and on MLX (same chunking, same noise).
4. Writes ``out/``: both wavs, PNG plots (waveforms, F0 overlay, spectrogram difference), a JSON
   of the parity numbers and ``report.html`` with audio players, the plots and the numbers.
Every file is written atomically; nothing outside ``out/`` and ``weights/`` is touched.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

DEMO_CLIP = "librivox_male_0880"
DEMO_VOICE = "voice_v2_40k.pth"
DEMO_F0 = "fcpe"  # real pretrained weights (torchfcpe), so the pitch track is the speaker's own


def _write_text(path: Path, text: str) -> None:
    from rvclab.checkpoints import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _save_png(fig, path: Path) -> None:
    from rvclab.checkpoints import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def _wav_data_uri(path: Path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def run_demo(out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from rvclab import metrics
    from rvclab.audio import clip, load_audio, save_audio_atomic
    from rvclab.checkpoints import check_writable_dir
    from rvclab.info import collect
    from rvclab.paths import default_hubert, default_rmvpe, default_voice
    from rvclab.pipeline.conversion import VoiceModel, convert_voice
    from rvclab.views import widgets

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
    audio16 = load_audio(source, 16000)
    print(f"== converting {source.name} ({audio16.size / 16000:.2f} s) with {voice_path.name} ==")
    runs = {}
    for backend in ("torch", "mlx"):
        runs[backend] = convert_voice(audio16, voice, sr=16000, backend=backend, f0_method=DEMO_F0, progress=True)
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
    _write_text(out / "parity.json", json.dumps(numbers, indent=2))
    figures = {
        "waveforms.png": widgets.waveform_compare(t.audio, m.audio, t.sr),
        "f0_overlay.png": widgets.f0_overlay(_unpad(t.f0), _unpad(m.f0), title=f"F0 ({DEMO_F0}) used by each backend"),
        "spectrogram_diff.png": widgets.spectrogram_diff(t.audio, m.audio, t.sr),
    }
    for name, fig in figures.items():
        _save_png(fig, out / name)
    _write_text(out / "report.html", _report_html(out, source, numbers, list(figures)))
    print("== parity ==")
    for key in ("wave_corr", "spec_corr", "wave_max_abs", "rms_ratio", "voicing_agreement"):
        print(f"  {key:18s} {numbers[key]:.9g}")
    print(f"== done: open {out / 'report.html'} ==")
    print("The voice model is seeded, not trained: the output is speech-shaped noise. To use a real")
    print("one: rvclab convert -m your_voice.pth -i in.wav -o out.wav (see weights/README.md).")
    return 0


def _unpad(f0):
    """F0 on the padded input -> F0 on the input itself (drop x_pad seconds at each end)."""
    from rvclab.pipeline.steps import FP32_CONFIG, FRAME_RATE

    pad = FP32_CONFIG.x_pad * FRAME_RATE
    return f0[pad : f0.size - pad]


def _report_html(out: Path, source: Path, numbers: dict, figures: list[str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.9g}</td></tr>" if isinstance(v, float)
        else f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in numbers.items()
    )
    players = "".join(
        f"<div><b>{label}</b><br><audio controls src='{_wav_data_uri(path)}'></audio></div>"
        for label, path in (("input", source), ("torch", out / "converted_torch.wav"),
                            ("MLX", out / "converted_mlx.wav"))
    )
    images = "".join(f"<h3>{html.escape(n)}</h3><img src='{_png_data_uri(out / n)}'>" for n in figures)
    buf = io.StringIO()
    buf.write("<!doctype html><html><head><meta charset='utf-8'><title>rvclab demo</title></head><body>")
    buf.write("<h1>rvclab demo: the same conversion on PyTorch and MLX</h1>")
    buf.write("<p><b>The voice model is seeded, not trained</b>: it has the exact RVC architecture and "
              "file format but random weights, so it turns speech into speech-shaped noise. The point is "
              "that both backends produce the same samples. Bring a real voice with "
              "<code>rvclab convert -m voice.pth -i in.wav -o out.wav</code>.</p>")
    buf.write(f"<div style='display:flex;gap:2em'>{players}</div>")
    buf.write(f"<h2>Parity</h2><table>{rows}</table><h2>Plots</h2>{images}</body></html>")
    return buf.getvalue()
