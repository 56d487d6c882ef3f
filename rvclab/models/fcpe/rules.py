"""Conversion rules: torchfcpe's ``assets/fcpe_c_v001.pt`` (its ``model`` state dict) -> MLX FCPE.

The MLX module (:mod:`rvclab.models.fcpe.mlx`) keeps the checkpoint's key names:

* ``input_stack.{0,3}.weight`` (O, I, 3) -> (O, 3, I) (conv1d layout); biases copied;
* ``input_stack.1`` GroupNorm and every LayerNorm (``...conformer.net.0``, ``...norm``,
  ``norm``) copied;
* ``...conformer.net.{2,6}.weight`` (O, I, 1) -> (O, 1, I); ``...net.4.conv.weight`` depthwise
  (C, 1, 31) -> (C, 31, 1);
* ``output_proj.weight_g`` / ``weight_v`` fused, w = g * v / ||v|| (norm over the input axis);
* buffers ``cent_table`` (360 bin centres in cents) and ``gaussian_blurred_cent_mask`` copied.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rvclab.checkpoints import state_dict_to_numpy
from rvclab.convert import (
    WEIGHT_G,
    Rule,
    apply_rules,
    conv1d_layout,
    copy,
    fuse_weight_norm,
    mlx_param_shapes,
    transform,
)

FAMILY = "fcpe"
_LAYER = r"net\.encoder_layers\.\d+"

RULES = [
    Rule("conv1d", rf"(?:input_stack\.[03]|{_LAYER}\.conformer\.net\.(?:[26]|4\.conv))\.weight",
         transform(conv1d_layout), "convs (O, I, k) -> (O, k, I): input k=3, 1x1, depthwise k=31"),
    Rule("conv_bias", rf"(?:input_stack\.[03]|{_LAYER}\.conformer\.net\.(?:[26]|4\.conv))\.bias",
         copy(), "conv biases, copied"),
    Rule("norms", rf"(?:input_stack\.1|{_LAYER}\.conformer\.net\.0|{_LAYER}\.norm|norm)\."
         r"(?:weight|bias)", copy(), "GroupNorm / LayerNorm affine, copied"),
    Rule("weight_norm", WEIGHT_G, fuse_weight_norm(dim=0),
         "output Linear: w = g * v / ||v|| fused (weight_v consumed with it)"),
    Rule("proj_bias", r"output_proj\.bias", copy(), "output Linear bias, copied"),
    Rule("buffers", r"cent_table|gaussian_blurred_cent_mask", copy(),
         "decoder buffers: bin centres (cents) and the training mask bound, copied"),
]


def expected_shapes() -> dict[str, tuple]:
    """{MLX parameter path: shape} of the MLX CFNaiveMelPE."""
    from rvclab.models.fcpe.mlx import CFNaiveMelPE

    return mlx_param_shapes(CFNaiveMelPE())


def matches(ckpt) -> bool:
    """True for torchfcpe's checkpoint dict (or its ``model`` state dict)."""
    if isinstance(ckpt, Mapping) and "model" in ckpt and isinstance(ckpt["model"], Mapping):
        ckpt = ckpt["model"]
    return isinstance(ckpt, Mapping) and "cent_table" in ckpt and "input_stack.0.weight" in ckpt


def convert_checkpoint(ckpt: Mapping):
    """torchfcpe checkpoint (or its ``model`` dict) -> ({MLX path: float32 array}, metadata)."""
    if "model" in ckpt and isinstance(ckpt["model"], Mapping):
        ckpt = ckpt["model"]
    src = ckpt if all(isinstance(v, np.ndarray) for v in ckpt.values()) else \
        state_dict_to_numpy(ckpt)
    arrays, _ = apply_rules(src, RULES, expected_shapes(), context="fcpe")
    return arrays, {"family": FAMILY, "format": "rvclab-mlx"}
