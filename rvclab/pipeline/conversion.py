"""Voice conversion end to end, the same pipeline on both backends (docs/parameters.md).

``convert_voice(audio, model, backend="torch"|"mlx", ...)`` follows RVC's inference. Outside the
three networks (HuBERT, F0, synthesizer) everything is shared numpy (:mod:`rvclab.pipeline.steps`)
and the synthesizer's noise comes from one seeded source per chunk, so two backends' outputs
compare sample by sample. ``backends={"features": ..., "f0": ..., "synth": ...}`` swaps stages.

Long inputs: F0 runs once on the whole clip (as upstream) and only its arrays are kept; then each
chunk's features and waveform are made, written into the output and let go, so memory beyond the
input and output buffers stays that of one chunk. MLX models run module by module and freed memory
is returned between chunks (:mod:`rvclab.pipeline.pieces`), so Ctrl+C stops a conversion between
two layers.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from rvclab.audio import (
    RES_TYPE,
    SAMPLE_RATE_16K,
    AudioError,
    check_finite,
    check_sample_rate,
    load_audio_native,
    resample,
)
from rvclab.models.fcpe import f0 as fcpe_f0
from rvclab.models.rmvpe import f0 as rmvpe_f0
from rvclab.models.synth.noise import NOISE_KINDS
from rvclab.pipeline import reference as ref
from rvclab.pipeline import steps
from rvclab.pipeline.networks import (
    STAGES,
    PipelineError,
    StepTimes,
    VoiceModel,
    device_sync,
    embedder,
    features,
    gpu_memory_gb,
    precision_modes,
    synthesize,
    torch_mode,
    voice_index,
)
from rvclab.pipeline.pieces import mlx_module_by_module, release_memory
from rvclab.pitch import estimate_f0
from rvclab.profiles import DEFAULT_PROFILE, ReferenceProfile

BACKENDS = ("torch", "mlx")
# The API's and the CLI's one default: the port this workbench exists for, and the backend a Mac
# has without torch (torch is optional there). "torch", the reference, is one argument away.
DEFAULT_BACKEND = "mlx"
MIN_SECONDS = 0.1  # shorter inputs cannot fill one HuBERT frame after padding; refused
MIN_RESAMPLE_SR = 16000  # resample_sr below this is ignored, as upstream (rvclab convert refuses it)
# Integer PCM arrays (as scipy.io.wavfile or soundfile return them) -> float: divided by their
# full scale, 2**(bits-1); unsigned 8-bit WAV is centred on 128 first. Other integer types refused.
PCM_FULL_SCALE = {np.dtype(np.int8): 2**7, np.dtype(np.int16): 2**15, np.dtype(np.int32): 2**31,
                  np.dtype(np.uint8): 2**7}
PCM_OFFSET = {np.dtype(np.uint8): 2**7}
# F0 networks whose MLX model runs module by module (CREPE already runs in batches of frames)
MLX_F0_MODELS = {"rmvpe": lambda: rmvpe_f0.get_estimator("mlx").model, "fcpe": lambda: fcpe_f0.get_model("mlx")}


# --- results -----------------------------------------------------------------------------------


@dataclass(repr=False)
class Conversion:
    """What one conversion produced: the waveform and what led to it.

    Fields:
        audio: (N,) float32 in [-0.99, 0.99] at ``sr`` Hz, the converted voice.
        sr: its sample rate: the voice model's, or ``resample_sr`` when that applied.
        backends: {"features", "f0", "synth"} -> "torch" | "mlx", the backend of each stage.
        f0: (p_len,) float32 Hz per 10 ms frame (0 = unvoiced) after shift and curve, on the
            16 kHz input padded by x_pad seconds of reflection at each end.
        coarse: (p_len,) int32 coarse pitch ids 1..255 (zeros for a model without F0).
        chunks: the :class:`rvclab.pipeline.steps.Chunk` pieces, converted one after another.
        timings: {"features", "f0", "synth"} -> seconds spent in each stage.
        steps: every step's seconds, summed over chunks (:data:`STEP_NAMES`): the networks
            ("hubert", "rmvpe"/the F0 method, "synth"), the copies to and from their device
            ("copy_in", "copy_out") and each numpy step; with ``profile=True`` each step waits for
            its device work, so asynchronous work is not counted in the next step.
        features: per chunk, (2T, C) float32 synthesizer input features at 100 fps, kept only
            with ``keep_features=True`` (empty otherwise: they grow with the input).
        reference: the name of the reference profile followed (:mod:`rvclab.profiles`).
        reference_gaps: its fields rvclab does not reproduce (:mod:`rvclab.pipeline.reference`).
    """

    audio: np.ndarray
    sr: int
    backends: dict[str, str]
    f0: np.ndarray
    coarse: np.ndarray
    chunks: list
    timings: dict[str, float] = field(default_factory=dict)
    features: list = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    reference: str = DEFAULT_PROFILE
    reference_gaps: tuple[str, ...] = ()

    def __repr__(self) -> str:
        seconds = self.audio.shape[0] / self.sr if self.sr else 0.0
        used = set(self.backends.values())
        backends = used.pop() if len(used) == 1 else ", ".join(f"{k}={v}" for k, v in self.backends.items())
        voiced = float((self.f0 > 0).mean()) if self.f0.size else 0.0
        times = ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items())
        kept = f", features: {len(self.features)} arrays" if self.features else ""
        return (f"Conversion(audio {self.audio.shape} {self.audio.dtype} @ {self.sr} Hz = {seconds:.2f} s, "
                f"backend {backends}, {len(self.chunks)} chunk(s), f0 {self.f0.shape} {voiced:.0%} voiced, "
                f"times: {times}{kept})")


def pcm_to_float(audio) -> np.ndarray:
    """An audio array as users pass it -> float32. Floats as they are (expected in [-1, 1]);
    integer PCM divided by its full scale (int16 / 32768, int32 / 2**31, int8 / 128, uint8
    centred: (x - 128) / 128). Other dtypes (int64, uint16, bool, complex...) raise AudioError."""
    x = np.asarray(audio)
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    if x.dtype not in PCM_FULL_SCALE:
        raise AudioError(f"audio: dtype {x.dtype} is not audio; pass floats in [-1, 1] or integer PCM "
                         f"({', '.join(str(d) for d in PCM_FULL_SCALE)}), e.g. x.astype(np.float32) / scale")
    y = x.astype(np.float32)
    if x.dtype in PCM_OFFSET:
        y -= np.float32(PCM_OFFSET[x.dtype])
    y /= np.float32(PCM_FULL_SCALE[x.dtype])
    return y


def _to_16k(audio, sr: int | None, res_type: str = RES_TYPE) -> tuple[np.ndarray, int]:
    """(mono float32 @ 16 kHz, the rate it came at)."""
    if isinstance(audio, str | os.PathLike):
        data, native = load_audio_native(audio)
        return resample(data, native, SAMPLE_RATE_16K, res_type), native
    x = pcm_to_float(audio)
    if x.ndim == 2:  # (T, channels) or (channels, T): average to mono
        x = x.mean(axis=0 if x.shape[0] < x.shape[1] else 1)
    if x.ndim != 1:
        raise AudioError(f"audio: expected (T,) or (T, channels), found shape {x.shape}")
    if sr is None:
        raise AudioError("audio given as an array needs its sample rate: sr=...")
    check_sample_rate(sr)
    check_finite(x)
    return resample(x, int(sr), SAMPLE_RATE_16K, res_type), int(sr)


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
    f0_method: str | None = None,
    index=None,
    index_rate: float | None = None,
    filter_radius: int | None = None,
    resample_sr: int = 0,
    rms_mix_rate: float | None = None,
    protect: float | None = None,
    sid: int = 0,
    f0_curve: np.ndarray | str | None = None,
    backend: str = DEFAULT_BACKEND,
    backends: dict | None = None,
    noise_seed: int = 0,
    noise: str = "numpy",
    hubert_path: str | os.PathLike | None = None,
    pad_config: steps.PadConfig | None = None,
    progress: bool | None = None,
    keep_features: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
    profile: bool = False,
    precision: str | dict | None = None,
    reference: str | ReferenceProfile = DEFAULT_PROFILE,
) -> Conversion:
    """Convert ``audio`` with voice ``model``; returns a :class:`Conversion` whose ``audio`` is the
    converted (N,) float32 waveform at ``sr`` Hz (the voice's rate, or ``resample_sr``).

    ``audio``: a file path, or an array (T,), (T, channels) or (channels, T) with its rate ``sr``
    (channels are averaged). Float arrays are taken as they are (full scale 1.0); integer PCM as
    scipy.io.wavfile returns it is divided by its full scale (int16 / 32768, int32 / 2**31,
    int8 / 128, uint8 as (x - 128) / 128); other integer dtypes raise AudioError.

    ``reference``: the release to follow, a name of :data:`rvclab.profiles.PROFILES` or a
    :class:`~rvclab.profiles.ReferenceProfile` (default :data:`~rvclab.profiles.DEFAULT_PROFILE`,
    the current RVC WebUI). ``f0_method``, ``index_rate``, ``protect``, ``rms_mix_rate`` and
    ``pad_config`` left None take its defaults; the F0 method must be one it offers and runs with
    its parameters (``filter_radius`` only where its method takes one). Its fields rvclab does not
    reproduce are listed in ``Conversion.reference_gaps`` and warned about once per process
    (:class:`rvclab.pipeline.reference.ReferenceGapWarning`).

    Parameters as RVC WebUI/Applio name them (docs/parameters.md). ``index`` is a path or a
    loaded :class:`rvclab.pipeline.index.FeatureIndex`. ``noise_seed`` seeds the synthesizer's random
    draws (chunk i uses ``noise_seed + i``), identically on both backends; ``noise`` picks the
    generator (:data:`rvclab.models.synth.noise.NOISE_KINDS`): "numpy" (PCG64 on the host) or
    "counter" (drawn on the synthesizer's device, the same bits on both backends). ``backend``: "mlx"
    (:data:`DEFAULT_BACKEND`, as the CLI) or "torch"; ``backends`` overrides single stages.

    ``progress``: a bar per chunk on stderr (default: when stderr is a terminal).
    ``keep_features``: keep each chunk's synthesizer input in ``Conversion.features``.
    ``on_chunk(i, n)``: called after chunk i of n is converted (a KeyboardInterrupt raised there,
    or anywhere, stops the conversion).
    ``profile``: wait for the devices after every step, so ``Conversion.steps`` splits the time
    exactly (benchmarks); off, the steps are timed without waiting.
    ``precision``: "fp32" | "tf32" | "fp16" | "bf16", or {stage: mode} (:mod:`rvclab.precision`);
    None: the backends as they are set (float32; TF32 as torch's flags and ``MLX_ENABLE_TF32``
    stand). A mode the device cannot run raises PrecisionError; a network output with NaN/Inf
    raises PrecisionOverflow naming the stage.
    """
    chosen = _resolve_backends(backend, backends)
    if noise not in NOISE_KINDS:
        raise PipelineError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
    p = ref.resolve(reference)
    f0_method = p.default_f0_method if f0_method is None else f0_method
    index_rate = p.default_index_rate if index_rate is None else index_rate
    protect = p.default_protect if protect is None else protect
    rms_mix_rate = p.default_rms_mix_rate if rms_mix_rate is None else rms_mix_rate
    if not 0 <= index_rate <= 1 or not 0 <= protect <= p.protect_off or not 0 <= rms_mix_rate <= 1:
        raise PipelineError(f"index_rate and rms_mix_rate must be in [0, 1], protect in [0, {p.protect_off}]")
    voice = model if isinstance(model, VoiceModel) else VoiceModel(model)
    f0_kwargs = ref.f0_keywords(p, f0_method, filter_radius) if voice.has_f0 else {}
    if f0_curve is not None and not p.f0_curve_file:
        raise PipelineError(f"f0_curve: reference profile {p.name!r} ({p.release}) takes no F0 curve file; "
                            "choose a profile whose release does (rvclab.profiles.PROFILES, f0_curve_file)")
    if resample_sr and p.output_resampler is None:
        raise PipelineError(f"resample_sr={resample_sr}: reference profile {p.name!r} ({p.release}) offers no "
                            "output resampling; leave resample_sr at 0 or choose another profile")
    gaps = ref.reference_gaps(p)
    step = StepTimes(device_sync(chosen) if profile else None)
    with step("load_input"):
        x16, native_sr = _to_16k(audio, sr, RES_TYPE if "input_resampler" in gaps else p.input_resampler)
    if native_sr == SAMPLE_RATE_16K:  # nothing to resample: the releases' resampler would not act either
        gaps = tuple(g for g in gaps if g != "input_resampler")
    ref.warn_gaps(p, gaps=gaps)
    if x16.size < MIN_SECONDS * SAMPLE_RATE_16K:
        name = audio if isinstance(audio, str | os.PathLike) else "audio"
        raise AudioError(f"{name}: {x16.size / SAMPLE_RATE_16K:.3f} s is too short (minimum {MIN_SECONDS} s)")
    if sid < 0 or sid >= int(voice.config.spk_embed_dim):
        raise PipelineError(f"sid {sid} out of range: the model has {voice.config.spk_embed_dim} speakers")
    feature_index = voice_index(index, voice.version)
    curve = steps.read_f0_curve(f0_curve) if isinstance(f0_curve, str | os.PathLike) else f0_curve
    hubert = embedder(chosen["features"], hubert_path)
    synth = voice.model(chosen["synth"])
    modes = precision_modes(precision, chosen, synth)
    if pad_config is None:
        pad_config = steps.PadConfig(*ref.device_pad_config(p, modes["synth"] == "fp16",
                                                           gpu_memory_gb(chosen, synth)))
    rms_in, rms_out = steps.RMS_DTYPES[p.rms_dtype]
    release_memory()  # what loading files and models left in the heap

    timings: dict[str, float] = {"features": 0.0, "f0": 0.0, "synth": 0.0}
    with step("highpass"):
        x = steps.highpass(steps.normalize_input(x16))
    del x16
    pad = steps.padding_for(voice.sr, pad_config)
    with step("plan_chunks"):
        chunks = steps.plan_chunks(x, pad, p.split_quietness)
    with step("frame_rms"):
        source_rms = steps.frame_rms(x, SAMPLE_RATE_16K, rms_in)  # all change_rms needs of the input
    with step("pad_audio"):
        padded = steps.pad_audio(x, pad)
    del x
    p_len = padded.shape[0] // steps.WINDOW
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = tqdm(total=len(chunks), desc="F0", unit="chunk", disable=not show, leave=False)
    with bar, ExitStack() as pieces:
        coarse = np.zeros(p_len, np.int32)
        f0bak = np.zeros(p_len, np.float32)
        if voice.has_f0:
            t = time.perf_counter()
            if chosen["f0"] == "mlx" and f0_method in MLX_F0_MODELS:
                pieces.enter_context(mlx_module_by_module(MLX_F0_MODELS[f0_method]()))
            with step("f0_network"), torch_mode(chosen, "f0", modes["f0"], synth):  # log-mel, decoding incl.
                f0 = estimate_f0(padded.astype(np.float32), f0_method, backend=chosen["f0"], n_frames=p_len,
                                 **f0_kwargs).f0  # the whole clip, as upstream
            with step("postprocess_f0"):
                coarse, f0bak = steps.postprocess_f0(f0, f0_up_key, curve, pad_config.x_pad, p_len,
                                                     fill=p.f0_fill_unvoiced)
            del f0
            timings["f0"] += time.perf_counter() - t
            release_memory(chosen["f0"] == "mlx")
        for stage, model in (("features", hubert), ("synth", synth)):
            if chosen[stage] == "mlx":
                pieces.enter_context(mlx_module_by_module(model))
        bar.set_description(f"converting ({chosen['synth']})")
        out = np.empty(_output_bound(chunks, voice.sr), np.float32)
        filled, feats_kept = 0, []
        for i, chunk in enumerate(chunks):
            t = time.perf_counter()
            feats = features(hubert, chunk.audio(padded), voice.version, chosen["features"], step,
                             modes["features"], v1_layer=p.hubert_v1_layer,
                             attention=p.hubert_attention)
            with step("index_blend"):
                feats0 = feats.copy()  # protect mixes it back even without an index, as upstream
                feats = feats if feature_index is None else feature_index.blend(feats, index_rate, p.index_k)
            timings["features"] += time.perf_counter() - t
            pitch = chunk.frames(coarse) if voice.has_f0 else None
            pitchf = chunk.frames(f0bak) if voice.has_f0 else None
            n_samples = chunk.audio_stop - chunk.audio_start
            with step("features_to_frames"):
                frames, n, pitch, pitchf = steps.features_to_frames(feats, feats0, n_samples, pitch, pitchf,
                                                                    protect, p.protect_off)
                frames = frames[:n]
            del feats, feats0
            t = time.perf_counter()
            wave = chunk.trim(synthesize(synth, voice, frames, pitch, pitchf, sid, noise_seed + i, chosen["synth"],
                                          noise, step, modes["synth"], p.sine_phase))
            timings["synth"] += time.perf_counter() - t
            with step("write_output"):
                if filled + wave.shape[0] > out.shape[0]:  # never for RVC's synthesizers; kept safe
                    out = np.concatenate([out[:filled], np.empty(filled + wave.shape[0] - out.shape[0], np.float32)])
                out[filled : filled + wave.shape[0]] = wave
                filled += wave.shape[0]
            if keep_features:
                feats_kept.append(frames)
            del frames, wave
            release_memory("mlx" in (chosen["features"], chosen["synth"]))
            bar.update()
            if on_chunk is not None:
                on_chunk(i, len(chunks))
    del padded
    out = out[:filled]
    with step("mix_rms"):
        if rms_mix_rate != 1:
            steps.mix_rms_(out, voice.sr, source_rms, rms_mix_rate, rms_out)
    out_sr = voice.sr
    with step("finalize"):
        if resample_sr >= MIN_RESAMPLE_SR and resample_sr != voice.sr:
            out, out_sr = resample(out, voice.sr, resample_sr, p.output_resampler), resample_sr
        out = steps.finalize_audio_(out)  # the WebUI's int16: to_int16_webui(out) (output_int16)
    return Conversion(audio=out, sr=out_sr, backends=chosen, f0=f0bak, coarse=coarse, chunks=chunks,
                      timings=timings, features=feats_kept, steps=step.times, reference=p.name,
                      reference_gaps=gaps)


def _output_bound(chunks: list, voice_sr: int) -> int:
    """Output samples the chunks can yield at most: each chunk's synthesizer makes at most
    samples // 160 frames of voice_sr / 100 samples, less the trimmed padding at both ends."""
    hop = voice_sr // steps.FRAME_RATE
    return sum(max(0, (c.audio_stop - c.audio_start) // steps.WINDOW * hop - 2 * c.trim_tgt) for c in chunks)

