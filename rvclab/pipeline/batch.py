"""``rvclab convert``: one file or a folder of files, with both backends' pipeline.

Before any model loads, the outputs are planned and checked: the output's format (one of
:data:`rvclab.audio.OUTPUT_FORMATS`), a folder for a folder input, one name per input (``a.wav``
and ``a.flac`` in one folder give ``a.wav`` and ``a.flac.wav``), hidden and metadata files
(``.DS_Store``, ``._*``) ignored and counted, subfolders mirrored with ``--recursive`` (counted
otherwise). Each existing output is judged by its record (:mod:`rvclab.pipeline.provenance`): made
from the same inputs and settings -> skipped; from others -> converted again and replaced
atomically (``--no-overwrite``: refused, naming each difference); no record (a user's own file)
-> refused unless ``--force``. An input is never overwritten.

Outputs are written atomically (temp file + rename), then their record; an interrupted batch
leaves only complete files, each with its record. Bad files are reported and the batch carries
on; the exit code is 1 when any file of a folder failed, 2 for unusable arguments or outputs, or
when the one file given failed. Ctrl+C stops between or inside files.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from rvclab.audio import AUDIO_EXTENSIONS, OUTPUT_FORMATS, is_audio_name, is_hidden_name, save_audio_atomic
from rvclab.checkpoints import check_writable_dir
from rvclab.pipeline import provenance
from rvclab.pipeline.batch_options import FLAGS, SETTINGS, check_parameters
from rvclab.pipeline.batch_options import add_arguments as add_arguments
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.index import load_index
from rvclab.pipeline.networks import VoiceModel, embedder
from rvclab.pipeline.output import to_int16_webui
from rvclab.pipeline.reference import resolve
from rvclab.weights import default_hubert

EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT = 0, 1, 2
HOLD_ENV = "RVCLAB_BATCH_HOLD"  # a marker path: hold after the first output (see hold_for_interrupt)
FOLDER_SUFFIX = ".wav"  # the format of a folder's outputs


@dataclass
class Job:
    """One input and its output; ``action`` and ``notes`` are set by :func:`decide`."""

    src: Path
    dst: Path
    notes: list[str] = field(default_factory=list)  # a renamed output, a replaced one
    action: str = "convert"  # or "skip"


@dataclass
class Plan:
    jobs: list[Job]
    ignored: Counter = field(default_factory=Counter)  # reason -> files not converted
    subfolders: int = 0  # folders not converted (no --recursive)

    def ignored_text(self) -> str:
        parts = [f"ignored {sum(self.ignored.values())}"]
        if self.ignored:
            parts[0] += f" ({', '.join(f'{n} {why}' for why, n in sorted(self.ignored.items()))})"
        if self.subfolders:
            parts.append(f"{self.subfolders} subfolder{'s' * (self.subfolders > 1)} not converted "
                         "(--recursive converts subfolders)")
        return ", ".join(parts)


@dataclass
class BatchReport:
    converted: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: str = "ignored 0"

    def summary(self) -> str:
        reasons = Counter(why for _, why in self.skipped)
        why = f" ({', '.join(reasons)})" if reasons else ""
        lines = [f"converted {len(self.converted)}, skipped {len(self.skipped)}{why}, "
                 f"failed {len(self.failed)}, {self.ignored}"]
        lines += [f"  FAILED {why}" if why.startswith(str(path)) else f"  FAILED {path}: {why}"
                  for path, why in self.failed]  # most messages already start with the file
        return "\n".join(lines)


# --- planning: every output path, before any model loads ------------------------------------------


def check_output_name(out: Path) -> None:
    """Raise ValueError unless ``out`` names a file rvclab can write (its suffix)."""
    formats = ", ".join(OUTPUT_FORMATS)
    suffix = out.suffix.lower()
    if not suffix:
        raise ValueError(f"{out}: no file extension; name a file ending in {formats}, or a folder ending in /")
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(f"{out}: cannot write {suffix} files; name a file ending in {formats}")


def plan(inp: Path, out: Path, *, recursive: bool = False, out_is_folder: bool = False) -> Plan:
    """The jobs: a file -> a file (or into the folder ``out``), a folder -> a folder (same names,
    ``.wav``; its subfolders mirrored when ``recursive``). Raises for an unusable pair of paths."""
    if not inp.exists():
        raise FileNotFoundError(f"{inp}: no such file or folder")
    if inp.is_dir():
        return _plan_folder(inp, out, recursive)
    if not is_audio_name(inp.name.lstrip(".")):  # a hidden file named on purpose is converted
        raise ValueError(f"{inp}: not an audio file rvclab reads ({', '.join(AUDIO_EXTENSIONS)})")
    if out.is_dir() or out_is_folder:
        target = out / (inp.stem + FOLDER_SUFFIX)
    else:
        check_output_name(out)
        target = out
    if target.resolve() == inp.resolve():
        raise ValueError(f"{target}: the output path is the input file; choose another")
    return Plan([Job(inp, target)])


def _plan_folder(inp: Path, out: Path, recursive: bool) -> Plan:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: the input {inp} is a folder, so the output must be a folder, "
                                 "and this is a file")
    if not out.exists() and out.suffix.lower() in {*AUDIO_EXTENSIONS, *OUTPUT_FORMATS}:
        raise ValueError(f"{out}: the input {inp} is a folder, so the output must be a folder, not a "
                         f"{out.suffix} file name (try {out.with_suffix('')})")
    if out.resolve() == inp.resolve():
        raise ValueError(f"{out}: the output folder is the input folder; choose another")
    result = Plan([])
    _walk(inp, out, out.resolve(), recursive, result)
    return result


def _walk(folder: Path, target: Path, skip: Path, recursive: bool, result: Plan) -> None:
    files, folders = [], []
    for p in sorted(folder.iterdir()):
        if is_hidden_name(p.name):
            result.ignored["hidden"] += 1
        elif p.is_dir() and p.resolve() == skip:  # the output folder, inside the input folder
            continue
        elif p.is_dir():
            folders.append(p)
        elif p.is_file() and is_audio_name(p):
            files.append(p)
        else:
            result.ignored["not audio"] += 1
    taken = {d.name.casefold(): f"the folder {d.name}" for d in folders} if recursive else {}
    result.jobs += [Job(src, target / name, notes) for src, name, notes in output_names(files, taken)]
    for sub in folders:
        if recursive and not sub.is_symlink():  # a linked folder could lead back up
            _walk(sub, target / sub.name, skip, recursive, result)
        else:
            result.subfolders += 1


def output_names(files: list[Path], taken: dict[str, str] | None = None,
                 suffix: str = FOLDER_SUFFIX) -> list[tuple[Path, str, list[str]]]:
    """(input, output name, notes) for the files of one folder: ``stem + suffix`` each, unless two
    would share it (case-insensitively, as on macOS and Windows). The file already in ``suffix``
    keeps the plain name (then the others in name order); the rest keep their own extension:
    ``a.flac`` -> ``a.flac.wav`` (then ``a.flac-2.wav``). ``taken``: folded name -> its owner."""
    owner = dict(taken or {})
    names = {}
    for p in sorted(files, key=lambda p: (p.suffix.lower() != suffix, p.name)):
        plain = p.stem + suffix
        more = (f"{p.name}-{i}{suffix}" for i in itertools.count(2))
        name = next(n for n in itertools.chain([plain, p.name + suffix], more) if n.casefold() not in owner)
        notes = [] if name == plain else [f"renamed: {plain} is the output of {owner[plain.casefold()]}"]
        owner[name.casefold()] = p.name
        names[p] = (name, notes)
    return [(p, *names[p]) for p in sorted(files)]


# --- what each output records, and what a rerun does with it ----------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Everything but the input that decides an output: settings, model files, backend."""

    settings: dict
    files: dict  # name -> Path | None
    backend: str

    @classmethod
    def from_args(cls, args) -> Recipe:
        """From parsed, checked options (:func:`check_parameters` filled in the profile's defaults)."""
        files = dict(voice=Path(args.model), hubert=Path(args.hubert) if args.hubert else default_hubert(),
                     index=args.index and Path(args.index), f0_curve=args.f0_file and Path(args.f0_file),
                     f0_weights=provenance.f0_weights(args.f0_method))
        return cls({name: getattr(args, dest) for name, dest in SETTINGS.items()}, files, args.backend)

    def record(self, src: Path) -> dict:
        return provenance.make_record(source=src, files=self.files, settings=self.settings, backend=self.backend,
                                      reference=self.settings["reference"])


