"""Helpers shared by the parity runners (``rvclab parity NAME``): the clips, the F0 row's verdicts."""

from rvclab import tolerances
from rvclab.audio import SAMPLE_RATE_16K, data_clips, load_audio


def clips_audio(args):
    """(path, 16 kHz audio) for each shipped clip picked by ``args.clip`` (a name prefix, or all),
    cut to ``args.max_seconds`` when that is set."""
    for path in data_clips():
        if args.clip and not path.name.startswith(args.clip):
            continue
        audio = load_audio(path, SAMPLE_RATE_16K)
        if args.max_seconds:
            audio = audio[: int(args.max_seconds * SAMPLE_RATE_16K)]
        yield path, audio


def f0_row_verdicts(row: dict) -> dict:
    """An F0 parity row's (CREPE, FCPE) verdicts: ``ok`` (every goal) and ``guard_ok`` (every
    guard) over :data:`rvclab.tolerances.F0_CHECKS` for ``row['model']`` (cents, voicing,
    periodicity), each also demanding equal frame counts."""
    same = row["frames"] == row["frames_ref"]
    return {k: bool(same and v) for k, v in tolerances.verdicts(row, tolerances.F0_CHECKS[row["model"]]).items()}
