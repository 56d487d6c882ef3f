"""Loading RMVPE weights for either backend.

``load_rmvpe(path, backend)`` reads an upstream ``rmvpe.pt`` (plain torch state dict) through the
safe loader, or an MLX ``.safetensors`` written by ``rvclab convert-weights``, and returns the
eval-mode model of the asked backend (``rvclab.models.rmvpe.torch.E2E`` or ``rvclab.models.rmvpe.mlx.E2E``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.numpy import load_file

from rvclab.checkpoints import CheckpointError, load_checkpoint, safetensors_metadata
from rvclab.convert import load_into_mlx
from rvclab.models.rmvpe.config import RmvpeConfig
from rvclab.models.rmvpe.rules import config_from_state_dict, convert_checkpoint, matches
from rvclab.weights import default_rmvpe


def ensure_default_weights(path: str | os.PathLike | None = None) -> Path:
    """``path`` or weights/rmvpe.pt (:func:`rvclab.weights.default_rmvpe`: written by the seeded
    maker if missing)."""
    if path is not None:
        return Path(path)
    return default_rmvpe()


def load_state_dict(path: str | os.PathLike) -> dict:
    """The RMVPE state dict in ``path``; CheckpointError names the file when it is not one."""
    sd = load_checkpoint(path)
    if isinstance(sd, dict) and "model" in sd and matches(sd["model"]):
        sd = sd["model"]
    if not matches(sd):
        keys = list(sd)[:5] if isinstance(sd, dict) else type(sd).__name__
        raise CheckpointError(
            f"{path}: not an RMVPE checkpoint (expected keys 'unet.encoder.bn.weight' and "
            f"'fc.0.gru.*'; found {keys})")
    return sd


def load_rmvpe(path: str | os.PathLike | None = None, backend: str = "torch", cfg=None):
    """Eval-mode RMVPE E2E network for ``backend`` ('torch' or 'mlx') from ``path``."""
    path = ensure_default_weights(path)
    if backend == "mlx" and Path(path).suffix == ".safetensors":
        return _load_mlx_safetensors(path, cfg)
    sd = load_state_dict(path)
    cfg = cfg or config_from_state_dict(sd)
    if backend == "torch":
        from rvclab.models.rmvpe.torch import E2E

        model = E2E(cfg)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        return model.eval()
    if backend == "mlx":
        from rvclab.models.rmvpe.mlx import E2E

        arrays, _ = convert_checkpoint(sd, cfg)
        model = E2E(cfg)
        load_into_mlx(model, arrays)
        return model
    raise ValueError(f"backend must be 'torch' or 'mlx', got {backend!r}")


def _load_mlx_safetensors(path, cfg):
    from rvclab.models.rmvpe.mlx import E2E

    if cfg is None:
        meta = safetensors_metadata(path)
        raw = json.loads(meta.get("config", "{}"))
        if "kernel_size" in raw:
            raw["kernel_size"] = tuple(raw["kernel_size"])
        cfg = RmvpeConfig(**raw)
    model = E2E(cfg)
    load_into_mlx(model, load_file(str(path)))
    return model
