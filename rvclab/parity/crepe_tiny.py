"""CREPE-tiny parity (``rvclab parity crepe-tiny``): see :mod:`rvclab.parity.crepe`."""

from __future__ import annotations

from rvclab.parity.crepe import add_arguments, run_capacity

__all__ = ["add_arguments", "run"]


def run(args) -> list[dict]:
    return run_capacity(args, "tiny")
