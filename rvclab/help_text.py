"""Help text of command-line options that several commands share, each worded once.

A help text states the option's unit, its range or choices, and ends with its default: ``DEFAULT``
(argparse fills in a static default) or :func:`profile_default` (the reference profile's value,
for every profile). docs/parameters.md states the same; tests/test_cli_help.py checks the two
against each other and against the values the commands use. Plain strings: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from rvclab.profiles import PROFILES, ReferenceProfile

DEFAULT = "(default %(default)s)"  # argparse fills in the option's default

MODEL = "voice model: .pth, or .safetensors from rvclab convert-weights"
INDEX = "FAISS .index file of the voice, for retrieval (docs/index.md) (default: none)"
HUBERT = "HuBERT/ContentVec checkpoint (default: none, hubert_base.pt in weights/ or $RVCLAB_WEIGHTS)"
REFERENCE = (f"the release to follow, one of {', '.join(PROFILES)}: its F0 methods, their parameters and its "
             f"defaults (docs/reference_profiles.md) {DEFAULT}")
F0_METHOD = "F0 method, one the profile offers: " + "; ".join(
    f"{p.name}: {', '.join(p.f0_method_names)}" for p in PROFILES.values())
PITCH = f"transpose in semitones, any value (12: an octave up) {DEFAULT}"
INDEX_RATE = "index blend, retrieved x rate + features x (1 - rate), in [0, 1]; 0 skips retrieval"
RMS_MIX_RATE = "loudness envelope mix, in [0, 1]: 0 takes the input's, 1 keeps the model's"
SID = f"speaker id, >= 0, below the voice's speaker count {DEFAULT}"
NOISE_SEED = f"noise seed, >= 0: chunk or block i draws with seed + i {DEFAULT}"
BACKEND = f"backend of every stage: %(choices)s {DEFAULT}"
JSON = "print JSON"
MAX_SECONDS = "use only the first seconds of each clip, > 0"


def seed(what: str) -> str:
    """The help of a seed option: what it seeds, its range and default."""
    return f"seed of {what}, >= 0 {DEFAULT}"


def _shown(value) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def profile_default(value: str | Callable[[ReferenceProfile], object]) -> str:
    """'(default: the profile's; NAME: VALUE, ...)' for every profile ('every profile: VALUE' where they
    agree); ``value`` is a profile field or a function of the profile."""
    get = (lambda p: getattr(p, value)) if isinstance(value, str) else value
    shown = {p.name: _shown(get(p)) for p in PROFILES.values()}
    if len(set(shown.values())) == 1:
        return f"(default: the profile's; every profile: {next(iter(shown.values()))})"
    return "(default: the profile's; " + ", ".join(f"{name}: {v}" for name, v in shown.items()) + ")"
