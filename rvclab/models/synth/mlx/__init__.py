"""The synthesizer's MLX port: same file names, class names and attribute paths as the torch reference."""
