"""The tolerances themselves: every parity check has a goal and a guard; the guard is tighter than
the goal and within a decade of the figure measured today (named, with its command and date), so
a regression of 100x fails the guard, and the runners report both verdicts."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from rvclab import tolerances as tol
from rvclab.models.common import f0_row_verdicts
from rvclab.models.hubert import parity as hubert_parity

CHECKS = {f"{family}.{name}": check for family, checks in tol.ALL_CHECKS.items()
          for name, check in checks.items()}
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _floor(check: tol.Check) -> float:
    """The distance from perfect the guard is set against: the measured one, or the figure's
    resolution when today's figure is exact."""
    return max(check.distance(check.measured), check.resolution)


def _regressed(check: tol.Check, factor: float) -> float:
    """A figure ``factor`` times further from perfect than today's (for an exact count, which
    has no distance to scale, one disagreement in a million)."""
    d = factor * _floor(check) or 1e-6
    return check.ideal - d if check.higher_is_better else check.ideal + d


def test_every_runner_has_checks():
    assert set(tol.ALL_CHECKS) == {"synth", "hubert", "rmvpe", "crepe-full", "crepe-tiny", "fcpe", "e2e"}
    assert all(tol.ALL_CHECKS.values())


@pytest.mark.parametrize("name", CHECKS)
def test_guard_is_tighter_than_goal(name):
    check = CHECKS[name]
    assert check.distance(check.guard) < check.distance(check.goal), check
    assert check.guard_ok(check.guard) and check.goal_ok(check.guard)
    assert not check.guard_ok(check.goal) or check.goal == check.guard


@pytest.mark.parametrize("name", CHECKS)
def test_measured_figure_beside_each_guard(name):
    check = CHECKS[name]
    assert math.isfinite(check.measured) and check.unit, check
    assert "rvclab parity" in check.measured_by and DATE.search(check.measured_by), check.measured_by
    assert check.guard_ok(check.measured) and check.goal_ok(check.measured), check


@pytest.mark.parametrize("name", CHECKS)
def test_guard_within_a_decade_of_measured(name):
    check = CHECKS[name]
    floor, guard = _floor(check), check.distance(check.guard)
    assert floor <= guard <= 10 * floor * (1 + 1e-9), (name, floor, guard)


@pytest.mark.parametrize("name", CHECKS)
def test_regression_of_100x_fails_the_guard(name):
    check = CHECKS[name]
    worse = _regressed(check, 100.0)
    assert not check.guard_ok(worse), (name, worse, check.guard)
    assert not check.guard_ok(float("nan")) and not check.goal_ok(float("nan"))


def test_old_names_are_the_goals():
    """Notebooks, docs and the fixes registry quote the goals by their names."""
    assert tol.SYNTH_WAVE_CORR_MIN == tol.SYNTH_CHECKS["wave_corr"].goal == 0.99999
    assert tol.SYNTH_TEXTENC_MAX_ABS == tol.SYNTH_CHECKS["textenc_max_abs"].goal
    assert tol.HUBERT_COS_MIN == tol.HUBERT_CHECKS["cos_min"].goal
    assert tol.HUBERT_MAX_ABS_REL == tol.HUBERT_CHECKS["max_abs_rel"].goal
    assert tol.RMVPE_SALIENCE_MAX_ABS == tol.RMVPE_CHECKS["salience_max_abs"].goal
    assert (tol.E2E_WAVE_CORR_MIN, tol.E2E_SPEC_CORR_MIN) == (0.9999, 0.9999)
    for checks in (tol.RMVPE_CHECKS, *tol.F0_CHECKS.values()):
        assert checks["f0_p99_cents"].goal == tol.F0_P99_CENTS_MAX == 10.0


def test_hubert_rows_fail_the_guard_before_the_goal(rng):
    """A 100x regression of today's feature error: the goal still passes, the guard does not."""
    ref = rng.standard_normal((40, 16)).astype(np.float64)
    check = tol.HUBERT_CHECKS["max_abs_rel"]
    today = ref.copy()
    today[3, 5] += check.measured * np.sqrt(np.mean(ref**2))
    row = hubert_parity.compare(ref, today)
    assert row["ok"] and row["guard_ok"], row
    bad = ref.copy()
    bad[3, 5] += (check.guard + check.goal) / 2 * np.sqrt(np.mean(ref**2))  # past the guard, inside the goal
    row = hubert_parity.compare(ref, bad)
    assert row["ok"] and not row["guard_ok"], row


@pytest.mark.parametrize("model", list(tol.F0_CHECKS))
def test_f0_rows_report_both_verdicts(model):
    checks = tol.F0_CHECKS[model]
    row = {"model": model, "frames": 100, "frames_ref": 100,
           **{name: c.measured for name, c in checks.items()}}
    assert f0_row_verdicts(row) == {"ok": True, "guard_ok": True}
    worse = dict(row, f0_p99_cents=_regressed(checks["f0_p99_cents"], 100.0))
    assert f0_row_verdicts(worse) == {"ok": True, "guard_ok": False}
    assert f0_row_verdicts(dict(row, f0_median_cents=float("nan"))) == {"ok": False, "guard_ok": False}
    assert f0_row_verdicts(dict(row, frames_ref=99)) == {"ok": False, "guard_ok": False}
