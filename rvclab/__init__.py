"""rvclab: a workbench for porting RVC voice conversion from PyTorch to MLX, with measured parity.

Importing the package is cheap: it loads neither torch nor MLX. Modules that use MLX import it
through :mod:`rvclab.runtime`, which prepares a fast BLAS on Linux before ``mlx.core`` loads.
"""

__version__ = "0.1.0"
