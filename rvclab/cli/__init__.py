"""The rvclab command line: runtime info, seeded weights, torch vs MLX parity, conversion, benchmarks.

One parser. Model families plug in by module name through the registries below, so this file does
not change when one is added: ``SEEDED_MODULES`` (``make``), ``PARITY_MODULES`` (``add_arguments``,
``run``) and ``RULE_MODULES`` (``matches``, ``convert_checkpoint``). Packages contribute whole
subcommands through ``COMMANDS``; a command's module is imported when that command is parsed, so
``rvclab --help`` loads no model code. Exit codes: :mod:`rvclab.cli.exit_codes` (also in ``--help``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

from rvclab import help_text as text
from rvclab.audio import AudioError
from rvclab.checkpoints import CheckpointError, check_writable_dir, load_checkpoint
from rvclab.cli.exit_codes import EXIT_BAD_INPUT, EXIT_CODES, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from rvclab.convert import ConversionError, save_safetensors_atomic
from rvclab.info import collect
from rvclab.parity_upstream.checkout import UpstreamCheckoutError
from rvclab.paths import weights_dir
from rvclab.pipeline.index import IndexFileError

# Model families, by module name (a module that does not exist is skipped).
SEEDED_MODULES = dict(
    synthesizer="rvclab.models.synth.seeded",
    hubert="rvclab.models.hubert.seeded",
    rmvpe="rvclab.models.rmvpe.seeded",
)
PARITY_MODULES = {
    "synth": "rvclab.models.synth.parity",
    "hubert": "rvclab.models.hubert.parity",
    "rmvpe": "rvclab.models.rmvpe.parity",
    "crepe": "rvclab.models.crepe.parity",
    "crepe-tiny": "rvclab.models.crepe.parity_tiny",
    "fcpe": "rvclab.models.fcpe.parity",
    "e2e": "rvclab.pipeline.parity",
    "upstream": "rvclab.parity_upstream",
}
RULE_MODULES = dict(
    synthesizer="rvclab.models.synth.rules",
    hubert="rvclab.models.hubert.rules",
    rmvpe="rvclab.models.rmvpe.rules",
    crepe="rvclab.models.crepe.rules",
    fcpe="rvclab.models.fcpe.rules",
)
SEEDED_FAMILIES = tuple(SEEDED_MODULES)
PARITY_NAMES = tuple(PARITY_MODULES)
RULE_FAMILIES = tuple(RULE_MODULES)


# Subcommands contributed per package, in --help order after the ones defined here. The module
# gives ``add_arguments(parser)`` and ``run_cli(args)`` (or its own subcommands set ``fn``).
COMMANDS = dict(
    convert=dict(module="rvclab.pipeline.batch", help="convert a voice: one file or a folder (batch)"),
    bench=dict(module="rvclab.bench.run", help="benchmarks, torch vs MLX per stage (JSON rows)"),
    demo=dict(module="rvclab.cli.demo", help="the main job on the shipped data"),
    lab=dict(module="rvclab.cli.lab", help="JupyterLab on notebooks/ with this environment's kernel; prints the URL"),
    index=dict(module="rvclab.cli.index", help="FAISS feature index (build, info)"),
    stream=dict(module="rvclab.cli.stream", help="realtime conversion block by block (file or --live), timed"),
)


def _optional_module(name: str):
    """Import ``name`` if that module exists; None if it does not (errors inside it propagate)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _plain(doc: str | None, default: str) -> str:
    """The first line of a docstring as plain text (RST literals and roles unwrapped), for --help."""
    line = (doc or default).strip().splitlines()[0]
    return re.sub(r":\w+:`~?([^`]*)`", r"\1", line).replace("``", "")


