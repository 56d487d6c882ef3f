"""HuBERT / ContentVec: both file formats, both versions, torch vs MLX parity, bad inputs.

Small config for most tests (same 320-sample hop and 12 layers); the real base config once on
0.5 s of speech. Too-short audio (< 400 samples = one frame) raises TooShortError.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from rvclab import tolerances
from rvclab.checkpoints import InertNamespace, InertObject, load_checkpoint
from rvclab.convert import ConversionError
from rvclab.models.hubert import io as hubert_io
from rvclab.models.hubert import parity, rules, seeded
from rvclab.models.hubert.config import HubertConfig, TooShortError

SMALL = HubertConfig.small()


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("hubert_small")
    seeded.make(out, seed=0, force=False, config=SMALL)
    return out


@pytest.fixture(scope="module")
def small_models(small_dir):
    weights = hubert_io.read_hubert(small_dir / seeded.FAIRSEQ_NAME)
    return hubert_io.torch_model(weights), hubert_io.mlx_model(weights)


@pytest.fixture(scope="module")
def speech():
    """2.1 s of real speech @ 16 kHz with an odd sample count."""
    return parity.test_inputs((33601,), clips=False)[0][1]


def assert_parity(ref, test):
    row = parity.compare(ref, test)
    assert row["frames_torch"] == row["frames_mlx"]
    assert row["cos_min"] >= tolerances.HUBERT_COS_MIN, row
    assert row["max_abs_rel"] <= tolerances.HUBERT_MAX_ABS_REL, row
    return row


# --- formats --------------------------------------------------------------------------------

# transformers HubertModel (+ ContentVec's final_proj) name -> fairseq HuBERT name, written out from
# the two libraries' module trees (transformers' modeling_hubert.py; fairseq's wav2vec2.py and
# hubert.py), independently of rules.HF_RENAMES and rules.to_transformers.
HF_TO_FAIRSEQ = {
    "feature_extractor.conv_layers.0.layer_norm.{p}": "feature_extractor.conv_layers.0.2.{p}",
    "feature_projection.layer_norm.{p}": "layer_norm.{p}",
    "feature_projection.projection.{p}": "post_extract_proj.{p}",
    "encoder.layer_norm.{p}": "encoder.layer_norm.{p}",
    "final_proj.{p}": "final_proj.{p}",
}
HF_TO_FAIRSEQ_LAYER = {  # inside encoder.layers.{i}
    "attention.q_proj": "self_attn.q_proj", "attention.k_proj": "self_attn.k_proj",
    "attention.v_proj": "self_attn.v_proj", "attention.out_proj": "self_attn.out_proj",
    "layer_norm": "self_attn_layer_norm", "final_layer_norm": "final_layer_norm",
    "feed_forward.intermediate_dense": "fc1", "feed_forward.output_dense": "fc2",
}


def expected_names(config: HubertConfig) -> dict[str, str]:
    """{transformers name: fairseq name} of every weight, for ``config`` (no conv bias)."""
    names = {hf.format(p=p): fs.format(p=p) for hf, fs in HF_TO_FAIRSEQ.items() for p in ("weight", "bias")}
    names.update({f"encoder.pos_conv_embed.conv.{p}": f"encoder.pos_conv.0.{p}"
                  for p in ("weight_g", "weight_v", "bias")})
    names.update({f"feature_extractor.conv_layers.{i}.conv.weight": f"feature_extractor.conv_layers.{i}.0.weight"
                  for i in range(len(config.conv_layers))})
    names.update({f"encoder.layers.{i}.{hf}.{p}": f"encoder.layers.{i}.{fs}.{p}"
                  for i in range(config.num_layers) for hf, fs in HF_TO_FAIRSEQ_LAYER.items()
                  for p in ("weight", "bias")})
    return names


def test_both_files_hold_the_same_weights_under_upstream_names(small_dir):
    """The two seeded files, read raw, against the hand-written name table; then the reader's
    mapping of the transformers names against the same table."""
    from safetensors.numpy import load_file

    names = expected_names(SMALL)
    hf = load_file(str(small_dir / seeded.TRANSFORMERS_DIR / "model.safetensors"))
    fs = {k: v.float().numpy() for k, v in load_checkpoint(small_dir / seeded.FAIRSEQ_NAME)["model"].items()}
    assert set(hf) == set(names) | {"masked_spec_embed"}
    assert set(fs) == set(names.values()) | {"mask_emb", "label_embs_concat"}
    different = [h for h, f in names.items() if not np.array_equal(hf[h], fs[f])]
    assert not different, f"the two formats differ under upstream's names: {different[:5]}"
    ref, report = rules.to_reference(hf)
    assert set(ref) == set(names.values()) and report["dropped"] == ["masked_spec_embed"]
    assert all(ref[f] is hf[h] for h, f in names.items())


def test_both_formats_give_identical_features(small_dir, speech):
    fs = hubert_io.read_hubert(small_dir / seeded.FAIRSEQ_NAME)
    hf = hubert_io.read_hubert(small_dir / seeded.TRANSFORMERS_DIR)
    assert (fs.format, hf.format) == ("fairseq", "transformers")
    assert fs.config == hf.config == SMALL
    assert sorted(fs.dropped) == ["label_embs_concat", "mask_emb"]
    assert hf.dropped == ["masked_spec_embed"]
    tf, th = hubert_io.torch_model(fs), hubert_io.torch_model(hf)
    mf, mh = hubert_io.mlx_model(fs), hubert_io.mlx_model(hf)
    for version in ("v1", "v2"):
        a = parity.features((tf, mf), speech, version)
        b = parity.features((th, mh), speech, version)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_parametrized_weight_norm_keys_load(small_dir, tmp_path):
    """Newer transformers saves weight norm as parametrizations.weight.original0/1."""
    from safetensors.numpy import load_file, save_file

    src = small_dir / seeded.TRANSFORMERS_DIR
    arrays = load_file(str(src / "model.safetensors"))
    p = "encoder.pos_conv_embed.conv."
    arrays[p + "parametrizations.weight.original0"] = arrays.pop(p + "weight_g")
    arrays[p + "parametrizations.weight.original1"] = arrays.pop(p + "weight_v")
    out = tmp_path / "hf"
    out.mkdir()
    save_file(arrays, str(out / "model.safetensors"))
    (out / "config.json").write_text((src / "config.json").read_text())
    a, b = hubert_io.read_hubert(src), hubert_io.read_hubert(out)
    assert a.state.keys() == b.state.keys()
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)


# --- parity, versions, frames -----------------------------------------------------------------


@pytest.mark.parametrize("version, dim", [("v1", SMALL.final_dim), ("v2", SMALL.embed_dim)])
def test_parity_small(small_models, speech, version, dim):
    ref, test = parity.features(small_models, speech, version)
    assert ref.shape == (SMALL.num_frames(len(speech)), dim)
    assert_parity(ref, test)


def test_parity_real_clip_with_padding_mask(small_models, clips):
    from rvclab.audio import load_audio

    tmodel, mmodel = small_models
    wav = load_audio(clips[0], 16000).astype(np.float32)[:24011]
    mask = np.zeros((1, len(wav)), bool)
    mask[0, 20000:] = True  # trailing padding
    with torch.no_grad():
        none = tmodel.extract_features(torch.from_numpy(wav), "v2").numpy()
        zeros = tmodel.extract_features(torch.from_numpy(wav), "v2",
                                        padding_mask=torch.zeros(1, len(wav), dtype=torch.bool))
        masked = tmodel.extract_features(torch.from_numpy(wav), "v2",
                                         padding_mask=torch.from_numpy(mask)).numpy()
    np.testing.assert_array_equal(none, zeros.numpy())  # RVC's all-False mask == no mask
    assert not np.allclose(none, masked)  # the mask changes the result...
    mx = pytest.importorskip("rvclab.runtime").import_mlx()
    got = np.array(mmodel.extract_features(mx.array(wav), "v2", padding_mask=mx.array(mask)))
    assert_parity(masked[0], got[0])  # ...identically in both backends


def test_versions_read_layers_9_and_12(small_models, speech):
    tmodel, _ = small_models
    wav = torch.from_numpy(speech)
    with torch.no_grad():
        v1 = tmodel.extract_features(wav, "v1")
        v2 = tmodel.extract_features(wav, "v2")
        layer9 = tmodel.layer_output(wav, 9)
        applio_v1 = tmodel.extract_features(wav, "v1", output_layer=12)
    torch.testing.assert_close(v1, tmodel.final_proj(layer9), rtol=0, atol=0)
    torch.testing.assert_close(v2, tmodel.layer_output(wav, 12), rtol=0, atol=0)
    torch.testing.assert_close(applio_v1, tmodel.final_proj(v2), rtol=0, atol=0)
    assert not torch.allclose(v1, applio_v1, atol=1e-3)
    with pytest.raises(ValueError, match="version"):
        tmodel.extract_features(wav, "v3")


@pytest.mark.parametrize("n", [400, 401, 719, 720, 721, 8001, 16017])
def test_frame_counts_odd_lengths(small_models, n):
    tmodel, mmodel = small_models
    wav = np.sin(np.arange(n, dtype=np.float32) * 0.05) * 0.3
    ref, test = parity.features(small_models, wav, "v2")
    expected = (n - 400) // 320 + 1  # 400-sample receptive field, 320-sample hop
    assert ref.shape[0] == test.shape[0] == SMALL.num_frames(n) == expected


@pytest.mark.parametrize("n", [0, 1, 399])
def test_too_short_audio_raises(small_models, n):
    tmodel, mmodel = small_models
    wav = np.zeros(n, np.float32)
    with pytest.raises(TooShortError, match="at least 400 samples"):
        tmodel.extract_features(torch.from_numpy(wav), "v1")
    mx = pytest.importorskip("rvclab.runtime").import_mlx()
    with pytest.raises(TooShortError, match="at least 400 samples"):
        mmodel.extract_features(mx.array(wav), "v1")


def test_normalize_flag_is_honoured(speech):
    cfg = HubertConfig(**{**SMALL.__dict__, "normalize": True})
    state = seeded.seeded_state(SMALL, 3)
    on = hubert_io.HubertWeights(cfg, state, "fairseq", "t")
    off = hubert_io.HubertWeights(SMALL, state, "fairseq", "t")
    models = (hubert_io.torch_model(on), hubert_io.mlx_model(on))
    ref, test = parity.features(models, speech * 3.0, "v2")
    assert_parity(ref, test)
    plain, _ = parity.features((hubert_io.torch_model(off), hubert_io.mlx_model(off)),
                               speech * 3.0, "v2")
    assert not np.allclose(ref, plain, atol=1e-3)


def test_real_base_config_short_audio():
    cfg = HubertConfig()
    weights = hubert_io.HubertWeights(cfg, seeded.seeded_state(cfg, 0), "fairseq", "seeded")
    models = (hubert_io.torch_model(weights), hubert_io.mlx_model(weights))
    wav = parity.test_inputs((8001,), clips=False)[0][1]
    for version, dim in (("v1", 256), ("v2", 768)):
        ref, test = parity.features(models, wav, version)
        assert ref.shape == (24, dim)
        assert_parity(ref, test)


# --- the fairseq payload and the safe loader -------------------------------------------------


@pytest.mark.parametrize("style", ["cfg", "args"])
def test_fairseq_payload_through_safe_loader(tmp_path, style):
    path = tmp_path / "hubert_base.pt"
    state = seeded.seeded_state(SMALL, 1)
    seeded.write_fairseq(path, state, SMALL, style=style)
    assert not any(name.startswith("fairseq") for name in sys.modules)  # stand-ins removed
    ckpt = load_checkpoint(path)
    dictionary = ckpt["task_state"]["dictionaries"][0]
    assert isinstance(dictionary, InertObject)
    assert dictionary._state["symbols"][:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert len(dictionary._state["symbols"]) == 504
    if style == "args":
        assert isinstance(ckpt["args"], InertNamespace) and ckpt["cfg"] is None
    else:
        assert ckpt["args"] is None and ckpt["cfg"]["model"]["encoder_layers"] == 12
    assert ckpt["model"]["post_extract_proj.weight"].dtype == torch.float16
    assert rules.config_from_fairseq(ckpt) == SMALL
    assert rules.matches(ckpt)
    arrays, meta = rules.convert_checkpoint(ckpt)
    assert meta["family"] == "hubert" and json.loads(meta["config"])["num_layers"] == 12
    assert {k: v.shape for k, v in arrays.items()} == rules.expected_shapes(SMALL)
    assert all(v.dtype == np.float32 for v in arrays.values())


def test_conv_feature_layers_parsed_without_eval():
    spec = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2"
    assert rules.parse_conv_layers(spec) == HubertConfig().conv_layers
    with pytest.raises(ValueError, match="unsupported"):
        rules.parse_conv_layers("__import__('os').getcwd()")


# --- strictness: wrong layer count or dims ---------------------------------------------------


def test_wrong_layer_count_names_the_key(tmp_path):
    state = seeded.seeded_state(SMALL, 0)
    fewer = HubertConfig(**{**SMALL.__dict__, "num_layers": 11})
    seeded.write_fairseq(tmp_path / "h.pt", state, fewer)  # args say 11, weights have 12
    with pytest.raises(ConversionError) as err:
        hubert_io.read_hubert(tmp_path / "h.pt")
    assert "encoder.layers.11.fc1.weight (128, 64): unexpected target key" in str(err.value)
    assert str(tmp_path / "h.pt") in str(err.value)


def test_wrong_dims_name_key_and_shapes(small_dir, tmp_path):
    src = small_dir / seeded.TRANSFORMERS_DIR
    out = tmp_path / "hf"
    out.mkdir()
    cfg = json.loads((src / "config.json").read_text())
    cfg["intermediate_size"] = 256  # weights have 128
    (out / "config.json").write_text(json.dumps(cfg))
    (out / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    with pytest.raises(ConversionError) as err:
        hubert_io.read_hubert(out)
    expected = "encoder.layers.0.fc1.weight: expected shape (256, 64), found (128, 64)"
    assert expected in str(err.value)


def test_unknown_transformers_key_is_refused():
    state = rules.to_transformers(seeded.seeded_state(SMALL, 0))
    state["encoder.layers.0.attention.rel_bias"] = np.zeros(3, np.float32)
    with pytest.raises(ConversionError, match="rel_bias.*no HuBERT rule"):
        rules.to_reference(state)


# --- conversion rules ------------------------------------------------------------------------


def test_pos_conv_weight_norm_fused_over_dim_2(small_models):
    tmodel, _ = small_models
    conv = tmodel.encoder.pos_conv[0]
    assert tuple(conv.weight_g.shape) == (1, 1, SMALL.conv_pos)
    ref = {k: v.numpy() for k, v in tmodel.state_dict().items()}
    arrays, report = rules.reference_to_mlx(ref, SMALL)
    fused = arrays["encoder.pos_conv.0.weight"].transpose(0, 2, 1)  # back to (O, I, K)
    expected = conv.weight().detach().numpy()
    rel = np.abs(fused - expected).max() / np.abs(expected).max()
    assert rel <= 1e-6
    from rvclab.convert import fused_weight

    # the same g with the norm taken per output channel (dim 0, the usual default)
    wrong = fused_weight(ref["encoder.pos_conv.0.weight_g"], ref["encoder.pos_conv.0.weight_v"],
                         dim=0)
    assert np.abs(wrong - expected).max() > 1e-2  # another dim gives another weight
    names = {row["target"]: row["rule"] for row in report.rows}
    assert names["encoder.pos_conv.0.weight"] == "pos_conv weight norm"
    assert names["feature_extractor.conv_layers.3.0.weight"] == "conv front end"
    assert names["feature_extractor.conv_layers.0.2.weight"] == "group norm"


def test_tanh_gelu_would_break_parity(small_models, speech, monkeypatch):
    """Upstream uses the exact (erf) GELU; the tanh form in the port fails both goals."""
    import mlx.nn as nn

    from rvclab.models.hubert import mlx as mlx_hubert

    exact = parity.compare(*parity.features(small_models, speech, "v2"))
    monkeypatch.setattr(mlx_hubert, "gelu", nn.gelu_approx)  # the port's one GELU entry point
    tanh = parity.compare(*parity.features(small_models, speech, "v2"))
    assert exact["ok"] and not tanh["ok"]
    assert tanh["max_abs_rel"] > 10 * tolerances.HUBERT_MAX_ABS_REL


@pytest.mark.parametrize("config", [SMALL, HubertConfig()], ids=["small", "base"])
def test_expected_shapes_match_the_mlx_model(config):
    from rvclab.convert import mlx_param_shapes
    from rvclab.models.hubert.mlx import HubertModel

    assert rules.expected_shapes(config) == mlx_param_shapes(HubertModel(config))


def test_matches_only_hubert_checkpoints():
    assert rules.matches(rules.to_transformers(seeded.seeded_state(SMALL, 0)))
    assert not rules.matches({"weight": {"enc_p.emb_phone.weight": np.zeros((2, 2))},
                              "config": [], "version": "v2"})
    assert not rules.matches({"model": {"unet.encoder.bn.weight": np.zeros(2)}})


def test_sdpa_attention_is_the_same_maths_with_other_rounding(small_models, speech):
    """The kernel transformers runs (sdpa) and fairseq's explicit one agree to rounding, and the
    switch takes effect (the two are not the same bits); a kernel name it does not know is refused."""
    torch_model, _ = small_models
    wav = torch.from_numpy(speech[:8000])[None]
    with torch.no_grad():
        out = {k: torch_model.extract_features(wav, "v2", attention=k)[0].numpy() for k in ("explicit", "sdpa")}
        masked = torch_model.extract_features(wav, "v2", padding_mask=torch.zeros_like(wav, dtype=torch.bool),
                                              attention="sdpa")[0].numpy()
    scale = np.abs(out["explicit"]).max()
    assert 0 < np.abs(out["sdpa"] - out["explicit"]).max() < 1e-5 * scale
    assert np.abs(masked - out["sdpa"]).max() < 1e-5 * scale  # an all-False mask changes nothing
    with pytest.raises(ValueError, match="attention must be one of"):
        torch_model.extract_features(wav, "v2", attention="flash")
