"""rvclab: a workbench for porting RVC voice conversion from PyTorch to MLX, with measured parity.

Importing the package loads neither torch nor MLX (except on Linux with MLX's CUDA backend, where
torch must load first). It prepares the platform so that any later ``import mlx.core``, from
rvclab or from the user's own code, gets the fast path: see :func:`rvclab.runtime.prepare`.
"""

from rvclab.runtime import prepare as _prepare

__version__ = "0.1.0"

_prepare()
