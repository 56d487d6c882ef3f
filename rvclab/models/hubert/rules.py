"""Conversion rules for HuBERT / ContentVec: two source formats, one reference, one MLX layout.

Stage 1, ``to_reference``: a fairseq state dict (keys of ``hubert_base.pt``) or a transformers
one (``HubertModel`` + ContentVec's ``final_proj``) becomes the reference state dict of
:class:`rvclab.models.hubert.torch.HubertModel` (fairseq names). Training-only tensors (``mask_emb``,
``label_embs_concat``, ``masked_spec_embed``) are dropped by name; any other unknown key fails.

Stage 2, ``RULES``: reference names -> MLX arrays. Conv weights (O, I, K) -> (O, K, I); the
positional conv's weight norm is fused over dim 2 (g has shape (1, 1, K)); group/layer norms and
linears are copied. Strict: every key consumed by exactly one rule, every expected key produced,
shapes checked; errors name the key and the expected/found shapes.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import asdict

import numpy as np

from rvclab.checkpoints import CheckpointError, to_plain
from rvclab.convert import (
    ConversionError,
    Rule,
    apply_rules,
    conv1d_layout,
    copy,
    fuse_weight_norm,
    transform,
)
from rvclab.convert import check_shapes as _shape_problems
from rvclab.models.hubert.config import HubertConfig

FAMILY = "hubert"


# --- configs from either format's metadata (or from the weights alone) ----------------------------
def to_numpy_state(sd: Mapping) -> dict[str, np.ndarray]:
    """Tensors or arrays -> fp32 numpy (floats upcast, e.g. fp16 hubert_base.pt)."""
    out = {}
    for key, value in sd.items():
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float32)
        out[str(key)] = arr
    return out


def parse_conv_layers(spec) -> tuple:
    """fairseq's ``conv_feature_layers`` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4", parsed
    without eval: only list/tuple literals of ints, ``+`` and ``* int``."""
    if isinstance(spec, list | tuple):
        return tuple(tuple(int(v) for v in layer) for layer in spec)

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.List | ast.Tuple):
            return [walk(e) for e in node.elts]
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return walk(node.left) + walk(node.right)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return walk(node.left) * walk(node.right)
        raise ValueError(f"unsupported element in conv_feature_layers: {ast.dump(node)}")

    layers = walk(ast.parse(str(spec), mode="eval"))
    return tuple((int(d), int(k), int(s)) for d, k, s in layers)


def _check_activation(name: str, where: str) -> None:
    if name not in ("gelu",):
        raise ValueError(f"{where}: activation '{name}' is not supported (HuBERT uses exact gelu)")


def config_from_fairseq(ckpt: Mapping) -> HubertConfig:
    """HubertConfig from a fairseq checkpoint's ``args`` (Namespace) or ``cfg`` (dict)."""
    args = to_plain(ckpt.get("args"))
    if args:
        model, task = dict(args), dict(args)
    else:
        cfg = to_plain(ckpt.get("cfg")) or {}
        model, task = dict(cfg.get("model") or {}), dict(cfg.get("task") or {})
    if not model:
        raise CheckpointError("fairseq checkpoint has neither 'args' nor 'cfg' with a model")
    base = HubertConfig()
    _check_activation(model.get("activation_fn", "gelu"), "fairseq args.activation_fn")
    conv = model.get("conv_feature_layers")
    return HubertConfig(
        conv_layers=parse_conv_layers(conv) if conv else base.conv_layers,
        conv_bias=bool(model.get("conv_bias", base.conv_bias)),
        extractor_mode=model.get("extractor_mode", base.extractor_mode),
        embed_dim=int(model.get("encoder_embed_dim", base.embed_dim)),
        ffn_dim=int(model.get("encoder_ffn_embed_dim", base.ffn_dim)),
        num_layers=int(model.get("encoder_layers", base.num_layers)),
        num_heads=int(model.get("encoder_attention_heads", base.num_heads)),
        conv_pos=int(model.get("conv_pos", base.conv_pos)),
        conv_pos_groups=int(model.get("conv_pos_groups", base.conv_pos_groups)),
        final_dim=int(model.get("final_dim") or model.get("encoder_embed_dim", base.final_dim)),
        layer_norm_first=bool(model.get("layer_norm_first", base.layer_norm_first)),
        normalize=bool(task.get("normalize", base.normalize)),
        sample_rate=int(task.get("sample_rate", base.sample_rate)),
    )


