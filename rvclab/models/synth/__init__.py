"""RVC synthesizer (TextEncoder, reverse flow, NSF-HiFiGAN): config, torch reference, MLX port, rules,
loader, parity."""
