"""Benchmark stages: the same work on torch and MLX, one runner per (stage, backend, length).

A :class:`Runner` is a call plus its backend's synchronisation, so ``sync(call())`` is complete
work. Inputs are the shipped clips tiled to the length asked; weights the seeded defaults
(:mod:`rvclab.weights`, :mod:`rvclab.voices`), the synthesizer the v2-48k voice. What one call of
each stage covers: :func:`build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rvclab.audio import data_clips, load_audio
from rvclab.models.crepe import config as crepe_config
from rvclab.models.crepe import f0 as f0_crepe
from rvclab.models.fcpe import config as fcpe_config
from rvclab.models.fcpe import f0 as f0_fcpe
from rvclab.models.rmvpe import f0 as f0_rmvpe
from rvclab.models.rmvpe import gru
from rvclab.models.rmvpe.io import ensure_default_weights
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.parity import clip_inputs
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import NETWORK_STEPS, VoiceModel, embedder
from rvclab.profiles import DEFAULT_PROFILE
from rvclab.runtime import import_mlx, torch_cuda_graph_enabled
from rvclab.voices import default_voice

STAGE_NAMES = ("hubert", "rmvpe", "crepe", "fcpe", "synth", "e2e")
BACKENDS = ("torch", "mlx")
SYNTH_VOICE = "voice_v2_48k.pth"
SAMPLE_RATE = 16000


@dataclass
class StageOptions:
    """What a stage runs on: ``device`` 'cpu' or 'gpu'; F0 method and noise generator of e2e;
    CREPE capacity."""

    device: str = "cpu"
    f0_method: str = "rmvpe"
    crepe_model: str = "full"
    voice: str = SYNTH_VOICE
    noise: str = "numpy"
    precision: str | None = None  # rvclab.precision mode of the e2e stage; None: backends as set
    reference: str = DEFAULT_PROFILE  # the reference profile the e2e stage follows (rvclab.profiles)

    @property
    def torch_device(self) -> str:
        return "cuda" if self.device == "gpu" else "cpu"


@dataclass
class Runner:
    """``sync(call())`` runs one complete unit of a stage's work on one backend; ``details()``,
    after a call, names the code paths it took (for its benchmark row)."""

    call: Any
    sync: Any
    stage: str
    backend: str
    seconds: float
    details: Any = dict


_SPEECH: list[np.ndarray] = []
_CACHE: dict[tuple, Any] = {}


def speech(seconds: float) -> np.ndarray:
    """(seconds * 16000,) float32: the shipped clips concatenated, tiled to the length asked."""
    if not _SPEECH:
        _SPEECH.append(np.concatenate([load_audio(p, SAMPLE_RATE) for p in data_clips()]).astype(np.float32))
    base = _SPEECH[0]
    n = int(round(seconds * SAMPLE_RATE))
    return np.ascontiguousarray(np.tile(base, -(-n // base.size))[:n])


def mlx_sync(out) -> None:
    import_mlx().eval(out)


def torch_sync_for(device: str):
    """A sync function for torch on ``device`` ('cpu': ops are synchronous, nothing to wait for)."""
    if device == "cpu":
        return lambda out: None

    def sync(out) -> None:
        import torch

        torch.cuda.synchronize()

    return sync


def _cached(key: tuple, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def voice_model(opts: StageOptions):
    """The seeded voice (v2-48k unless asked otherwise), torch weights on the benchmark's device."""
    voice = _cached(("voice", opts.voice), lambda: VoiceModel(default_voice(opts.voice)))
    if opts.device == "gpu":
        voice.model("torch").to("cuda")
    return voice


def place_pipeline_models(opts: StageOptions) -> None:
    """Put the pipeline's cached torch models (HuBERT, RMVPE; FCPE once loaded) on the benchmark's
    torch device."""
    if opts.device != "gpu":
        return
    from rvclab.models.rmvpe.torch import RMVPE

    embedder("torch").to("cuda")
    if "torch" in f0_fcpe._MODELS:
        f0_fcpe._MODELS["torch"].to("cuda")
    f0_rmvpe.get_estimator("torch")
    graphs = torch_cuda_graph_enabled("cuda", default=True)  # torch at its best, as upstream runs it
    for key, est in list(f0_rmvpe._MODELS.items()):
        if key[1] == "torch" and (getattr(est, "device", "cpu") != "cuda" or est.cuda_graph != graphs):
            f0_rmvpe._MODELS[key] = RMVPE(est.model, device="cuda", cuda_graph=graphs)


def rmvpe_paths(backend: str) -> dict:
    """Which RMVPE code ran last on ``backend``: the MLX BiGRU's path (rvclab.runtime.GRU_PATHS) or
    whether torch replayed CUDA graphs."""
    if backend == "mlx":
        return {"gru_path": gru.last_path()}
    est = f0_rmvpe._MODELS.get((str(ensure_default_weights(None)), "torch"))
    return {"torch_cuda_graph": bool(est is not None and est.graphed is not None and est.graphed.replays)}


# --- stages -------------------------------------------------------------------------------------


def _hubert(backend: str, audio: np.ndarray, opts: StageOptions):
    model = embedder(backend)
    if backend == "torch":
        import torch

        model.to(opts.torch_device)
        x = torch.from_numpy(audio)[None].to(opts.torch_device)

        def call():
            with torch.no_grad():
                return model.extract_features(x, version="v2")
        return call
    mx = import_mlx()
    x = mx.array(audio)[None]
    return lambda: model.extract_features(x, version="v2")


