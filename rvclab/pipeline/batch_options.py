"""The options of ``rvclab convert`` and their checks, before any file or model is read.

``--reference`` names the release to follow (:mod:`rvclab.profiles`); ``--f0-method``,
``--index-rate``, ``--rms-mix-rate`` and ``--protect`` default to its values, filled in by
:func:`check_parameters`. The command itself: :mod:`rvclab.pipeline.batch`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab.audio import AUDIO_EXTENSIONS, OUTPUT_FORMATS
from rvclab.pipeline.conversion import BACKENDS, DEFAULT_BACKEND
from rvclab.pipeline.reference import resolve
from rvclab.profiles import DEFAULT_PROFILE, PROFILES

# convert_voice's settings -> the convert command's option (dest) that sets each one
SETTINGS = dict(f0_up_key="pitch", f0_method="f0_method", index_rate="index_rate", filter_radius="filter_radius",
                resample_sr="resample_sr", rms_mix_rate="rms_mix_rate", protect="protect", sid="sid",
                noise_seed="seed", reference="reference")
FLAGS = {name: "--" + dest.replace("_", "-") for name, dest in SETTINGS.items()}
FLAGS["backend"] = "--backend"


def add_arguments(p) -> None:
    p.add_argument("-m", "--model", required=True, help="voice model (.pth or converted .safetensors)")
    p.add_argument("-i", "--input", required=True,
                   help=f"audio file or folder ({', '.join(AUDIO_EXTENSIONS)}; hidden files ignored)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output file ({', '.join(OUTPUT_FORMATS)}) or folder (a folder input gives .wav files)")
    p.add_argument("-r", "--recursive", action="store_true", help="convert subfolders too, mirrored in the output")
    p.add_argument("--index", default=None, help="FAISS .index file")
    add_reference_arguments(p)
    p.add_argument("--pitch", type=float, default=0.0, help="transpose in semitones (f0_up_key)")
    p.add_argument("--filter-radius", type=int, default=None,
                   help="harvest's median filter (only in profiles offering harvest; default: the profile's)")
    p.add_argument("--resample-sr", type=int, default=0)
    p.add_argument("--sid", type=int, default=0)
    p.add_argument("--f0-file", default=None, help="F0 curve file: 'seconds,hz' per line")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help=f"backend of every stage (default: {DEFAULT_BACKEND}, as convert_voice)")
    p.add_argument("--hubert", default=None, help="HuBERT/ContentVec checkpoint (default: weights/)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    rerun = p.add_mutually_exclusive_group()
    rerun.add_argument("--force", action="store_true",
                       help="convert every file again, replacing outputs rvclab did not make")
    rerun.add_argument("--no-overwrite", action="store_true",
                       help="refuse (exit 2) where an output was made with other inputs or settings, "
                            "naming the differences, instead of converting it again")


def add_reference_arguments(p, stream: bool = False) -> None:
    """``--reference`` and the options whose defaults are its profile's (None until checked)."""
    p.add_argument("--reference", default=DEFAULT_PROFILE,
                   help=f"the release to follow: {', '.join(PROFILES)} (default {DEFAULT_PROFILE}, the current "
                        "RVC WebUI release); docs/reference_profiles.md")
    p.add_argument("--f0-method", default=None, help="F0 method, one the profile offers (default: its default)")
    what = "" if stream else " (default: the profile's, 0.75 for every release)"
    p.add_argument("--index-rate", type=float, default=None, help="index blend in [0, 1]" + what)
    if not stream:
        p.add_argument("--rms-mix-rate", type=float, default=None,
                       help="RMS mix in [0, 1] (default: the profile's; rvc-webui-2026: 0.25, applio: 1)")
        p.add_argument("--protect", type=float, default=None,
                       help="protect in [0, 0.5] (default: the profile's; rvc-webui-2026: 0.33, applio: 0.5)")


def check_parameters(args) -> None:
    """Raise ValueError (FileNotFoundError for a missing F0 file) for parameters no file could be
    converted with, so a batch stops before it starts instead of failing every file alike. Options
    left at None take the reference profile's defaults here."""
    profile = resolve(args.reference)  # ValueError listing the known profiles
    args.f0_method = profile.check_f0_method(args.f0_method or profile.default_f0_method)
    for dest, name in (("index_rate", "default_index_rate"), ("rms_mix_rate", "default_rms_mix_rate"),
                        ("protect", "default_protect")):
        if getattr(args, dest) is None:
            setattr(args, dest, getattr(profile, name))
    if args.filter_radius is not None and "filter_radius" not in profile.f0_params(args.f0_method):
        raise ValueError(f"--filter-radius: F0 method {args.f0_method!r} of reference profile {profile.name!r} "
                         "takes none")
    if args.f0_file and not profile.f0_curve_file:
        raise ValueError(f"--f0-file: reference profile {profile.name!r} ({profile.release}) takes no F0 curve file")
    for name, value, high in (("--index-rate", args.index_rate, 1.0), ("--rms-mix-rate", args.rms_mix_rate, 1.0),
                              ("--protect", args.protect, profile.protect_off)):
        if not 0 <= value <= high:
            raise ValueError(f"{name} {value}: must be in [0, {high}]")
    if args.resample_sr < 0 or args.sid < 0:
        raise ValueError(f"--resample-sr {args.resample_sr} and --sid {args.sid} must not be negative")
    if args.f0_file and not Path(args.f0_file).is_file():
        raise FileNotFoundError(f"{args.f0_file}: no such F0 file")
