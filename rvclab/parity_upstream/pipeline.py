"""The whole conversion: upstream's ``Pipeline.pipeline`` against rvclab's ``convert_voice``.

Both sides get the same 16 kHz input (peak-limited to 0.95, as upstream's loader does), the same
voice, HuBERT and RMVPE files and the same FAISS index file, and synthesize with the same noise:
upstream's draws are replaced by rvclab's (:class:`rvclab.parity_upstream.draws.RvclabDraws`),
since ``convert_voice`` draws its own. rvclab's arguments come from the profile
(:func:`rvclab_arguments`); one row per F0 method the profile offers, with and without the index,
and backend. Output compared as the release writes it: int16 steps, or float32 / 32768 steps.

RVC WebUI's and Applio's ``Pipeline.pipeline`` take different keywords (:data:`PIPELINE_KEYWORDS`),
and Applio's F0 predictors read their weights from paths relative to the working directory
(:data:`APPLIO_PREDICTOR_FILES`): the call runs in a temporary folder holding links to rvclab's files.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from rvclab import metrics
from rvclab.audio import SAMPLE_RATE_16K, data_clips
from rvclab.checkpoints import load_checkpoint
from rvclab.models.crepe.f0 import DITHER_SEED
from rvclab.models.f0_packages import asset_path, ensure_torchaudio
from rvclab.parity_upstream.checkout import CheckoutCode, quiet
from rvclab.parity_upstream.draws import DrawingSynth, RvclabDraws
from rvclab.parity_upstream.stages import BACKENDS, build_upstream_synth, row, skipped
from rvclab.pipeline import steps
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import VoiceModel, embedder
from rvclab.pipeline.output import INT16_SCALE, to_int16_webui
from rvclab.pipeline.parity import build_test_index
from rvclab.profiles import ReferenceProfile

# Keywords of the 2024 release's Pipeline.pipeline that the 2026 one dropped, at the UI's values.
WEBUI_2024_EXTRAS = dict(input_audio_path="", filter_radius=3, f0_file=None)
# Applio's F0 predictors open these paths relative to the working directory: F0 method -> (path,
# rvclab's file: "rmvpe" the RMVPE checkpoint, else an rvclab.models.f0_packages asset name)
APPLIO_PREDICTOR_FILES = dict(rmvpe=("rvc/models/predictors/rmvpe.pt", "rmvpe"),
                              fcpe=("rvc/models/predictors/fcpe.pt", "fcpe"))
# The package each F0 method needs on both sides; a method whose package does not import is skipped.
# torchfcpe and torchcrepe import torchaudio: rvclab's stand-in (rvclab.models.f0_packages) is put in
# its place first when the real one does not import; it raises if anything in it is used.
METHOD_PACKAGES = {"pm": "parselmouth", "fcpe": "torchfcpe", "crepe": "torchcrepe", "crepe-tiny": "torchcrepe",
                   "harvest": "pyworld"}


def rvclab_arguments(profile: ReferenceProfile, method: str) -> dict:
    """``convert_voice`` keywords for F0 ``method``: the profile itself (``reference=``), which sets
    the UI defaults, the F0 parameters, RMVPE framing, unvoiced filling and RMS precision."""
    profile.check_f0_method(method)
    return dict(f0_method=method, f0_up_key=0, reference=profile, resample_sr=0)


def upstream_pipeline(code: CheckoutCode, profile: ReferenceProfile, voice_sr: int, rmvpe_path: Path):
    """Upstream's Pipeline for fp32 on the CPU with its RMVPE read from ``rmvpe_path``; None with
    the reason in ``code.failures`` when it does not import."""
    layout = code.layout
    cls = code.attr(layout.pipeline, layout.pipeline_class)
    rmvpe_cls = code.attr(layout.rmvpe, layout.rmvpe_class)
    if cls is None or rmvpe_cls is None:
        return None
    x_pad, x_query, x_center, x_max = profile.pad_config
    config = SimpleNamespace(x_pad=x_pad, x_query=x_query, x_center=x_center, x_max=x_max, is_half=False,
                             device="cpu")
    with quiet():
        pipe = cls(voice_sr, config)
        pipe.model_rmvpe = rmvpe_cls(str(rmvpe_path), **dict(layout.rmvpe_kwargs))
    return pipe


def webui_keywords(voice: VoiceModel, profile: ReferenceProfile, params) -> dict:
    """RVC WebUI's ``Pipeline.pipeline`` keywords beyond the shared ones (``params``: its signature's)."""
    kwargs = dict(times=[0, 0, 0], f0_up_key=0, if_f0=int(voice.has_f0), tgt_sr=voice.sr, resample_sr=0,
                  rms_mix_rate=profile.default_rms_mix_rate)
    kwargs.update({k: v for k, v in WEBUI_2024_EXTRAS.items() if k in params})
    return kwargs


def applio_keywords(voice: VoiceModel, profile: ReferenceProfile, params) -> dict:
    """Applio's ``Pipeline.pipeline`` keywords beyond the shared ones: no pitch shift, autotune or
    proposed pitch (the UI's defaults)."""
    return dict(pitch=0, pitch_guidance=voice.has_f0, volume_envelope=profile.default_rms_mix_rate,
                f0_autotune=False, f0_autotune_strength=1.0, proposed_pitch=False, proposed_pitch_threshold=155.0)


PIPELINE_KEYWORDS = dict(webui=webui_keywords, applio=applio_keywords)  # Layout.synth_family -> keywords


@contextlib.contextmanager
def predictor_folder(family: str, rmvpe_path: Path) -> Iterator[None]:
    """For Applio: the working directory is a temporary folder whose relative predictor paths
    (:data:`APPLIO_PREDICTOR_FILES`) link to rvclab's files, for the block. Others: nothing."""
    if family != "applio":
        yield
        return
    before = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        for rel, source in APPLIO_PREDICTOR_FILES.values():
            link = Path(tmp) / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):  # a package not installed: its method is skipped anyway
                link.symlink_to(rmvpe_path.resolve() if source == "rmvpe" else asset_path(source))
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(before)


