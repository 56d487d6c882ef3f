"""Torch reference of the RVC synthesizer: upstream keys/shapes, config lists, .pth round trip,
weight-norm key forms, bad checkpoints, SineGen behaviour, output length, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rvclab.checkpoints import CheckpointError, load_checkpoint, save_torch_atomic
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.io import (
    expected_shapes,
    load_voice,
    model_from_weights,
    prepare_weights,
    rename_weight_norm_keys,
    voice_checkpoint,
)
from rvclab.models.synth.noise import SINE_NOISE, SINE_PHASE, Z_P, make_noise
from rvclab.models.synth.seeded import calibration_inputs, make, make_one
from rvclab.models.synth.torch.layers import WNConv1d, WNConvTranspose1d
from rvclab.models.synth.torch.synthesizer import build_synthesizer, synthesizer_class
from rvclab.models.synth.torch.vocoder import SineGen

torch.set_num_threads(min(2, torch.get_num_threads()))

# Facts about upstream v2 48k voice files (RVC WebUI configs/v2/48k.json built with its
# infer_pack models; Flip modules at odd flow indices hold no weights; enc_q.* stripped).
UPSTREAM_V2_48K = {
    "enc_p.emb_phone.weight": (192, 768),
    "enc_p.emb_pitch.weight": (256, 192),
    "enc_p.encoder.attn_layers.0.emb_rel_k": (1, 21, 96),
    "enc_p.encoder.attn_layers.5.emb_rel_v": (1, 21, 96),
    "enc_p.encoder.attn_layers.0.conv_q.weight": (192, 192, 1),
    "enc_p.encoder.norm_layers_1.0.gamma": (192,),
    "enc_p.encoder.norm_layers_2.5.beta": (192,),
    "enc_p.encoder.ffn_layers.0.conv_1.weight": (768, 192, 3),
    "enc_p.encoder.ffn_layers.0.conv_2.weight": (192, 768, 3),
    "enc_p.proj.weight": (384, 192, 1),
    "dec.m_source.l_linear.weight": (1, 1),
    "dec.noise_convs.0.weight": (256, 1, 80),  # stride 10*2*2 = 40, kernel 80
    "dec.noise_convs.3.weight": (32, 1, 1),
    "dec.conv_pre.weight": (512, 192, 7),
    "dec.ups.0.weight_g": (512, 1, 1),  # transposed conv: norm per input channel
    "dec.ups.0.weight_v": (512, 256, 24),
    "dec.ups.3.weight_v": (64, 32, 4),
    "dec.resblocks.0.convs1.0.weight_v": (256, 256, 3),
    "dec.resblocks.11.convs2.2.weight_v": (32, 32, 11),
    "dec.conv_post.weight": (1, 32, 7),
    "dec.cond.weight": (512, 256, 1),
    "flow.flows.0.pre.weight": (192, 96, 1),
    "flow.flows.0.enc.cond_layer.weight_g": (1152, 1, 1),
    "flow.flows.0.enc.cond_layer.weight_v": (1152, 256, 1),
    "flow.flows.2.enc.in_layers.0.weight_v": (384, 192, 5),
    "flow.flows.4.enc.res_skip_layers.0.weight_v": (384, 192, 1),
    "flow.flows.4.enc.res_skip_layers.2.weight_v": (192, 192, 1),
    "flow.flows.6.post.weight": (96, 192, 1),
    "emb_g.weight": (109, 256),
}
UPSTREAM_KEY_COUNTS = {("v2-48k", True): 457, ("v1-32k", True): 516, ("v1-40k", False): 446}

ALL = [(p, f0) for p in SynthConfig.presets() for f0 in (True, False)]


def _inputs(config, frames, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    phone = torch.randn(batch, frames, config.phone_dim, generator=g)
    lengths = torch.full((batch,), frames, dtype=torch.long)
    pitch = torch.randint(1, 256, (batch, frames), generator=g)
    f0 = 100 + 200 * torch.rand(batch, frames, generator=g)
    f0[:, frames // 4: frames // 4 + 3] = 0.0  # an unvoiced stretch
    sid = torch.zeros(batch, dtype=torch.long)
    return phone, lengths, pitch, f0, sid


def _run(model, config, frames, noise_seed=0, batch=1, seed=0):
    phone, lengths, pitch, f0, sid = _inputs(config, frames, batch, seed)
    noise = make_noise(config, batch, frames, noise_seed)
    with torch.no_grad():
        return model.infer(phone, lengths, pitch if config.f0 else None,
                           f0 if config.f0 else None, sid, noise)


@pytest.fixture(scope="module")
def full_v2_48k(tmp_path_factory):
    """The real-size v2 48k seeded voice, written once through the atomic saver."""
    path = tmp_path_factory.mktemp("voices") / "voice_v2_48k.pth"
    return make_one(path, SynthConfig.preset("v2-48k"), seed=0)


# --- keys and shapes ------------------------------------------------------------------------


def test_upstream_key_facts_v2_48k():
    shapes = expected_shapes(SynthConfig.preset("v2-48k"))
    for key, shape in UPSTREAM_V2_48K.items():
        assert shapes.get(key) == shape, (key, shapes.get(key), shape)
    assert "dec.conv_post.bias" not in shapes
    assert not any(k.startswith(("enc_q.", "flow.flows.1.", "flow.flows.3.")) for k in shapes)
    assert {int(k.split(".")[2]) for k in shapes if k.startswith("flow.flows.")} == {0, 2, 4, 6}


@pytest.mark.parametrize("preset,f0", ALL)
def test_key_sets_per_preset(preset, f0):
    config = SynthConfig.preset(preset, f0=f0)
    shapes = expected_shapes(config)
    n_ups = len(config.upsample_rates)
    assert {k.split(".")[2] for k in shapes if k.startswith("dec.ups.")} == {
        str(i) for i in range(n_ups)}
    assert len([k for k in shapes if k.startswith("dec.resblocks.")]) == n_ups * 3 * 6 * 3
    assert ("enc_p.emb_pitch.weight" in shapes) == f0
    assert any(k.startswith("dec.noise_convs.") for k in shapes) == f0
    assert shapes["enc_p.emb_phone.weight"] == (192, config.phone_dim)
    if (preset, f0) in UPSTREAM_KEY_COUNTS:
        assert len(shapes) == UPSTREAM_KEY_COUNTS[(preset, f0)]
    # the training-time posterior encoder adds only enc_q.* keys
    with torch.device("meta"):
        full = synthesizer_class(config)(*config.to_config_list(), with_enc_q=True)
    extra = set(full.state_dict()) - set(shapes)
    assert extra and all(k.startswith("enc_q.") for k in extra)
    assert full.state_dict()["enc_q.pre.weight"].shape == (192, config.spec_channels, 1)


# --- configs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", SynthConfig.presets())
def test_config_list_round_trip(preset):
    config = SynthConfig.preset(preset)
    values = config.to_config_list()
    assert len(values) == 18 and values[-1] == config.sr and values[9] == "1"
    assert isinstance(values[12], list) and isinstance(values[11][0], list)
    assert config.hop_length == config.sr // 100
    back = SynthConfig.from_config_list(values, version=config.version, f0=1)
    assert back == config
    ckpt = {"config": values, "version": config.version, "f0": 0, "sr": config.sr_tag}
    assert SynthConfig.from_checkpoint(ckpt) == SynthConfig.preset(preset, f0=False)


def test_config_presets_match_upstream_table():
    v40 = SynthConfig.preset("v2-40k")
    assert v40.upsample_rates == SynthConfig.preset("v1-40k").upsample_rates == (10, 10, 2, 2)
    assert SynthConfig.preset("v2-48k").upsample_kernel_sizes == (24, 20, 4, 4)
    assert SynthConfig.preset("v1-48k").upsample_rates == (10, 6, 2, 2, 2)
    assert SynthConfig.preset("v1-32k").spec_channels == 513
    assert SynthConfig.preset("v1-40k-nof0").f0 is False
    with pytest.raises(ValueError, match="unknown"):
        SynthConfig.preset("v3-48k")


def test_from_checkpoint_rules():
    values = SynthConfig.preset("v1-40k").to_config_list()
    # no version entry -> v1 (files from before v2); spk count from emb_g; Applio's Hz sr, bool f0
    weight = {"emb_g.weight": torch.zeros(4, 256)}
    cfg = SynthConfig.from_checkpoint({"config": values, "weight": weight, "sr": 40000,
                                       "f0": True})
    assert cfg.version == "v1" and cfg.spk_embed_dim == 4 and cfg.f0 is True
    with pytest.raises(ValueError, match="disagrees"):
        SynthConfig.from_checkpoint({"config": values, "sr": "48k"})
    with pytest.raises(ValueError, match="version"):
        SynthConfig.from_checkpoint({"config": values, "version": "v3"})


# --- weight norm ------------------------------------------------------------------------------


def test_weight_norm_wrappers_match_torch_parametrization():
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    x = torch.randn(2, 6, 40)
    for ours, ref in [
        (WNConv1d(6, 10, 5, dilation=3, padding=6),
         weight_norm(torch.nn.Conv1d(6, 10, 5, dilation=3, padding=6))),
        (WNConvTranspose1d(6, 4, 8, 4, padding=2),
         weight_norm(torch.nn.ConvTranspose1d(6, 4, 8, 4, padding=2))),
    ]:
        sd = ref.state_dict()
        assert set(sd) == {"bias", "parametrizations.weight.original0",
                           "parametrizations.weight.original1"}
        ours.load_state_dict(rename_weight_norm_keys(sd))
        assert ours.weight_g.shape == sd["parametrizations.weight.original0"].shape
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


# --- seeded .pth files ------------------------------------------------------------------------


def test_seeded_round_trip_small(tmp_path):
    config = SynthConfig.preset("v1-32k").small()
    path = make_one(tmp_path / "small.pth", config, seed=3)
    raw = load_checkpoint(path)
    assert list(raw) == ["weight", "config", "info", "sr", "f0", "version"]
    assert raw["sr"] == "32k" and raw["f0"] == 1 and raw["version"] == "v1"
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    cfg, model = load_voice(path)
    assert cfg == config
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        assert torch.equal(value, raw["weight"][key].float()), key
    # flows are not the identity, g is not ||v||, LayerNorm is not (1, 0)
    assert raw["weight"]["flow.flows.0.post.weight"].abs().max() > 0
    assert raw["weight"]["enc_p.encoder.norm_layers_1.0.beta"].abs().max() > 0
    # the seeded init leaves the caller's RNG alone, and files are not overwritten unless forced
    state = torch.random.get_rng_state()
    mtime = path.stat().st_mtime_ns
    assert make_one(path, config, seed=4) == path and path.stat().st_mtime_ns == mtime
    assert torch.equal(state, torch.random.get_rng_state())


def test_make_keeps_existing_files(tmp_path):
    paths = [tmp_path / n for n in ("voice_v1_32k.pth", "voice_v2_48k.pth")]
    for p in paths:
        p.write_bytes(b"keep")
    from rvclab.models.synth import seeded

    kept = {k: v for k, v in seeded.FILES.items() if v in {p.name for p in paths}}
    orig = seeded.FILES
    seeded.FILES = kept
    try:
        assert make(tmp_path, seed=0, force=False) == paths
    finally:
        seeded.FILES = orig
    assert all(p.read_bytes() == b"keep" for p in paths)


def test_full_v2_48k_round_trip_and_length(full_v2_48k):
    config, model = load_voice(full_v2_48k)
    assert config == SynthConfig.preset("v2-48k")
    frames = 12
    audio, mask, (z, z_p, m_p, logs_p) = _run(model, config, frames)
    assert audio.shape == (1, 1, frames * 480) and z.shape == (1, 192, frames)
    rms = float(audio.pow(2).mean().sqrt())
    assert 0.02 < rms < 0.5 and float(audio.abs().max()) < 1.0  # realistic, unsaturated
    # the new weight-norm key form loads to the very same model output
    raw = load_checkpoint(full_v2_48k)["weight"]
    renamed = {k.replace(".weight_g", ".parametrizations.weight.original0")
               .replace(".weight_v", ".parametrizations.weight.original1"): v
               for k, v in raw.items()}
    assert any("original1" in k for k in renamed)
    model_new = model_from_weights(config, prepare_weights(renamed))
    assert torch.equal(_run(model_new, config, frames)[0], audio)


def test_determinism_with_shared_noise():
    config = SynthConfig.preset("v2-32k").small()
    torch.manual_seed(2)
    model = build_synthesizer(config)
    audio = _run(model, config, 10, noise_seed=3)[0]
    torch.manual_seed(99)  # the global RNG plays no part
    assert torch.equal(audio, _run(model, config, 10, noise_seed=3)[0])
    assert not torch.allclose(audio, _run(model, config, 10, noise_seed=4)[0])


@pytest.mark.parametrize("preset,f0", [("v1-48k", True), ("v2-32k", False)])
def test_output_length_is_frames_times_hop(preset, f0):
    config = SynthConfig.preset(preset, f0=f0).small()
    torch.manual_seed(0)
    model = build_synthesizer(config)
    for frames in (7, 16):
        audio, mask, _ = _run(model, config, frames, batch=2)
        assert audio.shape == (2, 1, frames * config.hop_length)
        assert mask.shape == (2, 1, frames)


def test_padding_frames_do_not_leak():
    """A batch item's output on its valid frames is independent of padding after them."""
    config = SynthConfig.preset("v2-40k", f0=False).small()
    torch.manual_seed(1)
    model = build_synthesizer(config)
    phone, _, _, _, sid = _inputs(config, 12)
    noise = make_noise(config, 1, 12, 0)
    with torch.no_grad():
        _, _, (z_a, *_) = model.infer(phone, torch.tensor([12]), None, None, sid, noise)
        padded = torch.cat([phone, 5 * torch.randn(1, 6, config.phone_dim)], 1)
        noise_p = {Z_P: np.concatenate([noise[Z_P], np.ones((1, 8, 6), np.float32)], 2)}
        _, mask, (z_b, *_) = model.infer(padded, torch.tensor([12]), None, None, sid, noise_p)
    torch.testing.assert_close(z_b[..., :12], z_a, rtol=1e-5, atol=1e-5)
    assert float(z_b[..., 12:].abs().max()) == 0.0 and float(mask[..., 12:].max()) == 0.0


