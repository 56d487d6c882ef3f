"""RMVPE pitch estimator: config, torch reference, MLX port, rules, seeded weights, loader, F0 method, parity."""
