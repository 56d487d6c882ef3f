"""The documented fixes end to end: every toggle that breaks the features or the synthesizer is
seen by the end-to-end goal (torch vs MLX conversion of the same clip, noise and chunking), and
the conversion is back within it with the toggle off. The toggles are chosen by the registry's
data (``Fix.breaks``); what each must do end to end is the registry's ``Fix.e2e``."""

from __future__ import annotations

import pytest

from rvclab.fixes import e2e
from rvclab.fixes import registry as fixes
from rvclab.models.synth.config import SynthConfig
from rvclab.pipeline.networks import STAGES
from rvclab.tolerances import E2E_SPEC_CORR_MIN, E2E_WAVE_CORR_MIN

SELECTED = [f.name for f in e2e.selected()]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """One torch conversion, one MLX conversion with no bug, one per selected toggle: a seeded
    v2-40k voice with the real architecture and fewer channels, 1 s of speech."""
    from rvclab.models.synth.seeded import make_one

    path = make_one(tmp_path_factory.mktemp("voices") / "small_v2_40k.pth",
                    SynthConfig.preset("v2-40k").small(), seed=0)
    return {r["fix"]: r for r in e2e.measure(path)}


def test_selection_comes_from_the_registry_data():
    assert SELECTED, "no fix breaks the features or the synthesizer: nothing measured end to end"
    for fix in fixes.REGISTRY.values():
        assert set(fix.breaks) <= set(STAGES), f"{fix.name}: breaks {fix.breaks}, stages are {STAGES}"
        measured = fix.name in SELECTED
        assert measured == bool(set(fix.breaks) & set(e2e.E2E_STAGES)), fix.name
        # an end-to-end expectation exactly where it is measured
        assert (fix.e2e is not None) == measured, f"{fix.name}: e2e {fix.e2e}, measured {measured}"
    assert not fixes.get("faiss_openmp_macos").breaks
    assert "layout_transposes" in SELECTED and "hubert_gelu_tanh" in SELECTED
    assert "rmvpe_cents_map" not in SELECTED and "faiss_openmp_macos" not in SELECTED


def test_without_a_bug_the_conversion_meets_the_goal(rows):
    row = next(iter(rows.values()))
    assert row["fixed_within_goal"], row
    assert row["fixed_wave_corr"] >= E2E_WAVE_CORR_MIN and row["fixed_spec_corr"] >= E2E_SPEC_CORR_MIN


@pytest.mark.parametrize("name", SELECTED)
def test_toggle_seen_end_to_end(rows, name):
    row, fix = rows[name], fixes.get(name)
    shown = (f"{name}: wave corr {row['bug_wave_corr']}, spec corr {row['bug_spec_corr']}, "
             f"converter problems {row['converter_problems']}; registry says {fix.e2e.name}")
    assert row["as_expected"], shown
    if fix.e2e is fixes.E2E.FAILS:
        assert row["bug_wave_corr"] < E2E_WAVE_CORR_MIN or row["bug_spec_corr"] < E2E_SPEC_CORR_MIN, shown
    elif fix.e2e is fixes.E2E.REFUSED:
        assert row["converter_problems"] > 0, shown
    else:  # within the goal, yet the bug reaches the conversion
        assert row["bug_wave_corr"] < row["fixed_wave_corr"], shown
