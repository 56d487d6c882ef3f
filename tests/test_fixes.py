"""The documented-fix toggles: each bug visibly back when on, parity back when off, and the
toggle mechanism restoring exactly what it swapped (also after an exception)."""

from __future__ import annotations

import pytest

from rvclab.fixes import registry as fixes


@pytest.mark.parametrize("name", list(fixes.REGISTRY))
def test_toggle_moves_metric_and_restores_parity(name):
    fix = fixes.get(name)
    row = fixes.run(name)
    assert row["bug_visible"], (
        f"{name}: with the bug on, {fix.metric} = {row['bug_on']:.4g}, expected {row['threshold']}")
    assert row["fixed_within_goal"], (
        f"{name}: with the bug off, {fix.metric} = {row['fixed']:.4g}, expected {row['goal']}")
    assert fix.bug_past(row["bug_on"]) and fix.fixed_ok(row["fixed"])


def test_every_toggle_swaps_something_and_restores_identity():
    before = fixes.snapshot()
    for name, fix in fixes.REGISTRY.items():
        assert fix.swaps, f"{name}: a toggle must swap at least one attribute"
        with fixes.reintroduce(name):
            during = fixes.snapshot(name)
            for key, obj in during.items():
                assert obj is not before[key], f"{name}: {key} not swapped"
        after = fixes.snapshot()
        assert all(after[k] is before[k] for k in before), f"{name}: not restored"


def test_restored_after_an_exception_and_when_nested():
    before = fixes.snapshot()
    names = list(fixes.REGISTRY)
    with pytest.raises(RuntimeError, match="inside"):
        with fixes.reintroduce(*names):
            raise RuntimeError("inside the block")
    after = fixes.snapshot()
    assert all(after[k] is before[k] for k in before)
    with fixes.reintroduce("flow_reverse_order"):
        with fixes.reintroduce("layout_transposes"):
            pass
        inner = fixes.snapshot("layout_transposes")
        assert all(inner[k] is before[k] for k in inner)
        outer = fixes.snapshot("flow_reverse_order")
        assert all(outer[k] is not before[k] for k in outer)
    after = fixes.snapshot()
    assert all(after[k] is before[k] for k in before)


def test_unknown_names_fail_before_anything_is_swapped():
    before = fixes.snapshot()
    with pytest.raises(KeyError, match="no_such_fix"):
        with fixes.reintroduce("flow_reverse_order", "no_such_fix"):
            pass
    after = fixes.snapshot()
    assert all(after[k] is before[k] for k in before)


def test_registry_covers_the_documented_fixes_and_more():
    named = []
    for value in fixes.DOCUMENTED.values():
        named += [value] if isinstance(value, str) else list(value)
    missing = [n for n in named if n not in fixes.REGISTRY]
    assert not missing, missing
    numbers = {f.seed for f in fixes.REGISTRY.values() if f.seed.startswith("fix ")}
    assert numbers == {f"fix {i}" for i in range(1, 14)}
    new = [f.name for f in fixes.REGISTRY.values() if not f.documented]
    assert len(new) >= 3, new
    assert "rmvpe_mel_fmax" in fixes.REGISTRY
    for fix in fixes.REGISTRY.values():
        assert fix.stage and fix.metric and fix.why and fix.seed_symptom
    assert not fixes.get("faiss_openmp_macos").reproducible


def test_benches_are_built_with_the_code_unswapped():
    """The conv layout toggle also swaps the RMVPE converter: an RMVPE bench (and the shared
    estimator cache) first built inside it would carry the bug into every later measurement."""
    from rvclab.fixes import rmvpe as fixes_rmvpe
    from rvclab.models.rmvpe import f0 as f0_rmvpe

    for cache in (fixes_rmvpe._bench, fixes_rmvpe._gru_input, fixes_rmvpe._bump):
        cache.cache_clear()
    f0_rmvpe._MODELS.clear()
    row = fixes.run("conv_weight_layouts")
    assert row["figures_bug"]["rmvpe_salience_max_abs"] > 1e-3
    fix = fixes.get("rmvpe_batchnorm_train")
    assert fix.fixed_ok(fixes_rmvpe.measure_rmvpe()[fix.metric])
