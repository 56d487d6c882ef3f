"""``rvclab index build|info``: the FAISS index from the command line.

``rvclab index build --features a.npy [b.npy ...] --name NAME --version v2 --out dir/``
builds from precomputed features (each (N, 256|768), rows concatenated in the order given, as
the WebUI concatenates its sorted feature files). ``--audio folder/`` extracts the features
first with a HuBERT/ContentVec checkpoint (``--hubert``, default weights/hubert_base.pt).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rvclab import help_text as text
from rvclab.audio import AUDIO_EXTENSIONS, SAMPLE_RATE_16K, load_audio
from rvclab.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from rvclab.models.hubert.io import load_hubert
from rvclab.paths import weights_dir
from rvclab.pipeline.index import FEATURE_DIMS, IndexFileError, build_index_file, describe

HUBERT_FILE = "hubert_base.pt"  # in weights_dir(), the default of --hubert


def add_arguments(p) -> None:
    """``index build`` and ``index info`` under the ``index`` parser ``p``."""
    isub = p.add_subparsers(dest="index_command", required=True)
    b = isub.add_parser("build", help="build an RVC-compatible index from features or audio")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--features", nargs="+", help="(N, D) float .npy feature files")
    src.add_argument("--audio", help="folder of audio clips (features via HuBERT)")
    b.add_argument("--hubert", default=str(weights_dir() / HUBERT_FILE),
                   help=f"HuBERT/ContentVec checkpoint, with --audio {text.DEFAULT}")
    b.add_argument("--name", required=True, help="model name used in the file name")
    b.add_argument("--version", default="v2", choices=tuple(FEATURE_DIMS),
                   help=f"voice version: {', '.join(f'{v} ({d}-d features)' for v, d in FEATURE_DIMS.items())} "
                        + text.DEFAULT)
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--seed", type=int, default=0, help=text.seed("the row shuffle and k-means"))
    b.add_argument("--force", action="store_true", help="replace an existing index file")
    b.set_defaults(fn=cmd_index_build)
    i = isub.add_parser("info", help="dimension, vector count and lists of an index file")
    i.add_argument("path", help="FAISS .index file")
    i.set_defaults(fn=cmd_index_info)


def load_feature_files(paths, version: str) -> np.ndarray:
    """Concatenate (N_i, D) .npy files; errors name the file and expected/found shape."""
    dim = FEATURE_DIMS[version]
    parts = []
    for path in paths:
        if Path(path).is_file():
            with open(path, "rb") as fh:
                head = fh.read(6)
            if head and head != b"\x93NUMPY":  # numpy would blame pickled data for any other file
                raise IndexFileError(f"{path}: not a .npy array file (it starts with {head!r})")
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError) as exc:  # EOFError: an empty file
            raise IndexFileError(f"{path}: not a readable .npy array ({exc})") from None
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise IndexFileError(
                f"{path}: expected shape (N, {dim}) for {version}, found {arr.shape}"
            )
        parts.append(arr.astype(np.float32))
    return np.concatenate(parts, axis=0)


def features_from_audio(folder: str, hubert_path: str, version: str) -> np.ndarray:
    """HuBERT features (N, D) of every clip in ``folder`` (sorted by name), at 50 fps."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    if not Path(hubert_path).exists():
        raise FileNotFoundError(
            f"{hubert_path}: HuBERT checkpoint not found (see weights/README.md)"
        )
    try:
        import torch
    except ImportError as exc:
        raise RuntimeError(
            f"--audio needs the HuBERT reference (rvclab.models.hubert.io, torch): {exc}. "
            "Extract features yourself and pass them with --features."
        ) from None
    model = load_hubert(hubert_path, backend="torch")
    parts = []
    with torch.no_grad():
        for path in files:
            wav = load_audio(path, SAMPLE_RATE_16K)
            feats = model.extract_features(
                torch.from_numpy(np.asarray(wav, np.float32))[None], version=version
            )
            parts.append(feats[0].numpy())
            print(f"{path.name}: {parts[-1].shape[0]} frames")
    return np.concatenate(parts, axis=0)


def cmd_index_build(args) -> int:
    try:
        if args.features:
            feats = load_feature_files(args.features, args.version)
        else:
            feats = features_from_audio(args.audio, args.hubert, args.version)
        path, report = build_index_file(
            feats, args.out, args.name, args.version, seed=args.seed, force=args.force
        )
    except (IndexFileError, ValueError, RuntimeError) as exc:
        print(f"rvclab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    reduced = f", reduced by {report.reduced_by}" if report.reduced_by else ""
    print(
        f"{path}: {report.n_indexed} vectors from {report.n_input}{reduced}, "
        f"IVF{report.n_ivf}, nprobe 1"
    )
    return EXIT_OK


def cmd_index_info(args) -> int:
    try:
        info = describe(args.path)
    except IndexFileError as exc:
        print(f"rvclab: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for key, value in info.items():
        print(f"{key:<7} {value}")
    return EXIT_OK
