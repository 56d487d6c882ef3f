"""``rvclab convert``: one file or a folder of files, with both backends' pipeline.

Outputs are written atomically (temp file + rename), so an interrupted batch leaves only complete
files; a rerun skips outputs that already exist (resume) unless ``--force``. An input is never
overwritten. Bad files are reported and the batch carries on; the summary lists them and the exit
code is 1 when any file of a folder failed, 2 for unusable arguments or when the one file given
failed. Ctrl+C stops between or inside files; a file being written is dropped, never half-written.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from rvclab.audio import AUDIO_EXTENSIONS, save_audio_atomic
from rvclab.checkpoints import check_writable_dir
from rvclab.pipeline.conversion import VoiceModel, convert_voice, embedder
from rvclab.pipeline.index import load_index
from rvclab.pitch import METHODS

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT = 0, 1, 2
HOLD_ENV = "RVCLAB_BATCH_HOLD"  # a marker path: hold after the first output (see hold_for_interrupt)


@dataclass
class BatchReport:
    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"converted {len(self.converted)}, skipped {len(self.skipped)} (output exists), "
                 f"failed {len(self.failed)}"]
        lines += [f"  FAILED {why}" if why.startswith(str(path)) else f"  FAILED {path}: {why}"
                  for path, why in self.failed]  # most messages already start with the file
        return "\n".join(lines)


def plan(inp: Path, out: Path, suffix: str = ".wav") -> list[tuple[Path, Path]]:
    """(input, output) pairs: a file -> a file, a folder -> a folder (same names, ``suffix``)."""
    if not inp.exists():
        raise FileNotFoundError(f"{inp}: no such file or folder")
    if inp.is_dir():
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"{out}: input is a folder, so the output must be a folder")
        if out.resolve() == inp.resolve():
            raise ValueError(f"{out}: the output folder is the input folder; choose another")
        files = sorted(p for p in inp.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        return [(p, out / (p.stem + suffix)) for p in files]
    target = out / (inp.stem + suffix) if out.is_dir() else out
    if target.resolve() == inp.resolve():
        raise ValueError(f"{target}: the output path is the input file; choose another")
    return [(inp, target)]


def convert_many(pairs, voice, *, force: bool = False, progress: bool = True, **params) -> BatchReport:
    """Convert each (input, output) pair; never raises for one bad file."""
    report = BatchReport()
    hold = os.environ.get(HOLD_ENV)
    inputs = tuple(p for p, _ in pairs)
    iterator = pairs
    if progress:
        iterator = tqdm(pairs, desc="converting", unit="file")
    for src, dst in iterator:
        if dst.exists() and not force:
            report.skipped.append(dst)
            continue
        try:
            result = convert_voice(src, voice, **params)
            save_audio_atomic(dst, result.audio, result.sr, protect=inputs)
            report.converted.append(dst)
        except (ValueError, OSError, RuntimeError) as exc:  # bad audio, unreadable, disk full...
            report.failed.append((src, str(exc).splitlines()[0]))
        if hold and report.converted == [dst]:
            hold_for_interrupt(hold)
    return report


def hold_for_interrupt(marker: str) -> None:
    """Create ``marker``, then wait until Ctrl+C (SIGINT) ends the batch.

    ``$RVCLAB_BATCH_HOLD`` calls this after the first output is written, so a test interrupts a
    batch at a known point rather than at a moment it hopes for.
    """
    Path(marker).touch()
    while True:  # short naps: the handler runs between them, whichever thread took the signal
        time.sleep(0.05)


def add_arguments(p) -> None:
    p.add_argument("-m", "--model", required=True, help="voice model (.pth or converted .safetensors)")
    p.add_argument("-i", "--input", required=True, help="audio file or folder")
    p.add_argument("-o", "--output", required=True, help="output file or folder")
    p.add_argument("--index", default=None, help="FAISS .index file")
    p.add_argument("--index-rate", type=float, default=0.75)
    p.add_argument("--f0-method", default="rmvpe")
    p.add_argument("--pitch", type=float, default=0, help="transpose in semitones (f0_up_key)")
    p.add_argument("--filter-radius", type=int, default=3)
    p.add_argument("--resample-sr", type=int, default=0)
    p.add_argument("--rms-mix-rate", type=float, default=0.25)
    p.add_argument("--protect", type=float, default=0.33)
    p.add_argument("--sid", type=int, default=0)
    p.add_argument("--f0-file", default=None, help="F0 curve file: 'seconds,hz' per line")
    p.add_argument("--backend", choices=("torch", "mlx"), default="mlx")
    p.add_argument("--hubert", default=None, help="HuBERT/ContentVec checkpoint (default: weights/)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--force", action="store_true", help="replace existing outputs")


def check_parameters(args) -> None:
    """Raise ValueError (FileNotFoundError for a missing F0 file) for parameters no file could be
    converted with, so a batch stops before it starts instead of failing every file alike."""
    if args.f0_method not in METHODS:
        raise ValueError(f"--f0-method {args.f0_method!r}: choose from {', '.join(METHODS)}")
    for name, value, high in (("--index-rate", args.index_rate, 1.0), ("--rms-mix-rate", args.rms_mix_rate, 1.0),
                              ("--protect", args.protect, 0.5)):
        if not 0 <= value <= high:
            raise ValueError(f"{name} {value}: must be in [0, {high}]")
    if args.resample_sr < 0 or args.sid < 0:
        raise ValueError(f"--resample-sr {args.resample_sr} and --sid {args.sid} must not be negative")
    if args.f0_file and not Path(args.f0_file).is_file():
        raise FileNotFoundError(f"{args.f0_file}: no such F0 file")


def run_cli(args) -> int:
    """Exit 0 when every file converted (or was there already), 1 when some files of a folder
    failed, 2 when the arguments cannot work (missing input, bad model or index, unwritable
    output folder) or the one file given could not be converted."""
    is_batch = Path(args.input).is_dir()
    try:
        pairs = plan(Path(args.input), Path(args.output))
        if not pairs:
            raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {args.input}")
        check_parameters(args)
        check_writable_dir(Path(args.output) if is_batch else pairs[0][1].parent)
        voice = VoiceModel(args.model)
        index = load_index(args.index, voice.version) if args.index else None  # once, not per file
        embedder(args.backend, args.hubert)  # loaded (and cached) before the first file, not per file
    except (OSError, ValueError) as exc:  # CheckpointError and IndexFileError are ValueErrors
        print(f"rvclab convert: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    start = time.perf_counter()
    report = convert_many(
        pairs, voice, force=args.force, progress=sys.stderr.isatty() or len(pairs) > 1,
        f0_up_key=args.pitch, f0_method=args.f0_method, index=index, index_rate=args.index_rate,
        filter_radius=args.filter_radius, resample_sr=args.resample_sr, rms_mix_rate=args.rms_mix_rate,
        protect=args.protect, sid=args.sid, f0_curve=args.f0_file, backend=args.backend,
        noise_seed=args.seed, hubert_path=args.hubert,
    )
    summary, *failures = report.summary().splitlines()
    print(summary)
    for line in failures:  # errors go to stderr, where scripts look for them
        print(line.strip(), file=sys.stderr)
    print(f"{time.perf_counter() - start:.1f} s, backend {args.backend}")
    if not report.failed:
        return EXIT_OK
    return EXIT_SOME_FAILED if is_batch else EXIT_BAD_INPUT
