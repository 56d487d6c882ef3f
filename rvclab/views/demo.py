"""The ``rvclab demo`` report: torch vs MLX figures as PNG and ``report.html`` with audio players,
the plots and the parity numbers (the run itself is :mod:`rvclab.cli.demo`). Files are written
atomically."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

from rvclab.checkpoints import atomic_write
from rvclab.pipeline.steps import FP32_CONFIG, FRAME_RATE
from rvclab.views.plots import f0_overlay, spectrogram_diff, waveform_compare


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _save_png(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def _wav_data_uri(path: Path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _unpad(f0):
    """F0 on the padded input -> F0 on the input itself (drop x_pad seconds at each end)."""
    pad = FP32_CONFIG.x_pad * FRAME_RATE
    return f0[pad : f0.size - pad]


def figures(torch_run, mlx_run, f0_method: str) -> dict:
    """{file name: Figure}: waveforms, the F0 each backend used and the spectrogram difference."""
    t, m = torch_run, mlx_run
    return {
        "waveforms.png": waveform_compare(t.audio, m.audio, t.sr),
        "f0_overlay.png": f0_overlay(_unpad(t.f0), _unpad(m.f0), title=f"F0 ({f0_method}) used by each backend"),
        "spectrogram_diff.png": spectrogram_diff(t.audio, m.audio, t.sr),
    }


def write_report(out: Path, source: Path, numbers: dict, torch_run, mlx_run) -> Path:
    """Save the figures as PNG in ``out`` and ``out/report.html`` (the wavs ``converted_torch.wav``
    and ``converted_mlx.wav`` must be there already); returns the report's path."""
    matplotlib.use("Agg")  # files only, no window
    drawn = figures(torch_run, mlx_run, numbers["f0_method"])
    for name, fig in drawn.items():
        _save_png(fig, out / name)
    path = out / "report.html"
    _write_text(path, report_html(out, source, numbers, list(drawn)))
    return path


def report_html(out: Path, source: Path, numbers: dict, figures: list[str]) -> str:
    """The report page: players for the input and both outputs, the numbers, the PNGs inlined."""
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