# --- SineGen ----------------------------------------------------------------------------------


def test_sinegen_voiced_phase_and_unvoiced_noise():
    sr, upp, frames = 48000, 480, 10
    gen = SineGen(sr)
    f0 = torch.full((1, frames), 220.0)
    f0[0, 6:] = 0.0
    zeros = torch.zeros(1, frames * upp, 1)
    sine, uv, _ = gen(f0, upp, torch.zeros(1, 1), zeros)
    n = torch.arange(6 * upp, dtype=torch.float64)
    # voiced: phase after sample n is (n + 1) * f0 / sr cycles, amplitude 0.1
    expected = 0.1 * torch.sin(2 * math.pi * (n + 1) * 220.0 / sr)
    torch.testing.assert_close(sine[0, : 6 * upp, 0].double(), expected, rtol=0, atol=2e-5)
    assert torch.equal(uv[0, :, 0], (torch.arange(frames * upp) < 6 * upp).float())
    assert float(sine[0, 6 * upp:].abs().max()) == 0.0
    # noise scale: 0.003 on voiced samples, 0.1 / 3 on unvoiced ones
    ones = torch.ones(1, frames * upp, 1)
    sine_n, _, noise = gen(f0, upp, torch.zeros(1, 1), ones)
    torch.testing.assert_close(noise[0, : 6 * upp], torch.full((6 * upp, 1), 0.003))
    torch.testing.assert_close(noise[0, 6 * upp:], torch.full((4 * upp, 1), 0.1 / 3))
    torch.testing.assert_close(sine_n - noise, sine)
    # an initial phase phi is added to frame 0's increment before the nearest upsampling, so
    # (as upstream) it accrues on each of the first upp samples: phase += min(n + 1, upp) * phi.
    # RVC's harmonic_num = 0 keeps phi at 0; this pins the general behaviour for the port.
    shifted, _, _ = gen(f0, upp, torch.full((1, 1), 0.25), zeros)
    acc = torch.clamp(n + 1, max=upp) * 0.25
    exp_shift = 0.1 * torch.sin(2 * math.pi * ((n + 1) * 220.0 / sr + acc))
    torch.testing.assert_close(shifted[0, : 6 * upp, 0].double(), exp_shift, rtol=0, atol=2e-5)


