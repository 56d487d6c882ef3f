"""CUDA graphs for a torch module: :class:`GraphedForward` captures one call per input shape and
replays it (RMVPE's network under ``RVCLAB_TORCH_CUDA_GRAPH``; re-exported by
:mod:`rvclab.models.rmvpe.torch`)."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import torch
from torch import nn

GRAPH_CACHE_SIZE = 4  # captured input shapes kept per model (each holds its own memory pool)
GRAPH_WARMUP_CALLS = 3  # eager calls on a side stream before a capture (library handles, workspaces)


class GraphedForward:
    """``module(x)`` on CUDA, captured once per input shape into a CUDA graph and replayed.

    The first call with a new (shape, dtype, device) runs :data:`GRAPH_WARMUP_CALLS` eager calls
    on a side stream, then captures one call into a graph with its own static input and output;
    every call copies its input into the static one, replays, and returns a clone of the output.
    The newest :data:`GRAPH_CACHE_SIZE` shapes are kept. A capture that fails warns, names the
    error, and that shape runs eager from then on (``fallbacks`` counts those calls).
    """

    def __init__(self, module: nn.Module, cache_size: int = GRAPH_CACHE_SIZE):
        self.module = module
        self.cache_size = cache_size
        self.graphs: OrderedDict = OrderedDict()  # key -> (graph, static input, static output)
        self.failed: set = set()
        self.captures = self.replays = self.fallbacks = 0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cuda":
            raise ValueError(f"GraphedForward needs a CUDA tensor, got one on {x.device}")
        key = (tuple(x.shape), x.dtype, str(x.device))
        if key in self.failed:
            self.fallbacks += 1
            return self.module(x)
        entry = self.graphs.get(key)
        if entry is None:
            try:
                entry = self._capture(x)
            except RuntimeError as exc:
                warnings.warn(f"CUDA graph capture of RMVPE failed for input {key[0]} ({exc}); running eager",
                              RuntimeWarning, stacklevel=2)
                self.failed.add(key)
                self.fallbacks += 1
                return self.module(x)
            self.graphs[key] = entry
            while len(self.graphs) > self.cache_size:
                self.graphs.popitem(last=False)
        else:
            self.graphs.move_to_end(key)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        self.replays += 1
        return static_out.clone()

    def _capture(self, x: torch.Tensor):
        static_in = x.clone()
        current = torch.cuda.current_stream(x.device)
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_CALLS):
                self.module(static_in)
        current.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.module(static_in)
        self.captures += 1
        return graph, static_in, static_out
