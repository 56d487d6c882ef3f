"""Synthesizer side of :mod:`rvclab.fixes.registry`: the buggy variants and the measurements.

Every ``make`` function takes the original object (a method, a function or a converter
:class:`~rvclab.convert.Rule`) and returns the buggy one; :func:`rvclab.fixes.registry.reintroduce` swaps it
in. The measurements run the MLX synthesizer as the code stands at call time against the torch
reference on the same seeded voice, inputs and noise.

Bench: the seeded v2 48k voice (weights folder of :mod:`rvclab.paths`), 0.3 s (30 frames) of
inputs derived from a shipped clip (:func:`rvclab.models.synth.parity.clip_inputs`), shared noise.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from types import SimpleNamespace

import mlx.core as mx
import numpy as np

from rvclab import metrics, paths, voices
from rvclab.checkpoints import load_checkpoint
from rvclab.convert import (
    ConversionError,
    apply_rules,
    conv1d_layout,
    conv_transpose1d_layout,
    load_into_mlx,
    mlx_param_shapes,
    transform,
    weight_norm_pair,
)
from rvclab.fixes import rmvpe as fixes_rmvpe
from rvclab.models.synth import parity
from rvclab.models.synth.mlx.synthesizer import build_synthesizer
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.rules import RULES, convert_checkpoint
from rvclab.models.synth.tables import traced_run
from rvclab.runtime import import_mlx

VOICE = "voice_v2_48k.pth"
FRAMES = 30
CLIP = "alsa_front_female_48k"
SEED = 0


# --- buggy variants: MLX modules ------------------------------------------------------------------
def flip_time_axis(original):
    """Flip.__call__ with torch's axis index copied as is: reverses time, not channels."""

    def __call__(self, x, x_mask=None, g=None, reverse=True):
        return x[:, ::-1]  # torch.flip(x, [1]) on (B, C, T) copied onto (B, T, C)

    return __call__


def abs_to_rel_drop_last(original):
    """Absolute -> relative attention weights dropping the last column instead of the first."""
    def convert(x):
        b, h, n, _ = x.shape
        x = mx.pad(x, [(0, 0), (0, 0), (0, 0), (0, n - 1)])
        x = mx.pad(x.reshape(b, h, n * n + n * (n - 1)), [(0, 0), (0, 0), (n, 0)])
        return x.reshape(b, h, n, 2 * n)[:, :, :, :-1]

    return staticmethod(convert)


def flow_pairs_coupling_first(original):
    """ResidualCouplingBlock.__call__ running the pairs in reverse, each as (coupling, Flip)."""

    def __call__(self, x, x_mask, g=None, reverse=True):
        pairs = [self.flows[i:i + 2] for i in range(0, len(self.flows), 2)]
        order = [m for pair in (pairs[::-1] if reverse else pairs) for m in pair]
        for flow in order:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x

    return __call__


def wn_first_slice_everywhere(original):
    """WN.__call__ where every layer takes the first 2*hidden channels of the condition."""
    def __call__(self, x, x_mask, g=None):
        h = self.hidden_channels
        output = mx.zeros_like(x)
        if g is not None:
            g = self.cond_layer(g)
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)
            if g is not None:
                x_in = x_in + g[..., :2 * h]  # slice 0 for every layer
            acts = mx.tanh(x_in[..., :h]) * mx.sigmoid(x_in[..., h:])
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[..., :h]) * x_mask
                output = output + rs[..., h:]
            else:
                output = output + rs
        return output * x_mask

    return __call__


def cumsum_fp16(original):
    """SineGen's phase integration run in float16 (a half-precision model)."""
    def cumsum(x, axis=1):
        return mx.cumsum(x.astype(mx.float16), axis=axis).astype(x.dtype)

    return cumsum


