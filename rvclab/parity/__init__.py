"""Parity runners, one module per stage (rvclab parity NAME)."""
