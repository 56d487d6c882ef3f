"""Views for notebook 06 and the fixes catalogue: one fix measured, printed and plotted.

Data in, text or matplotlib Figures out; the measuring is :mod:`rvclab.fixes.registry`. Printed
values are rounded (bug-on values to two significant digits, fixed values as a check against the
goal) so notebook outputs do not depend on the last bits of fp32 summation order.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from rvclab.fixes import registry as fixes
from rvclab.fixes.rmvpe import TONES_HZ

# metric -> (curve key, x axis label)
_CURVES = {
    "textenc": ("curve_textenc", "frame (10 ms)"),
    "flow": ("curve_flow", "frame (10 ms)"),
    "wave": ("curve_wave", "frame (10 ms)"),
    "salience": ("curve_salience", "frame (10 ms)"),
    "gru": ("curve_gru", "frame (10 ms)"),
    "max_abs_rel": ("curve_features", "HuBERT frame (20 ms)"),
    "f0_median_cents": ("curve_cents", "frame (10 ms)"),
}
OFF_SCALE = 1e6  # where a failure that has no finite ratio is drawn in the summary plot


def measure(name: str) -> dict:
    """The bug back on, measured; then restored and measured again (:func:`rvclab.fixes.registry.run`)."""
    return fixes.run(name)


def _sig(v, digits: int = 2):
    return float(f"{v:.{digits}g}") if isinstance(v, float) else v


def report(row: dict) -> str:
    """Lines: the seed's symptom, the metric with the bug on (rounded) and the two checks."""
    fix = fixes.get(row["fix"])
    lines = [f"{fix.name} ({fix.seed}; stage: {fix.stage})",
             f"  seed's symptom: {fix.seed_symptom}",
             f"  bug on : {fix.metric} = {_sig(row['bug_on']):g}  (threshold {row['threshold']}: "
             f"{'crossed' if row['bug_visible'] else 'NOT crossed'})",
             f"  fixed  : {fix.metric} {row['goal']}: {row['fixed_within_goal']}"]
    for key in fix.extra:
        value = row["figures_bug"].get(key)
        if isinstance(value, float):
            near_one = ("corr" in key or "cos" in key) and 0.99 < value < 1
            shown = f"1 - {_sig(1.0 - value, 2):g}" if near_one else f"{_sig(value):g}"
            lines.append(f"  also with the bug on: {key} = {shown}")
    for problem in row["figures_bug"].get("first_problems", [])[:2]:
        lines.append(f"  converter: {problem}")
    if fix.note:
        lines.append(f"  note: {fix.note}")
    return "\n".join(lines)


def goal_ratio(fix, value: float) -> float:
    """Distance from parity in units of the goal: error / goal (max-abs style metrics) or
    (1 - value) / (1 - goal) (correlations); 1 = exactly at the goal, below 1 = within it."""
    if fix.higher_is_worse:
        if fix.goal > 0:
            return float(value) / fix.goal
        return OFF_SCALE if value > fix.goal else 0.0
    if fix.goal < 1:
        return (1.0 - float(value)) / (1.0 - fix.goal)
    return OFF_SCALE if value < fix.goal else 0.0


def _fig(ncols=1, w=9.0, h=2.8, dpi=72):
    fig, axes = plt.subplots(1, ncols, figsize=(w, h), dpi=dpi, constrained_layout=True,
                             squeeze=False)
    plt.close(fig)
    return fig, axes[0]


