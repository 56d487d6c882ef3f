"""Backend-independent pipeline steps against values derived by hand from RVC's formulas."""

from __future__ import annotations

import numpy as np
import pytest

from rvclab.pipeline import steps as ps
from rvclab.pipeline.output import BLOCK_SAMPLES


# --- configuration --------------------------------------------------------------------------
def test_padding_fp32_config_40k():
    pad = ps.padding_for(40000)
    # 16000 * (1, 6, 38, 41) s; the output-side pad uses the model rate: 40000 * 1.
    assert (pad.t_pad, pad.t_pad_tgt, pad.t_pad2) == (16000, 40000, 32000)
    assert (pad.t_query, pad.t_center, pad.t_max, pad.window) == (96000, 608000, 656000, 160)
    half = ps.padding_for(48000, ps.HALF_CONFIG)
    assert (half.t_pad, half.t_pad_tgt, half.t_query, half.t_center, half.t_max) == (
        48000,
        144000,
        160000,
        960000,
        1040000,
    )


# --- input conditioning ---------------------------------------------------------------------
def test_normalize_input_peak_and_bad_values():
    x = np.array([0.1, -1.9, 0.5], np.float32)
    y = ps.normalize_input(x)
    np.testing.assert_allclose(y, x * (0.95 / 1.9), rtol=1e-6)
    quiet = np.array([0.2, -0.9], np.float32)  # peak 0.9 <= 0.95: untouched
    np.testing.assert_array_equal(ps.normalize_input(quiet), quiet)
    with pytest.raises(ValueError, match="NaN/Inf"):
        ps.normalize_input(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        ps.normalize_input(np.zeros(0, np.float32))


def test_highpass_gain_at_cutoff_and_dc():
    t = np.arange(16000 * 4) / 16000
    mid = slice(16000, 3 * 16000)
    # Butterworth: |H(fc)| = 1/sqrt(2) per pass; filtfilt passes twice -> gain 0.5 at 48 Hz.
    y = ps.highpass(np.sin(2 * np.pi * 48 * t))
    assert y.dtype == np.float64
    assert abs(np.abs(y[mid]).max() - 0.5) < 0.01
    # 1 kHz passes (gain ~1), DC is removed.
    y = ps.highpass(0.3 + np.sin(2 * np.pi * 1000 * t))
    assert abs(np.abs(y[mid]).max() - 1.0) < 0.01
    assert abs(y[mid].mean()) < 1e-3
    with pytest.raises(ValueError, match="at least 19"):
        ps.highpass(np.zeros(18))


# --- split points and chunks ----------------------------------------------------------------
def _noise_with_gaps(n, gaps, seed=0):
    x = np.random.default_rng(seed).uniform(0.2, 1.0, n) * np.random.default_rng(seed + 1).choice(
        [-1.0, 1.0], n
    )
    for start, length in gaps:
        x[start : start + length] = 0.0
    return x


def test_quietness_is_centred_window_sum():
    x = np.arange(1.0, 401.0)
    q = ps.quietness(x)
    # element j sums |x| over original samples j-80 .. j+79 (reflected at the edges)
    assert q[200] == pytest.approx(x[120:280].sum())
    assert q[0] == pytest.approx(x[1:81][::-1].sum() + x[0:80].sum())


def test_split_points_land_in_silent_gaps_real_config():
    pad = ps.padding_for(40000)
    n = 80 * 16000
    x = _noise_with_gaps(n, [(568000, 3200), (1200000, 3200)])
    # A 160-sample window centred on j is all silent first at j = gap start + 80.
    assert ps.split_points(x, pad) == [568080, 1200080]
    chunks = ps.plan_chunks(x, pad)
    # splits rounded down to frames: 568000, 1200000; chunk i = [s, t + 2*t_pad + 160) samples,
    # frames [s//160, (t + 2*t_pad)//160); the last runs to the end (n + 2*t_pad).
    got = [(c.audio_start, c.audio_stop, c.frame_start, c.frame_stop) for c in chunks]
    assert got == [
        (0, 600160, 0, 3750),
        (568000, 1232160, 3550, 7700),
        (1200000, 1312000, 7500, 8200),
    ]
    assert all(c.trim_tgt == 40000 for c in chunks)
    # Output frames per chunk once HuBERT's frame count and the t_pad trim apply: the spans are
    # 3550, 3950 and 500 frames; the last chunk (700 frames, even) yields 2 fewer.
    from rvclab.models.hubert.config import HubertConfig

    def kept(c):
        n = (c.audio_stop - c.audio_start) // 160
        return min(n, 2 * HubertConfig().num_frames(c.audio_stop - c.audio_start)) - 200

    assert [kept(c) for c in chunks] == [3550, 3950, 498]


def test_no_split_below_t_max_and_first_minimum_wins():
    pad = ps.Padding(t_pad=320, t_pad_tgt=800, t_pad2=640, t_query=480, t_center=4000, t_max=4100)
    x = _noise_with_gaps(3940, [])
    assert ps.split_points(x, pad) == []  # 3940 + 160 = 4100 is not > t_max
    assert len(ps.plan_chunks(x, pad)) == 1
    x = _noise_with_gaps(9000, [(3700, 400), (4200, 400), (8300, 300)])
    assert ps.split_points(x, pad) == [3780, 8380]  # two equally silent gaps: the first wins
    x = _noise_with_gaps(9000, [(4300, 300), (8100, 300)])
    (c0, c1, c2) = ps.plan_chunks(x, pad)
    assert (c0.audio_start, c0.audio_stop) == (0, 4320 + 640 + 160)  # 4380 -> 4320
    assert (c1.audio_start, c1.frame_start, c1.frame_stop) == (4320, 27, (8160 + 640) // 160)
    assert (c2.audio_stop, c2.frame_stop) == (9000 + 640, (9000 + 640) // 160)
    padded = ps.pad_audio(x, pad)
    assert padded.shape == (9640,) and padded[319] == x[1] and padded[320] == x[0]
    seg = c1.audio(padded)
    assert seg.dtype == np.float32 and seg.shape == (8160 + 640 + 160 - 4320,)
    out = np.arange(10000)
    assert c1.trim(out).shape == (10000 - 1600,) and c1.trim(out)[0] == 800


# --- pitch ----------------------------------------------------------------------------------
def test_coarse_pitch_hand_values():
    f0 = np.array([0, 25, 49.9, 50, 100, 200, 440, 1100, 2000], np.float32)
    # (1127 ln(1+f/700) - 77.75497) * 254 / (1064.40823 - 77.75497) + 1, <=1 -> 1, >255 -> 255:
    # 100 Hz -> 19.72 -> 20; 200 Hz -> 53.90 -> 54; 440 Hz -> 122.48 -> 122
    assert ps.coarse_pitch(f0).tolist() == [1, 1, 1, 1, 20, 54, 122, 255, 255]
    assert ps.coarse_pitch(f0.astype(np.float64)).dtype == np.int32


def test_shift_and_curve_override_order():
    f0 = np.full(400, 220.0, np.float32)
    f0[0] = 0.0
    assert ps.shift_f0(f0, 12)[1] == pytest.approx(440.0)
    assert ps.shift_f0(f0, -12)[1] == pytest.approx(110.0) and ps.shift_f0(f0, 12)[0] == 0
    curve = np.array([[0.0, 100.0], [1.0, 200.0]], np.float32)
    coarse, f0bak = ps.postprocess_f0(f0, f0_up_key=12, f0_curve=curve, x_pad=1, n_frames=350)
    # D = round(1 * 100 + 1) = 101 frames from frame x_pad*100 = 100; the curve is not shifted.
    np.testing.assert_allclose(f0bak[100:201], 100.0 + np.arange(101), rtol=1e-6)
    assert f0bak[99] == pytest.approx(440.0) and f0bak[201] == pytest.approx(440.0)
    assert f0bak.shape == coarse.shape == (350,) and f0bak.dtype == np.float32
    assert coarse[100] == ps.coarse_pitch(np.array([100.0]))[0]


def test_curve_not_starting_at_zero_is_cut_short_as_upstream():
    curve = np.array([[0.5, 100.0], [1.0, 200.0]], np.float32)
    out = ps.apply_f0_curve(np.zeros(400, np.float32), curve, x_pad=1)
    # D = round(0.5*100 + 1) = 51 frames at positions 0..50, all left of the first time (50)
    # except the last: every value is the first curve value.
    np.testing.assert_array_equal(out[100:151], 100.0)
    assert out[151] == 0.0 and out[99] == 0.0


def test_read_f0_curve(tmp_path):
    path = tmp_path / "f0.txt"
    path.write_text("0,100\n0.5,150.5\n\n", encoding="utf-8")
    np.testing.assert_array_equal(ps.read_f0_curve(path), [[0, 100], [0.5, 150.5]])
    path.write_text("0,100\n0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"f0\.txt: line 2"):
        ps.read_f0_curve(path)


# --- features -------------------------------------------------------------------------------
def test_repeat_x2_equals_nearest_interpolation():
    torch = pytest.importorskip("torch")
    feats = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(feats.T[None]), scale_factor=2)[0].T
    np.testing.assert_array_equal(ps.repeat_x2(feats), ref.numpy())


def test_protect_weights():
    w = ps.protect_weights(np.array([0.0, 0.5, 1.0, 200.0]), 0.33)
    np.testing.assert_allclose(w, [0.33, 0.33, 1.0, 1.0], rtol=1e-6)


def test_features_to_frames_protect_and_trim():
    rng = np.random.default_rng(0)
    feats, feats0 = rng.standard_normal((2, 4, 3)).astype(np.float32)
    pitch = np.arange(1, 11)
    pitchf = np.array([0, 0, 120, 120, 120, 120, 0, 0, 130, 130, 130], np.float32)[:10]
    # 1600 samples -> p_len 10, but only 8 feature frames: p_len 8, pitch trimmed to 8
    up, p_len, p, pf = ps.features_to_frames(feats, feats0, 1600, pitch, pitchf, protect=0.0)
    assert up.shape == (8, 3) and p_len == 8 and p.shape == pf.shape == (8,)
    np.testing.assert_array_equal(up[[0, 1, 6, 7]], np.repeat(feats0, 2, 0)[[0, 1, 6, 7]])
    np.testing.assert_array_equal(up[2:6], np.repeat(feats, 2, 0)[2:6])
    up, *_ = ps.features_to_frames(feats, feats0, 1600, pitch, pitchf, protect=0.25)
    np.testing.assert_allclose(up[0], 0.25 * feats[0] + 0.75 * feats0[0], rtol=1e-6)
    # protect = 0.5 is "off" (as upstream's slider end): no mixing at all
    up, *_ = ps.features_to_frames(feats, feats0, 1600, pitch, pitchf, protect=0.5)
    np.testing.assert_array_equal(up, np.repeat(feats, 2, 0))
    # a model without F0: no pitch, no protection
    up, p_len, p, pf = ps.features_to_frames(feats, feats0, 1280, None, None, protect=0.0)
    assert p_len == 8 and p is None and np.array_equal(up, np.repeat(feats, 2, 0))


# --- output ---------------------------------------------------------------------------------
def test_frame_rms_and_interp_match_librosa_and_torch():
    librosa = pytest.importorskip("librosa")
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(40000 + 123)
    ref = librosa.feature.rms(y=x, frame_length=16000, hop_length=8000)[0]
    np.testing.assert_allclose(ps.frame_rms(x, 16000), ref, rtol=1e-5)
    v = np.random.default_rng(1).random(7)
    ref = torch.nn.functional.interpolate(torch.from_numpy(v)[None, None], size=1000, mode="linear")
    np.testing.assert_allclose(ps.interp_linear(v, 1000), ref[0, 0].numpy(), rtol=1e-12)


def test_change_rms_rates():
    t_in, t_out = np.arange(32000) / 16000, np.arange(80000) / 40000
    src = 0.5 * np.sin(2 * np.pi * 100 * t_in)  # whole periods in every half-second hop
    out = (0.1 * np.sin(2 * np.pi * 200 * t_out)).astype(np.float32)
    np.testing.assert_array_equal(ps.change_rms(src, 16000, out, 40000, 1.0), out)
    # every RMS frame of the input is 5x the output's, so the gain is 5**(1 - rate)
    np.testing.assert_allclose(
        ps.change_rms(src, 16000, out, 40000, 0.0), out * 5, rtol=1e-5, atol=1e-7
    )
    y = ps.change_rms(src, 16000, out, 40000, 0.5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, out * np.sqrt(5), rtol=1e-5, atol=1e-7)


def test_finalize_and_int16():
    np.testing.assert_allclose(ps.finalize_audio(np.array([0.5, -2.0])), [0.2475, -0.99], rtol=1e-6)
    x = np.array([0.3, -0.3, 0.5], np.float32)
    np.testing.assert_array_equal(ps.finalize_audio(x), x)
    # x * 32768 truncated toward zero: 9830.4 -> 9830, -9830.4 -> -9830
    assert ps.to_int16_webui(x).tolist() == [9830, -9830, 16384]
    # peak 2: scale 32768 / (2 / 0.99) = 16220.16; -2 -> -32440.32 -> -32440
    assert ps.to_int16_webui(np.array([-2.0, 1.0])).tolist() == [-32440, 16220]


# --- long inputs: the same numbers from bounded work ----------------------------------------
def _rms_whole(x, sr):
    """frame_rms as one expression over the whole padded array (the definition)."""
    hop = sr // 2
    x = np.asarray(x, dtype=np.float64)
    n_frames = 1 + x.shape[0] // hop
    blocks = np.sum(np.pad(x, (hop, hop))[: (n_frames + 1) * hop].reshape(n_frames + 1, hop) ** 2, axis=1)
    return np.sqrt(np.maximum((blocks[:-1] + blocks[1:]) / (2 * hop), 0.0))


def _interp_whole(values, size):
    pos = np.maximum((np.arange(size) + 0.5) * (len(values) / size) - 0.5, 0.0)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(values) - 1)
    frac = pos - i0
    return values[i0] * (1 - frac) + values[i1] * frac


@pytest.mark.parametrize("out_sr", [32000, 44100, 48000])
def test_output_stage_in_blocks_equals_the_whole_array_formula(out_sr):
    """Outputs longer than several blocks: the one-pass formulas (the RMS frames and the final
    scaling bit for bit, the envelope mix within one int16 step)."""
    rng = np.random.default_rng(out_sr)
    src = rng.standard_normal(16000 * 30 + 7) * 0.3
    out = (rng.standard_normal(out_sr * 30 + 11) * 0.4).astype(np.float32)
    assert out.size > 3 * BLOCK_SAMPLES
    np.testing.assert_array_equal(ps.frame_rms(out, out_sr), _rms_whole(out, out_sr))
    rms_in = _interp_whole(_rms_whole(src, 16000), out.size)
    rms_out = np.maximum(_interp_whole(_rms_whole(out, out_sr), out.size), 1e-6)
    want = (out * (rms_in**0.75 * rms_out**-0.75)).astype(np.float32)
    # the envelope mix runs in float32 (mix_rms_): within one int16 step of the float64 formula
    assert np.abs(ps.change_rms(src, 16000, out, out_sr, 0.25) - want).max() < 1 / 32768
    loud = out * 4
    np.testing.assert_array_equal(ps.finalize_audio(loud), loud / np.float32(float(np.abs(loud).max()) / 0.99))


def _quietness_whole(x, window=160):
    """quietness as defined: reflect-pad the whole input, add |x| of each shifted slice in turn."""
    padded = np.pad(x, (window // 2, window // 2), mode="reflect")
    total = np.zeros_like(x)
    for i in range(window):
        total += np.abs(padded[i : i + x.size])
    return total


def test_split_points_read_only_the_windows_they_need():
    pad = ps.Padding(t_pad=320, t_pad_tgt=800, t_pad2=640, t_query=480, t_center=4000, t_max=4100)
    x = _noise_with_gaps(20000, [(3600, 200), (7900, 300), (12500, 100), (16400, 100)], seed=3)
    whole = _quietness_whole(x)
    want = []
    for t in range(pad.t_center, x.size, pad.t_center):
        seg = whole[t - pad.t_query : t + pad.t_query]
        want.append(t - pad.t_query + int(np.flatnonzero(seg == seg.min())[0]))
    assert ps.split_points(x, pad) == want
    for a, b in ((0, 50), (19950, 20000), (3000, 9000)):  # reflected edges included
        np.testing.assert_array_equal(ps.quietness_range(x, a, b), whole[a:b])
