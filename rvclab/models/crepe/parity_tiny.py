"""CREPE-tiny parity (``rvclab parity crepe-tiny``): see :mod:`rvclab.models.crepe.parity`."""

from __future__ import annotations

from rvclab.models.crepe.parity import add_arguments, run_capacity

__all__ = ["add_arguments", "run"]


def run(args) -> list[dict]:
    return run_capacity(args, "tiny")
