"""A user's checkout of RVC WebUI or Applio: which layout it has, and its code imported from it.

The code is imported from the checkout at run time (the folder goes first on ``sys.path`` while
a :func:`checkout_code` block runs, and its modules leave ``sys.modules`` after it), never copied
into rvclab. :data:`LAYOUTS` names, per code layout, the files that identify it, the reference
profile it implies and the upstream module of each stage. No torch at import (the CLI reads the
errors from here).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType


class UpstreamCheckoutError(OSError):
    """A folder that is not a usable RVC WebUI or Applio checkout; the message names what was looked for."""


@dataclass(frozen=True)
class Layout:
    """One upstream code layout. Module names are dotted, relative to the checkout's root."""

    name: str
    markers: tuple[str, ...]  # files (relative paths) that all exist in this layout
    profile: str  # the reference profile (rvclab.profiles) this code is
    synth: str  # module holding the synthesizer classes
    synth_family: str  # how upstream builds a voice: "webui" | "applio" (see stages.build_upstream_synth)
    rmvpe: str  # module holding the RMVPE wrapper class
    rmvpe_class: str
    rmvpe_kwargs: tuple[tuple[str, object], ...]  # beyond the model path, for a float32 CPU model
    hubert: str  # module holding the HuBERT model class (transformers-based in 2026 and Applio)
    hubert_class: str
    pipeline: str  # module holding the whole-conversion class
    pipeline_class: str


LAYOUTS = MappingProxyType({
    layout.name: layout for layout in (
        Layout(
            name="rvc-webui-2026",
            markers=("infer/vc/pipeline.py", "infer/module/models.py", "infer/rmvpe.py", "infer/hubert.py"),
            profile="rvc-webui-2026",
            synth="infer.module.models", synth_family="webui",
            rmvpe="infer.rmvpe", rmvpe_class="RMVPE", rmvpe_kwargs=(("is_half", False), ("device", "cpu")),
            hubert="infer.hubert", hubert_class="HubertModelWithFinalProj",
            pipeline="infer.vc.pipeline", pipeline_class="Pipeline",
        ),
        Layout(
            name="rvc-webui-2024",
            markers=("infer/lib/infer_pack/models.py", "infer/lib/rmvpe.py", "infer/modules/vc/pipeline.py"),
            profile="rvc-webui-2024",
            synth="infer.lib.infer_pack.models", synth_family="webui",
            rmvpe="infer.lib.rmvpe", rmvpe_class="RMVPE", rmvpe_kwargs=(("is_half", False), ("device", "cpu")),
            hubert="fairseq.checkpoint_utils", hubert_class="load_model_ensemble_and_task",
            pipeline="infer.modules.vc.pipeline", pipeline_class="Pipeline",
        ),
        Layout(
            name="applio",
            markers=("rvc/lib/algorithm/synthesizers.py", "rvc/lib/predictors/RMVPE.py", "rvc/infer/pipeline.py",
                     "rvc/lib/utils.py"),
            profile="applio",
            synth="rvc.lib.algorithm.synthesizers", synth_family="applio",
            rmvpe="rvc.lib.predictors.RMVPE", rmvpe_class="RMVPE0Predictor", rmvpe_kwargs=(("device", "cpu"),),
            hubert="rvc.lib.utils", hubert_class="HubertModelWithFinalProj",
            pipeline="rvc.infer.pipeline", pipeline_class="Pipeline",
        ),
    )
})


def find_layout(checkout: str | Path) -> tuple[Path, Layout]:
    """(resolved folder, its layout); UpstreamCheckoutError when the folder is missing or no layout's
    files are all there (the message lists each layout's files)."""
    root = Path(checkout).expanduser()
    if not root.is_dir():
        raise UpstreamCheckoutError(f"{root}: no such folder (expected a checkout of RVC WebUI or Applio)")
    for layout in LAYOUTS.values():
        if all((root / m).is_file() for m in layout.markers):
            return root.resolve(), layout
    looked = "; ".join(f"{lay.name}: {', '.join(lay.markers)}" for lay in LAYOUTS.values())
    raise UpstreamCheckoutError(f"{root}: not a checkout of RVC WebUI or Applio; looked for these files "
                                f"(all of one layout): {looked}")


class CheckoutCode:
    """Imports modules from one checkout; a module that fails to import is remembered with its
    reason, so each stage that needs it can say why it is skipped."""

    def __init__(self, root: Path, layout: Layout):
        self.root, self.layout = root, layout
        self.failures: dict[str, str] = {}

    def module(self, name: str) -> ModuleType | None:
        """The upstream module ``name``, or None when importing it failed (reason in ``failures``)."""
        if name in self.failures:
            return None
        try:
            with quiet():
                return importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure inside upstream code is a reason to skip
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            return None

    def attr(self, module: str, name: str):
        """``module.name`` from the checkout, or None (reason in ``failures``)."""
        mod = self.module(module)
        if mod is None:
            return None
        if not hasattr(mod, name):
            self.failures[module] = f"{module} has no {name!r} (not the {self.layout.name} code rvclab knows)"
            return None
        return getattr(mod, name)

    def skip_reason(self, *modules: str) -> str:
        """'skipped: <module> does not import (<why>)' for the first failed module of ``modules``."""
        for name in modules:
            if name in self.failures:
                return f"skipped: {name} does not import with {self.root} on the path ({self.failures[name]})"
        return ""


@contextlib.contextmanager
def checkout_code(root: Path, layout: Layout) -> Iterator[CheckoutCode]:
    """The checkout's folder first on ``sys.path`` for the block; its modules (and any module of the
    same top-level packages) are dropped from ``sys.modules`` before and after, so two checkouts
    with the same package names (``infer``) can run one after another in one process."""
    tops = {m.split(".")[0] for lay in LAYOUTS.values() for m in (lay.synth, lay.pipeline)} | {"configs"}
    _drop_modules(root, tops)
    sys.path.insert(0, str(root))
    try:
        yield CheckoutCode(root, layout)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        _drop_modules(root, tops)


def _drop_modules(root: Path, tops: set[str]) -> None:
    for name, mod in list(sys.modules.items()):
        path = getattr(mod, "__file__", None) or ""
        if name.split(".")[0] in tops or path.startswith(str(root)):
            del sys.modules[name]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Upstream's prints go to stderr, so ``--json`` output on stdout stays JSON."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
