"""The MLX port. Importing this package prepares the MLX runtime (see :mod:`rvclab.runtime`)
before ``mlx.core`` loads, so every module below may ``import mlx.core as mx`` directly."""

from rvclab.runtime import import_mlx as _import_mlx

_import_mlx()
