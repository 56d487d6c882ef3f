"""Realtime (streaming) voice conversion: :class:`StreamConverter` (block in, block out, torch or
MLX), file-driven streaming with per-block timing (:mod:`rvclab.stream.run`), and the comparison
with offline conversion (:mod:`rvclab.stream.compare`). docs/streaming.md."""

from rvclab.stream.config import Frames, StreamConfig, StreamError, plan_frames
from rvclab.stream.converter import StreamConverter

__all__ = ["Frames", "StreamConfig", "StreamConverter", "StreamError", "plan_frames"]
