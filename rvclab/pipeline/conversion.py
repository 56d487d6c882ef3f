"""Voice conversion end to end, the same pipeline on both backends (docs/parameters.md).

``convert_voice(audio, model, backend="torch"|"mlx", ...)`` follows RVC's inference. Outside the
three networks (HuBERT, F0, synthesizer) everything is shared numpy (:mod:`rvclab.pipeline.steps`)
and the synthesizer's noise comes from one seeded source per chunk, so two backends' outputs
compare sample by sample. ``backends={"features": ..., "f0": ..., "synth": ...}`` swaps stages.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rvclab.audio import SAMPLE_RATE_16K, AudioError, check_finite, check_sample_rate, load_audio_native, resample
from rvclab.checkpoints import safetensors_metadata
from rvclab.models.hubert.io import load_hubert
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.rules import config_from_metadata, load_mlx_voice
from rvclab.pipeline import steps
from rvclab.pipeline.index import FeatureIndex, load_index
from rvclab.pitch import estimate_f0
from rvclab.runtime import import_mlx
from rvclab.weights import default_hubert

STAGES = ("features", "f0", "synth")
BACKENDS = ("torch", "mlx")
MIN_SECONDS = 0.1  # shorter inputs cannot fill one HuBERT frame after padding; refused


class PipelineError(ValueError):
    """A conversion that cannot run as asked; the message says why."""


# --- models -----------------------------------------------------------------------------------


class VoiceModel:
    """An RVC voice (.pth or converted .safetensors) with lazily built torch and MLX models."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._models: dict[str, object] = {}
        self.config = None
        if self.path.suffix == ".safetensors":
            self.config = config_from_metadata(safetensors_metadata(self.path), str(self.path))
        else:
            self.config, self._models["torch"] = _load_torch_voice(self.path)

    def model(self, backend: str):
        if backend not in self._models:
            if backend == "torch":
                self.config, self._models["torch"] = _load_torch_voice(self.path)
            else:
                self._models["mlx"], _ = load_mlx_voice(self.path)
        return self._models[backend]

    @property
    def sr(self) -> int:
        return int(self.config.sr)

    @property
    def version(self) -> str:
        return str(self.config.version)

    @property
    def has_f0(self) -> bool:
        return bool(self.config.f0)


def _load_torch_voice(path: Path):
    """(SynthConfig, torch synthesizer) from a voice file: the torch backend's loader, imported
    here, where that backend is chosen, so the MLX path imports no torch."""
    from rvclab.models.synth.io import load_voice

    return load_voice(path)


_EMBEDDERS: dict[tuple[str, str], object] = {}


def embedder(backend: str, path: str | os.PathLike | None = None):
    """HuBERT/ContentVec model for ``backend`` (cached per path); default: the seeded
    weights/hubert_base.pt (:func:`rvclab.weights.default_hubert`)."""
    path = Path(path) if path else default_hubert()
    key = (str(path), backend)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = load_hubert(path, backend)
    return _EMBEDDERS[key]


# --- results -----------------------------------------------------------------------------------


@dataclass
class Conversion:
    """What one conversion produced: the waveform and what led to it."""

    audio: np.ndarray  # (N,) float32 in [-0.99, 0.99] at ``sr``
    sr: int
    backends: dict[str, str]
    f0: np.ndarray  # (p_len,) Hz after shift/curve, on the padded 16 kHz input (100 fps)
    coarse: np.ndarray  # (p_len,) int32 1..255 (zeros for a no-F0 model)
    chunks: list
    timings: dict[str, float] = field(default_factory=dict)
    features: list = field(default_factory=list)  # per chunk (2T, C) synthesizer input


def _to_16k(audio, sr: int | None) -> np.ndarray:
    if isinstance(audio, str | os.PathLike):
        data, native = load_audio_native(audio)
        return resample(data, native, SAMPLE_RATE_16K)
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:  # (T, channels) or (channels, T): average to mono
        x = x.mean(axis=0 if x.shape[0] < x.shape[1] else 1)
    if x.ndim != 1:
        raise AudioError(f"audio: expected (T,) or (T, channels), found shape {x.shape}")
    if sr is None:
        raise AudioError("audio given as an array needs its sample rate: sr=...")
    check_sample_rate(sr)
    check_finite(x)
    return resample(x, int(sr), SAMPLE_RATE_16K)