# --- buggy variants: converter rules ----------------------------------------------------------
def layernorm_left_at_init(rule):
    """gamma/beta not recognised: the port keeps its init (gamma 1, beta 0)."""

    def body(src, key, m):
        value = src[key]
        init = np.ones_like(value) if key.endswith("gamma") else np.zeros_like(value)
        return {key: init}, []

    return dataclasses.replace(rule, fn=body)


def rel_tables_as_conv(rule):
    """emb_rel_k / emb_rel_v sent through the conv1d layout (transposed)."""
    return dataclasses.replace(rule, fn=transform(conv1d_layout))


_FLOW = re.compile(r"^flow\.flows\.(\d+)\.")


def flow_compact_index(rule):
    """Torch flow index k written to port index k // 2 (numbering of a couplings-only list)."""

    def body(src, key, m):
        produced, extra = rule.fn(src, key, m)
        renamed = {_FLOW.sub(lambda g: f"flow.flows.{int(g.group(1)) // 2}.", k): v
                   for k, v in produced.items()}
        return renamed, extra

    return dataclasses.replace(rule, fn=body)


def weight_norm_global(rule):
    """Weight-norm fusion with one norm over the whole tensor instead of per output channel."""
    layout = conv_transpose1d_layout if "upsampler" in rule.name else conv1d_layout

    def body(src, key, m):
        g, v = weight_norm_pair(src, m.group("prefix"))
        v64 = src[v].astype(np.float64)
        w = src[g].astype(np.float64) * v64 / np.sqrt(np.sum(v64 * v64))
        return {f"{m.group('prefix')}.weight": layout(w.astype(np.float32))}, [v]

    return dataclasses.replace(rule, fn=body)


# torch layout -> port layout, as axis orders; the buggy rule reshapes instead of transposing
_LAYOUT_AXES = {"conv1d": (0, 2, 1), "conv1d weight norm": (0, 2, 1),
                "upsampler weight norm": (1, 2, 0), "conv2d": (0, 2, 3, 1),
                "conv_transpose2d": (1, 2, 3, 0)}


def conv_reshaped(rule):
    """The conv rule's kernels reshaped to the port's shape instead of transposed."""
    axes = _LAYOUT_AXES[rule.name]
    inverse = tuple(int(i) for i in np.argsort(axes))

    def body(src, key, m):
        produced, extra = rule.fn(src, key, m)
        out = {}
        for k, v in produced.items():
            if v.ndim == len(axes):
                v = np.ascontiguousarray(v.transpose(inverse)).reshape(v.shape)
            out[k] = v
        return out, extra

    return dataclasses.replace(rule, fn=body)


# --- the bench ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _bench(weights_dir: str):
    ckpt = load_checkpoint(voices.default_voice(VOICE))
    tmodel, mmodel = parity.models_from_voice(ckpt)
    config = tmodel.config
    inp = parity.clip_inputs(config, FRAMES, SEED, CLIP)
    noise = make_noise(config, 1, FRAMES, SEED)
    ref = parity.run_torch(tmodel, inp, noise)
    return SimpleNamespace(ckpt=ckpt, config=config, tmodel=tmodel, mmodel=mmodel, inp=inp,
                           noise=noise, ref=ref)


def prepare():
    """Build the bench now (see :func:`rvclab.fixes.registry.reintroduce`)."""
    bench()


def bench():
    """The cached bench for the current weights folder."""
    return _bench(str(paths.weights_dir()))


def frame_errors(ref: np.ndarray, out: np.ndarray, frames: int = FRAMES) -> np.ndarray:
    """|out - ref| maximised within each of ``frames`` equal frames (for plots): (frames,)."""
    err = np.abs(np.asarray(out, np.float64) - np.asarray(ref, np.float64))[0]
    return err.reshape(frames, -1).max(axis=1)


