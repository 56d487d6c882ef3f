"""Upstream's random draws, replaced while its code runs: zeros, or rvclab's own seeded draws.

Upstream draws inside ``infer`` from torch's global RNG (``torch.randn_like`` for z_p and the NSF
noise, ``torch.rand`` for the harmonics' start phase). Inside :func:`upstream_draws` those four
functions of the ``torch`` module return what a source gives for the requested shape:
:func:`zeros`, or :class:`RvclabDraws`, which hands upstream the arrays rvclab's conversion draws
for the same chunk (:func:`rvclab.models.synth.noise.make_noise`, seed + chunk index), so both
sides synthesize with the same noise.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from rvclab.models.synth.noise import Z_P, make_noise

DRAW_FUNCTIONS = ("randn_like", "rand_like", "randn", "rand")
Source = Callable[[tuple, torch.dtype, object], torch.Tensor]  # (shape, dtype, device) -> tensor


def zeros(shape: tuple, dtype: torch.dtype, device) -> torch.Tensor:
    """Every draw zero."""
    return torch.zeros(shape, dtype=dtype, device=device)


class RvclabDraws:
    """rvclab's draws for each synthesizer call, in order: a z_p-shaped draw (1, inter_channels, T)
    starts chunk k (``make_noise(config, 1, T, seed + k)``); the chunk's other draws are served by
    element count (start phase (1, dim), NSF noise (1, T * hop, dim)). A draw rvclab never makes
    raises RuntimeError naming its shape."""

    def __init__(self, config, seed: int):
        self.config, self.seed, self.chunks = config, int(seed), 0
        self.current: dict[str, np.ndarray] = {}

    def __call__(self, shape: tuple, dtype: torch.dtype, device) -> torch.Tensor:
        if len(shape) == 3 and shape[0] == 1 and shape[1] == int(self.config.inter_channels):
            self.current = make_noise(self.config, 1, int(shape[2]), self.seed + self.chunks)
            self.chunks += 1
            arr = self.current[Z_P]
        else:
            size = math.prod(shape)
            arr = next((v for k, v in self.current.items() if k != Z_P and v.size == size), None)
            if arr is None:
                raise RuntimeError(f"upstream drew noise of shape {tuple(shape)}, which rvclab's synthesizer "
                                   "does not draw for this chunk")
        return torch.from_numpy(np.ascontiguousarray(arr).reshape(shape)).to(dtype=dtype, device=device)


@contextlib.contextmanager
def upstream_draws(source: Source) -> Iterator[None]:
    """``torch.randn_like``, ``rand_like``, ``randn`` and ``rand`` return ``source(shape, dtype,
    device)`` inside the block (restored after it)."""
    saved = {name: getattr(torch, name) for name in DRAW_FUNCTIONS}

    def like(t, *args, dtype=None, device=None, **kw):
        return source(tuple(t.shape), dtype or t.dtype, device or t.device)

    def sized(*size, dtype=None, device=None, generator=None, **kw):
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], tuple | list | torch.Size) else size
        return source(tuple(int(s) for s in shape), dtype or torch.get_default_dtype(), device)

    for name in DRAW_FUNCTIONS:
        setattr(torch, name, like if name.endswith("_like") else sized)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch, name, fn)


class DrawingSynth:
    """Upstream's synthesizer with its ``infer`` run inside :func:`upstream_draws` (only there: other
    upstream code, e.g. transformers' layer drop, draws numbers it does not use in eval mode)."""

    def __init__(self, net, source: Source):
        self.net, self.source = net, source

    def infer(self, *args, **kwargs):
        with upstream_draws(self.source):
            return self.net.infer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.net, name)
