"""rvclab against upstream's own code: a user's RVC WebUI or Applio checkout, imported at run time.

``rvclab parity upstream --checkout DIR [--reference NAME] [--json]``: one JSON row per stage and
backend (synthesizer per shipped config, RMVPE salience, HuBERT features, the whole pipeline per
F0 method with and without an index), upstream's models built from the same files rvclab loads.
A stage whose upstream modules do not import is a row with ``ok`` None and ``status``
"skipped: <reason>". Layouts: :mod:`rvclab.parity_upstream.checkout`; stages:
:mod:`rvclab.parity_upstream.stages` and :mod:`rvclab.parity_upstream.pipeline`.
"""

from __future__ import annotations

import argparse

from rvclab import help_text as text
from rvclab.audio import data_clips, load_audio
from rvclab.parity_upstream.checkout import checkout_code, find_layout
from rvclab.parity_upstream.pipeline import pipeline_rows
from rvclab.parity_upstream.stages import clip_list, hubert_rows, rmvpe_rows, synth_rows
from rvclab.profiles import PROFILES, get_profile
from rvclab.voices import default_voice
from rvclab.weights import default_hubert, default_rmvpe

STAGES = ("synth", "hubert", "rmvpe", "pipeline")
# The shipped configurations checked (seeded voice files, rvclab.models.synth.seeded.FILES)
SYNTH_VOICES = ("voice_v1_40k.pth", "voice_v2_40k.pth", "voice_v2_48k.pth", "voice_v2_32k.pth")
PIPELINE_VOICE = "voice_v2_40k.pth"
CONTENTVEC_FOLDER = "contentvec_base"  # the transformers twin of weights/hubert_base.pt


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkout", required=True, help="folder of an RVC WebUI (2026 or 2024 layout) or Applio checkout")
    p.add_argument("--reference", default=None, choices=tuple(PROFILES),
                   help="reference profile rvclab's side follows: %(choices)s (default: none, the one the checkout's "
                        "layout is)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of them {text.DEFAULT}")
    p.add_argument("--seconds", type=float, default=0.5,
                   help=f"synthesizer input length in seconds (100 fps), > 0 {text.DEFAULT}")
    p.add_argument("--max-seconds", type=float, default=3.0,
                   help=f"HuBERT and pipeline clips cut to this many seconds, >= 0 (0: whole clips); RMVPE reads "
                        f"whole clips {text.DEFAULT}")
    p.add_argument("--seed", type=int, default=0, help=text.seed("the synthesizer input projection and pipeline noise"))


def run_upstream(checkout, reference: str | None = None, stages=STAGES, *, seconds: float = 0.5,
                 max_seconds: float = 3.0, seed: int = 0) -> list[dict]:
    """Every row for ``checkout`` (see the module docstring). UpstreamCheckoutError for a folder
    that is missing or not RVC WebUI / Applio; ValueError for an unknown profile or stage."""
    root, layout = find_layout(checkout)
    profile = get_profile(reference or layout.profile)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGES)}")
    hubert_folder = default_hubert().parent / CONTENTVEC_FOLDER
    paths = data_clips()
    rows = []
    with checkout_code(root, layout) as code:
        if "synth" in stages:
            for name in SYNTH_VOICES:
                rows += synth_rows(code, profile, default_voice(name), seconds, seed)
        if "hubert" in stages:
            rows += hubert_rows(code, profile, hubert_folder, clip_list(paths, max_seconds, load_audio))
        if "rmvpe" in stages:
            rows += rmvpe_rows(code, profile, default_rmvpe(), clip_list(paths, 0, load_audio))
        if "pipeline" in stages:
            rows += pipeline_rows(code, profile, default_voice(PIPELINE_VOICE), hubert_folder, default_rmvpe(),
                                  clip_list(paths[:1], max_seconds, load_audio), seed)
    return rows


def run(args) -> list[dict]:
    """``rvclab parity upstream``'s rows."""
    stages = tuple(s for s in args.stages.split(",") if s)
    return run_upstream(args.checkout, args.reference, stages, seconds=args.seconds,
                        max_seconds=args.max_seconds, seed=args.seed)
