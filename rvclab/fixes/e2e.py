"""The documented fixes end to end: each bug carried through a whole conversion, torch vs MLX.

For every fix whose bug changes the content features or the synthesizer (``Fix.breaks``), the
same clip is converted on both backends with the same noise and chunking
(:mod:`rvclab.pipeline.parity`), the MLX conversion with the bug on, and the waveforms are held
against the end-to-end goals (:mod:`rvclab.tolerances`). F0 comes from a method with no network
(pm), identical on both backends, so what differs is the stage the bug breaks. The torch reference
and the bug-off MLX run come first, so every model the pipeline caches (the HuBERT embedders) is
built with the correct code; the voice is loaded afresh inside each toggle, since converter bugs
act when a voice is loaded.
"""

from __future__ import annotations

import os

import numpy as np

from rvclab.audio import SAMPLE_RATE_16K, clip, load_audio
from rvclab.convert import ConversionError
from rvclab.fixes.registry import E2E, FEATURES, REGISTRY, SYNTH, Fix, get
from rvclab.fixes.toggle import swapped
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import VoiceModel
from rvclab.pipeline.parity import compare
from rvclab.tolerances import E2E_SPEC_CORR_MIN, E2E_WAVE_CORR_MIN

E2E_STAGES = (FEATURES, SYNTH)  # the stages a bug must break to be measured here
CLIP = "librivox_male_0880"
SECONDS = 1.0
F0_METHOD = "pm"  # no network: the same F0 on both backends
# the release the catalogue's end-to-end figures (docs/fixes.md) were measured under: pm's unvoiced
# frames stay at 0 Hz there, so protect acts as it did
REFERENCE = "rvc-webui-2024"
NOISE_SEED = 0


def selected(fixes=None) -> list[Fix]:
    """The fixes measured end to end: those whose bug breaks a stage of E2E_STAGES."""
    fixes = REGISTRY.values() if fixes is None else fixes
    return [f for f in fixes if set(f.breaks) & set(E2E_STAGES)]


def clip_audio(name: str = CLIP, seconds: float = SECONDS) -> np.ndarray:
    """The first ``seconds`` of a shipped clip: (N,) float32 @ 16 kHz."""
    return load_audio(clip(name), SAMPLE_RATE_16K)[: int(seconds * SAMPLE_RATE_16K)]


def _convert(voice: os.PathLike, audio: np.ndarray, backend: str):
    return convert_voice(audio, VoiceModel(voice), sr=SAMPLE_RATE_16K, f0_method=F0_METHOD,
                         backend=backend, noise_seed=NOISE_SEED, reference=REFERENCE)


def within_goal(figures: dict) -> bool:
    """Whether a torch/MLX comparison (:func:`rvclab.pipeline.parity.compare`) meets both goals."""
    return (figures["wave_corr"] >= E2E_WAVE_CORR_MIN and figures["spec_corr"] >= E2E_SPEC_CORR_MIN
            and figures["samples_torch"] == figures["samples_mlx"])


def make_row(fix: Fix, bug: dict | None, fixed: dict, problems: int = 0) -> dict:
    """One fix's end-to-end row: figures with the bug on (None when the voice was refused) and
    off, the outcome and whether it is the one the registry states (``Fix.e2e``)."""
    if bug is None:
        outcome = E2E.REFUSED
    else:
        outcome = E2E.WITHIN_GOAL if within_goal(bug) else E2E.FAILS
    return {"fix": fix.name, "stage": fix.stage, "breaks": list(fix.breaks),
            "bug_wave_corr": None if bug is None else bug["wave_corr"],
            "bug_spec_corr": None if bug is None else bug["spec_corr"],
            "converter_problems": problems,
            "fixed_wave_corr": fixed["wave_corr"], "fixed_spec_corr": fixed["spec_corr"],
            "fixed_within_goal": within_goal(fixed),
            "outcome": outcome.name, "expected": fix.e2e.name if fix.e2e else None,
            "as_expected": fix.e2e is outcome}


def measure(voice: os.PathLike, names=None, audio: np.ndarray | None = None) -> list[dict]:
    """End-to-end rows (:func:`make_row`) for ``names`` (default: :func:`selected`) with voice
    file ``voice``, on ``audio`` ((N,) float32 @ 16 kHz; default: :func:`clip_audio`)."""
    audio = clip_audio() if audio is None else audio
    fixes = selected() if names is None else [get(n) for n in names]
    ref = _convert(voice, audio, "torch")
    fixed = compare(ref.audio, _convert(voice, audio, "mlx").audio, ref.sr)
    rows = []
    for fix in fixes:
        bug, problems = None, 0
        with swapped(fix.swaps):
            try:
                bug = compare(ref.audio, _convert(voice, audio, "mlx").audio, ref.sr)
            except ConversionError as exc:
                problems = len(exc.problems)
        rows.append(make_row(fix, bug, fixed, problems))
    return rows
