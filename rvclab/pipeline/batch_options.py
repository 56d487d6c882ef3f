"""The options of ``rvclab convert`` and their checks, before any file or model is read.

``--reference`` names the release to follow (:mod:`rvclab.profiles`); ``--f0-method``,
``--index-rate``, ``--rms-mix-rate`` and ``--protect`` default to its values, filled in by
:func:`check_parameters`. The command itself: :mod:`rvclab.pipeline.batch`.
"""

from __future__ import annotations

from pathlib import Path

from rvclab import help_text as text
from rvclab.audio import AUDIO_EXTENSIONS, OUTPUT_FORMATS
from rvclab.pipeline.conversion import BACKENDS, DEFAULT_BACKEND, MIN_RESAMPLE_SR
from rvclab.pipeline.reference import resolve
from rvclab.profiles import DEFAULT_PROFILE, PROFILES

# convert_voice's settings -> the convert command's option (dest) that sets each one
SETTINGS = dict(f0_up_key="pitch", f0_method="f0_method", index_rate="index_rate", filter_radius="filter_radius",
                resample_sr="resample_sr", rms_mix_rate="rms_mix_rate", protect="protect", sid="sid",
                noise_seed="seed", reference="reference")
FLAGS = {name: "--" + dest.replace("_", "-") for name, dest in SETTINGS.items()}
FLAGS["backend"] = "--backend"
# option (dest) -> the reference profile field that gives its default when it is left out
PROFILE_DEFAULTS = dict(f0_method="default_f0_method", index_rate="default_index_rate",
                        rms_mix_rate="default_rms_mix_rate", protect="default_protect")


def _filter_radius(profile) -> int | None:
    """The filter_radius the profile runs harvest with; None where it offers no method taking one."""
    return next((dict(m.params)["filter_radius"] for m in profile.f0_methods if "filter_radius" in dict(m.params)),
                None)


def add_arguments(p) -> None:
    p.add_argument("-m", "--model", required=True, help=text.MODEL)
    p.add_argument("-i", "--input", required=True,
                   help=f"audio file or folder ({', '.join(AUDIO_EXTENSIONS)}; hidden files ignored)")
    p.add_argument("-o", "--output", required=True,
                   help=f"output file ({', '.join(OUTPUT_FORMATS)}) or folder (a folder input gives .wav files)")
    p.add_argument("-r", "--recursive", action="store_true", help="convert subfolders too, mirrored in the output")
    p.add_argument("--index", default=None, help=text.INDEX)
    add_reference_arguments(p)
    p.add_argument("--pitch", type=float, default=0.0, help=text.PITCH)
    p.add_argument("--filter-radius", type=int, default=None,
                   help="harvest's F0 median filter, an integer; >= 3: on (a kernel of 3 whatever the radius); "
                        "only for a profile's harvest " + text.profile_default(_filter_radius))
    p.add_argument("--resample-sr", type=int, default=0,
                   help=f"output rate in Hz, 0, or >= {MIN_RESAMPLE_SR} (0: the voice's rate; not under "
                        f"{', '.join(n for n, pr in PROFILES.items() if pr.output_resampler is None)}) {text.DEFAULT}")
    p.add_argument("--sid", type=int, default=0, help=text.SID)
    p.add_argument("--f0-file", default=None,
                   help="F0 curve file, lines of 'seconds,hz' written over the estimate (profiles that take one: "
                        f"{', '.join(n for n, pr in PROFILES.items() if pr.f0_curve_file)}) (default: none)")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND, help=text.BACKEND)
    p.add_argument("--hubert", default=None, help=text.HUBERT)
    p.add_argument("--seed", type=int, default=0, help=text.NOISE_SEED)
    rerun = p.add_mutually_exclusive_group()
    rerun.add_argument("--force", action="store_true",
                       help="convert every file again, replacing outputs rvclab did not make")
    rerun.add_argument("--no-overwrite", action="store_true",
                       help="refuse (exit 2) where an output was made with other inputs or settings, "
                            "naming the differences, instead of converting it again")


def add_reference_arguments(p, stream: bool = False) -> None:
    """``--reference`` and the options whose defaults are its profile's (None until checked); for
    ``rvclab stream`` (``stream``) only the F0 method is the profile's."""
    p.add_argument("--reference", default=DEFAULT_PROFILE, help=text.REFERENCE)
    p.add_argument("--f0-method", default=None,
                   help=f"{text.F0_METHOD} {text.profile_default(PROFILE_DEFAULTS['f0_method'])}")
    if stream:
        return
    p.add_argument("--index-rate", type=float, default=None,
                   help=f"{text.INDEX_RATE} {text.profile_default(PROFILE_DEFAULTS['index_rate'])}")
    p.add_argument("--rms-mix-rate", type=float, default=None,
                   help=f"{text.RMS_MIX_RATE} {text.profile_default(PROFILE_DEFAULTS['rms_mix_rate'])}")
    p.add_argument("--protect", type=float, default=None,
                   help="protect unvoiced frames: keep this share of their features from before retrieval, "
                        f"in [0, 0.5] (0.5: off) {text.profile_default(PROFILE_DEFAULTS['protect'])}")


def check_parameters(args) -> None:
    """Raise ValueError (FileNotFoundError for a missing F0 file) for parameters no file could be
    converted with, so a batch stops before it starts instead of failing every file alike. Options
    left at None take the reference profile's defaults here."""
    profile = resolve(args.reference)  # ValueError listing the known profiles
    for dest, name in PROFILE_DEFAULTS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, getattr(profile, name))
    args.f0_method = profile.check_f0_method(args.f0_method)
    if args.filter_radius is not None and "filter_radius" not in profile.f0_params(args.f0_method):
        raise ValueError(f"--filter-radius: F0 method {args.f0_method!r} of reference profile {profile.name!r} "
                         "takes none")
    if args.f0_file and not profile.f0_curve_file:
        raise ValueError(f"--f0-file: reference profile {profile.name!r} ({profile.release}) takes no F0 curve file")
    for name, value, high in (("--index-rate", args.index_rate, 1.0), ("--rms-mix-rate", args.rms_mix_rate, 1.0),
                              ("--protect", args.protect, profile.protect_off)):
        if not 0 <= value <= high:
            raise ValueError(f"{name} {value}: must be in [0, {high}]")
    if args.sid < 0 or args.seed < 0:
        raise ValueError(f"--sid {args.sid} and --seed {args.seed} must not be negative")
    if args.resample_sr < 0 or 0 < args.resample_sr < MIN_RESAMPLE_SR:
        raise ValueError(f"--resample-sr {args.resample_sr}: must be 0 (the voice's rate) or at least "
                         f"{MIN_RESAMPLE_SR} Hz")
    if args.f0_file and not Path(args.f0_file).is_file():
        raise FileNotFoundError(f"{args.f0_file}: no such F0 file")
