"""The toggle mechanism of :mod:`rvclab.fixes.registry`: named attributes swapped and put back.

A :class:`Swap` names one attribute (a module function, a class method, or a rule in a converter
table) and how to build its buggy variant; :func:`swapped` puts a list of them in place for a
``with`` block and restores every original (the same object) on exit, also after an exception.
The swaps are process-wide; a re-entrant lock serialises toggles against each other.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

_LOCK = threading.RLock()
_ABSENT = object()


@dataclass(frozen=True)
class Swap:
    """Replace ``target``'s attribute ``name`` by ``make(original)`` while a toggle is on.

    ``target`` is ``"module"`` or ``"module:Object"`` (a class, or a converter rules list; for a
    list, ``name`` is the rule's name and the rule is replaced in place). With ``also_home``, a
    function the module re-exports from the one defining it is swapped in both modules."""

    target: str
    name: str
    make: Callable[[object], object]
    also_home: bool = False  # also swap it in the module defining the function (re-exports)

    def owner(self):
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
        return obj

    def current(self):
        """The object in place now: for identity checks (``vars`` entry for classes)."""
        owner = self.owner()
        if isinstance(owner, list):
            return owner[_rule_index(owner, self.name)]
        if isinstance(owner, type):
            return vars(owner).get(self.name, _ABSENT)
        return getattr(owner, self.name)

    def apply(self) -> Callable[[], None]:
        """Swap in the buggy variant; return the function that puts the original back."""
        owner = self.owner()
        if isinstance(owner, list):
            i = _rule_index(owner, self.name)
            original = owner[i]
            owner[i] = self.make(original)
            return lambda: owner.__setitem__(i, original)
        if isinstance(owner, type):
            original = vars(owner).get(self.name, _ABSENT)
            setattr(owner, self.name, self.make(getattr(owner, self.name)))
            if original is _ABSENT:
                return lambda: delattr(owner, self.name)
            return lambda: setattr(owner, self.name, original)
        original = getattr(owner, self.name)
        buggy = self.make(original)
        # a function re-exported from the module that defines it is swapped in both places
        home = sys.modules.get(getattr(original, "__module__", None) or "")
        places = [owner] + ([home] if self.also_home and home not in (None, owner)
                            and getattr(home, self.name, None) is original else [])
        for place in places:
            setattr(place, self.name, buggy)

        def restore():
            for place in places:
                setattr(place, self.name, original)

        return restore


def _rule_index(rules: list, name: str) -> int:
    for i, rule in enumerate(rules):
        if getattr(rule, "name", None) == name:
            return i
    raise KeyError(f"no rule named {name!r} in the table (rules: {[r.name for r in rules]})")


@contextmanager
def swapped(swaps: Sequence[Swap]) -> Iterator[None]:
    """Apply ``swaps`` in order for the block; restore them in reverse order on exit."""
    with _LOCK:
        for swap in swaps:  # import every owner first: an import must not see a swapped name
            swap.owner()
        undo: list[Callable[[], None]] = []
        try:
            for swap in swaps:
                undo.append(swap.apply())
            yield
        finally:
            for restore in reversed(undo):
                restore()
