"""FCPE pitch estimator on torchfcpe's weights: torch reference, MLX port, rules, F0 method, parity."""
