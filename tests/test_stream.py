"""Streaming: the synthesizer's window arguments, torch vs MLX streams, streamed vs offline, bad input,
deadline misses and Ctrl+C in ``rvclab stream``. Small synthesizer configs, short clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from rvclab import metrics
from rvclab.audio import clip, load_audio
from rvclab.cli import main
from rvclab.cli.exit_codes import EXIT_INTERRUPTED
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.parity import clip_inputs, models_from_voice, torch_voice
from rvclab.pipeline.networks import VoiceModel
from rvclab.runtime import import_mlx
from rvclab.stream import StreamConfig, StreamConverter, StreamError, plan_frames
from rvclab.stream import run as stream_run
from rvclab.stream.compare import backend_parity, stream_vs_offline
from rvclab.stream.run import INTERRUPT_ENV, stream_file
from rvclab.tolerances import (
    E2E_SPEC_CORR_MIN,
    E2E_WAVE_CORR_MIN,
    STREAM_F0_CENTS_MEDIAN_MAX,
    STREAM_OFFLINE_SPEC_CORR_MARGIN,
    SYNTH_CHECKS,
    SYNTH_WAVE_CORR_MIN,
    SYNTH_WAVE_MAX_ABS,
)

FAST = dict(block=0.2, crossfade=0.05, extra=0.3, f0_method="fcpe")


@pytest.fixture(scope="module")
def small_voice_path(tmp_path_factory):
    from rvclab.models.synth.seeded import make_one

    path = tmp_path_factory.mktemp("voices") / "small_v2_40k.pth"
    return make_one(path, SynthConfig.preset("v2-40k").small(), seed=0)


@pytest.fixture(scope="module")
def small_voice(small_voice_path):
    return VoiceModel(small_voice_path)


@pytest.fixture(scope="module")
def speech16():
    return load_audio(clip("librivox_male_0880"), 16000)


# --- the synthesizer's window -------------------------------------------------------------------
def _window_runs(f0: bool, head: int, length: int, length2):
    mx = import_mlx()
    config = SynthConfig.preset("v2-40k", f0=f0).small()
    tmodel, mmodel = models_from_voice(torch_voice(config, 0))
    frames = 100
    inp = clip_inputs(tmodel.config, frames, 0)
    noise = make_noise(tmodel.config, 1, frames, 5)
    t = {k: torch.from_numpy(inp[k]) for k in ("phone", "lengths", "pitch", "f0", "sid")}
    args = [t["phone"], t["lengths"], t["pitch"] if f0 else None, t["f0"] if f0 else None, t["sid"], noise]
    with torch.no_grad():
        full = tmodel.infer(*args)
        win = tmodel.infer(*args, head, length, length2)
    m = {k: mx.array(inp[k]) for k in ("phone", "lengths", "pitch", "f0", "sid")}
    margs = [m["phone"], m["lengths"], m["pitch"] if f0 else None, m["f0"] if f0 else None, m["sid"], noise]
    mwin = mmodel.infer(*margs, head, length, length2)
    return tmodel.config, full, win, np.array(mwin[0])[0, :, 0]


@pytest.mark.parametrize("length2", [None, 45])
def test_window_torch_vs_mlx_and_full_infer_f0(length2):
    config, full, win, mlx_wave = _window_runs(True, 50, 40, length2)
    wave = win[0].numpy()[0, 0]
    assert wave.shape == ((length2 or 40) * config.hop_length,)
    assert metrics.corr(wave, mlx_wave) >= SYNTH_WAVE_CORR_MIN
    assert metrics.max_abs(wave, mlx_wave) <= SYNTH_WAVE_MAX_ABS
    # the decoded frames' z equals the full call's up to float32 rounding (flow context and sliced
    # noise; torch's kernel choice, and so the rounding, depends on what ran before)
    z_win, z_full = win[2][0].numpy()[0], full[2][0].numpy()[0][:, 50:90]
    assert metrics.max_abs(z_win, z_full) <= SYNTH_CHECKS["flow_max_abs"].guard


def test_window_no_f0_matches_full_infer_inside_the_window():
    config, full, win, mlx_wave = _window_runs(False, 50, 40, None)
    hop = config.hop_length
    wave, ref = win[0].numpy()[0, 0], full[0].numpy()[0, 0][50 * hop:90 * hop]
    inner = slice(10 * hop, 30 * hop)  # away from the decoder's own edges
    assert metrics.max_abs(wave[inner], ref[inner]) <= SYNTH_WAVE_MAX_ABS
    assert metrics.max_abs(wave, ref) > SYNTH_WAVE_MAX_ABS  # the edges do differ: the test can see a slice
    assert metrics.corr(wave, mlx_wave) >= SYNTH_WAVE_CORR_MIN


def test_window_outside_the_input_is_refused():
    config = SynthConfig.preset("v1-40k", f0=False).small()
    tmodel, _ = models_from_voice(torch_voice(config, 0))
    inp = clip_inputs(tmodel.config, 20, 0)
    with pytest.raises(ValueError, match="skip_head 15 \\+ return_length 10"):
        tmodel.infer(torch.from_numpy(inp["phone"]), torch.from_numpy(inp["lengths"]), None, None,
                     torch.from_numpy(inp["sid"]), make_noise(tmodel.config, 1, 20, 0), 15, 10)


# --- streams ------------------------------------------------------------------------------------
def test_torch_and_mlx_streams_agree_sample_by_sample(small_voice, speech16):
    row = backend_parity(small_voice, speech16[:9600], StreamConfig(**FAST))
    assert row["wave_corr"] >= E2E_WAVE_CORR_MIN, row
    assert row["spec_corr"] >= E2E_SPEC_CORR_MIN, row
    assert 0.999 < row["rms_ratio"] < 1.001, row


def test_stream_vs_offline_within_bound(small_voice, speech16):
    config = StreamConfig(**FAST, fill_unvoiced=False)  # offline then leaves unvoiced frames at 0 Hz too
    row = stream_vs_offline(small_voice, speech16[:32000], "mlx", config, skip_seconds=0.5)
    assert row["spec_corr"] >= row["noise_floor_spec_corr"] - STREAM_OFFLINE_SPEC_CORR_MARGIN, row
    assert row["f0_cents_median"] <= STREAM_F0_CENTS_MEDIAN_MAX, row
    assert len(row["logmel_diff_by_position"]) == 10


def test_misaligned_stream_fails_the_bound(small_voice, speech16, monkeypatch):
    """The bound can fail: a stream aligned 400 ms off (a wrong delay) falls outside it. It is a
    coarse bound; how coarse: docs/streaming.md."""
    monkeypatch.setattr("rvclab.stream.run.output_delay", lambda conv: conv.frames.crossfade + 40 * conv.frames.zc)
    config = StreamConfig(**FAST, fill_unvoiced=False)
    row = stream_vs_offline(small_voice, speech16[:32000], "mlx", config, skip_seconds=0.5)
    assert row["spec_corr"] < row["noise_floor_spec_corr"] - STREAM_OFFLINE_SPEC_CORR_MARGIN, row


# --- bad input ------------------------------------------------------------------------------------
def test_block_shorter_than_a_hubert_frame_names_both_values():
    with pytest.raises(StreamError, match=r"block 0\.01 s \(160 samples @ 16 kHz\).*320 samples"):
        plan_frames(StreamConfig(block=0.01, crossfade=0.01), 40000)


def test_crossfade_longer_than_block_names_both_values():
    with pytest.raises(StreamError, match=r"crossfade 0\.3 s is longer than the block 0\.2 s"):
        plan_frames(StreamConfig(block=0.2, crossfade=0.3), 40000)


def test_silence_in_silence_out_and_wrong_rate_or_length_refused(small_voice):
    conv = StreamConverter(small_voice, "mlx", StreamConfig(**FAST, rms_mix_rate=1.0))
    b = conv.frames.block
    outs = [conv.process(np.zeros(b, np.float32)) for _ in range(3)]
    assert all(np.all(np.isfinite(o)) and not o.any() for o in outs)
    with pytest.raises(StreamError, match="48000 Hz.*40000 Hz"):
        conv.process(np.zeros(b, np.float32), sr=48000)
    with pytest.raises(StreamError, match=f"expected \\({b},\\)"):
        conv.process(np.zeros(b - 1, np.float32))


def test_silence_gate_zeroes_quiet_pieces(small_voice, speech16):
    conv = StreamConverter(small_voice, "mlx", StreamConfig(**FAST, threshold_db=-30))
    b = conv.frames.block
    quiet = (np.random.default_rng(0).standard_normal(b) * 1e-3).astype(np.float32)  # -60 dB
    conv.process(quiet)
    assert not conv.input.any()
    conv.process(np.full(b, 0.5, np.float32))  # loud: kept
    assert conv.input[-b // 2:].min() == 0.5


class _Clock:
    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


class _StubConverter:
    """Takes a fixed time per block on a fake clock: deadline misses without timing races."""

    def __init__(self, frames, config):
        self.frames, self.config, self.backend, self.stats, self.sr = frames, config, "stub", [], frames.sr

    def process(self, block):
        self.stats.append({"compute_s": 0.0})
        return np.asarray(block, np.float32)


def test_deadline_misses_are_counted_not_raised(monkeypatch):
    config = StreamConfig(block=0.1, crossfade=0.05)
    stub = _StubConverter(plan_frames(config, 40000), config)
    monkeypatch.setattr(stream_run.time, "perf_counter", _Clock(0.06))  # 0.12 s per block > 0.1 s
    res = stream_file(stub, np.zeros(4000 * 5, np.float32))
    assert res.summary(0.1)["deadline_misses"] == len(res.blocks) > 0
    monkeypatch.setattr(stream_run.time, "perf_counter", _Clock(0.02))  # 0.04 s per block
    assert stream_file(stub, np.zeros(4000 * 5, np.float32)).summary(0.1)["deadline_misses"] == 0


def test_cli_ctrl_c_writes_the_output_so_far(small_voice_path, tmp_path, monkeypatch, ctrl_c):
    out, report = tmp_path / "out.wav", tmp_path / "report.json"
    monkeypatch.setenv(INTERRUPT_ENV, "3")  # a real SIGINT after the third block
    rc = main(["stream", "-m", str(small_voice_path), "-i", str(clip("librivox_male_0880")), "-o", str(out),
               "--block", "0.2", "--extra", "0.3", "--f0-method", "fcpe", "--backend", "mlx",
               "--report", str(report)])
    assert rc == EXIT_INTERRUPTED
    audio, sr = sf.read(out)
    rep = json.loads(report.read_text())
    assert sr == 40000 and rep["interrupted"] and len(rep["blocks"]) == 3
    assert audio.size == 3 * 8000 - rep["output_delay_samples"]
    assert rep["input_resampled_from_hz"] == 16000 and np.all(np.isfinite(audio))
    assert not list(tmp_path.glob("*.tmp*"))