def decide(jobs: list[Job], recipe: Recipe, *, force: bool = False, keep: bool = False) -> list[str]:
    """Set each job's action from its output's record; return the refusals, one line each.

    Up to date -> skip (``force``: convert again); made otherwise -> convert again (``keep``:
    refuse, naming the differences); a file without a record of ours -> refuse (``force``: replace).
    """
    refused = []
    for job in jobs:
        state, why = provenance.judge(job.dst, lambda job=job: recipe.record(job.src), labels=FLAGS)
        if state == provenance.CURRENT and not force:
            job.action = "skip"
        elif state == provenance.FOREIGN and not force:
            refused.append(f"{job.dst}: exists and rvclab did not make it ({'; '.join(why)}); "
                           "--force replaces it, or choose another -o")
        elif state == provenance.STALE and keep:
            refused.append(f"{job.dst}: made from other inputs or settings ({'; '.join(why)}); "
                           "--no-overwrite keeps it")
        elif state != provenance.NEW:
            job.notes.append("replaced: " + ("; ".join(why) if state == provenance.STALE else "--force"))
    return refused


# --- converting --------------------------------------------------------------------------------


def convert_many(jobs: list[Job], voice, recipe: Recipe, *, progress: bool = True, echo=None,
                 **params) -> BatchReport:
    """Convert each job (skipping those :func:`decide` marked); never raises for one bad file.

    ``echo(line)`` is told each output path as it is written or skipped.
    """
    report = BatchReport()
    hold = os.environ.get(HOLD_ENV)
    inputs = tuple(job.src for job in jobs)
    echo = echo or (lambda line: None)
    iterator = tqdm(jobs, desc="converting", unit="file") if progress else jobs
    for job in iterator:
        if job.action == "skip":
            report.skipped.append((job.dst, "up to date"))
            echo(f"{job.src} -> {job.dst} (skipped: up to date)")
            continue
        try:
            record = recipe.record(job.src)  # hashes the input before it is read
            result = convert_voice(job.src, voice, **params)
            with _interrupt_held():  # an output never stands without its record
                save_audio_atomic(job.dst, output_samples(result), result.sr, protect=inputs)
                _write_record(job.dst, record)
            report.converted.append(job.dst)
            echo(f"{job.src} -> {job.dst}" + "".join(f" ({note})" for note in job.notes))
        except (ValueError, OSError, RuntimeError) as exc:  # bad audio, unreadable, disk full...
            report.failed.append((job.src, str(exc).splitlines()[0]))
        if hold and report.converted == [job.dst]:
            hold_for_interrupt(hold)
    return report


