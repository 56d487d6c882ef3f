"""FCPE pitch estimator on torchfcpe's weights: config, torch reference, MLX port, rules, loader,
F0 method, parity."""
