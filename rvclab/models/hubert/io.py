"""Loading HuBERT / ContentVec feature extractors from both upstream formats.

fairseq ``hubert_base.pt`` (RVC WebUI; read with the safe loader, fp16 upcast) or a transformers
directory (``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``, Applio's ContentVec).
Both are renamed onto one reference state dict and checked key by key against the config
(:mod:`rvclab.models.hubert.rules`), so both give identical features.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rvclab.checkpoints import CheckpointError, load_checkpoint
from rvclab.models.hubert import rules
from rvclab.models.hubert.config import HubertConfig
from rvclab.models.hubert.rules import (
    config_from_fairseq,
    config_from_state_dict,
    config_from_transformers,
    to_numpy_state,
)
from rvclab.runtime import import_mlx

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class HubertWeights:
    """A checkpoint read into the reference layout: config, fp32 numpy arrays, provenance."""

    config: HubertConfig
    state: dict[str, np.ndarray]  # reference (fairseq) names, torch layouts
    format: str  # 'fairseq' | 'transformers'
    source: str
    dropped: list[str] = field(default_factory=list)


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
