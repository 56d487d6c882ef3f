"""The vectorised non-network steps against their previous forms (kept here as references):
the same split points, tie for tie; outputs within one int16 step."""

import numpy as np
import pytest

from rvclab.audio import SAMPLE_RATE_16K, data_clips, load_audio
from rvclab.pipeline import output, steps

INT16_STEP = 1 / 32768


# --- the previous forms -------------------------------------------------------------------------
def old_split_points(x: np.ndarray, pad: steps.Padding) -> list[int]:
    n = x.shape[0]
    if n + 2 * (pad.window // 2) <= pad.t_max:
        return []
    points = []
    for t in range(pad.t_center, n, pad.t_center):
        span = range(n)[t - pad.t_query : t + pad.t_query]
        seg = steps.quietness_range(x, span.start, span.stop, pad.window)
        points.append(t - pad.t_query + int(np.flatnonzero(seg == seg.min())[0]))
    return points


def old_mix_rms(out: np.ndarray, sr: int, source_rms: np.ndarray, rate: float) -> np.ndarray:
    size = out.shape[0]
    rms_in = output.interp_linear(source_rms, size)
    rms_out = np.maximum(output.interp_linear(output.frame_rms(out, sr), size), output.RMS_FLOOR)
    gain = np.power(rms_in, 1 - rate) * np.power(rms_out, rate - 1)
    return (out * gain).astype(out.dtype)


def old_features_to_frames(feats, feats0, n_samples, pitch, pitchf, protect):
    up = np.repeat(feats, 2, axis=0)
    p_len = min(n_samples // steps.WINDOW, up.shape[0])
    pitch, pitchf = pitch[:p_len], pitchf[:p_len]
    w = steps.protect_weights(pitchf, protect)[:, None]
    return (up * w + np.repeat(feats0, 2, axis=0) * (1 - w)).astype(up.dtype), p_len


# --- split points -------------------------------------------------------------------------------
SMALL = steps.Padding(t_pad=160, t_pad_tgt=480, t_pad2=320, t_query=800, t_center=4000, t_max=4400)


@pytest.mark.parametrize("seed", range(6))
def test_split_points_match_random(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(30000) * rng.uniform(0.01, 1, 30000)
    if seed % 2:  # float32 input and runs of exact silence: ties decided by order
        x = x.astype(np.float32)
        x[9000:9800] = 0
        x[16500:17200] = 0
    if seed == 4:  # a signal whose window sums tie everywhere (alternating +-1)
        x = np.where(np.arange(30000) % 2, 1.0, -1.0)
    assert steps.split_points(x, SMALL) == old_split_points(x, SMALL)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_split_points_ties_decided_in_upstream_order(dtype):
    """Quiet stretches of one repeated 160-sample pattern after loud audio: their window sums tie
    or differ in the last bits, which a cumulative sum alone does not resolve as upstream does."""
    picks = 0
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        x = rng.standard_normal(30000) * 50
        pattern = rng.uniform(-1e-3, 1e-3, 160)
        x[3500:4700] = np.tile(pattern, 8)[:1200]
        x[7600:8500] = np.tile(pattern, 6)[:900]
        x = x.astype(dtype)
        new, old = steps.split_points(x, SMALL), old_split_points(x, SMALL)
        assert new == old
        picks += old[0] != 3500 + 80  # not just the first candidate
    assert picks > 0


def test_split_points_match_real_speech():
    x = np.concatenate([load_audio(p, SAMPLE_RATE_16K) for p in data_clips()])
    x = steps.highpass(steps.normalize_input(np.tile(x, 3)))
    pad = steps.padding_for(48000, steps.LOW_MEMORY_CONFIG)
    pad = steps.Padding(pad.t_pad, pad.t_pad_tgt, pad.t_pad2, pad.t_query, x.shape[0] // 5, pad.t_max // 4)
    new = steps.split_points(x, pad)
    assert len(new) >= 4 and new == old_split_points(x, pad)


# --- output scaling and the envelope mix ----------------------------------------------------------
@pytest.mark.parametrize("rate", [0.0, 0.25, 0.7])
@pytest.mark.parametrize("seconds", [0.3, 3.7])
def test_mix_rms_within_one_int16_step(rate, seconds):
    rng = np.random.default_rng(int(rate * 10 + seconds))
    src = rng.standard_normal(int(seconds * 16000)) * np.linspace(0, 1, int(seconds * 16000)) ** 2
    out = (rng.standard_normal(int(seconds * 48000)) * 0.2).astype(np.float32)
    out[: out.shape[0] // 3] *= 1e-4  # a near-silent stretch: large gains
    source_rms = output.frame_rms(src, 16000)
    want = old_mix_rms(out, 48000, source_rms, rate)
    got = output.mix_rms_(out.copy(), 48000, source_rms, rate)
    assert np.abs(got - want).max() < INT16_STEP
    # a shorter output than the input's frames: the general path
    short = out[: out.shape[0] - 30000] if out.shape[0] > 60000 else out[: out.shape[0] // 2]
    want = old_mix_rms(short, 48000, source_rms, rate)
    got = output.mix_rms_(short.copy(), 48000, source_rms, rate)
    assert np.abs(got - want).max() < INT16_STEP


def test_mix_rms_is_not_the_identity():
    out = np.full(48000, 0.1, np.float32)
    src_rms = np.array([0.0, 0.4, 0.4])
    got = output.mix_rms_(out.copy(), 48000, src_rms, 0.0)
    assert got[0] == pytest.approx(0.0, abs=1e-6) and got[24000] == pytest.approx(0.4, rel=1e-4)


# --- x2 expansion and protect -------------------------------------------------------------------
@pytest.mark.parametrize("protect", [0.0, 0.33])
def test_features_to_frames_matches(protect):
    rng = np.random.default_rng(3)
    feats = rng.standard_normal((50, 8)).astype(np.float32)
    feats0 = rng.standard_normal((50, 8)).astype(np.float32)
    pitchf = np.where(rng.random(101) < 0.4, 0, rng.uniform(0.2, 300, 101)).astype(np.float32)
    pitch = steps.coarse_pitch(pitchf)
    got, n, _, _ = steps.features_to_frames(feats, feats0, 101 * 160, pitch, pitchf, protect)
    want, n_want = old_features_to_frames(feats, feats0, 101 * 160, pitch, pitchf, protect)
    assert n == n_want and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, np.repeat(feats, 2, axis=0))  # protection changed something