def pipeline_rows(code: CheckoutCode, profile: ReferenceProfile, voice_path: Path, hubert_folder: Path,
                  rmvpe_path: Path, clips: list, seed: int) -> list[dict]:
    """Rows for each F0 method of ``profile`` x (no index, index) x backend on ``clips``.

    Applio's pipeline module imports torchcrepe, which imports torchaudio: rvclab's stand-in takes
    its place first when the real one does not import (every row names which one ran)."""
    torchaudio = ensure_torchaudio()
    voice = VoiceModel(voice_path)
    family = code.layout.synth_family
    pipe = upstream_pipeline(code, profile, voice.sr, rmvpe_path)
    reason = code.skip_reason(code.layout.pipeline, code.layout.rmvpe)
    if pipe is None:
        return skipped("pipeline", profile, reason, torchaudio=torchaudio)
    hubert, upstream_hubert = upstream_hubert_model(code, profile, hubert_folder)
    net = build_upstream_synth(code, load_checkpoint(voice_path))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = build_test_index(voice, data_clips(), Path(tmp))  # rvclab's index file, read by both
        for name, audio in clips:
            x = steps.normalize_input(audio)
            for method in profile.f0_method_names:
                for idx in (None, index):
                    skip = _method_skip(code, method)
                    info = dict(clip=name, f0_method=method, index=idx is not None, voice=voice_path.name,
                                torchaudio=torchaudio, upstream_hubert=upstream_hubert)
                    if skip:
                        rows += skipped("pipeline", profile, skip, **info)
                        continue
                    with predictor_folder(family, rmvpe_path):
                        ref, ref_f0 = _run_upstream(family, pipe, hubert, net, voice, x, method, idx, profile, seed)
                    for b in BACKENDS:
                        conv = convert_voice(x, voice, sr=SAMPLE_RATE_16K, index=idx, backend=b, noise_seed=seed,
                                             hubert_path=hubert_folder, **rvclab_arguments(profile, method))
                        figures = _compare(ref, conv.audio, profile)
                        # upstream again with rvclab's F0: what differs once F0 is taken out
                        with predictor_folder(family, rmvpe_path):
                            same_f0, _ = _run_upstream(family, pipe, hubert, net, voice, x, method, idx, profile,
                                                       seed, conv)
                        figures["max_int16_steps_given_rvclab_f0"] = _compare(same_f0, conv.audio, profile)[
                            "max_int16_steps"]
                        figures.update(_f0_figures(ref_f0, conv.f0))
                        rows.append(row("pipeline", b, profile, figures, **info))
    return rows


class FairseqHubert:
    """fairseq's HuBERT as RVC WebUI 2024's pipeline calls it (``extract_features(source=,
    padding_mask=, output_layer=)`` -> (features (B, T, 768), padding mask), ``final_proj``), over
    rvclab's torch HuBERT with the profile's attention kernel (fairseq's form for that release)."""

    def __init__(self, model, attention: str):
        self.model, self.attention, self.final_proj = model, attention, model.final_proj

    def extract_features(self, source, padding_mask=None, output_layer=None):
        return self.model.layer_output(source, output_layer, padding_mask, attention=self.attention), padding_mask