def test_sinegen_frame_wrapped_phase_is_the_f0_integral_with_a_constant_initial_phase():
    """The "frame-wrapped" form (Applio): the phase is the running integral of the frame F0, across
    frame changes and wraps, and the initial phase is a constant offset (the cumulative form
    accrues it over frame 0's samples instead); harmonic h runs at h times the phase."""
    sr, upp = 48000, 480
    f0 = torch.tensor([[220.0, 220.0, 331.5, 97.0, 1021.0, 0.0, 0.0, 440.0]])
    frames = f0.shape[1]
    gen = SineGen(sr, harmonic_num=2)
    zeros = torch.zeros(1, frames * upp, 3)
    phase0 = torch.tensor([[0.0, 0.25, 0.6]])
    sine, uv, _ = gen(f0, upp, phase0, zeros, "frame-wrapped")
    f = np.repeat(f0[0].double().numpy(), upp) / sr  # cycles per sample
    phase = np.cumsum(f)  # after sample n: the sum of the increments up to n
    expected = 0.1 * np.sin(2 * math.pi * (phase[:, None] * np.arange(1, 4) + phase0.double().numpy()))
    expected *= uv[0].double().numpy()
    np.testing.assert_allclose(sine[0].double().numpy(), expected, rtol=0, atol=5e-6)
    cumulative, _, _ = gen(f0, upp, phase0, zeros)
    assert float((cumulative - sine)[0, :upp, 1:].abs().max()) > 0.05  # the initial phases differ
    assert float((cumulative - sine)[0, 2 * upp:5 * upp, 0].abs().max()) < 1e-5  # the fundamental agrees
    with pytest.raises(ValueError, match="unknown NSF sine phase form 'wrapped'.*interpolated-cumsum, frame-wrapped"):
        gen(f0, upp, phase0, zeros, "wrapped")