def output_samples(result):
    """What a file holds: the release's int16 samples (16-bit PCM) where its profile writes int16
    (``output_int16``), else the float32 waveform."""
    return to_int16_webui(result.audio) if resolve(result.reference).output_int16 else result.audio


def _write_record(dst: Path, record: dict) -> None:
    try:
        provenance.write_sidecar(dst, record)
    except BaseException:
        dst.unlink(missing_ok=True)  # without its record it would pass for a user's file
        raise


@contextlib.contextmanager
def _interrupt_held():
    """Hold Ctrl+C (main thread) until the block ends, then raise it: the block finishes whole."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)


def hold_for_interrupt(marker: str) -> None:
    """Create ``marker``, then wait until Ctrl+C (SIGINT) ends the batch.

    ``$RVCLAB_BATCH_HOLD`` calls this after the first output is written, so a test interrupts a
    batch at a known point rather than at a moment it hopes for.
    """
    Path(marker).touch()
    while True:  # short naps: the handler runs between them, whichever thread took the signal
        time.sleep(0.05)


# --- the command -------------------------------------------------------------------------------


def _echo(line: str) -> None:
    tqdm.write(line, file=sys.stdout)  # above a running progress bar, not through it


def run_cli(args) -> int:
    """Exit 0 when every file converted (or was up to date), 1 when some files of a folder
    failed, 2 when the arguments or outputs cannot work (missing input, bad output name, a file
    rvclab did not make at an output path, bad model or index, unwritable output folder) or the
    one file given could not be converted."""
    is_batch = Path(args.input).is_dir()
    try:
        found = plan(Path(args.input), Path(args.output), recursive=args.recursive,
                     out_is_folder=args.output.endswith(("/", os.sep)))
        if not found.jobs:
            raise FileNotFoundError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {args.input}: "
                                    f"{found.ignored_text()}")
        check_parameters(args)
        check_writable_dir(Path(args.output) if is_batch else found.jobs[0].dst.parent)
        recipe = Recipe.from_args(args)
        refused = decide(found.jobs, recipe, force=args.force, keep=args.no_overwrite)
        if refused:
            print(f"rvclab convert: {len(refused)} output{'s' * (len(refused) > 1)} refused; nothing converted",
                  file=sys.stderr)
            for line in refused:
                print(f"  {line}", file=sys.stderr)
            return EXIT_BAD_INPUT
        voice = VoiceModel(args.model)
        index = load_index(args.index, voice.version) if args.index else None  # once, not per file
        embedder(args.backend, args.hubert)  # loaded (and cached) before the first file, not per file
    except (OSError, ValueError) as exc:  # CheckpointError and IndexFileError are ValueErrors
        print(f"rvclab convert: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    start = time.perf_counter()
    report = convert_many(
        found.jobs, voice, recipe, progress=sys.stderr.isatty() or len(found.jobs) > 1, echo=_echo,
        index=index, f0_curve=args.f0_file, backend=args.backend, hubert_path=args.hubert, **recipe.settings,
    )
    report.ignored = found.ignored_text()
    summary, *failures = report.summary().splitlines()
    print(summary)
    for line in failures:  # errors go to stderr, where scripts look for them
        print(line.strip(), file=sys.stderr)
    print(f"{time.perf_counter() - start:.1f} s, backend {args.backend}")
    if not report.failed:
        return EXIT_OK
    return EXIT_SOME_FAILED if is_batch else EXIT_BAD_INPUT
