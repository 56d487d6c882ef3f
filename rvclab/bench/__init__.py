"""Benchmarks: stages, memory, the committed report; both backends in one run."""
