"""Seeded weights written in upstream file formats (rvclab weights make)."""
