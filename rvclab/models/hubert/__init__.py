"""HuBERT / ContentVec content features: config, torch reference, MLX port, rules, loader, parity."""