def _rmvpe(backend: str, audio: np.ndarray, opts: StageOptions):
    if backend == "torch":
        place_pipeline_models(opts)
    est = f0_rmvpe.get_estimator(backend)
    return lambda: est.infer(audio)


def _crepe(backend: str, audio: np.ndarray, opts: StageOptions):
    model = f0_crepe.get_model(opts.crepe_model, backend)
    fr = crepe_config.frames(audio)  # (T, 1024) normalised frames, on the host for both backends
    batch = crepe_config.BATCH_SIZE
    if backend == "torch":
        import torch

        model.to(opts.torch_device)
        x = torch.from_numpy(fr).to(opts.torch_device)

        def call():
            with torch.no_grad():
                return torch.cat([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
        return call
    mx = import_mlx()
    x = mx.array(fr)

    def call_mlx():
        return mx.concatenate([model(x[i:i + batch]) for i in range(0, x.shape[0], batch)])
    return call_mlx


def _fcpe(backend: str, audio: np.ndarray, opts: StageOptions):
    model = f0_fcpe.get_model(backend)
    if backend == "torch":
        import torch

        from rvclab.models.fcpe.torch import log_mel

        model.to(opts.torch_device)

        def call():
            with torch.no_grad():
                return model(log_mel(audio).to(opts.torch_device))
        return call
    from rvclab.models.fcpe.mlx import log_mel as mlx_log_mel

    basis = fcpe_config.mel_basis()
    return lambda: model(mlx_log_mel(audio, basis))


def _synth(backend: str, audio: np.ndarray, opts: StageOptions):
    voice = voice_model(opts)
    frames = audio.size // 160
    inp = _cached(("synth_inputs", opts.voice, frames), lambda: clip_inputs(voice.config, frames, 0))
    noise = _cached(("synth_noise", opts.voice, frames), lambda: make_noise(voice.config, 1, frames, 0))
    model = voice.model(backend)
    if backend == "torch":
        import torch

        dev = opts.torch_device
        args = [torch.from_numpy(inp[k]).to(dev) for k in ("phone", "lengths", "pitch", "f0", "sid")]

        def call():
            with torch.no_grad():
                return model.infer(*args[:4], args[4], noise)[0]
        return call
    mx = import_mlx()
    args = [mx.array(inp["phone"]), mx.array(inp["lengths"].astype(np.int32)),
            mx.array(inp["pitch"].astype(np.int32)), mx.array(inp["f0"]), mx.array(inp["sid"].astype(np.int32))]
    return lambda: model.infer(*args, noise)[0]


def _e2e(backend: str, audio: np.ndarray, opts: StageOptions):
    voice = voice_model(opts)
    place_pipeline_models(opts)
    last: list = []

    def call():
        last[:] = [convert_voice(audio, voice, sr=SAMPLE_RATE, f0_method=opts.f0_method, backend=backend,
                                 noise_seed=0, noise=opts.noise, profile=True, precision=opts.precision,
                                 reference=opts.reference)]
        return last[0].audio

    call.last = last
    return call


def step_breakdown(conversion) -> dict:
    """A benchmark row's view of :attr:`Conversion.steps`: every step's seconds, the networks'
    sum and the rest (numpy steps and copies)."""
    steps = dict(conversion.steps)
    network = sum(v for k, v in steps.items() if k in NETWORK_STEPS)
    return {"steps_s": steps, "network_s": network, "non_network_s": sum(steps.values()) - network}


BUILDERS = {"hubert": _hubert, "rmvpe": _rmvpe, "crepe": _crepe, "fcpe": _fcpe, "synth": _synth, "e2e": _e2e}


def build(stage: str, backend: str, seconds: float, opts: StageOptions) -> Runner:
    """The runner of ``stage`` on ``backend`` for ``seconds`` of speech. One call covers:

    * ``hubert`` — HuBERT/ContentVec features, 16 kHz audio -> (T/320, 768) (v2 output layer);
    * ``rmvpe`` — RMVPE F0 as the pipeline calls it: log-mel, U-Net + BiGRU, decoding to Hz;
    * ``crepe`` — the CREPE network (``--crepe-model full|tiny``) over every 10 ms frame, 512 a batch;
    * ``fcpe`` — FCPE log-mel and network (the latent over 360 bins); decoding is excluded;
    * ``synth`` — the synthesizer's ``infer`` (text encoder, flow, NSF-HiFiGAN) on features at
      100 fps, noise drawn beforehand (:mod:`rvclab.models.synth.noise`);
    * ``e2e`` — :func:`rvclab.pipeline.conversion.convert_voice` with the same chunking and noise on
      both backends (F0 method ``--f0-method``, default rmvpe).
    """
    if stage not in BUILDERS:
        raise ValueError(f"unknown stage '{stage}'; choose from {', '.join(BUILDERS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")
    call = BUILDERS[stage](backend, speech(seconds), opts)
    sync = mlx_sync if backend == "mlx" else torch_sync_for(opts.device)
    paths = (lambda: rmvpe_paths(backend)) if stage == "rmvpe" or (stage == "e2e" and opts.f0_method == "rmvpe") \
        else dict
    if stage == "e2e":
        def details(paths=paths, last=call.last):
            return {**paths(), "noise": opts.noise, **(step_breakdown(last[0]) if last else {})}
    else:
        details = paths
    return Runner(call=call, sync=sync, stage=stage, backend=backend, seconds=float(seconds), details=details)


def count_flops(fn) -> int:
    """FLOPs torch's FlopCounterMode records during ``fn()`` (matmuls, convolutions, attention;
    elementwise ops, FFTs and indexing are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())
