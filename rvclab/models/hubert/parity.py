"""HuBERT / ContentVec parity: torch reference vs MLX port, per frame, both formats, v1 and v2.

``rvclab parity hubert [--json] [--weights DIR] [--small]`` compares the content features of
every shipped clip and of lengths from 0.5 s to 30 s (odd sample counts included) and reports,
per input x format x version: ``cos_min``, ``cos_mean`` (per-frame cosine), ``max_abs_rel``
(max abs difference / RMS of the torch features), ``frames_torch``, ``frames_mlx``, ``ok`` and
``guard_ok`` (every goal / guard of :data:`rvclab.tolerances.HUBERT_CHECKS` met).

Weights: ``DIR/hubert_base.pt`` (fairseq) and ``DIR/contentvec_base/`` (transformers) as
``rvclab weights make`` writes them; when absent, seeded ones are made in a temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from rvclab import help_text as text
from rvclab import metrics, tolerances
from rvclab.audio import SAMPLE_RATE_16K, data_clips, load_audio
from rvclab.models.hubert import io as hubert_io
from rvclab.models.hubert import seeded
from rvclab.models.hubert.config import V1_LAYER, HubertConfig
from rvclab.paths import weights_dir
from rvclab.runtime import import_mlx

FORMATS = {"fairseq": "hubert_base.pt", "transformers": "contentvec_base"}
VERSIONS = ("v1", "v2")
# 0.5 s to 30 s @ 16 kHz; odd counts and counts that leave a remainder after the 320 hop
LENGTHS = (8001, 16017, 40003, 160000, 480007)


def add_arguments(parser) -> None:
    parser.add_argument("--weights", default=None,
                        help="folder with hubert_base.pt and contentvec_base/ (default: weights/, "
                             "else seeded ones in a temp folder)")
    parser.add_argument("--small", action="store_true", help="small seeded config (fast check)")
    parser.add_argument("--seed", type=int, default=0, help=text.seed("generated weights"))
    parser.add_argument("--lengths", default=",".join(str(n) for n in LENGTHS),
                        help=f"comma-separated sample counts @ 16 kHz ('' for none) {text.DEFAULT}")
    parser.add_argument("--no-clips", action="store_true", help="skip the shipped data clips")
    parser.add_argument("--formats", default="fairseq,transformers",
                        help=f"comma-separated checkpoint formats, of fairseq, transformers {text.DEFAULT}")


def test_inputs(lengths=LENGTHS, clips: bool = True) -> list[tuple[str, np.ndarray]]:
    """(name, mono float32 @ 16 kHz) for each shipped clip and each requested length.

    Length inputs are the clips concatenated (speech, not noise) and cut to the sample count."""
    audio = [(p.stem, load_audio(p, SAMPLE_RATE_16K).astype(np.float32)) for p in data_clips()]
    out = list(audio) if clips else []
    if lengths:
        speech = np.concatenate([a for _, a in audio])
        reps = -(-max(lengths) // len(speech))
        speech = np.tile(speech, reps)
        out += [(f"{n / SAMPLE_RATE_16K:g}s_{n}", speech[:n].copy()) for n in lengths]
    return out


def compare(ref: np.ndarray, test: np.ndarray) -> dict:
    """Per-frame agreement of (T, C) or (B, T, C) features (torch first)."""
    row = {"frames_torch": int(ref.shape[-2]), "frames_mlx": int(test.shape[-2])}
    if ref.shape != test.shape:
        row.update(cos_min=float("nan"), cos_mean=float("nan"), max_abs_rel=float("inf"), ok=False,
                   guard_ok=False)
        return row
    cos = metrics.cosine_per_frame(ref, test, axis=-1)
    rel = metrics.max_abs(ref, test) / max(metrics.rms(ref), 1e-12)  # NaN stays NaN
    row.update(cos_min=metrics.worst_cosine(cos), cos_mean=float(np.mean(cos)) if cos.size else float("nan"),
               max_abs_rel=float(rel))
    row.update(tolerances.verdicts(row, tolerances.HUBERT_CHECKS))
    return row


def features(models, wav: np.ndarray, version: str) -> tuple[np.ndarray, np.ndarray]:
    """(torch, mlx) features (T, C) of one mono wave for ``models = (torch_model, mlx_model)``."""
    import torch

    mx = import_mlx()
    torch_model, mlx_model = models
    with torch.no_grad():
        ref = torch_model.extract_features(torch.from_numpy(wav), version)[0].numpy()
    out = mlx_model.extract_features(mx.array(wav), version)[0]
    mx.eval(out)
    return ref, np.array(out)


def _weights_dir(args) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    if args.weights:
        return Path(args.weights), None
    default = weights_dir()
    if not args.small and all((default / name).exists() for name in FORMATS.values()):
        return default, None
    tmp = tempfile.TemporaryDirectory(prefix="rvclab-hubert-")
    config = HubertConfig.small() if args.small else HubertConfig()
    seeded.make(Path(tmp.name), seed=args.seed, force=False, config=config)
    return Path(tmp.name), tmp


def run(args) -> list[dict]:
    folder, tmp = _weights_dir(args)
    lengths = tuple(int(n) for n in str(args.lengths).split(",") if n.strip())
    inputs = test_inputs(lengths, clips=not args.no_clips)
    rows = []
    try:
        for fmt in [f for f in args.formats.split(",") if f]:
            weights = hubert_io.read_hubert(folder / FORMATS[fmt])
            models = (hubert_io.torch_model(weights), hubert_io.mlx_model(weights))
            for name, wav in inputs:
                for version in VERSIONS:
                    ref, test = features(models, wav, version)
                    row = {"input": name, "samples": int(len(wav)), "format": fmt,
                           "version": version, "dim": int(ref.shape[-1])}
                    row.update(compare(ref, test))
                    rows.append(row)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


# --- per-stage table (for notebook 04; the generic tracer can replace it) ----------------------


def torch_stages(model, wav: np.ndarray) -> dict[str, np.ndarray]:
    """Every stage's output (T, C) of the torch reference for one mono wave, in order."""
    import torch

    out = {}
    with torch.no_grad():
        x = torch.from_numpy(wav)[None, None]
        for i, block in enumerate(model.feature_extractor.conv_layers):
            x = block(x)
            out[f"feature_extractor.conv_layers.{i}"] = x[0].T.numpy()
        x = model.layer_norm(x.transpose(1, 2))
        out["layer_norm"] = x[0].numpy()
        x = model.post_extract_proj(x)
        out["post_extract_proj"] = x[0].numpy()
        pos = model.encoder.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        out["encoder.pos_conv"] = pos[0].numpy()
        x = model.encoder.layer_norm(x + pos)
        out["encoder.layer_norm"] = x[0].numpy()
        for i, layer in enumerate(model.encoder.layers):
            x = layer(x)
            out[f"encoder.layers.{i}"] = x[0].numpy()
            if i + 1 == V1_LAYER:
                out["final_proj (v1, layer 9)"] = model.final_proj(x)[0].numpy()
    return out


