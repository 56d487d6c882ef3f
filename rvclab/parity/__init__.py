"""Parity runners, one module per stage (rvclab parity NAME)."""

from rvclab import tolerances


def f0_row_ok(row: dict) -> bool:
    """An F0 parity row (CREPE, FCPE) within every goal: frame counts, cents, voicing, periodicity."""
    return bool(
        row["frames"] == row["frames_ref"]
        and row["f0_median_cents"] <= tolerances.F0_MEDIAN_CENTS_MAX
        and row["f0_p99_cents"] <= tolerances.F0_P99_CENTS_MAX
        and row["voicing_agreement"] >= tolerances.VOICING_AGREEMENT_MIN
        and row["periodicity_max_abs"] <= tolerances.PERIODICITY_MAX_ABS
    )