def plot_fix(row: dict):
    """The stage's error curve (|MLX - torch| per frame, log scale) with the bug on and fixed,
    the threshold and the goal; tones for the mel readout; the two values otherwise."""
    fix = fixes.get(row["fix"])
    bug, fixed = row["figures_bug"], row["figures_fixed"]
    fig, (ax,) = _fig()
    if "f0_readout_per_tone" in bug:
        ax.semilogx(TONES_HZ, 100 * np.array(bug["f0_readout_per_tone"]), "o-", label="bug on")
        ax.semilogx(TONES_HZ, 100 * np.array(fixed["f0_readout_per_tone"]), "s--", label="fixed")
        ax.axhline(-18, color="grey", ls=":", label="seed's report: about -18%")
        ax.set_xlabel("tone (Hz)")
        ax.set_ylabel("pitch read (% error)")
    else:
        key = next((v for k, v in _CURVES.items() if fix.metric.startswith(k)), None)
        suffix = "_lenient" if fix.metric.endswith("_lenient") else ""
        if key is not None and key[0] + suffix in bug:
            for label, figs, style in (("bug on", bug, "-"), ("fixed", fixed, "--")):
                ax.semilogy(np.maximum(figs[key[0] + suffix], 1e-12), style, label=label)
            ax.set_xlabel(key[1])
            ax.set_ylabel("|MLX - torch| (cents)" if key[0] == "curve_cents" else "max |MLX - torch|")
            if fix.higher_is_worse:
                ax.axhline(fix.threshold, color="red", ls=":", label=f"threshold {fix.threshold:g}")
                ax.axhline(fix.goal, color="green", ls=":", label=f"goal {fix.goal:g}")
        else:
            values = [goal_ratio(fix, row["bug_on"]), goal_ratio(fix, row["fixed"])]
            ax.bar(["bug on", "fixed"], [max(v, 1e-3) for v in values], color=["C3", "C2"])
            ax.set_yscale("log")
            ax.axhline(1.0, color="green", ls=":", label="goal")
            ax.set_ylabel("error / goal")
    ax.set_title(f"{fix.name}: {fix.metric} bug on {_sig(row['bug_on']):g}, fixed within goal: "
                 f"{row['fixed_within_goal']}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def summary_rows(rows: list[dict]) -> list[dict]:
    """Rows of the summary table: fix, seed, stage, metric, bug on, threshold, fixed, goal."""
    return fixes.summary(rows)


def stable_summary(rows: list[dict]) -> list[dict]:
    """The summary without the fixed values themselves (their last digits vary by machine)."""
    return [{k: (_sig(v) if k == "bug_on" else v) for k, v in r.items() if k != "fixed"}
            for r in summary_rows(rows)]


def plot_summary(rows: list[dict]):
    """Every fix's distance from parity (error / goal, log scale), bug on vs fixed."""
    fig, (ax,) = _fig(w=9.0, h=0.32 * len(rows) + 1.2)
    names = [r["fix"] for r in rows]
    y = np.arange(len(rows))
    for off, key, label, colour in ((-0.2, "bug_on", "bug on", "C3"), (0.2, "fixed", "fixed", "C2")):
        ratios = [goal_ratio(fixes.get(r["fix"]), r[key]) for r in rows]
        ratios = [min(max(v, 1e-4), OFF_SCALE) if math.isfinite(v) else OFF_SCALE for v in ratios]
        ax.barh(y + off, ratios, height=0.4, color=colour, label=label)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", ls=":", label="parity goal")
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("error / parity goal (1e6: refused or fails outright)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _corr_shown(value) -> str:
    """A correlation near 1 as ``1 - x`` (two significant digits); None (voice refused) as such."""
    if value is None:
        return "refused"
    return f"1 - {_sig(1.0 - float(value)):g}" if value < 1 else "1"


def e2e_table(rows: list[dict]) -> list[dict]:
    """Rows of the end-to-end table (:func:`rvclab.fixes.e2e.measure`): wave and spectrogram
    correlation, torch vs MLX, with the bug on and off, and what the goal saw."""
    return [{"fix": r["fix"], "stage": r["stage"],
             "bug on: wave corr": _corr_shown(r["bug_wave_corr"]),
             "bug on: spec corr": _corr_shown(r["bug_spec_corr"]),
             "bug off: wave corr": _corr_shown(r["fixed_wave_corr"]),
             "bug off: spec corr": _corr_shown(r["fixed_spec_corr"]),
             "bug on": fixes.E2E[r["outcome"]].value,
             "as the registry says": r["as_expected"]} for r in rows]


def e2e_report(rows: list[dict]) -> str:
    """One line per fix: bug-on figures (two digits), the outcome, the bug-off check."""
    lines = []
    for r in rows:
        figures = (f"{r['converter_problems']} converter problems" if r["bug_wave_corr"] is None else
                   f"wave {_corr_shown(r['bug_wave_corr'])}, spec {_corr_shown(r['bug_spec_corr'])}")
        lines.append(f"{r['fix']:24s} bug on: {figures:34s} -> {r['outcome'].lower():11s} "
                     f"(registry: {str(r['expected']).lower()}); bug off within goal: {r['fixed_within_goal']}")
    return "\n".join(lines)
