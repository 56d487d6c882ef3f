"""StreamConverter: RVC's realtime conversion, block in -> block out, on torch or MLX.

Per block (RVC WebUI's realtime semantics, docs/streaming.md): the block enters the input buffer
(silence gate first, when on) and, resampled, the 16 kHz buffer; HuBERT reads the whole 16 kHz
buffer (``extra`` of context); F0 reads its newest end and feeds the pitch cache; the
synthesizer decodes only ``skip_head .. skip_head + return_length`` (plus the formant stretch);
the result is resampled to the stream's rate, given the input's envelope (``rms_mix_rate``),
aligned by SOLA and crossfaded. Everything but the three networks is shared numpy, and block i
draws its noise with ``noise_seed + i``, so the torch and MLX streams compare sample by sample.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from rvclab.audio import HOP_16K, check_finite
from rvclab.models.synth.config import DEFAULT_PHASE_FORM, coarse_pitch
from rvclab.models.synth.noise import make_noise
from rvclab.pipeline.conversion import BACKENDS
from rvclab.pipeline.networks import VoiceModel, embedder, features, torch_device, voice_index
from rvclab.pipeline.reference import f0_keywords
from rvclab.pipeline.steps import fill_unvoiced
from rvclab.pitch import estimate_f0
from rvclab.runtime import import_mlx
from rvclab.stream import dsp
from rvclab.stream.config import (
    GATE_OFF_DB,
    GATE_WINDOW_FRAMES,
    PITCH_CACHE_SKIP,
    StreamConfig,
    StreamError,
    plan_frames,
)


class StreamConverter:
    """Converts a stream block by block: ``process(block) -> block`` (same length, stream rate).

    voice: a :class:`VoiceModel` or path; backend "torch" or "mlx" (HuBERT, F0 and synthesizer);
    config: :class:`StreamConfig`; index: a FAISS index path or FeatureIndex (used when
    ``config.index_rate`` > 0). Blocks are (block,) float32 at ``self.sr`` (``config.sr`` or the
    voice's rate). ``self.stats`` holds one dict per block: compute seconds (total and per
    network), the SOLA offset, and whether the block was silent.
    """

    def __init__(self, voice: VoiceModel | str | os.PathLike, backend: str = "torch",
                 config: StreamConfig | None = None, *, index=None, hubert_path=None):
        if backend not in BACKENDS:
            raise StreamError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.voice = voice if isinstance(voice, VoiceModel) else VoiceModel(voice)
        self.config = config or StreamConfig()
        self.backend = backend
        self.model_sr = self.voice.sr
        self.sr = int(self.config.sr or self.model_sr)
        self.frames = plan_frames(self.config, self.sr)
        if self.config.sid < 0 or self.config.sid >= int(self.voice.config.spk_embed_dim):
            raise StreamError(f"sid {self.config.sid} out of range: the model has "
                              f"{self.voice.config.spk_embed_dim} speakers")
        self.index = voice_index(index, self.voice.version) if index is not None and self.config.index_rate > 0 \
            else None
        self.hubert = embedder(backend, hubert_path)
        self.synth = self.voice.model(backend)
        self.factor = 2.0 ** (self.config.formant / 12)
        self.return_length2 = int(math.ceil(self.frames.return_length * self.factor))
        self.window = dsp.fade_in(self.frames.sola_buffer)
        self.reset()

    # --- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero every buffer: the next block starts a new stream (block index 0)."""
        f = self.frames
        self.input = np.zeros(f.input_len, np.float32)
        self.input16 = np.zeros(f.input_len_16k, np.float32)
        self.gate_history = np.zeros(GATE_WINDOW_FRAMES * f.zc, np.float32)
        self.pitch_cache = np.zeros(f.frames_total, np.int32)
        self.pitchf_cache = np.zeros(f.frames_total, np.float32)
        self.sola_tail = np.zeros(f.sola_buffer, np.float32)
        self.block_index = 0
        self.stats: list[dict] = []
        self.f0_trace: list[np.ndarray] = []  # per block: F0 (Hz) of the frames that block plays

    @property
    def latency(self) -> dict:
        """The algorithmic latency budget in seconds (:meth:`rvclab.stream.config.Frames.latency`)."""
        return self.frames.latency()

    # --- one block ------------------------------------------------------------------------------
    def process(self, block: np.ndarray, sr: int | None = None) -> np.ndarray:
        """(block,) float at the stream's rate -> (block,) float32 converted, ``latency`` later."""
        f = self.frames
        if sr is not None and int(sr) != self.sr:
            raise StreamError(f"block at {int(sr)} Hz, but this stream runs at {self.sr} Hz; resample it first "
                              "or make a StreamConverter with sr=" + str(int(sr)))
        x = np.asarray(block, np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        if x.ndim != 1 or x.size != f.block:
            raise StreamError(f"block of shape {np.shape(block)}: expected ({f.block},) samples "
                              f"({self.config.block} s at {self.sr} Hz)")
        check_finite(x, f"block {self.block_index}")
        t0 = time.perf_counter()
        if self.config.threshold_db > GATE_OFF_DB:
            x, self.gate_history = dsp.silence_gate(self.gate_history, x, f.zc, self.config.threshold_db)
        self.input = np.roll(self.input, -f.block)
        self.input[-x.size:] = x
        self.input16 = np.roll(self.input16, -f.block_16k)
        tail = dsp.to_16k_tail(self.input, x.size, self.sr, f.zc)
        self.input16[-tail.size:] = tail
        timing: dict[str, float] = {}
        wave = self._infer(timing)
        if not self.input[f.extra:].any():
            wave = np.zeros_like(wave)  # silence in, silence out (whatever the model makes of zeros)
        if self.config.rms_mix_rate < 1:
            wave = dsp.rms_mix(self.input[f.extra:], wave, f.zc, self.config.rms_mix_rate)
        offset = dsp.sola_offset(wave, self.sola_tail, f.sola_search)
        out, self.sola_tail = dsp.sola_crossfade(wave, self.sola_tail, offset, f.block, self.window)
        self.stats.append({"block": self.block_index, "compute_s": time.perf_counter() - t0, **timing,
                           "sola_offset": offset, "silent": not x.any()})
        self.block_index += 1
        return out

    def _infer(self, timing: dict) -> np.ndarray:
        """The networks on the buffers: (return_length * zc,) float32 at the stream's rate."""
        f, cfg = self.frames, self.config
        p_len = f.frames_total
        t = time.perf_counter()
        feats = features(self.hubert, self.input16, self.voice.version, self.backend,
                         v1_layer=self.config.profile.hubert_v1_layer,
                         attention=self.config.profile.hubert_attention)
        feats = np.concatenate([feats, feats[-1:]], axis=0)
        if self.index is not None:
            head = f.skip_head // 2
            feats[head:] = self.index.blend(feats[head:], cfg.index_rate)
        phone = np.repeat(feats, 2, axis=0)[:p_len]
        if phone.shape[0] < p_len:
            raise StreamError(f"HuBERT gave {phone.shape[0]} frames for {p_len} F0 frames")
        timing["features_s"] = time.perf_counter() - t
        t = time.perf_counter()
        pitch = pitchf = None
        if self.voice.has_f0:
            self._update_pitch_cache()
            pitch = self.pitch_cache[-p_len:]
            pitchf = (self.pitchf_cache[-p_len:] * (self.return_length2 / f.return_length)).astype(np.float32)
            played = self.pitchf_cache[-p_len:][f.skip_head:f.skip_head + f.block // f.zc]
            self.f0_trace.append(played.copy())
        timing["f0_s"] = time.perf_counter() - t
        t = time.perf_counter()
        noise = make_noise(self.voice.config, 1, p_len, cfg.noise_seed + self.block_index)
        wave = run_synth(self.synth, self.backend, phone, pitch, pitchf, cfg.sid, noise, f.skip_head,
                         f.return_length, self.return_length2, cfg.profile.sine_phase)
        timing["synth_s"] = time.perf_counter() - t
        hop = self.model_sr // 100
        upp_res = int(math.floor(self.factor * self.model_sr // 100))
        if upp_res != hop:  # formant: the stretched decode played back faster
            wave = dsp.resample_poly(wave[:f.return_length * upp_res], upp_res, hop)
        return dsp.resample_poly(wave, self.model_sr, self.sr)

    def _update_pitch_cache(self) -> None:
        """F0 of the newest end of the 16 kHz buffer -> shift both caches by one block, write the tail."""
        f, cfg = self.frames, self.config
        n = f.f0_window_16k(cfg.method)
        window = self.input16[-n:]
        f0 = estimate_f0(window, cfg.method, backend=self.backend, n_frames=n // HOP_16K,
                         **f0_keywords(cfg.profile, cfg.method)).f0
        if cfg.fills:
            f0 = fill_unvoiced(f0)
        f0 = np.where(f0 > 0, f0 * 2.0 ** ((cfg.f0_up_key - cfg.formant) / 12), 0.0).astype(np.float32)
        shift = f.block_16k // HOP_16K
        self.pitch_cache = np.roll(self.pitch_cache, -shift)
        self.pitchf_cache = np.roll(self.pitchf_cache, -shift)
        new = f0[PITCH_CACHE_SKIP:][-self.pitchf_cache.size:]
        self.pitchf_cache[-new.size:] = new
        self.pitch_cache[-new.size:] = coarse_pitch(new)


def run_synth(synth, backend: str, phone, pitch, pitchf, sid: int, noise, skip_head: int, return_length: int,
              return_length2: int, phase_form: str = DEFAULT_PHASE_FORM) -> np.ndarray:
    """One windowed synthesizer call: phone (T, C) @ 100 fps -> (return_length2 * hop,) float32.

    ``phase_form``: the NSF source's phase (a reference profile's ``sine_phase``)."""
    n = phone.shape[0]
    if backend == "torch":
        import torch

        dev = torch_device(synth)
        args = [torch.from_numpy(phone[None].astype(np.float32)), torch.tensor([n])]
        args += [torch.from_numpy(pitch[None].astype(np.int64)), torch.from_numpy(pitchf[None])] \
            if pitch is not None else [None, None]
        args = [a if a is None else a.to(dev) for a in args]
        with torch.no_grad():
            wave = synth.infer(*args, torch.tensor([sid], device=dev), noise, skip_head, return_length,
                               return_length2, phase_form=phase_form)[0]
        return wave[0, 0].float().cpu().numpy()
    mx = import_mlx()
    args = [mx.array(phone[None].astype(np.float32)), mx.array([n])]
    args += [mx.array(pitch[None].astype(np.int32)), mx.array(pitchf[None])] if pitch is not None else [None, None]
    wave = synth.infer(*args, mx.array([sid]), noise, skip_head, return_length, return_length2,
                       phase_form=phase_form)[0]
    return np.array(wave[0, :, 0].astype(mx.float32))
