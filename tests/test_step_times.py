"""Every step of a conversion is timed (Conversion.steps) and reaches the e2e benchmark rows."""

import numpy as np
import pytest

from rvclab.bench import stages as bench_stages
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import NETWORK_STEPS, STEP_NAMES
from rvclab.voices import default_voice


@pytest.mark.parametrize("backend", ["mlx"])  # one backend keeps this short
def test_conversion_records_every_step(backend):
    x = bench_stages.speech(0.6)
    run = convert_voice(x, default_voice("voice_v2_48k.pth"), sr=16000, backend=backend, profile=True)
    want = set(STEP_NAMES)
    assert set(run.steps) == want, set(run.steps) ^ want
    assert all(v >= 0 for v in run.steps.values())
    row = bench_stages.step_breakdown(run)
    assert row["network_s"] == pytest.approx(sum(run.steps[k] for k in NETWORK_STEPS))
    assert row["network_s"] + row["non_network_s"] == pytest.approx(sum(run.steps.values()))
    assert row["network_s"] > 0 and row["non_network_s"] > 0


def test_e2e_runner_details_carry_the_steps(monkeypatch):
    class Done:
        steps = {"hubert": 0.5, "synth": 1.0, "copy_in": 0.25, "mix_rms": 0.125}
        audio = np.zeros(4, np.float32)

    monkeypatch.setattr(bench_stages, "convert_voice", lambda *a, **k: Done())
    monkeypatch.setattr(bench_stages, "voice_model", lambda opts: None)
    runner = bench_stages.build("e2e", "mlx", 0.4, bench_stages.StageOptions(f0_method="pm", noise="counter"))
    assert "steps_s" not in runner.details()  # nothing ran yet
    runner.call()
    details = runner.details()
    assert details["noise"] == "counter" and details["steps_s"] == Done.steps
    assert details["network_s"] == 1.5 and details["non_network_s"] == 0.375
