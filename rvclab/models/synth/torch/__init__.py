"""The synthesizer's PyTorch reference, faithful to upstream RVC (same state-dict keys)."""