def _resolve_backends(backend: str, backends: dict | None) -> dict[str, str]:
    if backend not in BACKENDS:
        raise PipelineError(f"backend must be one of {BACKENDS}, got {backend!r}")
    chosen = {stage: backend for stage in STAGES}
    for stage, value in (backends or {}).items():
        if stage not in STAGES or value not in BACKENDS:
            raise PipelineError(f"backends: {stage!r}={value!r}; stages {STAGES}, backends {BACKENDS}")
        chosen[stage] = value
    return chosen


# --- the pipeline -------------------------------------------------------------------------------


def convert_voice(
    audio,
    model: VoiceModel | str | os.PathLike,
    *,
    sr: int | None = None,
    f0_up_key: float = 0,
    f0_method: str = "rmvpe",
    index=None,
    index_rate: float = 0.75,
    filter_radius: int = 3,
    resample_sr: int = 0,
    rms_mix_rate: float = 0.25,
    protect: float = 0.33,
    sid: int = 0,
    f0_curve: np.ndarray | str | None = None,
    backend: str = "torch",
    backends: dict | None = None,
    noise_seed: int = 0,
    hubert_path: str | os.PathLike | None = None,
    pad_config: steps.PadConfig = steps.FP32_CONFIG,
    progress: bool = False,
) -> Conversion:
    """Convert ``audio`` (a path, or an array with ``sr``) with voice ``model``.

    Parameters as RVC WebUI/Applio name them (docs/parameters.md). ``index`` is a path or a
    loaded :class:`rvclab.pipeline.index.FeatureIndex`. ``noise_seed`` seeds the synthesizer's random
    draws (chunk i uses ``noise_seed + i``), identically on both backends.
    """
    chosen = _resolve_backends(backend, backends)
    voice = model if isinstance(model, VoiceModel) else VoiceModel(model)
    x16 = _to_16k(audio, sr)
    if x16.size < MIN_SECONDS * SAMPLE_RATE_16K:
        name = audio if isinstance(audio, str | os.PathLike) else "audio"
        raise AudioError(f"{name}: {x16.size / SAMPLE_RATE_16K:.3f} s is too short (minimum {MIN_SECONDS} s)")
    if not 0 <= index_rate <= 1 or not 0 <= protect <= 0.5 or not 0 <= rms_mix_rate <= 1:
        raise PipelineError("index_rate and rms_mix_rate must be in [0, 1], protect in [0, 0.5]")
    if sid < 0 or sid >= int(voice.config.spk_embed_dim):
        raise PipelineError(f"sid {sid} out of range: the model has {voice.config.spk_embed_dim} speakers")
    feature_index = _load_index(index, voice.version)
    curve = steps.read_f0_curve(f0_curve) if isinstance(f0_curve, str | os.PathLike) else f0_curve

    timings: dict[str, float] = {"features": 0.0, "f0": 0.0, "synth": 0.0}
    x = steps.highpass(steps.normalize_input(x16))
    pad = steps.padding_for(voice.sr, pad_config)
    chunks = steps.plan_chunks(x, pad)
    padded = steps.pad_audio(x, pad)
    p_len = padded.shape[0] // steps.WINDOW

    coarse = np.zeros(p_len, np.int32)
    f0bak = np.zeros(p_len, np.float32)
    if voice.has_f0:
        t = time.perf_counter()
        kwargs = {"filter_radius": filter_radius} if f0_method == "harvest" else {}
        f0 = estimate_f0(padded.astype(np.float32), f0_method, backend=chosen["f0"], n_frames=p_len, **kwargs).f0
        coarse, f0bak = steps.postprocess_f0(f0, f0_up_key, curve, pad_config.x_pad, p_len)
        timings["f0"] += time.perf_counter() - t

    hubert = embedder(chosen["features"], hubert_path)
    synth = voice.model(chosen["synth"])
    pieces, feats_used = [], []
    iterator = chunks
    if progress:
        iterator = tqdm(chunks, desc=f"converting ({chosen['synth']})", unit="chunk")
    for i, chunk in enumerate(iterator):
        t = time.perf_counter()
        feats = _features(hubert, chunk.audio(padded), voice.version, chosen["features"])
        feats0 = feats.copy()
        feats = feats if feature_index is None else feature_index.blend(feats, index_rate)
        timings["features"] += time.perf_counter() - t
        pitch = chunk.frames(coarse) if voice.has_f0 else None
        pitchf = chunk.frames(f0bak) if voice.has_f0 else None
        n_samples = chunk.audio_stop - chunk.audio_start
        frames, n, pitch, pitchf = steps.features_to_frames(feats, feats0, n_samples, pitch, pitchf, protect)
        frames = frames[:n]
        t = time.perf_counter()
        wave = _synthesize(synth, voice, frames, pitch, pitchf, sid, noise_seed + i, chosen["synth"])
        timings["synth"] += time.perf_counter() - t
        pieces.append(chunk.trim(wave))
        feats_used.append(frames)
    out = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if rms_mix_rate != 1:
        out = steps.change_rms(x, SAMPLE_RATE_16K, out, voice.sr, rms_mix_rate)
    out_sr = voice.sr
    if resample_sr >= 16000 and resample_sr != voice.sr:
        out, out_sr = resample(out.astype(np.float32), voice.sr, resample_sr), resample_sr
    return Conversion(audio=steps.finalize_audio(out), sr=out_sr, backends=chosen, f0=f0bak,
                      coarse=coarse, chunks=chunks, timings=timings, features=feats_used)


