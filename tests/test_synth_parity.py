"""MLX synthesizer vs the torch reference: every configuration (small channel counts, real hop),
full-size v2-48k once, the noise-independent mode, and the pieces that decide sample-level
agreement (relative attention indexing, SineGen phase, reverse flow order)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rvclab import tolerances as tol
from rvclab.mlx.accumulate import blocked_matmul, blocked_sum
from rvclab.models.synth.config import PHASE_FORMS, SynthConfig
from rvclab.models.synth.mlx.layers import Conv1d
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.parity import (
    CONFIG_NAMES,
    clip_inputs,
    compare,
    models_from_voice,
    run_mlx,
    run_torch,
    torch_voice,
)
from rvclab.models.synth.textenc_precision import text_encoder_distances
from rvclab.runtime import import_mlx

torch.set_num_threads(min(2, torch.get_num_threads()))
mx = import_mlx()
from mlx.utils import tree_map  # noqa: E402  (after the runtime is prepared)

FRAMES = 24


def _check(row):
    assert not tol.guard_failures(row, tol.SYNTH_CHECKS), row  # the guards, far tighter than the goals
    # against the float64 result, the port is within the guard or within torch's own fp32 error
    textenc = tol.SYNTH_CHECKS["textenc_max_abs"].guard
    assert row["textenc_mlx_fp64_error"] <= max(textenc, row["textenc_ref_fp32_error"]), row
    assert row["wave_rms"] > 1e-4, row  # a silent output would agree trivially
    assert row["ok"] and row["guard_ok"], row


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_parity_small(name):
    row = compare(SynthConfig.preset(name).small(), seconds=FRAMES / 100, seed=1)
    assert row["samples"] == FRAMES * SynthConfig.preset(name).hop_length
    _check(row)


def test_parity_full_size_v2_48k():
    _check(compare(SynthConfig.preset("v2-48k"), seconds=0.2, seed=0))


# the TextEncoder at full size (the vocoder small: not run), seeded weights
TEXTENC_CONFIG = replace(SynthConfig.preset("v2-40k"), inter_channels=8, upsample_initial_channel=32, spk_embed_dim=3,
                         gin_channels=8)
TEXTENC_FRAMES = (100, 300)


def test_text_encoder_float32_is_as_close_to_float64_as_torchs():
    tmodel, mmodel = models_from_voice(torch_voice(TEXTENC_CONFIG, seed=0, weights="seeded"))
    for frames in TEXTENC_FRAMES:
        row = text_encoder_distances(tmodel.enc_p, mmodel.enc_p, clip_inputs(TEXTENC_CONFIG, frames, seed=0))
        assert row["torch_max_abs"] > 0 and row["frames"] == frames, row  # float32 does round
        assert not tol.guard_failures(row, tol.TEXTENC_F64_CHECKS), row
        assert tol.verdicts(row, tol.TEXTENC_F64_CHECKS) == {"ok": True, "guard_ok": True}, row


def test_blocked_sums_add_every_term():
    x = mx.array(np.arange(2 * 3 * 37, dtype=np.float32).reshape(2, 3, 37))  # exact in float32
    np.testing.assert_array_equal(np.array(blocked_sum(x))[..., 0], np.array(x).sum(-1))
    a = np.random.default_rng(0).integers(-8, 8, (5, 70)).astype(np.float32)
    w = np.random.default_rng(1).integers(-8, 8, (70, 9)).astype(np.float32)
    np.testing.assert_array_equal(np.array(blocked_matmul(mx.array(a), mx.array(w), 32)), a @ w)
    with pytest.raises(ValueError, match="70 features, the weight 9"):
        blocked_matmul(mx.array(a), mx.array(w.T), 32)
    with pytest.raises(ValueError, match="block must be >= 2"):
        blocked_sum(x, 1)
    with pytest.raises(ValueError, match="needs a plain 1x1 conv"):
        Conv1d(4, 4, 3, k_block=32)


def test_independent_noise_collapses_waveform_corr():
    config = SynthConfig.preset("v2-48k").small()
    shared = compare(config, seconds=0.3, seed=2, noise_mode="shared")
    indep = compare(config, seconds=0.3, seed=2, noise_mode="independent")
    assert shared["ok"] and shared["z_corr"] > 0.999999
    # Own draws: the latent decorrelates (the seed project's waveform corr was 0.36-0.40 with
    # trained voices; an untrained decoder is dominated by the speaker bias and the sine, so
    # its waveform corr falls less, but far below the goal).
    assert indep["z_corr"] < 0.9, indep
    assert indep["wave_corr"] < tol.SYNTH_WAVE_CORR_MIN and not indep["ok"], indep
    assert 1 - indep["wave_corr"] > 1e4 * (1 - shared["wave_corr"]), (indep, shared)
    assert tol.SYNTH_CHECKS["textenc_max_abs"].guard_ok(indep["textenc_max_abs"])  # noise enters after enc_p


# --- the pieces -----------------------------------------------------------------------------------
def test_relative_absolute_index_conversion():

    from rvclab.models.synth.mlx.attention import MultiHeadAttention as M

    n = 7
    rel = np.random.default_rng(0).standard_normal((1, 2, n, 2 * n - 1)).astype(np.float32)
    ab = np.array(M._relative_position_to_absolute_position(mx.array(rel)))
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    assert np.array_equal(ab, rel[:, :, i, j - i + n - 1])  # distance j - i at column n-1+j-i
    back = np.array(M._absolute_position_to_relative_position(mx.array(ab)))
    expect = np.zeros_like(rel)
    expect[:, :, i, j - i + n - 1] = ab
    assert np.array_equal(back, expect)


@pytest.mark.parametrize("phase_form", PHASE_FORMS)
def test_sinegen_matches_torch_over_two_seconds(phase_form):

    from rvclab.models.synth.mlx.vocoder import SineGen as MSine
    from rvclab.models.synth.torch.vocoder import SineGen as TSine

    frames, upp, sr = 200, 480, 48000
    f0 = 110.0 * 2.0 ** (np.arange(frames) / 60.0)
    f0[50:60] = 0.0
    f0[150:] = 1100.0  # fast phase wraps
    f0 = f0.astype(np.float32)[None]
    rng = np.random.default_rng(0)
    phase0 = np.zeros((1, 1), np.float32)
    noise = rng.standard_normal((1, frames * upp, 1)).astype(np.float32)
    ref, uv, _ = TSine(sr)(torch.from_numpy(f0), upp, torch.from_numpy(phase0),
                           torch.from_numpy(noise), phase_form)
    got, uv_m, _ = MSine(sr)(mx.array(f0), upp, phase0=phase0, noise=noise, phase_form=phase_form)
    assert np.array_equal(np.array(uv_m), uv.numpy())
    assert np.abs(np.array(got) - ref.numpy()).max() < 1e-6


def test_frame_wrapped_phase_reaches_the_source_through_infer_on_both_backends():
    """Synthesizer.infer(phase_form=...) changes the waveform (bit for bit on torch) and keeps the
    backends within the waveform goal."""
    config = SynthConfig.preset("v2-48k").small()
    tmodel, mmodel = models_from_voice(torch_voice(config, seed=0, weights="seeded"))
    assert torch.is_grad_enabled() and not any(p.requires_grad for p in tmodel.parameters())  # no global switch
    inp = clip_inputs(config, FRAMES, seed=2)
    noise = make_noise(config, 1, FRAMES, 3)
    cumulative = run_torch(tmodel, inp, noise)["wave"]
    wrapped = run_torch(tmodel, inp, noise, "frame-wrapped")["wave"]
    assert np.abs(wrapped).max() > 1e-3 and np.abs(wrapped - cumulative).max() > 0
    got = run_mlx(mmodel, inp, noise, True, "frame-wrapped")["wave"]
    assert np.abs(got - wrapped).max() <= tol.SYNTH_CHECKS["wave_max_abs"].guard


def test_reverse_flow_inverts_forward():

    from rvclab.models.synth.mlx.synthesizer import ResidualCouplingBlock


    flow = ResidualCouplingBlock(8, 16, 5, 1, 3, gin_channels=4)
    rng = np.random.default_rng(0)
    flow.update(tree_map(lambda p: mx.array(rng.standard_normal(p.shape) * 0.2, dtype=mx.float32),
                         flow.parameters()))
    x = mx.array(rng.standard_normal((1, 12, 8)), dtype=mx.float32)
    mask, g = mx.ones((1, 12, 1)), mx.array(rng.standard_normal((1, 1, 4)), dtype=mx.float32)
    y = flow(x, mask, g=g, reverse=False)
    assert float(mx.abs(y - x).max()) > 1e-2
    assert float(mx.abs(flow(y, mask, g=g, reverse=True) - x).max()) < 1e-5


def test_batch_with_unequal_lengths():
    from rvclab.models.synth.noise import make_noise
    from rvclab.models.synth.parity import clip_inputs, models_from_voice, run_mlx, run_torch, torch_voice

    config = SynthConfig.preset("v2-40k").small()
    tmodel, mmodel = models_from_voice(torch_voice(config, 4, weights="init"))
    one = clip_inputs(config, FRAMES, seed=4)
    inp = {k: np.concatenate([v, v[:, ::-1].copy() if v.ndim > 1 else v]) for k, v in one.items()
           if k != "clip"}
    inp["lengths"] = np.array([FRAMES, FRAMES - 7], np.int64)
    inp["sid"] = np.array([0, 2], np.int64)
    noise = make_noise(config, 2, FRAMES, 4)
    ref, out = run_torch(tmodel, inp, noise), run_mlx(mmodel, inp, noise, True)
    assert np.abs(ref["m_p"][1, FRAMES - 7:]).max() == 0  # masked frames
    for key, check in (("m_p", "textenc_max_abs"), ("logs_p", "textenc_max_abs"), ("z", "flow_max_abs"),
                       ("wave", "wave_max_abs")):
        assert np.abs(ref[key] - out[key]).max() <= tol.SYNTH_CHECKS[check].guard, key
    assert not np.allclose(ref["wave"][0], ref["wave"][1])
