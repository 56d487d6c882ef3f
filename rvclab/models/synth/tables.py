"""Data views of the synthesizer for notebooks 01 and 03: key tables, conversion checks, a traced
parity run and the shared- vs independent-noise comparison. Numbers and rows only (lists of
dicts, numpy arrays); rendering lives in :mod:`rvclab.views.widgets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from mlx.utils import tree_flatten

from rvclab import metrics, tolerances, trace
from rvclab.convert import ConversionError, apply_rules, conv1d_layout, conv_transpose1d_layout
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.noise import Z_P_SCALE, make_noise
from rvclab.models.synth.parity import run_mlx, run_torch
from rvclab.models.synth.rules import RULES, config_of, expected_shapes, matches, metadata_of
from rvclab.models.synth.seeded import FILES, make_one
from rvclab.paths import weights_dir

SEEDED_SEED = 0  # `rvclab weights make` default


# --- voice files ----------------------------------------------------------------------------------
def ensure_voice(preset: str = "v2-48k", out_dir: str | Path | None = None,
                 f0: bool = True) -> Path:
    """Path of the seeded voice .pth for ``preset`` in ``out_dir`` (default: the repository's
    git-ignored weights/), written first if missing (same file and seed as
    ``rvclab weights make``)."""
    out_dir = weights_dir() if out_dir is None else Path(out_dir)
    config = SynthConfig.preset(preset, f0=f0)
    return make_one(out_dir / FILES[(preset, f0)], config, SEEDED_SEED, force=False)


def config_rows(config: SynthConfig) -> list[dict]:
    """(field, value) rows of a SynthConfig plus its derived values (phone_dim, hop, name)."""
    rows = [{"field": f.name, "value": getattr(config, f.name)} for f in fields(config)]
    rows += [{"field": f"{k} (derived)", "value": getattr(config, k)}
             for k in ("phone_dim", "hop_length", "name")]
    return rows


def _module_of(key: str) -> str:
    return key.split(".", 1)[0]


def key_table(weight: Mapping) -> list[dict]:
    """One row per tensor: key, module (top level), shape, dtype, count (elements)."""
    return [{"key": k, "module": _module_of(k), "shape": tuple(v.shape),
             "dtype": str(v.dtype).replace("torch.", ""), "count": int(np.prod(v.shape))}
            for k, v in weight.items()]


def key_summary(weight: Mapping) -> list[dict]:
    """Per top-level module: tensors, parameters (elements), dtypes."""
    out: dict[str, dict] = {}
    for row in key_table(weight):
        s = out.setdefault(row["module"], {"module": row["module"], "tensors": 0, "params": 0,
                                           "dtypes": set()})
        s["tensors"] += 1
        s["params"] += row["count"]
        s["dtypes"].add(row["dtype"])
    return [{**s, "dtypes": ",".join(sorted(s["dtypes"]))} for s in out.values()]


# --- conversion with its report and a tensor-by-tensor check --------------------------------------
def source_arrays(ckpt: Mapping) -> dict[str, np.ndarray]:
    """The checkpoint's ``weight`` dict as numpy arrays (dtype kept)."""
    return {str(k): (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for k, v in ckpt["weight"].items()}


def convert_with_report(ckpt: Mapping):
    """As :func:`rvclab.models.synth.rules.convert_checkpoint`, also returning the engine's
    report: (arrays, metadata, report). Raises ConversionError naming keys on a bad file."""
    if not matches(ckpt):
        raise ConversionError(["not an RVC voice checkpoint (needs a 'weight' state dict and a "
                               "'config' list)"])
    config = config_of(ckpt)
    src = source_arrays(ckpt)
    arrays, report = apply_rules(src, RULES, expected_shapes(config), context=config.name)
    dtypes = ",".join(sorted({str(a.dtype) for a in src.values()}))
    metadata = metadata_of(config, source_dtypes=dtypes)
    return arrays, metadata, report


def rule_counts(report) -> list[dict]:
    """Rows (rule, targets, source keys) from a ConversionReport."""
    rows: dict[str, dict] = {}
    for r in report.rows:
        row = rows.setdefault(r["rule"], {"rule": r["rule"], "targets": 0, "source keys": 0})
        row["targets"] += 1
        row["source keys"] += len(r["source"])
    return list(rows.values())


def _layout_of(rule: str):
    if "upsampler" in rule:
        return conv_transpose1d_layout
    if "conv1d" in rule:
        return conv1d_layout
    return lambda w: w


def verify_tensors(ckpt: Mapping, arrays: Mapping[str, np.ndarray], report) -> list[dict]:
    """Check every converted tensor against its source; one row per target: key, rule, kind,
    exact, rel, rel_fp32.

    Copies and layout moves must be bit-exact (``kind`` "copy"). Fused weight norm (``kind``
    "fused") is compared with torch's own fusion ``torch._weight_norm`` run in float64 on the
    (fp32-upcast) g and v and rounded to float32: ``rel`` = max |ours - torch| / max |torch|.
    ``rel_fp32`` is the same against torch's fusion run in float32, whose norm accumulates
    rounding error over long rows (docs/synthesizer.md)."""
    src = source_arrays(ckpt)
    rows = []
    for r in report.rows:
        target, sources, layout = r["target"], r["source"], _layout_of(r["rule"])
        got = np.asarray(arrays[target])
        if len(sources) == 1:
            want = layout(src[sources[0]].astype(np.float32))
            exact = got.shape == want.shape and np.array_equal(got, want)
            rows.append({"key": target, "rule": r["rule"], "kind": "copy", "exact": exact,
                         "rel": 0.0 if exact else float("inf"), "rel_fp32": None})
            continue
        g_key = next(k for k in sources if k.endswith(("weight_g", "original0")))
        v_key = next(k for k in sources if k != g_key)
        g = torch.from_numpy(src[g_key].astype(np.float32))
        v = torch.from_numpy(src[v_key].astype(np.float32))
        want = layout(torch._weight_norm(v.double(), g.double(), 0).float().numpy())
        want32 = layout(torch._weight_norm(v, g, 0).numpy())
        if got.shape != want.shape:
            rows.append({"key": target, "rule": r["rule"], "kind": "fused", "exact": False,
                         "rel": float("inf"), "rel_fp32": float("inf")})
            continue
        scale = np.abs(want).max()
        rows.append({"key": target, "rule": r["rule"], "kind": "fused",
                     "exact": bool(np.array_equal(got, want)),
                     "rel": float(np.abs(got - want).max() / scale),
                     "rel_fp32": float(np.abs(got - want32).max() / scale)})
    return rows


def verify_summary(rows: list[dict]) -> list[dict]:
    """Per kind: tensors, bit-exact count, max relative error, pass against the tolerance."""
    out = []
    for kind, tol in (("copy", tolerances.COPY_EXACT), ("fused", tolerances.WEIGHT_NORM_FUSION_REL)):
        sel = [r for r in rows if r["kind"] == kind]
        worst = max((r["rel"] for r in sel), default=0.0)
        worst32 = max((r["rel_fp32"] for r in sel if r["rel_fp32"] is not None), default=None)
        out.append({"kind": kind, "tensors": len(sel), "bit-exact": sum(r["exact"] for r in sel),
                    "max_rel": worst, "max_rel_fp32": worst32, "tolerance": tol,
                    "ok": worst <= tol})
    return out


def broken(ckpt: Mapping, drop: str | None = None, reshape: tuple[str, tuple] | None = None):
    """A copy of ``ckpt`` with one key removed (``drop``) or one tensor replaced by zeros of
    another shape (``reshape=(key, shape)``), for showing the loaders' errors."""
    weight = dict(ckpt["weight"])
    if drop is not None:
        del weight[drop]
    if reshape is not None:
        key, shape = reshape
        weight[key] = torch.zeros(shape, dtype=weight[key].dtype)
    return {**ckpt, "weight": weight}


def error_lines(fn, *args, n: int = 3) -> list[str]:
    """Call ``fn(*args)``; return the first ``n`` lines of the error it raises (or raise)."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001  (shown, not handled)
        text = f"{type(exc).__name__}: {exc}"
        return [line.strip() for line in text.splitlines()][:n]
    raise AssertionError(f"{getattr(fn, '__name__', fn)} accepted the input")


def mlx_matches_arrays(model, arrays: Mapping[str, np.ndarray]) -> bool:
    """Every parameter of an MLX model equals ``arrays`` bit for bit (same key set)."""
    params = dict(tree_flatten(model.parameters()))
    return set(params) == set(arrays) and all(
        np.array_equal(np.array(params[k]), arrays[k]) for k in arrays)


# --- parity ---------------------------------------------------------------------------------------
STAGES = ("enc_p", "flow", "dec")


def traced_run(tmodel, mmodel, inp: dict, noise: dict):
    """Trace both models on the same inputs and noise: (TraceTable, torch outputs, MLX outputs),
    outputs as :func:`rvclab.models.synth.parity.run_torch` / ``run_mlx`` give them (B, T, C)."""
    outs: dict = {}

    def t_fn():
        outs["torch"] = run_torch(tmodel, inp, noise)

    def m_fn():
        outs["mlx"] = run_mlx(mmodel, inp, noise, bool(tmodel.config.f0))

    table = trace.trace(tmodel, mmodel, t_fn, m_fn)
    return table, outs["torch"], outs["mlx"]


def stage_summary(table, tol: float | None = None) -> list[dict]:
    """Per stage (enc_p, flow, dec): layers traced, all within tolerance, worst rel error."""
    tol = tolerances.TRACE_REL_MAX_ABS if tol is None else tol
    rows = []
    for stage in STAGES:
        sel = [r for r in table if r["path"] == stage or r["path"].startswith(stage + ".")]
        worst = max((r["rel"] for r in sel), default=0.0)
        rows.append({"stage": stage, "layers": len(sel), "all_ok": all(r["ok"] for r in sel),
                     "worst_rel": worst, "below_tol": worst <= tol})
    return rows


def wave_checks(ref: dict, out: dict) -> dict:
    """Waveform and stage goals of issue 4: each metric and whether it meets its tolerance."""
    textenc = max(metrics.max_abs(ref[k], out[k]) for k in ("m_p", "logs_p"))
    corr = metrics.corr(ref["wave"], out["wave"])
    mabs = metrics.max_abs(ref["wave"], out["wave"])
    return {"textenc_max_abs": textenc, "textenc_ok": textenc <= tolerances.SYNTH_TEXTENC_MAX_ABS,
            "wave_corr": corr, "wave_corr_ok": corr >= tolerances.SYNTH_WAVE_CORR_MIN,
            "wave_max_abs": mabs, "wave_max_abs_ok": mabs <= tolerances.SYNTH_WAVE_MAX_ABS}


def predicted_zp_corr(m_p: np.ndarray, logs_p: np.ndarray, scale: float = Z_P_SCALE) -> float:
    """Expected correlation of two z_p = m + exp(logs)*scale*eps draws with independent eps:
    Var(m) / (Var(m) + E[(exp(logs)*scale)^2]) over all elements."""
    m = np.asarray(m_p, np.float64)
    s2 = np.mean((np.exp(np.asarray(logs_p, np.float64)) * scale) ** 2)
    return float(m.var() / (m.var() + s2))


def noise_study(mmodel, inp: dict, ref: dict, out_shared: dict, config: SynthConfig,
                seed: int = 0) -> tuple[list[dict], dict]:
    """Shared vs independent noise. ``ref``/``out_shared``: torch and MLX outputs on the shared
    noise ``make_noise(seed)``; the independent run gives MLX ``make_noise(seed + 1)``, as if each
    backend drew its own. Returns (rows (stage, shared, independent), independent MLX outputs);
    the z_p row also carries the closed-form prediction."""
    frames = inp["phone"].shape[1]
    other = run_mlx(mmodel, inp, make_noise(config, 1, frames, seed + 1), bool(config.f0))
    rows = []
    for key, label in (("z_p", "z_p (prior sample)"), ("z", "z (flow output)"),
                       ("wave", "waveform")):
        rows.append({"stage": label, "shared": metrics.corr(ref[key], out_shared[key]),
                     "independent": metrics.corr(ref[key], other[key])})
    rows[0]["predicted"] = predicted_zp_corr(ref["m_p"], ref["logs_p"])
    return rows, other
