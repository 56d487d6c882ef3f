"""The ``rvclab demo`` report (rvclab.views.demo): parsed back, its verdicts match its numbers and goals."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

from rvclab.audio import save_audio_atomic
from rvclab.pipeline.conversion import Conversion
from rvclab.tolerances import E2E_CHECKS, F0_P99_CENTS_MAX, VOICING_AGREEMENT_MIN
from rvclab.views import demo

SR = 16000


class _Page(HTMLParser):
    """The parity rows ({key: [cell texts]}), figure captions, the 'This run' table and style presence."""

    def __init__(self):
        super().__init__()
        self.rows, self.captions, self.about, self.styles, self.images = {}, [], {}, 0, 0
        self._row = self._cell = None
        self._in = None
        self._about_key = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-key" in attrs:
            self._row = self.rows.setdefault(attrs["data-key"], [])
        elif tag == "td" and self._row is not None:
            self._row.append("")
            self._cell = True
        elif tag in ("figcaption", "style", "th", "td"):
            self._in = tag
        elif tag == "img":
            self.images += 1
        if tag == "style":
            self.styles += 1

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._cell = None
        self._in = None

    def handle_data(self, data):
        if self._cell and self._row is not None:
            self._row[-1] += data
        elif self._in == "figcaption":
            self.captions.append(data)
        elif self._in == "th":
            self._about_key = data
        elif self._in == "td" and self._about_key is not None:
            self.about[self._about_key] = data


def _run(audio, f0):
    return Conversion(audio=np.asarray(audio, np.float32), sr=SR, backends={}, f0=np.asarray(f0, np.float32),
                      coarse=np.zeros(len(f0), np.int32), chunks=[], timings={})


@pytest.fixture
def report_dir(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "input.wav"
    save_audio_atomic(source, (0.1 * rng.standard_normal(SR // 2)).astype(np.float32), SR)
    audio = (0.1 * np.sin(np.arange(SR // 2) * 0.05)).astype(np.float32)
    for name in ("converted_torch.wav", "converted_mlx.wav"):
        save_audio_atomic(tmp_path / "out" / name, audio, SR)
    f0 = np.where(np.arange(250) % 60 < 40, 120.0, 0.0)
    return tmp_path, source, _run(audio, f0), _run(audio * 1.001, f0)


def _numbers(**changes):
    numbers = {"clip": "input.wav", "voice": "voice_v2_40k.pth", "f0_method": "pm", "sr": SR, "chunks": 1,
               "wave_corr": 0.99999999, "spec_corr": 0.9999999, "wave_max_abs": 1.9e-7, "rms_ratio": 1.0000001,
               "f0_cents_p99": 0.0, "voicing_agreement": 1.0}
    return {**numbers, **changes}


def _page(report_dir, numbers) -> _Page:
    tmp, source, t, m = report_dir
    about = {"date": "2026-12-03 20:00 UTC", "rvclab version": "0.1.0", "device": "x86_64 CPU",
             "models": "voice voice_v2_40k.pth"}
    path = demo.write_report(tmp / "out", source, numbers, t, m, about)
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_report_states_unit_goal_and_verdict_for_each_measure(report_dir):
    page = _page(report_dir, _numbers())
    assert page.styles == 1 and page.images == 3
    assert set(page.rows) == {m[0] for m in demo.MEASURES}
    for key, cells in page.rows.items():
        assert len(cells) == 5 and all(c.strip() for c in cells), (key, cells)  # measure, value, unit, goal, verdict
    assert page.rows["wave_corr"][3] == f"≥ {E2E_CHECKS['wave_corr'].goal:g}"
    assert page.rows["f0_cents_p99"][3] == f"≤ {F0_P99_CENTS_MAX:g}" and page.rows["f0_cents_p99"][2] == "cents"
    assert page.rows["voicing_agreement"][3] == f"≥ {VOICING_AGREEMENT_MIN:g}"
    assert {k: r[4] for k, r in page.rows.items()} == {
        "wave_corr": "pass", "spec_corr": "pass", "f0_cents_p99": "pass", "voicing_agreement": "pass",
        "wave_max_abs": "information", "rms_ratio": "information"}
    assert all(not c.endswith(".png") for c in page.captions) and len(page.captions) == 3
    assert {"date", "rvclab version", "device", "models"} <= set(page.about)


@pytest.mark.parametrize("key, value", [("wave_corr", 0.99), ("spec_corr", float("nan")),
                                        ("f0_cents_p99", 2 * F0_P99_CENTS_MAX), ("voicing_agreement", 0.9)])
def test_a_measure_past_its_goal_reads_fail(report_dir, key, value):
    page = _page(report_dir, _numbers(**{key: value}))
    verdicts = {k: r[4] for k, r in page.rows.items()}
    assert verdicts[key] == "FAIL"
    assert [k for k, v in verdicts.items() if v == "FAIL"] == [key]
    html = (report_dir[0] / "out" / "report.html").read_text(encoding="utf-8")
    assert f"misses the goal on: {key}" in html and "meets every parity goal" not in html