def config_from_transformers(cfg: Mapping) -> HubertConfig:
    """HubertConfig from a transformers ``config.json`` dict (model_type 'hubert')."""
    base = HubertConfig()
    _check_activation(cfg.get("hidden_act", "gelu"), "config.json hidden_act")
    _check_activation(cfg.get("feat_extract_activation", "gelu"), "config.json feat_extract_act")
    dims, kernels, strides = cfg.get("conv_dim"), cfg.get("conv_kernel"), cfg.get("conv_stride")
    conv = tuple(zip(dims, kernels, strides)) if dims else base.conv_layers
    norm = cfg.get("feat_extract_norm", "group")
    embed = int(cfg.get("hidden_size", base.embed_dim))
    return HubertConfig(
        conv_layers=tuple((int(d), int(k), int(s)) for d, k, s in conv),
        conv_bias=bool(cfg.get("conv_bias", base.conv_bias)),
        extractor_mode="default" if norm == "group" else "layer_norm",
        embed_dim=embed,
        ffn_dim=int(cfg.get("intermediate_size", base.ffn_dim)),
        num_layers=int(cfg.get("num_hidden_layers", base.num_layers)),
        num_heads=int(cfg.get("num_attention_heads", base.num_heads)),
        conv_pos=int(cfg.get("num_conv_pos_embeddings", base.conv_pos)),
        conv_pos_groups=int(cfg.get("num_conv_pos_embedding_groups", base.conv_pos_groups)),
        final_dim=int(cfg.get("classifier_proj_size", base.final_dim)),
        layer_norm_first=bool(cfg.get("do_stable_layer_norm", base.layer_norm_first)),
        layer_norm_eps=float(cfg.get("layer_norm_eps", base.layer_norm_eps)),
    )


def config_from_state_dict(ref: Mapping[str, np.ndarray]) -> HubertConfig:
    """Best-effort config from reference-named weights alone (strides as HuBERT base; heads =
    embed_dim // 64). Used only for bare state dicts without args or config.json."""
    base = HubertConfig()
    convs = []
    while f"feature_extractor.conv_layers.{len(convs)}.0.weight" in ref:
        convs.append(ref[f"feature_extractor.conv_layers.{len(convs)}.0.weight"].shape)
    if len(convs) != len(base.conv_layers):
        raise ConversionError([f"feature_extractor.conv_layers: found {len(convs)} conv "
                                     f"layers, expected {len(base.conv_layers)}"])
    layers = 0
    while f"encoder.layers.{layers}.fc1.weight" in ref:
        layers += 1
    v = ref["encoder.pos_conv.0.weight_v"].shape
    embed = ref["post_extract_proj.weight"].shape[0]
    ffn = ref["encoder.layers.0.fc1.weight"].shape[0]
    return HubertConfig(
        conv_layers=tuple((s[0], s[2], st) for s, (_, _, st) in zip(convs, base.conv_layers)),
        conv_bias="feature_extractor.conv_layers.0.0.bias" in ref,
        embed_dim=embed, ffn_dim=ffn, num_layers=layers, num_heads=max(1, embed // 64),
        conv_pos=v[2], conv_pos_groups=embed // v[1],
        final_dim=ref["final_proj.weight"].shape[0],
    )


# --- stage 1: source formats -> reference (fairseq) names ---------------------------------------

# transformers HubertModel key -> fairseq key (regex, replacement); checked in order.
HF_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)$",
     r"feature_extractor.conv_layers.\1.0.\2"),
    (r"^feature_extractor\.conv_layers\.0\.layer_norm\.(weight|bias)$",
     r"feature_extractor.conv_layers.0.2.\1"),
    (r"^feature_projection\.layer_norm\.(weight|bias)$", r"layer_norm.\1"),
    (r"^feature_projection\.projection\.(weight|bias)$", r"post_extract_proj.\1"),
    (r"^encoder\.pos_conv_embed\.conv\.(weight_g|weight_v|bias)$", r"encoder.pos_conv.0.\1"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$",
     r"encoder.pos_conv.0.weight_g"),
    (r"^encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$",
     r"encoder.pos_conv.0.weight_v"),
    (r"^encoder\.layer_norm\.(weight|bias)$", r"encoder.layer_norm.\1"),
    (r"^encoder\.layers\.(\d+)\.attention\.(q|k|v|out)_proj\.(weight|bias)$",
     r"encoder.layers.\1.self_attn.\2_proj.\3"),
    (r"^encoder\.layers\.(\d+)\.layer_norm\.(weight|bias)$",
     r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.(weight|bias)$",
     r"encoder.layers.\1.fc1.\2"),
    (r"^encoder\.layers\.(\d+)\.feed_forward\.output_dense\.(weight|bias)$",
     r"encoder.layers.\1.fc2.\2"),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)$",
     r"encoder.layers.\1.final_layer_norm.\2"),
    (r"^final_proj\.(weight|bias)$", r"final_proj.\1"),
)
TRAINING_ONLY = ("mask_emb", "label_embs_concat", "masked_spec_embed")


