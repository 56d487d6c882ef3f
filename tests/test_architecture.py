"""The import graph is the architecture: these tests keep its rules (docs/architecture.md).

Each failure names the module and the offending import. The rules:

* MLX modules never import torch, directly or through other rvclab modules, and they import and
  run with torch blocked;
* torch modules never import MLX;
* model modules (the torch and MLX networks, their configs and noise) do no I/O;
* only ``rvclab.views`` imports ipywidgets and matplotlib;
* nothing imports the CLI;
* no import cycles;
* imports sit at the top of a module, except optional extras and one backend's code where the
  backend is chosen (:data:`rvclab.runtime.LAZY_IMPORTS`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

from rvclab.runtime import LAZY_IMPORTS

PACKAGE = Path(__file__).resolve().parents[1] / "rvclab"
UI_PACKAGES = ("ipywidgets", "matplotlib")
IO_CALLS = {"open", "print", "load", "save", "load_checkpoint", "load_audio", "read_text", "read_bytes",
            "write_text", "write_bytes", "load_file", "save_file"}
IO_MODULES = ("rvclab.checkpoints", "rvclab.paths", "safetensors", "soundfile", "pickle", "librosa", "pathlib",
              "shutil", "tempfile")


@dataclass
class Module:
    name: str
    path: Path
    top: dict[str, int] = field(default_factory=dict)  # imported module -> line
    inner: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def imports(self) -> dict[str, int]:
        return {**self.inner, **self.top}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if mod.path.name != "__init__.py":
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        mod = Module(_module_name(path), path)
        found[mod.name] = mod
    names = set(found)
    for mod in found.values():
        tree = ast.parse(mod.path.read_text(encoding="utf-8"))
        _collect(mod, tree, names, nested=False)
    return found


def _collect(mod: Module, node: ast.AST, names: set[str], nested: bool) -> None:
    for child in ast.iter_child_nodes(node):
        inside = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        targets = []
        if isinstance(child, ast.Import):
            targets = [a.name for a in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = _resolve(mod, child)
            # ``from pkg import sub`` imports the submodule when one exists
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in names else base for a in child.names]
        elif isinstance(child, ast.Call):
            func = child.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name:
                mod.calls.setdefault(name, child.lineno)
        for target in targets:
            if target == "__future__":
                continue
            (mod.inner if inside else mod.top).setdefault(target, child.lineno)
        _collect(mod, child, names, inside)


def _is(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_mlx_module(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return (_is(name, "rvclab.mlx", "rvclab.models.synth.mlx")
            or (name.startswith("rvclab.models.") and leaf in ("mlx", "mlx_layers", "gru")))


def is_torch_module(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return _is(name, "rvclab.models.synth.torch") or (name.startswith("rvclab.models.") and leaf == "torch")


def is_model_module(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return (is_mlx_module(name) or is_torch_module(name)
            or (name.startswith("rvclab.models.") and leaf in ("config", "noise")))


def _rvclab_edges(mod: Module) -> list[str]:
    return [t for t in mod.imports if t in modules()]


def _reaches(start: str, forbidden) -> list[str] | None:
    """The chain of rvclab imports from ``start`` to a module importing something ``forbidden``:
    any import of ``start`` itself, then what loads with it (top-level imports)."""
    seen, stack = set(), [(start, [start])]
    while stack:
        name, chain = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        mod = modules()[name]
        imports = mod.imports if name == start else mod.top
        for target, line in imports.items():
            if forbidden(target):
                return chain + [f"{target} (line {line})"]
        stack += [(t, chain + [t]) for t in imports if t in modules()]
    return None


def test_the_graph_is_read():
    found = modules()
    assert sum(is_mlx_module(n) for n in found) >= 10, sorted(found)
    assert sum(is_torch_module(n) for n in found) >= 8, sorted(found)
    assert "rvclab.models.rmvpe.mlx" in found and "rvclab.models.rmvpe.torch" in found


def test_mlx_modules_never_reach_torch():
    bad = []
    for name in sorted(n for n in modules() if is_mlx_module(n)):
        chain = _reaches(name, lambda t: _is(t, "torch"))
        if chain:
            bad.append(" -> ".join(chain))
    assert not bad, "MLX modules that import torch:\n" + "\n".join(bad)


def test_torch_modules_never_import_mlx():
    bad = []
    for name in sorted(n for n in modules() if is_torch_module(n)):
        chain = _reaches(name, lambda t: _is(t, "mlx") or is_mlx_module(t))
        if chain:
            bad.append(" -> ".join(chain))
    assert not bad, "torch modules that import MLX:\n" + "\n".join(bad)


def test_model_modules_do_no_io():
    bad = []
    for name, mod in sorted(modules().items()):
        if not is_model_module(name):
            continue
        bad += [f"{name}: imports {t} (line {line})" for t, line in mod.imports.items() if _is(t, *IO_MODULES)]
        bad += [f"{name}: calls {c}() (line {line})" for c, line in mod.calls.items() if c in IO_CALLS]
    assert not bad, "model modules doing I/O:\n" + "\n".join(bad)


def test_only_views_import_ui_packages():
    bad = [f"{name}: imports {t} (line {line})"
           for name, mod in sorted(modules().items()) if not _is(name, "rvclab.views")
           for t, line in mod.imports.items() if _is(t, *UI_PACKAGES)]
    assert not bad, "UI packages imported outside rvclab.views:\n" + "\n".join(bad)


def test_nothing_imports_the_cli():
    bad = [f"{name}: imports {t} (line {line})"
           for name, mod in sorted(modules().items()) if not _is(name, "rvclab.cli")
           for t, line in mod.imports.items() if _is(t, "rvclab.cli")]
    assert not bad, "modules importing the CLI:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    graph = {n: sorted(set(_rvclab_edges(m)) - {n}) for n, m in modules().items()}
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _parent_packages(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles():
    cycles = [c for c in _cycles()
              # a package __init__ importing its own submodule is not a cycle of design
              if not any(a in _parent_packages(b) for a in c for b in c)]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _loads_a_backend(name: str) -> bool:
    """True when importing rvclab module ``name`` loads torch or MLX (through its top-level imports)."""
    return name in modules() and _top_reaches(name)


def _top_reaches(name: str) -> bool:
    seen, stack = set(), [name]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        top = modules()[n].top
        if any(_is(t, "torch", "mlx") for t in top):
            return True
        stack += [t for t in top if t in modules()]
    return False


def _lazy_allowed(importer: str, target: str) -> bool:
    if _is(target, *LAZY_IMPORTS):
        return True
    # one backend's code (a module that loads torch or MLX), imported where the backend is chosen
    return is_mlx_module(target) or is_torch_module(target) or _loads_a_backend(target)


def test_imports_at_the_top():
    bad = [f"{name}: {t} (line {line})"
           for name, mod in sorted(modules().items())
           for t, line in mod.inner.items() if not _lazy_allowed(name, t)]
    assert not bad, ("imports inside functions that are neither an optional extra nor one backend's code "
                     "(rvclab.runtime.LAZY_IMPORTS):\n" + "\n".join(bad))


_BLOCK_TORCH = """
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"torch is blocked in this test (imported as {name})")
sys.meta_path.insert(0, Block())
names = sys.argv[1:]
for name in names:
    importlib.import_module(name)
assert "torch" not in sys.modules
print("ok", len(names))
"""


def test_mlx_path_runs_with_torch_blocked():
    names = sorted(n for n in modules() if is_mlx_module(n))
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TORCH, *names], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"ok {len(names)}"


def test_the_rules_catch_a_violation(tmp_path):
    """The checks above see a forbidden import when there is one (the graph is not empty by mistake)."""
    mod = Module("rvclab.models.rmvpe.mlx", tmp_path / "x.py")
    _collect(mod, ast.parse("import torch\ndef f():\n    import matplotlib\n"), set(), nested=False)
    assert "torch" in mod.top and "matplotlib" in mod.inner
    assert not _lazy_allowed(mod.name, "rvclab.audio")
    assert _lazy_allowed(mod.name, "rvclab.models.synth.io")  # the torch voice loader
    assert _lazy_allowed(mod.name, "torchcrepe")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
