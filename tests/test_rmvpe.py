"""RMVPE: torch reference vs MLX port (front end, GRU, network, chunking, decoding, bad input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rvclab import tolerances as tol
from rvclab.models.rmvpe.config import RmvpeConfig

SMALL = RmvpeConfig(n_blocks=1, inter_layers=1, en_out_channels=4, gru_hidden=16)


@pytest.fixture(scope="module")
def mx():
    from rvclab.runtime import import_mlx

    return import_mlx()


@pytest.fixture(scope="module")
def small_pair(mx):
    """(torch RMVPE, MLX RMVPE, state dict) for the small seeded config."""
    from rvclab.convert import load_into_mlx
    from rvclab.models.rmvpe import mlx as M
    from rvclab.models.rmvpe import torch as T
    from rvclab.models.rmvpe.rules import convert_checkpoint
    from rvclab.models.rmvpe.seeded import seeded_state_dict

    sd = seeded_state_dict(3, SMALL)
    tm = T.E2E(SMALL)
    tm.load_state_dict(sd)
    arrays, _ = convert_checkpoint(sd)
    mm = M.E2E(SMALL)
    load_into_mlx(mm, arrays)
    return T.RMVPE(tm), M.RMVPE(mm), sd


@pytest.fixture(scope="module")
def speech():
    from rvclab.audio import data_clips, load_audio

    return load_audio(data_clips()[3], 16000).astype(np.float32)


# --- pieces ----------------------------------------------------------------------------------
def test_reflect_pad_matches_numpy(mx):
    from rvclab.models.rmvpe.mlx import reflect_pad

    x = np.arange(2 * 7, dtype=np.float32).reshape(2, 7)
    got = np.array(reflect_pad(mx.array(x), 1, 3, 5))
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (3, 5)), mode="reflect"))
    with pytest.raises(ValueError, match="reflect padding"):
        reflect_pad(mx.array(x), 1, 7, 0)


@pytest.mark.parametrize("layers,block", [(1, 512), (2, 512), (2, 5), (1, 23)])
def test_gru_equations_match_torch(mx, monkeypatch, layers, block):
    """``block``: steps per evaluated block of the recurrence (23 steps: one block, 5: several
    blocks and a partial last one); the result must not depend on it."""
    from rvclab.models.rmvpe import gru
    from rvclab.models.rmvpe.gru import GRU

    monkeypatch.setattr(gru, "EVAL_BLOCK_STEPS", block)

    torch.manual_seed(layers)
    ref = torch.nn.GRU(12, 9, num_layers=layers, batch_first=True, bidirectional=True)
    with torch.no_grad():  # non-zero biases so the hidden bias placement matters
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * 0.7)
    ours = GRU(12, 9, num_layers=layers, bidirectional=True)
    ours.load_weights([(k, mx.array(v.detach().numpy())) for k, v in ref.named_parameters()])
    x = torch.randn(2, 23, 12)
    with torch.no_grad():
        want, want_h = ref(x)
    for compiled in (True, False):
        got, got_h = ours(mx.array(x.numpy()), compiled=compiled)
        np.testing.assert_allclose(np.array(got), want.numpy(), atol=2e-6)
        np.testing.assert_allclose(np.array(got_h), want_h.numpy(), atol=2e-6)


def test_mlx_nn_gru_needs_the_hidden_bias_split(mx):
    """mlx.nn.GRU has torch's gate order but one input-side bias ``b`` plus ``bhn``: torch's
    ``bias_hh`` must be split (r, z parts into ``b``, n part into ``bhn``). Summing both biases
    into ``b`` (the naive mapping) moves b_hn outside the reset gate and changes the output."""
    import mlx.nn as nn

    from rvclab.models.rmvpe.gru import GRU

    h = 5
    ours = GRU(6, h)
    ours.bias_ih_l0 = mx.random.normal((3 * h,), key=mx.random.key(1))
    ours.bias_hh_l0 = mx.random.normal((3 * h,), key=mx.random.key(2))
    x = mx.random.normal((1, 8, 6), key=mx.random.key(0))
    want = ours(x)[0]
    theirs = nn.GRU(6, h)
    split = ours.bias_ih_l0 + mx.concatenate([ours.bias_hh_l0[:2 * h], mx.zeros(h)])
    theirs.update({"Wx": ours.weight_ih_l0, "Wh": ours.weight_hh_l0, "b": split,
                   "bhn": ours.bias_hh_l0[2 * h:]})
    assert float(mx.abs(theirs(x) - want).max()) < 1e-5
    theirs.update({"b": ours.bias_ih_l0 + ours.bias_hh_l0, "bhn": mx.zeros(h)})
    assert float(mx.abs(theirs(x) - want).max()) > 1e-2


def test_mel_matches_torch(mx, speech):
    from rvclab.models.rmvpe.mlx import MelSpectrogram as MM
    from rvclab.models.rmvpe.torch import MelSpectrogram as TM

    a = speech[:16000]
    want = TM()(torch.from_numpy(a)[None])[0].numpy().T  # (T, 128)
    got = np.array(MM()(mx.array(a)[None]))[0]
    assert got.shape == want.shape == (16000 // 160 + 1, 128)
    loud = want > np.log(1e-3)  # away from the clamp, where fp32 rounding is amplified by log
    assert np.abs(got - want)[loud].max() < 1e-4
    assert np.abs(got - want).max() < 5e-3


# --- network parity --------------------------------------------------------------------------
def test_small_network_parity(small_pair, speech):
    t, m, _ = small_pair
    st, sm = t.salience(speech), m.salience(speech)
    assert st.shape == sm.shape == (len(speech) // 160 + 1, 360)
    assert np.abs(st - sm).max() <= tol.RMVPE_CHECKS["salience_max_abs"].guard


def test_chunk_boundary_parity(small_pair, speech):
    """Long input across chunk boundaries (64-frame chunks here, 32000 upstream)."""
    t, m, _ = small_pair
    a = np.tile(speech, 2)[: 16000 * 5 + 77]  # 501 frames -> 512 padded -> 8 chunks
    st, sm = t.salience(a, chunk_frames=64), m.salience(a, chunk_frames=64)
    assert np.abs(st - sm).max() <= tol.RMVPE_CHECKS["salience_max_abs"].guard
    whole = t.salience(a)
    assert np.abs(whole - st).max() > 1e-4  # chunks really are independent (GRU restarts)
    with pytest.raises(ValueError, match="multiple of 32"):
        t.salience(a, chunk_frames=50)


@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_each_pad_mode_is_a_direct_torch_computation_and_both_backends_agree(small_pair, speech, pad_mode):
    """salience(pad_mode=m, chunk_frames=None) is the network on the log-mel padded with
    F.pad(mode=m) in one call, on torch and (within the guard) on MLX."""
    import torch.nn.functional as F

    t, m, _ = small_pair
    a = speech[:16000 + 4321]  # 128 frames -> 128 (no pad); cut to 120 frames below
    a = a[: 119 * 160]  # 120 frames -> 8 padded
    mel = t.mel(torch.from_numpy(a)[None])
    with torch.no_grad():
        want = t.model(F.pad(mel, (0, 128 - mel.shape[-1]), mode=pad_mode))[0, : mel.shape[-1]].numpy()
    got = t.salience(a, chunk_frames=None, pad_mode=pad_mode)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(m.salience(a, None, pad_mode) - got).max() <= tol.RMVPE_CHECKS["salience_max_abs"].guard


def test_pad_modes_differ_in_the_last_32_frames(small_pair, speech):
    """Reflect and zero padding give another salience on the last 32 frames (the U-Net reads the
    padding there; the backward GRU carries it further), on both backends alike."""
    t, m, _ = small_pair
    a = speech[: 119 * 160]  # 120 frames, 8 padded
    diffs = []
    for est in (t, m):
        r, z = est.salience(a, None, "reflect"), est.salience(a, None, "constant")
        diffs.append(r[-32:] - z[-32:])
        assert np.abs(diffs[-1]).max() > 1e-3
    assert np.abs(diffs[0] - diffs[1]).max() <= 2 * tol.RMVPE_CHECKS["salience_max_abs"].guard


def test_zero_padding_has_no_reflect_minimum_and_bad_framing_is_named(small_pair, speech):
    t, m, _ = small_pair
    short = speech[:1000]  # 7 frames: reflect cannot pad them to 32
    for est in (t, m):
        with pytest.raises(ValueError, match="reflect-pad"):
            est.salience(short, None, "reflect")
        assert est.salience(short, None, "constant").shape == (7, 360)
        with pytest.raises(ValueError, match="pad_mode 'edge'"):
            est.salience(short, None, "edge")
        with pytest.raises(ValueError, match="positive multiple of 32"):
            est.salience(speech, 0, "constant")


def test_one_call_differs_from_chunks(small_pair, speech):
    """chunk_frames=None runs one call; 64-frame chunks restart the GRU at each boundary."""
    t, m, _ = small_pair
    a = np.tile(speech, 2)[: 16000 * 5 + 77]
    whole_t, whole_m = t.salience(a, None, "constant"), m.salience(a, None, "constant")
    assert np.abs(whole_t - whole_m).max() <= tol.RMVPE_CHECKS["salience_max_abs"].guard
    assert np.abs(whole_t - t.salience(a, 64, "constant")).max() > 1e-4


def test_batchnorm_running_stats_matter(small_pair, speech, mx):
    """Seeded running statistics are not trivial: batch statistics give another salience."""
    from rvclab.models.rmvpe.mlx import BatchNorm2d

    _, m, sd = small_pair
    means = [v for k, v in sd.items() if k.endswith("running_mean")]
    assert min(float(v.abs().mean()) for v in means) > 1e-3
    base = m.salience(speech[:16000])
    bns = [mod for _, mod in m.model.named_modules() if isinstance(mod, BatchNorm2d)]
    for bn in bns:
        bn.train_mode = True
    try:
        bad = m.salience(speech[:16000])
    finally:
        for bn in bns:
            bn.train_mode = False
    assert np.abs(bad - base).max() > 1e-2


# --- decoding --------------------------------------------------------------------------------
def test_decode_bump_and_both_decoders(mx):
    from rvclab.models.rmvpe.parity import bump_salience, decoders_compare

    f0 = np.array([32.0, 55.0, 110.0, 220.5, 441.0, 987.0, 1900.0], np.float32)
    ft, fm = decoders_compare(bump_salience(f0))
    cents = 1200 * np.abs(np.log2(ft / f0))
    assert cents[1:-1].max() < 1.0  # interior: the 9-bin weighted mean recovers the pitch
    assert np.abs(1200 * np.log2(fm / ft)).max() < 1e-2


def test_decode_threshold_edges_and_constants(mx):
    from rvclab.models.rmvpe.mlx import decode as decode_mlx
    from rvclab.models.rmvpe.torch import cents_mapping, decode

    sal = np.zeros((5, 360), np.float32)
    sal[0, 100] = 0.03  # exactly the threshold: unvoiced (strictly greater needed)
    sal[1, 100] = 0.031
    sal[2, 0] = 0.5  # edge bins: the zero padding takes part in the weights
    sal[3, 359] = 0.5
    ft, fm = decode(sal, 0.03), np.array(decode_mlx(mx.array(sal), 0.03))
    assert ft[0] == 0 and ft[4] == 0 and ft[1] > 0
    np.testing.assert_allclose(ft[1], 10 * 2 ** ((20 * 100 + 1997.3794084376191) / 1200), rtol=1e-6)
    np.testing.assert_allclose(ft[2], 10 * 2 ** (1997.3794084376191 / 1200), rtol=1e-6)
    np.testing.assert_allclose(fm, ft, rtol=1e-5)
    assert cents_mapping().shape == (368,)


# --- real config, seeded weights -------------------------------------------------------------
@pytest.fixture(scope="module")
def real_pair(seeded_weights):
    from rvclab.models.rmvpe.f0 import get_estimator

    path = seeded_weights / "rmvpe.pt"
    return get_estimator("torch", path), get_estimator("mlx", path), path


def test_real_config_parity_on_a_clip(real_pair, speech):
    from rvclab.models.rmvpe.parity import check_clip

    t, m, _ = real_pair
    row = check_clip("librivox_male_0880", speech, t, m)
    assert not tol.guard_failures(row, tol.RMVPE_CHECKS), row
    assert row["ok"] and row["guard_ok"], row
    assert row["voiced_torch"] > 0.3 * row["frames"]  # seeded weights voice part of speech
    assert row["bump_frames_voiced_both"] == row["frames"]


def test_silence_too_short_and_empty(real_pair):
    from rvclab.models.rmvpe.f0 import estimate

    _, _, path = real_pair
    for backend in ("torch", "mlx"):
        f0, voiced = estimate(np.zeros(8000, np.float32), backend, model_path=path)
        assert f0.shape == (51,) and not voiced.any() and np.isfinite(f0).all()
        f0, voiced = estimate(np.zeros(0, np.float32), backend, model_path=path)
        assert f0.shape == (0,)
        with pytest.raises(ValueError, match="too short"):
            estimate(np.zeros(1000, np.float32), backend, model_path=path)
        f0, _ = estimate(np.zeros(2720, np.float32), backend, model_path=path)  # 17 frames: ok
        assert f0.shape == (18,)
        f0, voiced = estimate(np.zeros(1000, np.float32), backend, model_path=path, pad_mode="constant")
        assert f0.shape == (7,) and np.isfinite(f0).all()  # zero padding has no minimum


# --- checkpoints -----------------------------------------------------------------------------
def test_conversion_keys_and_layouts(small_pair):
    from rvclab.models.rmvpe.rules import convert_checkpoint, matches

    _, _, sd = small_pair
    assert matches(sd) and not matches({"enc_p.emb_phone.weight": 0})
    arrays, meta = convert_checkpoint(sd)
    w = sd["unet.encoder.layers.0.conv.0.conv.0.weight"].numpy()
    np.testing.assert_array_equal(arrays["unet.encoder.layers.0.conv.0.conv.0.weight"],
                                  w.transpose(0, 2, 3, 1))
    wt = sd["unet.decoder.layers.0.conv1.0.weight"].numpy()
    np.testing.assert_array_equal(arrays["unet.decoder.layers.0.conv1.0.weight"],
                                  wt.transpose(1, 2, 3, 0))
    assert "fc.0.gru.weight_hh_l0_reverse" in arrays
    assert not any(k.endswith("num_batches_tracked") for k in arrays)
    assert "unet.encoder.layers.0.conv.0.shortcut.weight" in arrays
    assert not any("shortcut" in k and ("running" in k) for k in sd)  # no BN on the shortcut
    assert meta["family"] == "rmvpe"


def test_bad_checkpoint_names_key_and_shapes(small_pair, tmp_path):
    from rvclab.checkpoints import CheckpointError
    from rvclab.convert import ConversionError
    from rvclab.models.rmvpe.io import load_rmvpe
    from rvclab.models.rmvpe.rules import convert_checkpoint

    _, _, sd = small_pair
    bad = dict(sd)
    bad["fc.1.weight"] = torch.zeros(360, 31)
    with pytest.raises(ConversionError, match=r"fc\.1\.weight.*\(360, 32\).*\(360, 31\)"):
        convert_checkpoint(bad, SMALL)
    missing = {k: v for k, v in sd.items() if k != "cnn.bias"}
    with pytest.raises(ConversionError, match=r"cnn\.bias: missing"):
        convert_checkpoint(missing, SMALL)
    path = tmp_path / "hubert_like.pt"
    torch.save({"encoder.layers.0.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an RMVPE checkpoint"):
        load_rmvpe(path, "torch")
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match=r"fc\.1\.weight"):
        load_rmvpe(path, "torch")


def test_pitch_interface_aligns_rmvpe_to_rvc_frames(real_pair, speech):
    from rvclab.pitch import estimate_f0

    _, _, path = real_pair
    a = speech[:32000 + 123]  # 2 s: the seeded net voices none of the first second alone
    res_t = estimate_f0(a, "rmvpe", backend="torch", model_path=path)
    res_m = estimate_f0(a, "rmvpe", backend="mlx", model_path=path)
    assert res_t.n_frames == res_m.n_frames == len(a) // 160  # RVC's p_len
    assert np.mean(res_t.voiced == res_m.voiced) >= tol.RMVPE_CHECKS["voicing_agreement"].guard
    both = res_t.voiced & res_m.voiced
    assert both.sum() > 0.3 * res_t.n_frames  # the F0 values below are compared on real frames
    err = np.abs(1200 * np.log2(res_m.f0[both] / res_t.f0[both]))  # cents
    assert np.median(err) <= tol.RMVPE_CHECKS["f0_median_cents"].guard, np.median(err)
    assert np.percentile(err, 99) <= tol.RMVPE_CHECKS["f0_p99_cents"].guard, np.percentile(err, 99)


def test_batchnorm_folding_is_exact():
    """conv then eval-mode BatchNorm == one conv with folded weight and bias (non-trivial stats)."""
    import numpy as np

    import rvclab.mlx  # noqa: F401
    from rvclab.mlx import ops
    from rvclab.models.rmvpe.mlx import BatchNorm2d, fold_batchnorm

    mx = rvclab.runtime.import_mlx()
    rng = np.random.default_rng(3)
    x = mx.array(rng.standard_normal((1, 12, 10, 4)).astype(np.float32))
    w = mx.array(rng.standard_normal((6, 3, 3, 4)).astype(np.float32) * 0.3)
    b = mx.array(rng.standard_normal(6).astype(np.float32))
    bn = BatchNorm2d(6)
    bn.weight = mx.array(rng.uniform(0.5, 2, 6).astype(np.float32))
    bn.bias = mx.array(rng.standard_normal(6).astype(np.float32))
    bn.running_mean = mx.array(rng.standard_normal(6).astype(np.float32))
    bn.running_var = mx.array(rng.uniform(0.2, 3, 6).astype(np.float32))
    ref = bn(ops.conv2d(x, w, b, padding=1))
    wf, bf = fold_batchnorm(w, b, bn)
    got = ops.conv2d(x, wf, bf, padding=1)
    ref, got = np.array(ref), np.array(got)
    assert np.max(np.abs(got - ref)) <= 1e-5 * np.max(np.abs(ref))