def upstream_hubert_model(code: CheckoutCode, profile: ReferenceProfile, hubert_folder: Path) -> tuple:
    """(the HuBERT upstream's pipeline runs, what it is): the layout's transformers model read from
    ``hubert_folder``, or, where the layout's HuBERT is fairseq's (RVC WebUI 2024; fairseq does not
    install on current Python), rvclab's torch HuBERT behind fairseq's interface
    (:class:`FairseqHubert`): the rows then measure that release's pipeline around one HuBERT that
    both sides share, and say so."""
    cls = code.attr(code.layout.hubert, code.layout.hubert_class)
    if cls is not None and hasattr(cls, "from_pretrained"):
        with quiet():
            model = cls.from_pretrained(str(hubert_folder), local_files_only=True, torch_dtype=torch.float32)
        return model.eval(), "upstream"
    why = code.failures.get(code.layout.hubert, "not a transformers model").split("\n")[0]
    return (FairseqHubert(embedder("torch", hubert_folder), profile.hubert_attention),
            f"rvclab's torch HuBERT behind fairseq's interface ({code.layout.hubert}: {why})")


def _method_skip(code: CheckoutCode, method: str) -> str:
    """Why F0 ``method`` cannot run ("" if it can)."""
    package = METHOD_PACKAGES.get(method)
    if package and code.module(package) is None:
        return f"skipped: {package} does not import ({code.failures[package]}); F0 method {method} needs it"
    return ""


def _run_upstream(family: str, pipe, hubert, net, voice: VoiceModel, x: np.ndarray, method: str, index, profile,
                  seed: int, given=None):
    """Upstream's conversion of ``x`` (N,) float32 @ 16 kHz: (its output array, int16 or float32;
    the F0 in Hz its ``get_f0`` gave). ``given``: a rvclab Conversion whose F0 (coarse and Hz)
    replaces upstream's ``get_f0``."""
    recorded = []
    own = type(pipe).get_f0.__get__(pipe)

    def get_f0(*args, **kwargs):
        out = _seeded_dither(own, *args, **kwargs) if given is None else (given.coarse.astype(np.int32),
                                                                           given.f0.astype(np.float64))
        recorded.append(np.asarray(out[1], np.float64).copy())
        return out

    pipe.get_f0 = get_f0
    kwargs = dict(model=hubert, net_g=DrawingSynth(net, RvclabDraws(voice.config, seed)), sid=0, audio=x.copy(),
                  f0_method=method, file_index=str(index.path) if index is not None else "",
                  index_rate=profile.default_index_rate, version=voice.version, protect=profile.default_protect)
    kwargs.update(PIPELINE_KEYWORDS[family](voice, profile, inspect.signature(pipe.pipeline).parameters))
    with torch.no_grad(), quiet():
        out = np.asarray(pipe.pipeline(**kwargs))
    del pipe.get_f0
    return out, recorded[0]


def _seeded_dither(fn, *args, **kwargs):
    """``fn(...)`` with numpy's global RNG seeded as rvclab's CREPE seeds its dither
    (:data:`rvclab.models.crepe.f0.DITHER_SEED`): torchcrepe draws its +-20-cent dither from that
    global state, so unseeded, upstream's CREPE F0 is random. The caller's RNG state is restored."""
    state = np.random.get_state()
    np.random.seed(DITHER_SEED)
    try:
        return fn(*args, **kwargs)
    finally:
        np.random.set_state(state)


def _compare(ref: np.ndarray, out: np.ndarray, profile: ReferenceProfile) -> dict:
    """Figures of rvclab's float32 output ``out`` against upstream's ``ref`` in the release's
    output format: ``max_int16_steps`` (int16, or float32 x 32768), corr, where the first sample
    more than one step off is."""
    ours = to_int16_webui(out).astype(np.int64) if profile.output_int16 else out.astype(np.float64) * INT16_SCALE
    theirs = ref.astype(np.int64) if profile.output_int16 else ref.astype(np.float64) * INT16_SCALE
    n = min(ours.size, theirs.size)
    diff = np.abs(ours[:n] - theirs[:n])
    over = np.nonzero(diff > 1)[0]
    steps_off = float(diff.max()) if n and ours.size == theirs.size else float("inf")
    return {"max_int16_steps": steps_off, "corr": metrics.corr(theirs[:n], ours[:n]),
            "samples_upstream": int(theirs.size), "samples_rvclab": int(ours.size),
            "first_sample_over_1_step": int(over[0]) if over.size else None}



def _f0_figures(ref: np.ndarray, ours: np.ndarray) -> dict:
    """How upstream's F0 (Hz per 10 ms frame) and rvclab's differ: frames, unvoiced in each."""
    n = min(ref.size, ours.size)
    a, b = ref[:n], ours[:n].astype(np.float64)
    return {"f0_frames": int(ref.size), "f0_frames_differing": int(np.sum(~np.isclose(a, b, rtol=1e-4, atol=1e-3))),
            "f0_unvoiced_upstream": int(np.sum(a == 0)), "f0_unvoiced_rvclab": int(np.sum(b == 0))}