def test_make_noise_shapes_and_determinism():
    config = SynthConfig.preset("v2-48k")
    a = make_noise(config, 2, 30, seed=5)
    assert a[Z_P].shape == (2, 192, 30) and a[SINE_NOISE].shape == (2, 30 * 480, 1)
    assert a[SINE_PHASE].shape == (2, 1) and not a[SINE_PHASE].any()
    assert all(v.dtype == np.float32 for v in a.values())
    b = make_noise(config, 2, 30, seed=5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a[Z_P], make_noise(config, 2, 30, seed=6)[Z_P])
    assert set(make_noise(SynthConfig.preset("v2-48k", f0=False), 1, 5, 0)) == {Z_P}


def test_wrong_noise_shape_is_named():
    config = SynthConfig.preset("v1-32k").small()
    model = build_synthesizer(config)
    phone, lengths, pitch, f0, sid = _inputs(config, 9)
    noise = make_noise(config, 1, 8, 0)
    with pytest.raises(ValueError, match=r"'z_p' expected shape \(1, 8, 9\), found \(1, 8, 8\)"):
        model.infer(phone, lengths, pitch, f0, sid, noise)


# --- bad checkpoints --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ckpt():
    config = SynthConfig.preset("v2-48k").small()
    torch.manual_seed(0)
    return voice_checkpoint(build_synthesizer(config), info="test")