def _load_index(index, version: str):
    if index is None:
        return None
    if isinstance(index, FeatureIndex):
        want = {"v1": 256, "v2": 768}[version]
        if index.dim != want:
            raise PipelineError(f"{index.path}: index dimension {index.dim} does not fit a {version} model ({want})")
        return index
    return load_index(index, version)


def _torch_device(module):
    """The device a torch model's weights live on: its inputs go there (CPU unless moved)."""
    return next(module.parameters()).device


def _features(hubert, chunk16: np.ndarray, version: str, backend: str) -> np.ndarray:
    """(N,) float32 @ 16 kHz -> (T, 256|768) float32 @ 50 fps."""
    if backend == "torch":
        import torch

        with torch.no_grad():
            x = torch.from_numpy(chunk16)[None].to(_torch_device(hubert))
            out = hubert.extract_features(x, version=version)
        return out[0].float().cpu().numpy()
    mx = import_mlx()
    out = hubert.extract_features(mx.array(chunk16)[None], version=version)
    return np.array(out[0].astype(mx.float32))


def _synthesize(synth, voice: VoiceModel, frames, pitch, pitchf, sid, seed, backend) -> np.ndarray:
    """Synthesizer on one chunk: (n, C) features @ 100 fps -> (n * hop,) float32 @ voice.sr."""
    n = frames.shape[0]
    noise = make_noise(voice.config, 1, n, seed)
    if backend == "torch":
        import torch

        args = [torch.from_numpy(frames[None].astype(np.float32)), torch.tensor([n])]
        args += [torch.from_numpy(pitch[None].astype(np.int64)), torch.from_numpy(pitchf[None])] if voice.has_f0 \
            else [None, None]
        dev = _torch_device(synth)
        args = [a if a is None else a.to(dev) for a in args]
        with torch.no_grad():
            wave = synth.infer(*args, torch.tensor([sid], device=dev), noise)[0]
        return wave[0, 0].float().cpu().numpy()
    mx = import_mlx()
    args = [mx.array(frames[None].astype(np.float32)), mx.array([n])]
    args += [mx.array(pitch[None].astype(np.int32)), mx.array(pitchf[None])] if voice.has_f0 else [None, None]
    wave = synth.infer(*args, mx.array([sid]), noise)[0]
    return np.array(wave[0, :, 0].astype(mx.float32))