def _print_rows(obj, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2, default=_jsonable))
        return
    rows = obj if isinstance(obj, list) else [obj]
    for row in rows:
        print("  ".join(f"{k}={_fmt(v)}" for k, v in row.items()))


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _jsonable(v):
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def cmd_info(args) -> int:
    if args.n < 1:
        print(f"rvclab info: -n {args.n}: the matmul size must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    info = collect(matmul_n=args.n)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return EXIT_OK


def cmd_weights_make(args) -> int:
    args.out = args.out or str(weights_dir())
    written = []
    families = args.only.split(",") if args.only else SEEDED_FAMILIES
    unknown = [f for f in families if f not in SEEDED_FAMILIES]
    if unknown:
        print(f"unknown family '{unknown[0]}'; choose from {', '.join(SEEDED_FAMILIES)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    check_writable_dir(args.out)  # before minutes of weight making, not after
    for family in families:
        mod = _optional_module(SEEDED_MODULES[family])
        if mod is None:
            print(f"{family}: not available in this version, skipped")
            continue
        paths = mod.make(Path(args.out), seed=args.seed, force=args.force)
        for p in paths:
            print(f"{family}: {p}")
        written += paths
    print(f"{len(written)} file(s) in {args.out} (seeded weights, not trained: see weights/README.md)")
    return EXIT_OK


def cmd_parity(args) -> int:
    result = args.parity_module.run(args)
    _print_rows(result, args.json)
    rows = result if isinstance(result, list) else [result]
    return EXIT_OK if all(r.get("ok", True) for r in rows) else EXIT_FAILED


def cmd_convert_weights(args) -> int:
    src, dst = Path(args.input), Path(args.output)
    if src.resolve() == dst.resolve():
        print(f"{dst}: is the input file; choose another output path", file=sys.stderr)
        return EXIT_BAD_INPUT
    if dst.exists() and not args.force:
        print(f"{dst}: exists; pass --force to replace it", file=sys.stderr)
        return EXIT_BAD_INPUT
    ckpt = load_checkpoint(src)
    for family in RULE_FAMILIES:
        mod = _optional_module(RULE_MODULES[family])
        if mod is not None and mod.matches(ckpt):
            arrays, meta = mod.convert_checkpoint(ckpt)
            save_safetensors_atomic(dst, arrays, {"family": family, **meta})
            print(f"{src} -> {dst}: {family}, {len(arrays)} tensors")
            return EXIT_OK
    print(f"{src}: not a checkpoint of a known model family ({', '.join(RULE_FAMILIES)})", file=sys.stderr)
    return EXIT_BAD_INPUT


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser. ``only`` names the one subcommand to complete (its modules are imported); the
    others get their name and help, enough for ``rvclab --help``. None: every subcommand."""

    def complete(name: str) -> bool:
        return only is None or only == name

    p = argparse.ArgumentParser(prog="rvclab", description=_plain(__doc__, "rvclab"), epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("info", help="versions, MLX device, BLAS in use, a matmul timing")
    s.add_argument("--json", action="store_true", help=text.JSON)
    s.add_argument("-n", type=int, default=1024, help=f"matmul size n (n x n), >= 1 {text.DEFAULT}")
    s.set_defaults(fn=cmd_info)

    w = sub.add_parser("weights", help="seeded weights in upstream file formats")
    wsub = w.add_subparsers(dest="weights_command", required=True)
    s = wsub.add_parser("make", help="write seeded checkpoints (not trained) into weights/")
    s.add_argument("--out", default=None, help="folder (default: weights/ or $RVCLAB_WEIGHTS)")
    s.add_argument("--seed", type=int, default=0, help=text.seed("the weights"))
    s.add_argument("--only", default="",
                   help=f"comma-separated subset of {','.join(SEEDED_FAMILIES)} (default: every family)")
    s.add_argument("--force", action="store_true", help="replace existing files")
    s.set_defaults(fn=cmd_weights_make)

    par = sub.add_parser("parity", help="torch vs MLX agreement for one stage")
    psub = par.add_subparsers(dest="parity_name", required=True)
    for name in PARITY_NAMES if complete("parity") else ():
        mod = _optional_module(PARITY_MODULES[name])
        if mod is None:
            continue
        s = psub.add_parser(name, help=_plain(mod.__doc__, name))
        s.add_argument("--json", action="store_true", help=text.JSON)
        mod.add_arguments(s)
        s.set_defaults(fn=cmd_parity, parity_module=mod)

    s = sub.add_parser("convert-weights", help="torch checkpoint -> MLX safetensors")
    s.add_argument("input", help=f"torch checkpoint (.pth, .pt) of one of {', '.join(RULE_FAMILIES)}")
    s.add_argument("output", help="MLX .safetensors file to write")
    s.add_argument("--force", action="store_true", help="replace an existing output")
    s.set_defaults(fn=cmd_convert_weights)

    for name, command in COMMANDS.items():
        s = sub.add_parser(name, help=command["help"])
        if complete(name):
            mod = importlib.import_module(command["module"])
            mod.add_arguments(s)
            if hasattr(mod, "run_cli"):
                s.set_defaults(fn=mod.run_cli)
    return p


def _command(argv: list[str]) -> str:
    """The subcommand ``argv`` names ('' for none): its first argument not starting with '-'."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(only=_command(argv)).parse_args(argv)
    try:
        return args.fn(args)
    except (CheckpointError, AudioError, ConversionError, IndexFileError, UpstreamCheckoutError, OSError) as exc:
        print(f"rvclab: error: {exc}", file=sys.stderr)  # OSError: missing input, unwritable output
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("rvclab: interrupted; finished outputs are complete, a rerun resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
