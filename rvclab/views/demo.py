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
from rvclab.tolerances import E2E_CHECKS, F0_P99_CENTS_MAX, VOICING_AGREEMENT_MIN
from rvclab.views.plots import f0_overlay, spectrogram_diff, waveform_compare

# The report's parity rows: (key in the numbers, what it is in words, unit, goal, higher is better).
# Goals come from rvclab.tolerances; a measure it sets no end-to-end goal for has goal None and is
# shown for information, with no verdict.
MEASURES = (
    ("wave_corr", "waveform correlation, torch vs MLX", "Pearson r (1 = identical)",
     E2E_CHECKS["wave_corr"].goal, True),
    ("spec_corr", "log-mel spectrogram correlation", "Pearson r (1 = identical)",
     E2E_CHECKS["spec_corr"].goal, True),
    ("f0_cents_p99", "F0 difference on frames voiced in both, 99th percentile", "cents", F0_P99_CENTS_MAX, False),
    ("voicing_agreement", "frames both call voiced or both unvoiced", "fraction of frames",
     VOICING_AGREEMENT_MIN, True),
    ("wave_max_abs", "largest sample difference", "full scale = 1.0", None, False),
    ("rms_ratio", "loudness ratio, MLX / torch", "RMS ratio (1 = same)", None, True),
)
# Plot headings, by file name.
FIGURE_TITLES = {
    "waveforms.png": "Waveforms: torch and MLX overlaid (MLX translucent), and MLX minus torch",
    "f0_overlay.png": "Pitch (F0) each backend used, and their difference in cents",
    "spectrogram_diff.png": "Log-mel spectrograms of both outputs, and their difference",
}
PASS, FAIL, INFO = "pass", "FAIL", "information"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #1d2430; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #dde; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.6em 1em; }
table { border-collapse: collapse; margin: 0.6em 0; } th, td { padding: 0.35em 0.8em; text-align: left;
        border-bottom: 1px solid #e4e7ee; } th { background: #f3f5f9; }
td.num { font-family: ui-monospace, monospace; text-align: right; }
.verdict-pass { color: #176c2c; font-weight: 600; } .verdict-FAIL { color: #b3121f; font-weight: 700; }
.verdict-information { color: #667; }
.summary { font-size: 1.1em; font-weight: 600; }
.players { display: flex; gap: 2em; flex-wrap: wrap; } figure { margin: 1em 0; }
img { max-width: 100%; border: 1px solid #e4e7ee; } figcaption { font-weight: 600; margin-bottom: 0.3em; }
"""


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


def write_report(out: Path, source: Path, numbers: dict, torch_run, mlx_run, about: dict | None = None) -> Path:
    """Save the figures as PNG in ``out`` and ``out/report.html`` (the wavs ``converted_torch.wav``
    and ``converted_mlx.wav`` must be there already); ``about``: {label: text} for the run's date,
    version, device and models. Returns the report's path."""
    matplotlib.use("Agg")  # files only, no window
    drawn = figures(torch_run, mlx_run, numbers["f0_method"])
    for name, fig in drawn.items():
        _save_png(fig, out / name)
    path = out / "report.html"
    _write_text(path, report_html(out, source, numbers, list(drawn), about))
    return path


def verdict(value, goal: float | None, higher_is_better: bool) -> str:
    """:data:`PASS`, :data:`FAIL` (also for NaN: not comparable) or :data:`INFO` (no goal)."""
    if goal is None:
        return INFO
    value = float(value)
    if value != value:  # NaN
        return FAIL
    return PASS if (value >= goal if higher_is_better else value <= goal) else FAIL


def parity_rows(numbers: dict) -> list[dict]:
    """One row per :data:`MEASURES` entry present in ``numbers``: measure, value, unit, goal, verdict."""
    rows = []
    for key, words, unit, goal, higher in MEASURES:
        if key not in numbers:
            continue
        goal_text = "none set (shown for information)" if goal is None else f"{'≥' if higher else '≤'} {goal:g}"
        rows.append({"key": key, "measure": words, "value": numbers[key], "unit": unit, "goal": goal_text,
                     "verdict": verdict(numbers[key], goal, higher)})
    return rows


def report_html(out: Path, source: Path, numbers: dict, figures: list[str], about: dict | None = None) -> str:
    """The report page (inline CSS): what was run, the parity table with units, goals and verdicts,
    players for the input and both outputs, the PNGs inlined under headings in words."""
    rows = parity_rows(numbers)
    failed = [r["key"] for r in rows if r["verdict"] == FAIL]
    summary = (f"<p class='summary verdict-FAIL'>MLX misses the goal on: {html.escape(', '.join(failed))}</p>"
               if failed else "<p class='summary verdict-pass'>MLX meets every parity goal against torch.</p>")
    table = "".join(
        f"<tr data-key='{r['key']}'><td>{html.escape(r['measure'])}<br><code>{r['key']}</code></td>"
        f"<td class='num'>{r['value']:.6g}</td><td>{html.escape(r['unit'])}</td><td>{html.escape(r['goal'])}</td>"
        f"<td class='verdict verdict-{r['verdict']}'>{r['verdict']}</td></tr>"
        for r in rows
    )
    facts = dict(about or {})
    facts.update({"clip": numbers.get("clip", source.name), "voice": numbers.get("voice", ""),
                  "F0 method": numbers.get("f0_method", ""), "output rate": f"{numbers.get('sr', '')} Hz",
                  "chunks": numbers.get("chunks", "")})
    about_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                         for k, v in facts.items())
    players = "".join(
        f"<div><b>{label}</b><br><audio controls src='{_wav_data_uri(path)}'></audio></div>"
        for label, path in (("input", source), ("torch output", out / "converted_torch.wav"),
                            ("MLX output", out / "converted_mlx.wav"))
    )
    images = "".join(
        f"<figure><figcaption>{html.escape(FIGURE_TITLES.get(n, n))}</figcaption>"
        f"<img alt='{html.escape(FIGURE_TITLES.get(n, n))}' src='{_png_data_uri(out / n)}'></figure>"
        for n in figures
    )
    buf = io.StringIO()
    buf.write(f"<!doctype html><html><head><meta charset='utf-8'><title>rvclab demo report</title>"
              f"<style>{_CSS}</style></head><body>")
    buf.write("<h1>rvclab demo: the same conversion on PyTorch and MLX</h1>")
    buf.write(f"<h2>Verdict</h2>{summary}")
    buf.write("<p class='note'><b>The voice model is seeded, not trained</b>: it has the exact RVC architecture "
              "and file format but random weights, so it turns speech into speech-shaped noise. The point is "
              "that both backends produce the same samples. Bring a real voice with "
              "<code>rvclab convert -m voice.pth -i in.wav -o out.wav</code>.</p>")
    buf.write(f"<h2>Parity, MLX against torch</h2><table class='parity'><tr><th>measure</th><th>value</th>"
              f"<th>unit</th><th>goal</th><th>verdict</th></tr>{table}</table>")
    buf.write(f"<h2>Listen</h2><div class='players'>{players}</div>")
    buf.write(f"<h2>Plots</h2>{images}")
    buf.write(f"<h2>This run</h2><table class='about'>{about_rows}</table></body></html>")
    return buf.getvalue()
