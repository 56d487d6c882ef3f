"""Settings and buffer sizes of a streaming conversion, shared by both backends (no model code).

Names and defaults follow RVC WebUI's realtime GUI (``block_time``, ``crossfade_length``,
``extra_time``, ``threhold``, ``formant``, ``rms_mix_rate``, ``index_rate``, ``f0method``).
Every length is a whole number of 10 ms frames of the stream's rate ``sr`` (``zc = sr // 100``
samples), as upstream rounds them.

Buffers, oldest sample first (``sr`` samples)::

    input  [ extra | crossfade | sola search | block ]   the newest block enters on the right
    16 kHz  the same span, resampled block by block       HuBERT and F0 read it
    model  decodes from skip_head = extra, return_length = block + sola buffer + sola search
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rvclab.audio import HOP_16K, SAMPLE_RATE_16K
from rvclab.pipeline.reference import resolve
from rvclab.profiles import DEFAULT_PROFILE, ReferenceProfile

FRAME_RATE = 100  # 10 ms frames: every buffer length is a multiple of sr // FRAME_RATE
HUBERT_FRAME_16K = 320  # samples @ 16 kHz per HuBERT frame: the shortest usable block
SOLA_BUFFER_MAX_FRAMES = 4  # the crossfade SOLA matches spans at most 40 ms
SOLA_SEARCH_FRAMES = 1  # SOLA searches its offset over 10 ms
GATE_OFF_DB = -60  # threshold_db at or below this disables the silence gate (upstream's slider floor)
GATE_WINDOW_FRAMES = 4  # the gate's RMS window: 40 ms, hop 10 ms
F0_CONTEXT_16K = 800  # F0 reads the newest block plus 50 ms @ 16 kHz
RMVPE_WINDOW_16K = 5120  # RMVPE's F0 window is rounded up to multiples of this, less one hop
EXTRA_MAX_S = 10  # longest past context, seconds
FORMANT_MAX = 12  # formant shift limit, semitones either way
PITCH_CACHE_SKIP = 3  # F0 frames at the start of each F0 window, dropped (no left context)


class StreamError(ValueError):
    """A streaming setting or input that cannot work; the message names the values."""


@dataclass(frozen=True)
class StreamConfig:
    """What a stream does; seconds and semitones as upstream's realtime GUI names them.

    block: seconds per block; crossfade: SOLA crossfade (at most 40 ms of it is matched);
    extra: seconds of past context HuBERT and the synthesizer read; threshold_db: the silence
    gate (RMS of 40 ms windows, dB re full scale; <= -60 is off); f0_up_key / formant:
    semitones; rms_mix_rate: 1 keeps the model's envelope, 0 imposes the input's; sr: the stream's
    rate (None: the voice's rate, upstream's "sr_model"); noise_seed: block i draws with
    ``noise_seed + i``; reference: the release followed (:mod:`rvclab.profiles`): its F0 methods
    and their parameters, RMVPE's framing, HuBERT's v1 layer and the NSF phase form; f0_method None: its default;
    fill_unvoiced: interpolate F0 over each window's unvoiced frames (None: the profile's
    ``f0_fill_unvoiced``; RVC WebUI 2026's realtime path always fills).
    """

    block: float = 0.25
    crossfade: float = 0.05
    extra: float = 2.5
    threshold_db: float = GATE_OFF_DB
    f0_up_key: float = 0.0
    formant: float = 0.0
    f0_method: str | None = None
    index_rate: float = 0.0
    rms_mix_rate: float = 0.0
    sid: int = 0
    sr: int | None = None
    noise_seed: int = 0
    fill_unvoiced: bool | None = None
    reference: str = DEFAULT_PROFILE

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def profile(self) -> ReferenceProfile:
        """The reference profile (ValueError listing the known names for an unknown one)."""
        return resolve(self.reference)

    @property
    def method(self) -> str:
        """The F0 method run: ``f0_method``, or the profile's default."""
        return self.f0_method or self.profile.default_f0_method

    @property
    def fills(self) -> bool:
        """Whether unvoiced F0 frames are filled: ``fill_unvoiced``, or the profile's choice."""
        return self.profile.f0_fill_unvoiced if self.fill_unvoiced is None else bool(self.fill_unvoiced)


