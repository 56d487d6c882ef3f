"""Loading HuBERT / ContentVec feature extractors from both upstream formats.

* fairseq: a ``hubert_base.pt`` file (RVC WebUI). Read with the safe loader
  (:func:`rvclab.checkpoints.load_checkpoint`); the config comes from its ``args`` Namespace
  (older files) or ``cfg`` dict (``cfg["model"]``, ``cfg["task"]``); weights may be fp16 and are
  upcast to fp32.
* transformers: a directory with ``config.json`` and ``model.safetensors`` or
  ``pytorch_model.bin`` (Applio's ContentVec and other embedders: ``HubertModel`` keys plus an
  extra ``final_proj``).

Both are renamed onto one reference state dict (:func:`rvclab.models.hubert.rules.to_reference`) and
checked key by key against the config, so both give identical features.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rvclab.checkpoints import CheckpointError, load_checkpoint, to_plain
from rvclab.models.hubert import rules
from rvclab.models.hubert.config import HubertConfig

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class HubertWeights:
    """A checkpoint read into the reference layout: config, fp32 numpy arrays, provenance."""

    config: HubertConfig
    state: dict[str, np.ndarray]  # reference (fairseq) names, torch layouts
    format: str  # 'fairseq' | 'transformers'
    source: str
    dropped: list[str] = field(default_factory=list)


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
        raise rules.ConversionError([f"feature_extractor.conv_layers: found {len(convs)} conv "
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


def read_hubert(path: str | Path) -> HubertWeights:
    """Read a fairseq ``.pt`` or a transformers directory into the reference layout, strictly
    checked against its config (errors name the key and expected/found shapes)."""
    path = Path(path)
    if path.is_dir():
        cfg_path = path / "config.json"
        if not cfg_path.exists():
            raise CheckpointError(f"{path}: a transformers HuBERT directory needs config.json")
        config = config_from_transformers(json.loads(cfg_path.read_text()))
        weights = next((path / n for n in HF_WEIGHT_FILES if (path / n).exists()), None)
        if weights is None:
            raise CheckpointError(f"{path}: no weights file (one of {', '.join(HF_WEIGHT_FILES)})")
        sd = load_checkpoint(weights)
        source = str(weights)
    else:
        ckpt = load_checkpoint(path)
        source = str(path)
        if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model"), Mapping):
            config, sd = config_from_fairseq(ckpt), ckpt["model"]
        elif isinstance(ckpt, Mapping):
            config, sd = None, ckpt
        else:
            raise CheckpointError(f"{path}: holds a {type(ckpt).__name__}, not a HuBERT checkpoint")
    try:
        ref, info = rules.to_reference(to_numpy_state(sd))
        config = config or config_from_state_dict(ref)
        rules.check_shapes(ref, rules.reference_shapes(config), source)
    except rules.ConversionError as exc:
        raise rules.ConversionError(exc.problems, source) from None
    return HubertWeights(config, ref, info["format"], source, info["dropped"])


def torch_model(weights: HubertWeights):
    """The torch reference model (eval mode) carrying ``weights``."""
    import torch

    from rvclab.models.hubert.torch import HubertModel

    model = HubertModel(weights.config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.state.items()}, strict=True)
    return model.eval()


def mlx_model(weights: HubertWeights):
    """The MLX model carrying ``weights`` (converted by the rule table)."""
    from rvclab.models.hubert.mlx import HubertModel
    from rvclab.runtime import import_mlx

    mx = import_mlx()

    arrays, _ = rules.reference_to_mlx(weights.state, weights.config)
    model = HubertModel(weights.config)
    model.load_weights([(k, mx.array(v)) for k, v in arrays.items()], strict=True)
    model.eval()
    return model


def load_hubert(path: str | Path, backend: str = "torch"):
    """Load a HuBERT/ContentVec extractor from either format; ``backend`` 'torch' or 'mlx'."""
    weights = read_hubert(path)
    if backend == "torch":
        return torch_model(weights)
    if backend == "mlx":
        return mlx_model(weights)
    raise ValueError(f"backend must be 'torch' or 'mlx', got {backend!r}")