def figures(ref: dict, out: dict) -> dict:
    """Stage figures of an MLX run against the torch reference (both (B, T, C) dicts), and
    per-frame error curves (``curve_*``) for plots."""
    enc_r = np.concatenate([ref["m_p"], ref["logs_p"]], -1)
    enc_o = np.concatenate([out["m_p"], out["logs_p"]], -1)
    return {"curve_textenc": frame_errors(enc_r, enc_o), "curve_wave": frame_errors(ref["wave"], out["wave"]),
            "textenc_corr": metrics.corr(enc_r, enc_o), "textenc_max_abs": metrics.max_abs(enc_r, enc_o),
            "z_corr": metrics.corr(ref["z"], out["z"]), "z_max_abs": metrics.max_abs(ref["z"], out["z"]),
            "z_rms_ratio": metrics.rms_ratio(out["z"], ref["z"]),
            "wave_corr": metrics.corr(ref["wave"], out["wave"]),
            "wave_max_abs": metrics.max_abs(ref["wave"], out["wave"])}


def flow_alone(model) -> np.ndarray:
    """The port's reverse flow on torch's z_p (B, T, C): the flow stage in isolation."""
    mx = import_mlx()
    b = bench()
    mask = (np.arange(FRAMES)[None] < b.inp["lengths"][:, None]).astype(np.float32)[..., None]
    z = model.flow(mx.array(b.ref["z_p"]), mx.array(mask),
                   g=model.emb_g(mx.array(b.inp["sid"]))[:, None], reverse=True)
    mx.eval(z)
    return np.array(z)


def _run(model) -> dict:
    b = bench()
    out = figures(b.ref, parity.run_mlx(model, b.inp, b.noise, True))
    z = flow_alone(model)
    out["flow_max_abs"] = metrics.max_abs(b.ref["z"], z)
    out["curve_flow"] = frame_errors(b.ref["z"], z)
    return out


def measure_synth() -> dict:
    """The cached MLX model (correct weights) run as the code stands."""
    return _run(bench().mmodel)


def _model_from(arrays, strict: bool = True):
    model = build_synthesizer(bench().config)
    if strict:
        load_into_mlx(model, arrays)
        return model
    mx = import_mlx()
    shapes = mlx_param_shapes(model)
    fitting = [(k, mx.array(v)) for k, v in arrays.items() if shapes.get(k) == tuple(v.shape)]
    model.load_weights(fitting, strict=False)  # what is missing keeps its init
    return model


def measure_synth_reconverted() -> dict:
    """Convert the voice with the converter as it stands, load strictly, run."""
    arrays, _ = convert_checkpoint(bench().ckpt)
    return _run(_model_from(arrays))


def _strict_problems() -> list[str]:
    try:
        convert_checkpoint(bench().ckpt)
    except ConversionError as exc:
        return exc.problems
    return []


def measure_conversion() -> dict:
    """How many problems the strict converter reports (0 when the voice converts)."""
    problems = _strict_problems()
    return {"conversion_problems": float(len(problems)), "first_problems": problems[:3]}


def measure_lenient() -> dict:
    """Strict problem count, then the rules run without the shape check and loaded leniently
    (keys that fit are set, the rest keeps its init), as a lenient port would: z and wave."""
    problems = _strict_problems()
    src = {k: v.detach().cpu().numpy() for k, v in bench().ckpt["weight"].items()}
    arrays, _ = apply_rules(src, RULES, None, context="lenient")
    out = {f"{k}_lenient": v for k, v in _run(_model_from(arrays, strict=False)).items()}
    return {"conversion_problems": float(len(problems)), "first_problems": problems[:3], **out}


def trace_table():
    """The layer-by-layer trace (:mod:`rvclab.trace`) of the bench, as the code stands."""
    b = bench()
    return traced_run(b.tmodel, b.mmodel, b.inp, b.noise)[0]


def measure_layouts() -> dict:
    """Synthesizer reconverted (conv1d, conv_transpose1d) plus RMVPE reconverted (conv2d,
    conv_transpose2d), both as the converter stands."""
    return {**measure_synth_reconverted(), **fixes_rmvpe.measure_rmvpe_reconverted()}
