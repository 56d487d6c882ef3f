"""One package per model family: synth, hubert, rmvpe, crepe, fcpe.

Each family keeps side by side its shared config and constants, the torch reference
(``torch``), the MLX port (``mlx``, same class names and attribute paths), the converter rules
(``rules``), the seeded-weight maker (``seeded``), the loader (``io``) and the parity runner
(``parity``). See docs/architecture.md.
"""
