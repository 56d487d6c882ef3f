"""What streaming costs: the same clip streamed and converted offline, and two backends' streams.

``stream_vs_offline`` aligns the streamed output with the input (the stream's constant delay,
crossfade + SOLA search, removed) and compares it with :func:`convert_voice` on the same voice,
F0 method and backend, both with the model's own envelope (``rms_mix_rate`` 1), no index and
no protection (the realtime path has none). The noise differs (per block vs per chunk), so the
measures are spectral: log-mel correlation overall (beside its noise floor: offline against
offline with another noise seed), log-mel difference by position inside the output block, and
the F0 each path gave the synthesizer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rvclab import metrics
from rvclab.audio import log_mel, resample
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import VoiceModel
from rvclab.pipeline.steps import FP32_CONFIG, FRAME_RATE
from rvclab.stream.config import StreamConfig
from rvclab.stream.converter import StreamConverter
from rvclab.stream.run import stream_file

POSITION_BINS = 10  # the output block is cut into this many equal parts for the position profile


def stream_audio(voice: VoiceModel, audio16: np.ndarray, backend: str, config: StreamConfig):
    """(StreamConverter, StreamResult) for ``audio16`` (N,) @ 16 kHz resampled to the stream's rate."""
    conv = StreamConverter(voice, backend, config)
    x = resample(np.asarray(audio16, np.float32), 16000, conv.sr)
    return conv, stream_file(conv, x, align=True)


def position_profile(diff: np.ndarray, hop: int, block: int, delay: int, bins: int = POSITION_BINS) -> list[float]:
    """Mean of per-frame ``diff`` (one value per ``hop`` samples) by the frame's position in its
    output block (aligned output: blocks start at k*block - delay), in ``bins`` equal parts."""
    pos = ((np.arange(diff.size) * hop + delay) % block) / block
    which = np.minimum((pos * bins).astype(int), bins - 1)
    return [float(diff[which == b].mean()) if np.any(which == b) else float("nan") for b in range(bins)]


def stream_vs_offline(voice: VoiceModel, audio16: np.ndarray, backend: str, config: StreamConfig,
                      skip_seconds: float = 0.0) -> dict:
    """One row: spectrogram corr, per-position log-mel difference, F0 agreement (cents on frames
    voiced offline). ``skip_seconds`` leaves out the stream's start (its context still empty)."""
    cfg = StreamConfig(**{**config.to_dict(), "rms_mix_rate": 1.0})
    conv, res = stream_audio(voice, audio16, backend, cfg)
    # offline follows the stream's profile, filling unvoiced F0 where the stream does
    profile = dataclasses.replace(cfg.profile, f0_fill_unvoiced=cfg.fills)
    off = convert_voice(audio16, voice, sr=16000, f0_method=cfg.method, rms_mix_rate=1.0, protect=0.5,
                        backend=backend, noise_seed=cfg.noise_seed, reference=profile)
    sr = conv.sr
    offline = resample(off.audio, off.sr, sr)
    n = min(offline.size, res.audio.size)
    skip = int(skip_seconds * sr)
    a, b = offline[skip:n], res.audio[skip:n]
    hop = sr // FRAME_RATE
    mel_a, mel_b = log_mel(a, sr, hop=hop), log_mel(b, sr, hop=hop)
    diff = np.abs(mel_a - mel_b).mean(axis=0)
    f = conv.frames
    other = convert_voice(audio16, voice, sr=16000, f0_method=cfg.method, rms_mix_rate=1.0, protect=0.5,
                          backend=backend, noise_seed=cfg.noise_seed + 1, reference=profile)
    mel_c = log_mel(resample(other.audio, other.sr, sr)[skip:n], sr, hop=hop)
    row = {"backend": backend, "block_s": cfg.block, "extra_s": cfg.extra, "crossfade_s": cfg.crossfade,
           "f0_method": cfg.method, "reference": cfg.reference, "sr": sr, "seconds": n / sr,
           "skip_s": skip_seconds,
           "spec_corr": metrics.corr(mel_a, mel_b), "logmel_diff": float(diff.mean()),
           "logmel_diff_by_position": position_profile(diff, hop, f.block, res.delay_samples + skip),
           "latency_s": conv.latency["total"],
           # offline against offline with the next noise seed: what the noise alone changes
           "noise_floor_spec_corr": metrics.corr(mel_a, mel_c),
           "noise_floor_logmel_diff": float(np.abs(mel_a - mel_c).mean())}
    if voice.has_f0 and conv.f0_trace:
        row.update(f0_agreement(conv, off.f0, skip_seconds))
    return row


def f0_agreement(conv: StreamConverter, offline_f0: np.ndarray, skip_seconds: float = 0.0) -> dict:
    """F0 the stream gave the synthesizer for the frames it played vs offline's, frame by frame.

    Block b plays input frames from (b*block - crossfade - search) / zc on; offline F0 is on the
    input padded by x_pad seconds. Returns the median and 90th percentile |cents| on frames voiced
    in both, and the share of offline-voiced frames the stream also voiced.
    """
    f = conv.frames
    per_block = f.block // f.zc
    lead = (f.crossfade + f.sola_search) // f.zc
    pad = FP32_CONFIG.x_pad * FRAME_RATE
    stream = np.full(offline_f0.size, np.nan, np.float32)
    for b, trace in enumerate(conv.f0_trace):
        start = b * per_block - lead + pad
        for j, v in enumerate(trace[:per_block]):
            if 0 <= start + j < stream.size:
                stream[start + j] = v
    first = pad + int(skip_seconds * FRAME_RATE)
    s, o = stream[first:], offline_f0[first:]
    keep = ~np.isnan(s)
    s, o = s[keep], o[keep]
    voiced = o > 0
    both = voiced & (s > 0)
    cents = np.abs(1200 * np.log2(s[both] / o[both])) if both.any() else np.zeros(1)
    return {"f0_cents_median": float(np.median(cents)), "f0_cents_p90": float(np.percentile(cents, 90)),
            "f0_voiced_kept": float(both.sum() / max(voiced.sum(), 1))}


def backend_parity(voice: VoiceModel, audio16: np.ndarray, config: StreamConfig) -> dict:
    """torch stream vs MLX stream on the same blocks and noise: waveform and spectrogram agreement."""
    outs = {be: stream_audio(voice, audio16, be, config)[1].audio for be in ("torch", "mlx")}
    a, b = outs["torch"], outs["mlx"]
    sr = config.sr or voice.sr
    return {"block_s": config.block, "extra_s": config.extra, "f0_method": config.method,
            "samples": int(a.size), "wave_corr": metrics.corr(a, b), "wave_max_abs": metrics.max_abs(a, b),
            "spec_corr": metrics.spectral_corr(a, b, sr), "rms_ratio": metrics.rms_ratio(b, a)}