@dataclass(frozen=True)
class Frames:
    """A StreamConfig in samples of the stream's rate (``zc`` per 10 ms) and at 16 kHz."""

    sr: int
    zc: int
    block: int
    crossfade: int
    sola_buffer: int
    sola_search: int
    extra: int
    block_16k: int
    skip_head: int  # frames @ 100 fps
    return_length: int  # frames @ 100 fps

    @property
    def input_len(self) -> int:
        return self.extra + self.crossfade + self.sola_search + self.block

    @property
    def input_len_16k(self) -> int:
        return HOP_16K * self.input_len // self.zc

    @property
    def frames_total(self) -> int:
        """Frames @ 100 fps the synthesizer reads (its p_len)."""
        return self.input_len_16k // HOP_16K

    def f0_window_16k(self, method: str) -> int:
        """Samples @ 16 kHz the F0 method reads each block (the newest end of the 16 kHz buffer)."""
        n = self.block_16k + F0_CONTEXT_16K
        if method == "rmvpe":
            n = RMVPE_WINDOW_16K * ((n - 1) // RMVPE_WINDOW_16K + 1) - HOP_16K
        return min(n, self.input_len_16k)

    def latency(self) -> dict:
        """The algorithmic latency budget in seconds: what a sample waits before it can be played.

        block (a sample waits for its block to fill) + crossfade + SOLA search (the output of a
        block starts that far behind the newest input; the SOLA offset found, 0..search, takes
        back up to that much) + resampler (0: the resamplers are linear-phase FIRs with their
        delay compensated; their right edge, 10 ms at 16 kHz, is recomputed on the next block).
        Device buffers and compute time come on top.
        """
        parts = {"block": self.block, "crossfade": self.crossfade, "sola_search": self.sola_search,
                 "resampler": 0}
        out = {k: v / self.sr for k, v in parts.items()}
        out["total"] = sum(out.values())
        return out


def _frames_of(seconds: float, sr: int) -> int:
    zc = sr // FRAME_RATE
    return int(round(seconds * sr / zc)) * zc


def plan_frames(config: StreamConfig, sr: int) -> Frames:
    """Buffer sizes for ``config`` at ``sr``; StreamError naming the values when they cannot work."""
    if sr % FRAME_RATE or sr < SAMPLE_RATE_16K:
        raise StreamError(f"stream rate {sr} Hz: must be a multiple of {FRAME_RATE} Hz and >= {SAMPLE_RATE_16K}")
    try:
        config.profile.check_f0_method(config.method)
    except ValueError as exc:  # unknown profile, or a method it does not offer
        raise StreamError(str(exc)) from None
    for name, value, low, high in (("index_rate", config.index_rate, 0, 1), ("rms_mix_rate", config.rms_mix_rate, 0, 1),
                                   ("extra", config.extra, 0, EXTRA_MAX_S),
                                   ("formant", config.formant, -FORMANT_MAX, FORMANT_MAX)):
        if not low <= value <= high:
            raise StreamError(f"{name} {value}: must be in [{low}, {high}]")
    if config.noise_seed < 0:
        raise StreamError(f"noise_seed {config.noise_seed}: must not be negative")
    zc = sr // FRAME_RATE
    block = _frames_of(config.block, sr)
    block_16k = HOP_16K * block // zc
    if block_16k < HUBERT_FRAME_16K:
        raise StreamError(f"block {config.block} s ({block_16k} samples @ 16 kHz) is shorter than one HuBERT frame "
                          f"({HUBERT_FRAME_16K} samples @ 16 kHz, {HUBERT_FRAME_16K / SAMPLE_RATE_16K} s)")
    crossfade = _frames_of(config.crossfade, sr)
    if config.crossfade > config.block or crossfade > block:
        raise StreamError(f"crossfade {config.crossfade} s is longer than the block {config.block} s")
    if crossfade < zc:
        raise StreamError(f"crossfade {config.crossfade} s: must be at least 10 ms")
    sola_buffer = min(crossfade, SOLA_BUFFER_MAX_FRAMES * zc)
    sola_search = SOLA_SEARCH_FRAMES * zc
    extra = _frames_of(config.extra, sr)
    return Frames(sr=sr, zc=zc, block=block, crossfade=crossfade, sola_buffer=sola_buffer,
                  sola_search=sola_search, extra=extra, block_16k=block_16k, skip_head=extra // zc,
                  return_length=(block + sola_buffer + sola_search) // zc)
