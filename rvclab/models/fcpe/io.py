"""Loading FCPE: torchfcpe's bundled ``assets/fcpe_c_v001.pt`` for either backend.

The file is read with the safe loader; its ``model`` state dict is checked key by key against the
torch reference, and only the conv-only model is accepted. The MLX model gets the same weights
through :mod:`rvclab.models.fcpe.rules`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab.checkpoints import load_checkpoint, to_plain
from rvclab.convert import load_into_mlx
from rvclab.models.f0_packages import WeightFileError, asset_path, check_state_dict
from rvclab.models.fcpe.rules import convert_checkpoint


def load_state_dict(path: str | Path | None = None) -> tuple[dict, dict]:
    """(model state dict, config dict) of ``path`` (default: the installed torchfcpe's asset)."""
    from rvclab.models.fcpe.torch import expected_shapes  # the file is torch's: torch loads it

    path = Path(path) if path is not None else asset_path("fcpe")
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightFileError(f"{path}: expected a dict with key 'model' (and 'config_dict'), "
                              f"found {found}")
    config = to_plain(ckpt.get("config_dict", {}))
    model_cfg = config.get("model", {}) if isinstance(config, dict) else {}
    if model_cfg and not model_cfg.get("conv_only", False):
        raise WeightFileError(f"{path}: key 'config_dict.model.conv_only' is "
                              f"{model_cfg.get('conv_only')}; only the conv-only FCPE is supported")
    check_state_dict(ckpt["model"], expected_shapes(), path, "fcpe")
    return ckpt["model"], config


def load_fcpe(path: str | Path | None = None, backend: str = "torch"):
    """FCPE with torchfcpe's bundled weights (or ``path``) for ``backend`` ('torch': eval mode on
    the CPU; 'mlx')."""
    if backend == "torch":
        from rvclab.models.fcpe.torch import CFNaiveMelPE

        model = CFNaiveMelPE()
        model.load_state_dict(load_state_dict(path)[0])
        return model.eval()
    if backend == "mlx":
        from rvclab.models.fcpe.mlx import CFNaiveMelPE

        model = CFNaiveMelPE()
        load_into_mlx(model, convert_checkpoint(load_state_dict(path)[0])[0])
        return model
    raise ValueError(f"backend '{backend}' unknown; expected 'torch' or 'mlx'")
