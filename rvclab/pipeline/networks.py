"""The three networks of a conversion on either backend: the voice and HuBERT models, one chunk's
features and waveform, the devices and precision they run at, and the clock of each step.

:func:`features`: (N,) float32 @ 16 kHz -> (T, 256|768) float32 @ 50 fps; :func:`synthesize`:
(n, C) features @ 100 fps -> (n * hop,) float32 @ the voice's rate. Everything outside the
networks is :mod:`rvclab.pipeline.steps`; the order of a conversion is
:mod:`rvclab.pipeline.conversion`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rvclab.checkpoints import safetensors_metadata
from rvclab.models.hubert.io import load_hubert
from rvclab.models.rmvpe import f0 as rmvpe_f0
from rvclab.models.synth.config import DEFAULT_PHASE_FORM
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.rules import config_from_metadata, load_mlx_voice
from rvclab.pipeline.index import FeatureIndex, load_index
from rvclab.precision import check_finite as check_output
from rvclab.precision import configure_mlx, mlx_dtype, mlx_model, resolve, torch_precision, wants_tf32
from rvclab.runtime import IS_MACOS, import_mlx
from rvclab.weights import default_hubert

STAGES = ("features", "f0", "synth")


class PipelineError(ValueError):
    """A conversion that cannot run as asked; the message says why."""


# Steps of one conversion, in order, as Conversion.steps names them. NETWORK_STEPS are the
# networks' own time; "copy_in"/"copy_out" move arrays to and from the networks' device.
NETWORK_STEPS = ("f0_network", "hubert", "synth")
STEP_NAMES = ("load_input", "highpass", "plan_chunks", "frame_rms", "pad_audio", "f0_network",
              "postprocess_f0", "copy_in", "hubert", "copy_out", "index_blend", "features_to_frames",
              "noise", "synth", "write_output", "mix_rms", "finalize")


class StepTimes:
    """Seconds per step of one conversion; ``sync()`` (if given) waits for device work before a
    step's clock stops."""

    def __init__(self, sync: Callable[[], None] | None = None):
        self.sync = sync
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t


def device_sync(chosen: dict[str, str]) -> Callable[[], None]:
    """Waits for queued device work of the backends in use (torch CUDA; MLX's default stream)."""
    waits = []
    if "torch" in chosen.values():
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            waits.append(torch.cuda.synchronize)
    if "mlx" in chosen.values():
        mx = import_mlx()
        waits.append(lambda: mx.synchronize())
    return lambda: [w() for w in waits]


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


def voice_index(index, version: str):
    if index is None:
        return None
    if isinstance(index, FeatureIndex):
        want = {"v1": 256, "v2": 768}[version]
        if index.dim != want:
            raise PipelineError(f"{index.path}: index dimension {index.dim} does not fit a {version} model ({want})")
        return index
    return load_index(index, version)


def torch_device(module):
    """The device a torch model's weights live on: its inputs go there (CPU unless moved)."""
    return next(module.parameters()).device


def precision_modes(precision, chosen: dict[str, str], synth) -> dict[str, str | None]:
    """{stage: mode} valid on every device the conversion uses; MLX's TF32 switch set or checked.
    None: every stage None (nothing set)."""
    if precision is None:
        return dict.fromkeys(STAGES)
    devices = set()
    if "torch" in chosen.values():
        devices.add(_torch_device_type(chosen, synth))
    if "mlx" in chosen.values():
        mx = import_mlx()
        devices.add("cpu" if mx.default_device() == mx.cpu else ("metal" if IS_MACOS else "cuda"))
    modes = {}
    for device in sorted(devices):
        modes = resolve(precision, device)
    if "mlx" in chosen.values() and any(d != "cpu" for d in devices):
        configure_mlx(wants_tf32({s: m for s, m in modes.items() if chosen[s] == "mlx"}))
    return modes


def gpu_memory_gb(chosen: dict[str, str], synth) -> float | None:
    """GiB of the CUDA GPU a torch synthesizer runs on (the WebUI picks its chunking by it);
    None elsewhere."""
    if chosen["synth"] != "torch" or torch_device(synth).type != "cuda":
        return None
    import torch

    return torch.cuda.get_device_properties(torch_device(synth)).total_memory / 2**30


def _torch_device_type(chosen: dict[str, str], synth) -> str:
    """"cuda" or "cpu": where the conversion's torch models run (the synthesizer's device when torch
    runs it, else where the cached torch F0 models were put)."""
    if chosen["synth"] == "torch":
        return torch_device(synth).type
    return "cuda" if _torch_on_cuda() else "cpu"