def _save(tmp_path, ckpt, name="bad.pth"):
    return save_torch_atomic(ckpt, tmp_path / name)


def test_bad_missing_key(tmp_path, small_ckpt):
    ckpt = {**small_ckpt, "weight": dict(small_ckpt["weight"])}
    del ckpt["weight"]["flow.flows.2.enc.cond_layer.weight_v"]
    path = _save(tmp_path, ckpt)
    expected = (r"bad\.pth.*missing key 'flow\.flows\.2\.enc\.cond_layer\.weight_v' "
                r"\(expected shape \(96, 8, 1\)\)")
    with pytest.raises(CheckpointError, match=expected):
        load_voice(path)


def test_bad_wrong_shape(tmp_path, small_ckpt):
    ckpt = {**small_ckpt, "weight": dict(small_ckpt["weight"])}
    ckpt["weight"]["dec.conv_pre.weight"] = torch.zeros(32, 8, 5, dtype=torch.float16)
    path = _save(tmp_path, ckpt)
    with pytest.raises(CheckpointError, match=r"'dec\.conv_pre\.weight': expected shape "
                       r"\(32, 8, 7\), found \(32, 8, 5\)"):
        load_voice(path)


def test_bad_version_and_f0_and_generator(tmp_path, small_ckpt):
    path = _save(tmp_path, {**small_ckpt, "version": "v1"})
    with pytest.raises(CheckpointError, match=r"768-d features \(v2\).*version 'v1'"):
        load_voice(path)
    path = _save(tmp_path, {**small_ckpt, "f0": 0}, "nof0.pth")
    with pytest.raises(CheckpointError, match=r"nof0\.pth.*F0 model.*f0=0"):
        load_voice(path)
    cfg = SynthConfig.preset("v1-48k").small()  # 5 upsampling stages instead of 4
    values = cfg.to_config_list()
    values[-1] = 48000
    path = _save(tmp_path, {**small_ckpt, "config": values, "version": "v2"}, "gen.pth")
    with pytest.raises(CheckpointError, match=r"4 upsampling stages.*says 5"):
        load_voice(path)


