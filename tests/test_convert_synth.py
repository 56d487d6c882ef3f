"""Synthesizer conversion rules (torch voice .pth -> MLX): each rule, strictness, fp16/fp32,
old and new weight-norm key forms, atomic writes and the safetensors round trip."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from rvclab import tolerances as tol
from rvclab.convert import ConversionError
from rvclab.models.synth import rules
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.mlx.synthesizer import build_synthesizer as build_mlx
from rvclab.models.synth.parity import torch_voice
from rvclab.runtime import import_mlx

torch.set_num_threads(min(2, torch.get_num_threads()))
mx = import_mlx()
from mlx.utils import tree_flatten  # noqa: E402  (after the runtime is prepared)

SMALL = SynthConfig.preset("v2-48k").small()


def _arr(t):
    return t.detach().cpu().numpy()


@pytest.fixture(scope="module")
def voice():
    return torch_voice(SMALL, seed=3, weights="init")  # fp32; the fp16 test halves it


@pytest.fixture(scope="module")
def converted(voice):
    return rules.convert_checkpoint(voice)


def _rule_of(key: str) -> str:
    key = re.sub(r"\.weight_v$", ".weight_g", key)  # consumed by its magnitude's rule
    hits = [r.name for r in rules.RULES if r.match(key)]
    assert hits, f"no rule for {key}"
    return hits[0]


def test_every_parameter_and_rule_is_covered(voice, converted):
    arrays, meta = converted
    assert set(arrays) == set(rules.expected_shapes(SMALL))
    used = {_rule_of(k) for k in voice["weight"]}
    assert used == {r.name for r in rules.RULES} - {"posterior encoder"}
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert meta["format"] == rules.FORMAT and meta["version"] == "v2" and meta["f0"] == "1"


def test_weight_norm_fusion_matches_torch(voice, converted):
    arrays, _ = converted
    sd = voice["weight"]
    for base, layout in (("dec.ups.0", (1, 2, 0)), ("dec.resblocks.4.convs1.2", (0, 2, 1)),
                         ("flow.flows.2.enc.cond_layer", (0, 2, 1)),
                         ("flow.flows.6.enc.res_skip_layers.2", (0, 2, 1))):
        ref = _arr(torch._weight_norm(sd[f"{base}.weight_v"], sd[f"{base}.weight_g"], 0))
        got = arrays[f"{base}.weight"].transpose(np.argsort(layout))
        rel = np.abs(got - ref).max() / np.abs(ref).max()
        assert rel <= tol.WEIGHT_NORM_FUSION_REL, f"{base}: relative {rel:.2e}"


def test_layouts_and_copies_are_exact(voice, converted):
    arrays, _ = converted
    sd = voice["weight"]
    conv = "enc_p.encoder.ffn_layers.1.conv_1.weight"
    assert np.array_equal(arrays[conv], _arr(sd[conv]).transpose(0, 2, 1))
    for key in ("enc_p.encoder.norm_layers_1.0.gamma", "enc_p.encoder.norm_layers_2.1.beta",
                "enc_p.emb_phone.weight", "enc_p.emb_pitch.weight", "emb_g.weight",
                "dec.m_source.l_linear.weight", "dec.ups.1.bias", "dec.noise_convs.0.bias"):
        assert np.array_equal(arrays[key], _arr(sd[key])), key
    rel_k = "enc_p.encoder.attn_layers.1.emb_rel_k"
    assert arrays[rel_k].shape == (1, 21, SMALL.hidden_channels // SMALL.n_heads)
    assert np.array_equal(arrays[rel_k], _arr(sd[rel_k]))  # untransposed, no .weight suffix


def test_conv_transpose_layout_computes_torch_conv_transpose(voice, converted):

    from rvclab.models.synth.mlx.layers import conv_transpose1d

    arrays, _ = converted
    w = torch._weight_norm(voice["weight"]["dec.ups.0.weight_v"],
                           voice["weight"]["dec.ups.0.weight_g"], 0)
    u, k = SMALL.upsample_rates[0], SMALL.upsample_kernel_sizes[0]
    x = torch.randn(1, w.shape[0], 9, generator=torch.Generator().manual_seed(0))
    ref = torch.nn.functional.conv_transpose1d(x, w, stride=u, padding=(k - u) // 2)
    got = conv_transpose1d(mx.array(_arr(x).transpose(0, 2, 1)),
                           mx.array(arrays["dec.ups.0.weight"]), stride=u, padding=(k - u) // 2)
    assert np.abs(np.array(got) - _arr(ref).transpose(0, 2, 1)).max() < 1e-5


def test_flow_index_mapping_keeps_even_indices(converted):
    arrays, _ = converted
    idx = {int(m.group(1)) for k in arrays if (m := re.match(r"flow\.flows\.(\d+)\.", k))}
    assert idx == {0, 2, 4, 6}
    model = build_mlx(SMALL)
    assert [type(f).__name__ for f in model.flow.flows] == ["ResidualCouplingLayer", "Flip"] * 4


def _problems(ckpt) -> str:
    with pytest.raises(ConversionError) as exc:
        rules.convert_checkpoint(ckpt)
    return str(exc.value)


def _with(voice, weight):
    return {**voice, "weight": weight}


def test_missing_key_is_named(voice):
    w = dict(voice["weight"])
    del w["enc_p.encoder.attn_layers.1.conv_k.bias"]
    assert "enc_p.encoder.attn_layers.1.conv_k.bias: missing" in _problems(_with(voice, w))


def test_unused_key_is_named(voice):
    w = dict(voice["weight"])
    w["dec.extra_layer.weight"] = torch.zeros(3)
    w["flow.flows.1.pre.weight"] = torch.zeros(3)  # a Flip has no weights
    msg = _problems(_with(voice, w))
    assert "dec.extra_layer.weight (3,): unused" in msg and "flow.flows.1.pre.weight" in msg


def test_misshaped_key_is_named(voice):
    w = dict(voice["weight"])
    w["enc_p.emb_pitch.weight"] = torch.zeros(255, SMALL.hidden_channels)
    msg = _problems(_with(voice, w))
    assert "enc_p.emb_pitch.weight: expected shape (256, 16), found (255, 16)" in msg


def test_weight_norm_half_pair_is_named(voice):
    w = dict(voice["weight"])
    del w["dec.ups.1.weight_v"]
    assert "dec.ups.1.weight_g" in _problems(_with(voice, w))


def test_not_a_voice():
    assert not rules.matches({"model": {}})
    assert not rules.matches({"weight": {"enc_p.x": 1}, "config": [1]})
    with pytest.raises(ConversionError, match="not an RVC voice"):
        rules.convert_checkpoint({"state_dict": {}})


def test_nothing_written_on_failure(voice, tmp_path):
    from rvclab.checkpoints import save_torch_atomic

    w = dict(voice["weight"])
    del w["emb_g.weight"]
    src = save_torch_atomic(_with(voice, w), tmp_path / "bad.pth")
    out = tmp_path / "bad.safetensors"
    with pytest.raises(ConversionError, match="emb_g.weight"):
        rules.convert_file(src, out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.pth"]


def test_fp16_checkpoint_and_new_weight_norm_form(voice, converted):
    arrays, _ = converted
    half = {k: v.half() for k, v in voice["weight"].items()}
    a16, meta = rules.convert_checkpoint(_with(voice, half))
    assert meta["source_dtypes"] == "float16"
    key = "enc_p.encoder.attn_layers.0.conv_q.weight"
    assert np.array_equal(a16[key], _arr(half[key]).astype(np.float32).transpose(0, 2, 1))
    assert all(a.dtype == np.float32 for a in a16.values())
    new = {}
    for k, v in voice["weight"].items():
        k = k.replace(".weight_g", ".parametrizations.weight.original0")
        new[k.replace(".weight_v", ".parametrizations.weight.original1")] = v
    a_new, _ = rules.convert_checkpoint(_with(voice, new))
    assert set(a_new) == set(arrays)
    assert all(np.array_equal(a_new[k], arrays[k]) for k in arrays)


def test_round_trip_safetensors_and_pth(voice, converted, tmp_path):

    from rvclab.checkpoints import save_torch_atomic

    arrays, _ = converted
    pth = save_torch_atomic(voice, tmp_path / "voice.pth")
    st = rules.convert_file(pth, tmp_path / "voice.safetensors")
    m1, c1 = rules.load_mlx_voice(st)
    m2, c2 = rules.load_mlx_voice(pth)
    assert c1 == c2 == SMALL
    for model in (m1, m2):
        params = dict(tree_flatten(model.parameters()))
        assert set(params) == set(arrays)
        assert all(np.array_equal(np.array(params[k]), arrays[k]) for k in arrays)
    assert isinstance(m1.enc_p.encoder.norm_layers_1[0].gamma, mx.array)


def test_safetensors_with_wrong_shape_is_refused(converted, tmp_path):
    from rvclab.convert import save_safetensors_atomic

    arrays, meta = converted
    bad = dict(arrays)
    bad["dec.conv_post.weight"] = np.zeros((1, 5, 2), np.float32)
    path = save_safetensors_atomic(tmp_path / "bad.safetensors", bad, meta)
    with pytest.raises(ConversionError, match="dec.conv_post.weight: expected shape"):
        rules.load_mlx_voice(path)
