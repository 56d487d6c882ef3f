"""Converter rule tables, one module per model family."""