def mlx_stages(model, wav: np.ndarray) -> dict[str, np.ndarray]:
    """The same stages for the MLX port (same names, (T, C) numpy)."""
    mx = import_mlx()
    out = {}

    def keep(name, x):
        mx.eval(x)
        out[name] = np.array(x[0])

    x = mx.array(wav)[None, :, None]
    for i, block in enumerate(model.feature_extractor.conv_layers):
        for layer in block:
            x = layer(x)
        keep(f"feature_extractor.conv_layers.{i}", x)
    x = model.layer_norm(x)
    keep("layer_norm", x)
    x = model.post_extract_proj(x)
    keep("post_extract_proj", x)
    pos = x
    for layer in model.encoder.pos_conv:
        pos = layer(pos)
    keep("encoder.pos_conv", pos)
    x = model.encoder.layer_norm(x + pos)
    keep("encoder.layer_norm", x)
    for i, layer in enumerate(model.encoder.layers):
        x = layer(x)
        keep(f"encoder.layers.{i}", x)
        if i + 1 == V1_LAYER:
            keep("final_proj (v1, layer 9)", model.final_proj(x))
    return out


def stage_table(torch_model, mlx_model, wav: np.ndarray) -> list[dict]:
    """Rows (stage, shape, rms, max_abs, max_abs_rel, cos_min, ok) down the whole network, both
    backends run end to end on the same wave (errors accumulate as in real use)."""
    ref, test = torch_stages(torch_model, wav), mlx_stages(mlx_model, wav)
    rows = []
    for name, a in ref.items():
        b = test[name]
        row = {"stage": name, "shape": tuple(a.shape), "rms": metrics.rms(a),
               "max_abs": metrics.max_abs(a, b)}
        row["max_abs_rel"] = row["max_abs"] / max(row["rms"], 1e-12)
        row["cos_min"] = float(metrics.cosine_per_frame(a, b, axis=-1).min())
        row["ok"] = row["max_abs_rel"] <= tolerances.TRACE_REL_MAX_ABS
        rows.append(row)
    return rows
