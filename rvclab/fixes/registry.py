"""The porting fixes, executable: each a named toggle that puts its bug back, with a metric.

Every fix the seed documented (and a few pitfalls it did not) is a :class:`Fix`: what goes wrong,
the seed's symptom, the stage, the metric that shows it and the thresholds it crosses, and a
function measuring it on seeded models. ``with reintroduce(name):`` puts the bug back (the buggy
variants live in :mod:`rvclab.fixes.synth`, ``.rmvpe`` and ``.features``; the model files hold no
toggle checks); :func:`run` measures a fix with the bug on and off, :func:`run_all` every one.
The entries are keyword data in :mod:`rvclab.fixes.catalogue`; the record type is
:mod:`rvclab.fixes.fix`.
"""

from __future__ import annotations

from rvclab.fixes.catalogue import FIXES
from rvclab.fixes.fix import E2E, F0, FEATURES, SYNTH, Fix, Worse
from rvclab.fixes.toggle import Swap, swapped

__all__ = ["Fix", "Worse", "E2E", "FEATURES", "F0", "SYNTH", "Swap", "REGISTRY", "DOCUMENTED", "get",
           "reintroduce", "snapshot", "run", "run_all", "make_row", "summary"]


def reintroduce(*names: str):
    """Put the bugs of the named fixes back for the duration of a ``with`` block; restore on exit.

    Restoring happens in reverse order in a ``finally`` clause, so an exception inside the block
    leaves the code as it was; unknown names fail before anything is swapped. Thread safety: the
    swaps are process-wide, so other threads running models meanwhile see the buggy code too
    (toggles are for notebooks, tests and scripts doing one thing at a time); a re-entrant lock
    serialises toggles against each other (see :mod:`rvclab.fixes.toggle`). Before swapping,
    each fix's bench is prepared (built once and cached) with the code unswapped, so cached
    models and references never carry a bug into later measurements."""
    chosen = [get(name) for name in names]
    for fix in chosen:  # the bench (models, references, caches) is built with the correct code
        if fix.prepare is not None:
            fix.prepare()
    return swapped([swap for fix in chosen for swap in fix.swaps])


def snapshot(*names: str) -> dict[tuple[str, str], object]:
    """{(target, name): object in place} for every swap of the named fixes (all by default)."""
    chosen = [get(n) for n in names] if names else list(REGISTRY.values())
    return {(s.target, s.name): s.current() for f in chosen for s in f.swaps}


def run(name: str) -> dict:
    """Measure one fix with its bug on, then off: a row for tables and docs."""
    fix = get(name)
    with reintroduce(name):
        bug = fix.measure()
    fixed = fix.measure()
    return make_row(fix, bug, fixed)


def make_row(fix: Fix, bug: dict, fixed: dict) -> dict:
    """The row of :func:`run` from figures measured with the bug on and off."""
    row = {"fix": fix.name, "title": fix.title, "seed": fix.seed,
           "seed_symptom": fix.seed_symptom, "stage": fix.stage, "metric": fix.metric,
           "bug_on": bug[fix.metric], "fixed": fixed[fix.metric],
           "threshold": ("> " if fix.higher_is_worse else "< ") + f"{fix.threshold:g}",
           "goal": ("<= " if fix.higher_is_worse else ">= ") + f"{fix.goal:g}",
           "bug_visible": fix.bug_past(bug[fix.metric]),
           "fixed_within_goal": fix.fixed_ok(fixed[fix.metric]),
           "reproducible": fix.reproducible,
           "figures_bug": bug, "figures_fixed": fixed}
    return row


def run_all(names=None) -> list[dict]:
    return [run(n) for n in (names or REGISTRY)]


def get(name: str) -> Fix:
    if name not in REGISTRY:
        raise KeyError(f"unknown fix {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def summary(rows: list[dict], digits: int = 3) -> list[dict]:
    """Compact rows (fix, seed, stage, metric, bug on, fixed, both checks) for display."""
    def fmt(v):
        return float(f"{v:.{digits}g}") if isinstance(v, float) else v

    return [{"fix": r["fix"], "seed": r["seed"], "stage": r["stage"], "metric": r["metric"],
             "bug_on": fmt(r["bug_on"]), "threshold": r["threshold"], "fixed": fmt(r["fixed"]),
             "goal": r["goal"], "bug_visible": r["bug_visible"],
             "fixed_within_goal": r["fixed_within_goal"]} for r in rows]


REGISTRY: dict[str, Fix] = {f.name: f for f in FIXES}

# The fixes the documentation names, in its words -> registry names.
DOCUMENTED = {
    "layout transposes": "layout_transposes",
    "LayerNorm gamma/beta": "layernorm_gamma_beta",
    "relative-position embeddings not transposed": "rel_pos_not_transposed",
    "relative->absolute position off-by-one": "rel_to_abs_off_by_one",
    "flow index mapping": "flow_index_mapping",
    "flow reverse order": "flow_reverse_order",
    "WaveNet cond_layer slicing and last res_skip width": "wavenet_cond_slicing",
    "weight-norm fusion": "weight_norm_fusion",
    "conv/transposed-conv/conv2d weight layouts": "conv_weight_layouts",
    "RMVPE shortcut without BatchNorm": "rmvpe_shortcut_no_bn",
    "PyTorch-compatible GRU": "pytorch_gru",
    "reflect-padded HTK mel and 32k-frame chunking": ("mel_reflect_pad", "mel_htk",
                                                        "rmvpe_chunking"),
    "faiss/OpenMP on macOS": "faiss_openmp_macos",
    "RMVPE ~18% F0 error": "rmvpe_mel_fmax",
}