def source_format(sd: Mapping[str, object]) -> str:
    """'fairseq' or 'transformers' from a state dict's key names (ConversionError otherwise)."""
    keys = set(sd)
    if any(k.startswith("feature_projection.") or k.startswith("hubert.") for k in keys):
        return "transformers"
    if "post_extract_proj.weight" in keys:
        return "fairseq"
    raise ConversionError([
        "not a HuBERT state dict: found neither 'post_extract_proj.weight' (fairseq) nor "
        f"'feature_projection.*' (transformers); first keys: {sorted(keys)[:5]}"
    ])


def to_reference(sd: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Either format -> reference (fairseq) names; returns (state dict, report)."""
    fmt = source_format(sd)
    out, dropped = {}, []
    for key, value in sd.items():
        name = key[len("hubert."):] if fmt == "transformers" and key.startswith("hubert.") else key
        if name in TRAINING_ONLY:
            dropped.append(key)
            continue
        if fmt == "transformers":
            for pattern, repl in HF_RENAMES:
                if re.match(pattern, name):
                    name = re.sub(pattern, repl, name)
                    break
            else:
                shape = tuple(np.shape(value))
                raise ConversionError([f"transformers key '{key}' {shape}: no HuBERT rule"])
        if name in out:
            raise ConversionError([f"key '{key}' maps onto '{name}', which is already set"])
        out[name] = value
    return out, {"format": fmt, "dropped": dropped}


def to_transformers(ref: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reference (fairseq) names -> transformers ``HubertModel`` names (+ ``final_proj``), the
    inverse of :data:`HF_RENAMES`; weight norm kept as ``weight_g``/``weight_v``."""
    inverse = (
        (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
        (r"^feature_extractor\.conv_layers\.0\.2\.",
         r"feature_extractor.conv_layers.0.layer_norm."),
        (r"^layer_norm\.", r"feature_projection.layer_norm."),
        (r"^post_extract_proj\.", r"feature_projection.projection."),
        (r"^encoder\.pos_conv\.0\.", r"encoder.pos_conv_embed.conv."),
        (r"^encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
        (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
        (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
        (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    )
    out = {}
    for key, value in ref.items():
        name = key
        for pattern, repl in inverse:
            if re.match(pattern, key):
                name = re.sub(pattern, repl, key)
                break
        out[name] = value
    return out


def reference_shapes(config: HubertConfig) -> dict[str, tuple]:
    """Every reference (torch, fairseq-named) parameter and its shape for ``config``."""
    shapes: dict[str, tuple] = {}
    in_ch = 1
    for i, (dim, kernel, _) in enumerate(config.conv_layers):
        shapes[f"feature_extractor.conv_layers.{i}.0.weight"] = (dim, in_ch, kernel)
        if config.conv_bias:
            shapes[f"feature_extractor.conv_layers.{i}.0.bias"] = (dim,)
        if i == 0:
            shapes["feature_extractor.conv_layers.0.2.weight"] = (dim,)
            shapes["feature_extractor.conv_layers.0.2.bias"] = (dim,)
        in_ch = dim
    c, e, f = config.conv_dim, config.embed_dim, config.ffn_dim
    shapes.update({"layer_norm.weight": (c,), "layer_norm.bias": (c,),
                   "post_extract_proj.weight": (e, c), "post_extract_proj.bias": (e,)})
    k, g = config.conv_pos, config.conv_pos_groups
    shapes.update({"encoder.pos_conv.0.weight_g": (1, 1, k),
                   "encoder.pos_conv.0.weight_v": (e, e // g, k),
                   "encoder.pos_conv.0.bias": (e,)})
    for i in range(config.num_layers):
        p = f"encoder.layers.{i}."
        for proj in ("k", "v", "q", "out"):
            shapes[f"{p}self_attn.{proj}_proj.weight"] = (e, e)
            shapes[f"{p}self_attn.{proj}_proj.bias"] = (e,)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            shapes[f"{p}{ln}.weight"] = (e,)
            shapes[f"{p}{ln}.bias"] = (e,)
        shapes.update({f"{p}fc1.weight": (f, e), f"{p}fc1.bias": (f,),
                       f"{p}fc2.weight": (e, f), f"{p}fc2.bias": (e,)})
    shapes.update({"encoder.layer_norm.weight": (e,), "encoder.layer_norm.bias": (e,),
                   "final_proj.weight": (config.final_dim, e),
                   "final_proj.bias": (config.final_dim,)})
    return shapes


def check_shapes(sd: Mapping[str, object], expected: Mapping[str, tuple], what: str) -> None:
    """Strict key and shape check; the error lists every problem with key and shapes."""
    problems = _shape_problems(sd, expected)
    if problems:
        raise ConversionError(problems, f"{what} (against the HuBERT config)")


# --- stage 2: reference names -> MLX arrays (on the engine in rvclab.convert) -------------------

RULES: tuple[Rule, ...] = (
    Rule("pos_conv weight norm", r"(?P<prefix>encoder\.pos_conv\.0)\.weight_g",
         fuse_weight_norm(dim=2, layout=conv1d_layout),
         "fuse g*v/||v|| over dim 2 (g is (1, 1, K): one norm per kernel tap, over out and in "
         "channels), then (O, I/groups, K) -> (O, K, I/groups)"),
    Rule("conv front end", r"feature_extractor\.conv_layers\.\d+\.0\.weight",
         transform(conv1d_layout), "conv1d (O, I, K) -> (O, K, I)"),
    Rule("group norm", r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", copy(),
         "first conv layer's per-channel group norm: unchanged"),
    Rule("layer norm", r"(encoder\.)?(layers\.\d+\.)?(self_attn_|final_)?layer_norm\.(weight|bias)",
         copy(), "feature, encoder and per-layer layer norms (weight/bias names kept)"),
    Rule("linear", r"(post_extract_proj|final_proj|encoder\.layers\.\d+\.(self_attn\.[qkv]_proj|"
         r"self_attn\.out_proj|fc1|fc2))\.(weight|bias)", copy(), "linears (out, in): unchanged"),
    Rule("bias", r"(encoder\.pos_conv\.0|feature_extractor\.conv_layers\.\d+\.0)\.bias", copy(),
         "conv biases: unchanged"),
)


def expected_shapes(config: HubertConfig) -> dict[str, tuple]:
    """Every MLX parameter of :class:`rvclab.models.hubert.mlx.HubertModel` and its shape."""
    shapes = {}
    for key, shape in reference_shapes(config).items():
        if key.endswith("pos_conv.0.weight_g"):
            continue
        if key.endswith("pos_conv.0.weight_v"):
            key = key.replace("weight_v", "weight")
        if len(shape) == 3:  # (O, I, K) -> (O, K, I)
            shape = (shape[0], shape[2], shape[1])
        shapes[key] = shape
    return shapes


def reference_to_mlx(ref: Mapping[str, np.ndarray], config: HubertConfig):
    """Reference state dict (checked against ``config``) -> (MLX arrays, rule report)."""
    check_shapes(ref, reference_shapes(config), "HuBERT reference weights")
    return apply_rules(ref, RULES, expected_shapes(config), context="HuBERT -> MLX")


# --- CLI hooks -------------------------------------------------------------------------------


def matches(ckpt) -> bool:
    """True for a fairseq HuBERT checkpoint dict or a flat HuBERT state dict of either format."""
    if not isinstance(ckpt, Mapping):
        return False
    sd = ckpt.get("model") if isinstance(ckpt.get("model"), Mapping) else ckpt
    try:
        source_format(sd)
    except ConversionError:
        return False
    return any(str(k).endswith("pos_conv.0.weight_v") or "pos_conv_embed" in str(k) for k in sd)


def convert_checkpoint(ckpt, config: HubertConfig | None = None):
    """A loaded fairseq checkpoint dict (or a flat state dict plus ``config``) -> (arrays,
    metadata). Metadata holds the config as JSON, the source format and dropped keys."""
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model"), Mapping):
        config = config or config_from_fairseq(ckpt)
        sd = ckpt["model"]
    else:
        sd = ckpt
    ref, info = to_reference(to_numpy_state(sd))
    config = config or config_from_state_dict(ref)
    arrays, _ = reference_to_mlx(ref, config)
    metadata = {"family": FAMILY, "format": info["format"],
                "config": json.dumps(asdict(config)), "dropped": ",".join(info["dropped"])}
    return arrays, metadata
