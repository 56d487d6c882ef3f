"""Helpers shared by the parity runners (``rvclab parity NAME``): the clips, the F0 row's goals."""

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


def f0_row_ok(row: dict) -> bool:
    """An F0 parity row (CREPE, FCPE) within every goal: frame counts, cents, voicing, periodicity."""
    return bool(
        row["frames"] == row["frames_ref"]
        and row["f0_median_cents"] <= tolerances.F0_MEDIAN_CENTS_MAX
        and row["f0_p99_cents"] <= tolerances.F0_P99_CENTS_MAX
        and row["voicing_agreement"] >= tolerances.VOICING_AGREEMENT_MIN
        and row["periodicity_max_abs"] <= tolerances.PERIODICITY_MAX_ABS
    )
