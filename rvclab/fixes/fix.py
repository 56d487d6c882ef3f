"""One documented fix as data: what goes wrong, where, the metric that shows it and its thresholds
(:class:`Fix`), and the words the registry uses for stages and directions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from rvclab.fixes.toggle import Swap

NOT_DOCUMENTED = "not documented by the seed"


# The pipeline stages a bug can change (rvclab.pipeline.conversion.STAGES), for Fix.breaks.
FEATURES, F0, SYNTH = "features", "f0", "synth"


class E2E(Enum):
    """What the end-to-end comparison (torch vs MLX conversion) shows with the bug on."""

    FAILS = "fails the end-to-end goal"
    REFUSED = "the strict converter refuses the voice"
    WITHIN_GOAL = "changes the conversion by less than the end-to-end goal sees"


class Worse(Enum):
    """Which way a fix's metric moves when the bug is back."""

    HIGHER = "higher"  # a difference or a count of problems
    LOWER = "lower"  # a correlation, or a check that passes (1) or fails (0)


@dataclass(frozen=True)
class Fix:
    """One documented fix (or undocumented pitfall) and how to see it.

    ``measure()`` returns a dict of figures computed with the code as it is at call time;
    ``metric`` names the figure that shows the bug and ``worse`` the way the bug moves it;
    ``bug_past(value)`` says whether it crossed ``threshold`` (the bug is visible),
    ``fixed_ok(value)`` whether it is within ``goal`` (the parity goal from
    :mod:`rvclab.tolerances`). ``breaks``: the pipeline stages whose output the bug changes on
    this platform (empty: it cannot change a conversion here); ``e2e``: what the end-to-end
    comparison shows with the bug on, for the fixes :mod:`rvclab.fixes.e2e` measures (those
    breaking the features or the synthesizer), None for the others."""

    name: str
    title: str
    seed: str  # "fix N" in the seed's list, a symptom it reported, or NOT_DOCUMENTED
    seed_symptom: str
    stage: str
    why: str
    metric: str
    worse: Worse
    threshold: float
    goal: float
    swaps: tuple[Swap, ...]
    measure: Callable[[], dict]
    breaks: tuple[str, ...]
    e2e: E2E | None = None
    reproducible: bool = True
    note: str = ""
    extra: tuple[str, ...] = field(default=())  # other figures worth showing
    prepare: Callable[[], object] | None = None  # builds (and caches) the bench, code unswapped

    @property
    def higher_is_worse(self) -> bool:
        return self.worse is Worse.HIGHER

    def bug_past(self, value: float) -> bool:
        return value > self.threshold if self.higher_is_worse else value < self.threshold

    def fixed_ok(self, value: float) -> bool:
        return value <= self.goal if self.higher_is_worse else value >= self.goal

    @property
    def documented(self) -> bool:
        return self.seed != NOT_DOCUMENTED
