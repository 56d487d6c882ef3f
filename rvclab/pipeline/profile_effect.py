"""What following one reference profile rather than another changes in a conversion.

:func:`convert_under` converts one clip under each profile that offers an F0 method (torch
backend, the same noise seed, so only the profiles differ); :func:`compare_profiles` gives one row
per pair: log-mel spectrogram correlation and F0 agreement (fraction of frames voiced in both
within 50 cents, voicing agreement). :func:`measure` does so for every shipped clip with pm and
rmvpe; ``scripts/profile_effect.py`` writes the table of docs/reference_profiles.md from it.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from rvclab import metrics
from rvclab.audio import SAMPLE_RATE_16K, data_clips, load_audio
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import VoiceModel
from rvclab.pipeline.reference import ReferenceGapWarning
from rvclab.profiles import PROFILES
from rvclab.voices import default_voice

F0_AGREE_CENTS = 50  # an F0 frame agrees when within this many cents
METHODS = ("pm", "rmvpe")  # the F0 methods measured (pm leaves many frames unvoiced; rmvpe few)


def convert_under(audio16: np.ndarray, voice, method: str, profiles=None, noise_seed: int = 0,
                  backend: str = "torch") -> dict:
    """{profile name: Conversion} of (N,) float32 @ 16 kHz under each profile (default: all)
    that offers ``method``; the gaps' warnings are left out (they are the profiles' own)."""
    names = [n for n in (profiles or PROFILES) if method in PROFILES[n].f0_method_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReferenceGapWarning)
        return {n: convert_voice(audio16, voice, sr=SAMPLE_RATE_16K, f0_method=method, backend=backend,
                                 noise_seed=noise_seed, reference=n) for n in names}


def f0_agreement(f0_a: np.ndarray, f0_b: np.ndarray) -> float:
    """Fraction of the frames voiced in both whose F0 differ by at most F0_AGREE_CENTS (NaN: none)."""
    n = min(f0_a.size, f0_b.size)
    a, b = np.asarray(f0_a[:n], np.float64), np.asarray(f0_b[:n], np.float64)
    both = (a > 0) & (b > 0)
    if not both.any():
        return float("nan")
    return float(np.mean(np.abs(metrics.cents(a[both], b[both])) <= F0_AGREE_CENTS))


def compare_profiles(runs: dict) -> list[dict]:
    """One row per pair of {profile: Conversion}: spec_corr, f0_within_50_cents, voicing_agreement."""
    rows = []
    for a, b in itertools.combinations(runs, 2):
        x, y = runs[a], runs[b]
        n = min(x.audio.size, y.audio.size)
        m = min(x.f0.size, y.f0.size)
        rows.append({"profile_a": a, "profile_b": b,
                     "spec_corr": metrics.spectral_corr(x.audio[:n], y.audio[:n], x.sr),
                     "f0_within_50_cents": f0_agreement(x.f0, y.f0),
                     "voicing_agreement": metrics.voicing_agreement(x.f0[:m], y.f0[:m])})
    return rows


def measure(voice=None, clips=None, methods=METHODS, noise_seed: int = 0) -> list[dict]:
    """Rows {clip, method, profile_a, profile_b, spec_corr, f0_within_50_cents, voicing_agreement}
    for every shipped clip (default) converted with the seeded voice (default weights/voice_v2_40k.pth)."""
    voice = voice if isinstance(voice, VoiceModel) else VoiceModel(voice or default_voice())
    rows = []
    for clip in clips or data_clips():
        audio = load_audio(clip, SAMPLE_RATE_16K)
        for method in methods:
            runs = convert_under(audio, voice, method, noise_seed=noise_seed)
            rows += [{"clip": clip.stem, "method": method, **row} for row in compare_profiles(runs)]
    return rows
