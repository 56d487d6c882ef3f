"""Conversion rules: RVC's ``rmvpe.pt`` (torch state dict) -> MLX RMVPE weights.

The MLX module mirrors the torch attribute paths, so every rule keeps the key and changes the
layout only:

* conv2d weights (O, I, kH, kW) -> (O, kH, kW, I) (U-Net 3x3 convs, 1x1 shortcuts, ``cnn``);
* conv-transpose2d weights (decoder ``conv1.0``) (I, O, kH, kW) -> (O, kH, kW, I);
* BatchNorm weight, bias, running_mean, running_var copied; ``num_batches_tracked`` dropped
  (only training uses it);
* GRU ``fc.0.gru.{weight,bias}_{ih,hh}_l{k}[_reverse]`` copied per direction (same gate order
  r, z, n on both sides: :mod:`rvclab.models.rmvpe.gru` implements torch's equations);
* ``fc.1`` linear copied; conv biases copied.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rvclab.checkpoints import state_dict_to_numpy
from rvclab.convert import (
    Rule,
    apply_rules,
    conv2d_layout,
    conv_transpose2d_layout,
    copy,
    mlx_param_shapes,
    transform,
)
from rvclab.models.rmvpe.config import RmvpeConfig


def _drop(src, key, m):
    return {}, []


_UNET = r"unet\.(?:encoder|intermediate|decoder)\..+"
RULES = [
    Rule("bn_num_batches", r".+\.num_batches_tracked", _drop,
         "BatchNorm step counter: training only, dropped"),
    Rule("bn", r".+\.(?:running_mean|running_var)|.+\.(?:bn|conv\.[14]|conv1\.1)\.(?:weight|bias)",
         copy(), "BatchNorm affine and running statistics, copied (eval mode uses them)"),
    Rule("conv_transpose2d", r"unet\.decoder\.layers\.\d+\.conv1\.0\.weight",
         transform(conv_transpose2d_layout), "decoder upsampling (I,O,kH,kW) -> (O,kH,kW,I)"),
    Rule("conv2d", rf"(?:{_UNET}\.(?:conv\.[03]|shortcut)|cnn)\.weight",
         transform(conv2d_layout), "3x3 / 1x1 convs (O,I,kH,kW) -> (O,kH,kW,I)"),
    Rule("conv_bias", rf"(?:{_UNET}\.shortcut|cnn)\.bias", copy(), "conv biases, copied"),
    Rule("gru", r"fc\.0\.gru\.(?:weight|bias)_(?:ih|hh)_l\d+(?:_reverse)?", copy(),
         "BiGRU, per direction, gate order (r, z, n) kept"),
    Rule("linear", r"fc\.1\.(?:weight|bias)", copy(), "output Linear(512, 360), copied"),
]


def expected_shapes(cfg: RmvpeConfig | None = None) -> dict[str, tuple]:
    """{MLX parameter path: shape} of the MLX E2E for ``cfg`` (built without computing)."""
    from rvclab.models.rmvpe.mlx import E2E

    return mlx_param_shapes(E2E(cfg or RmvpeConfig()))


def matches(ckpt) -> bool:
    """True for an RMVPE state dict (plain dict with the U-Net and BiGRU keys)."""
    if not isinstance(ckpt, Mapping):
        return False
    keys = set(ckpt)
    return "unet.encoder.bn.weight" in keys and any(k.startswith("fc.0.gru.") for k in keys)


def config_from_state_dict(sd: Mapping) -> RmvpeConfig:
    """Read the architecture sizes off the keys and shapes (defaults are upstream's)."""
    def shape(k):
        return tuple(np.shape(sd[k]))

    def count(prefix):
        idx = {int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix)}
        return max(idx) + 1 if idx else 0

    try:
        en_out = shape("unet.encoder.layers.0.conv.0.conv.0.weight")[0]
        hidden = shape("fc.0.gru.weight_hh_l0")[1]
        n_gru = sum(1 for k in sd if k.startswith("fc.0.gru.weight_ih_l") and "reverse" not in k)
        return RmvpeConfig(
            in_channels=shape("unet.encoder.bn.weight")[0],
            en_out_channels=en_out,
            en_de_layers=count("unet.encoder.layers."),
            inter_layers=count("unet.intermediate.layers."),
            n_blocks=count("unet.encoder.layers.0.conv."),
            gru_hidden=hidden,
            n_gru=n_gru,
            n_mels=shape("fc.0.gru.weight_ih_l0")[1] // 3,
            n_classes=shape("fc.1.weight")[0],
        )
    except KeyError as exc:
        raise ValueError(f"not an RMVPE state dict: key {exc} missing") from None


def convert_checkpoint(ckpt: Mapping, cfg: RmvpeConfig | None = None):
    """torch state dict (tensors or arrays) -> ({MLX path: float32 array}, metadata)."""
    src = ckpt if all(isinstance(v, np.ndarray) for v in ckpt.values()) else \
        state_dict_to_numpy(ckpt, dtype=np.float32)
    cfg = cfg or config_from_state_dict(src)
    arrays, _ = apply_rules(src, RULES, expected_shapes(cfg), context="rmvpe")
    meta = {"family": "rmvpe", "format": "rvclab-mlx", "config": {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}}
    return arrays, meta