def test_bad_not_a_voice(tmp_path):
    path = _save(tmp_path, {"model": {"a": torch.zeros(1)}}, "train.pth")
    with pytest.raises(CheckpointError, match=r"train\.pth: not an RVC voice file"):
        load_voice(path)


def test_new_key_form_and_enc_q_are_accepted(tmp_path, small_ckpt):
    weight = {k.replace(".weight_v", ".parametrizations.weight.original1"): v
              for k, v in small_ckpt["weight"].items()}
    weight["enc_q.pre.weight"] = torch.zeros(8, 1025, 1, dtype=torch.float16)  # ignored
    path = _save(tmp_path, {**small_ckpt, "weight": weight})
    cfg, model = load_voice(path)
    ref = model_from_weights(cfg, prepare_weights(small_ckpt["weight"]))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 ref.state_dict().values()))
    assert list(model.state_dict()) == list(ref.state_dict())


def test_calibration_inputs_are_valid():
    config = SynthConfig.preset("v1-40k")
    phone, lengths, pitch, f0, sid = calibration_inputs(config, 0, frames=30)
    assert phone.shape == (1, 30, 256) and pitch.min() >= 1 and pitch.max() <= 255
    assert (f0 == 0).sum() == 4 and (pitch[f0 == 0] == 1).all()