def _torch_on_cuda() -> bool:
    """Whether the cached torch F0/HuBERT models were moved to CUDA (benchmarks do)."""
    return any(getattr(m, "device", None) == "cuda" for m in rmvpe_f0._MODELS.values())


@contextmanager
def torch_mode(chosen: dict[str, str], stage: str, mode: str | None, synth):
    """torch's flags for ``mode`` around a stage run by torch; nothing for MLX (set at load) or
    for mode None (torch as it is set)."""
    if chosen[stage] != "torch" or mode is None:
        yield
        return
    with torch_precision(mode, _torch_device_type(chosen, synth)):
        yield


def features(hubert, chunk16: np.ndarray, version: str, backend: str, step=None, mode=None,
             v1_layer: int | None = None, attention: str = "explicit") -> np.ndarray:
    """(N,) float32 @ 16 kHz -> (T, 256|768) float32 @ 50 fps. ``v1_layer``: the transformer layer
    (1..12) a v1 voice reads through final_proj (ReferenceProfile.hubert_v1_layer; None: 9).
    ``attention``: the torch HuBERT's kernel (ReferenceProfile.hubert_attention); MLX has one."""
    step = step or StepTimes()
    layer = v1_layer if version == "v1" else None
    if backend == "torch":
        import torch

        with torch.no_grad():
            with step("copy_in"):
                x = torch.from_numpy(chunk16)[None].to(torch_device(hubert))
            with step("hubert"), torch_precision(mode, x.device.type):
                out = hubert.extract_features(x, version=version, output_layer=layer, attention=attention)
        with step("copy_out"):
            return check_output("features (HuBERT)", mode, out[0].float().cpu().numpy())
    mx = import_mlx()
    with step("copy_in"):
        x = mx.array(chunk16)[None].astype(mlx_dtype(mode))
    with step("hubert"):
        out = mlx_model(hubert, mode).extract_features(x, version=version, output_layer=layer)
        mx.eval(out)
    with step("copy_out"):
        return check_output("features (HuBERT)", mode, np.array(out[0].astype(mx.float32)))


def synthesize(synth, voice: VoiceModel, frames, pitch, pitchf, sid, seed, backend, kind="numpy",
                step=None, mode=None, phase_form=DEFAULT_PHASE_FORM) -> np.ndarray:
    """Synthesizer on one chunk: (n, C) features @ 100 fps -> (n * hop,) float32 @ voice.sr.

    ``phase_form``: the NSF source's phase (a reference profile's ``sine_phase``)."""
    n = frames.shape[0]
    step = step or StepTimes()
    if backend == "torch":
        import torch

        dev = torch_device(synth)
        with step("noise"):
            if kind == "numpy":
                noise = make_noise(voice.config, 1, n, seed)
            else:
                from rvclab.models.synth.torch.noise import counter_noise_torch

                noise = counter_noise_torch(voice.config, 1, n, seed, device=dev)
        with step("copy_in"):
            args = [torch.from_numpy(frames[None].astype(np.float32)), torch.tensor([n])]
            args += [torch.from_numpy(pitch[None].astype(np.int64)), torch.from_numpy(pitchf[None])] \
                if voice.has_f0 else [None, None]
            args = [a if a is None else a.to(dev) for a in args]
            noise = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(dev) for k, v in noise.items()}
        with torch.no_grad(), step("synth"), torch_precision(mode, dev.type):
            wave = synth.infer(*args, torch.tensor([sid], device=dev), noise, phase_form=phase_form)[0]
        with step("copy_out"):
            return check_output("synth", mode, wave[0, 0].float().cpu().numpy())
    mx = import_mlx()
    with step("noise"):
        if kind == "numpy":
            noise = make_noise(voice.config, 1, n, seed)
        else:
            from rvclab.models.synth.mlx.noise import counter_noise_mlx

            noise = counter_noise_mlx(voice.config, 1, n, seed)
    with step("copy_in"):
        args = [mx.array(frames[None].astype(np.float32)).astype(mlx_dtype(mode)), mx.array([n])]
        args += [mx.array(pitch[None].astype(np.int32)), mx.array(pitchf[None])] if voice.has_f0 else [None, None]
        noise = {k: mx.array(v) for k, v in noise.items()}
    with step("synth"):
        wave = mlx_model(synth, mode).infer(*args, mx.array([sid]), noise, phase_form=phase_form)[0]
        mx.eval(wave)
    with step("copy_out"):
        return check_output("synth", mode, np.array(wave[0, :, 0].astype(mx.float32)))
