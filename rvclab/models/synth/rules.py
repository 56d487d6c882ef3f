"""Conversion rules: an RVC voice checkpoint (torch state dict) -> MLX synthesizer weights.

``RULES`` are pure (arrays in, arrays out), applied strictly: every source key consumed once, every
MLX parameter produced, every shape checked, errors naming the key. Weight norm fused in float64
(norm over all axes but 0); conv1d (O, I, K) -> (O, K, I); conv_transpose1d (I, O, K) -> (O, K, I);
LayerNorm gamma/beta, relative-position tables (1, 2*window+1, head_dim), linears and embeddings
copied; flow couplings keep their even indices. Output float32.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from rvclab.checkpoints import load_checkpoint, safetensors_metadata
from rvclab.convert import (
    ConversionError,
    Rule,
    apply_rules,
    conv1d_layout,
    conv_transpose1d_layout,
    copy,
    fuse_weight_norm,
    load_into_mlx,
    mlx_param_shapes,
    save_safetensors_atomic,
    transform,
)
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.mlx.synthesizer import build_synthesizer

FORMAT = "rvclab-synth"

# Key groups of the synthesizer (torch names = MLX names).
_UPS = r"dec\.ups\.\d+"  # weight-normed ConvTranspose1d
_WN_CONV = (r"dec\.resblocks\.\d+\.convs[12]?\.\d+"  # weight-normed Conv1d
            r"|flow\.flows\.\d*[02468]\.enc\.(?:in_layers\.\d+|res_skip_layers\.\d+|cond_layer)")
_PLAIN_CONV = (r"dec\.(?:conv_pre|conv_post|cond|noise_convs\.\d+)"
               r"|enc_p\.proj|enc_p\.encoder\.attn_layers\.\d+\.conv_[qkvo]"
               r"|enc_p\.encoder\.ffn_layers\.\d+\.conv_[12]"
               r"|flow\.flows\.\d*[02468]\.(?:pre|post)")
_LINEAR = r"enc_p\.emb_phone|dec\.m_source\.l_linear"
_WN_G = r"\.(?:weight_g|parametrizations\.weight\.original0)"


def _wn(group: str) -> str:
    return f"(?P<prefix>{group}){_WN_G}"


RULES: list[Rule] = [
    Rule("upsampler weight norm", _wn(_UPS), fuse_weight_norm(0, conv_transpose1d_layout),
         "ConvTranspose1d: fuse g*v/||v|| (norm over axes 1, 2 of (I, O, K); g is (I, 1, 1)), "
         "then (I, O, K) -> (O, K, I); consumes weight_v / original1"),
    Rule("conv1d weight norm", _wn(_WN_CONV), fuse_weight_norm(0, conv1d_layout),
         "ResBlock convs and flow WaveNet in_layers / res_skip_layers / cond_layer: fuse, then "
         "(O, I, K) -> (O, K, I); consumes weight_v / original1"),
    Rule("conv1d", f"(?:{_PLAIN_CONV})\\.weight", transform(conv1d_layout),
         "plain Conv1d kernels (conv_pre/post, cond, noise_convs, attention and FFN convs, "
         "flow pre/post): (O, I, K) -> (O, K, I)"),
    Rule("bias", f"(?:{_UPS}|{_WN_CONV}|{_PLAIN_CONV}|{_LINEAR})\\.bias", copy(), "copied"),
    Rule("LayerNorm", r"enc_p\.encoder\.norm_layers_[12]\.\d+\.(?:gamma|beta)", copy(),
         "gamma / beta copied; the MLX LayerNorm keeps these names"),
    Rule("relative position tables", r"enc_p\.encoder\.attn_layers\.\d+\.emb_rel_[kv]", copy(),
         "(1, 2*window+1, head_dim) copied untransposed, no .weight suffix"),
    Rule("linear", f"(?:{_LINEAR})\\.weight", copy(), "(out, in) copied"),
    Rule("embeddings", r"(?:enc_p\.emb_pitch|emb_g)\.weight", copy(), "(num, dim) copied"),
    Rule("posterior encoder", r"enc_q\..+", lambda src, key, m: ({}, []),
         "training-only spectrogram encoder: dropped (inference never runs it; saved voices "
         "usually omit it)"),
]
# Flow index mapping: torch's flow.flows interleaves [coupling, Flip, ...]; the MLX block keeps
# the same list, so coupling i stays at flows.{2i}. The patterns above accept even indices only:
# a weight at an odd index (a Flip has none) is reported as unused.


# --- checkpoint level -----------------------------------------------------------------------------
def matches(ckpt) -> bool:
    """True for an RVC voice checkpoint: a dict with ``weight`` (state dict) and ``config``."""
    return (isinstance(ckpt, Mapping) and isinstance(ckpt.get("weight"), Mapping)
            and isinstance(ckpt.get("config"), list | tuple)
            and any(str(k).startswith("dec.") for k in ckpt["weight"]))


def config_of(ckpt: Mapping) -> SynthConfig:
    """The SynthConfig of a voice checkpoint (config list + version + f0 + sr entries)."""
    try:
        return SynthConfig.from_checkpoint(dict(ckpt))
    except ValueError as exc:
        raise ConversionError([str(exc)], "config") from None


def expected_shapes(config: SynthConfig) -> dict[str, tuple]:
    """{mlx_key: shape} of every parameter of the MLX synthesizer for ``config``."""
    return mlx_param_shapes(build_synthesizer(config))


def metadata_of(config: SynthConfig, **extra) -> dict[str, str]:
    """safetensors metadata from which :func:`config_from_metadata` rebuilds the config."""
    return {"format": FORMAT, "config": json.dumps(config.to_config_list()),
            "version": config.version, "f0": str(int(config.f0)), "sr": config.sr_tag, **extra}


def config_from_metadata(md: Mapping[str, str], where: str = "") -> SynthConfig:
    if md.get("format") != FORMAT:
        raise ConversionError([f"format: {md.get('format')!r}, expected {FORMAT!r}"], where)
    return SynthConfig.from_config_list(json.loads(md["config"]), version=md["version"],
                                        f0=int(md["f0"]))


def convert_checkpoint(ckpt: Mapping) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """RVC voice checkpoint dict -> ({mlx_key: float32 array}, safetensors metadata).

    fp16 and fp32 checkpoints alike give float32 arrays (copies exact, fusions in float64)."""
    if not matches(ckpt):
        raise ConversionError(["not an RVC voice checkpoint (needs a 'weight' state dict and a "
                               "'config' list)"])
    config = config_of(ckpt)
    src = {}
    for k, v in ckpt["weight"].items():
        src[str(k)] = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
    dtypes = ",".join(sorted({str(a.dtype) for a in src.values()}))
    arrays, _ = apply_rules(src, RULES, expected_shapes(config), context=config.name)
    return arrays, metadata_of(config, source_dtypes=dtypes)


def convert_file(src_path, out_path) -> Path:
    """Convert a voice .pth to MLX .safetensors; nothing is written when conversion fails."""
    arrays, metadata = convert_checkpoint(load_checkpoint(src_path))
    return save_safetensors_atomic(out_path, arrays, metadata)


def load_mlx_voice(path):
    """An MLX synthesizer with weights, from a converted .safetensors or a voice .pth.

    Returns ``(model, config)``. Strict: every parameter set and every shape checked (errors
    name the key)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        config = config_from_metadata(safetensors_metadata(path), str(path))
        arrays = load_file(str(path))
    else:
        arrays, md = convert_checkpoint(load_checkpoint(path))
        config = config_from_metadata(md)
    model = build_synthesizer(config)
    load_into_mlx(model, arrays)
    return model, config
