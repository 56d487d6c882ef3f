"""Synthesizer parity: torch reference vs MLX port on the same weights, inputs and noise.

Inputs (:func:`clip_inputs`) come from a shipped speech clip: phone (1, T, 256|768) @ 100 fps and
F0 (1, T) Hz, as docs/synthesizer.md describes. Weights: a seeded voice, a user's ``.pth`` or the
constructor init, loaded by :mod:`rvclab.models.synth.io` (torch) and the converter (MLX).
Noise: ``shared`` (:func:`rvclab.models.synth.noise.make_noise`) or ``independent``.
"""

from __future__ import annotations

import copy
import time

import librosa
import numpy as np
import torch

from rvclab import help_text as text
from rvclab import metrics
from rvclab import tolerances as tol
from rvclab.audio import HOP_16K, SAMPLE_RATE_16K, data_clips, load_audio, log_mel
from rvclab.audio import clip as find_clip
from rvclab.checkpoints import load_checkpoint
from rvclab.convert import load_into_mlx
from rvclab.models.synth.config import DEFAULT_PHASE_FORM, F0_MAX, F0_MIN, SynthConfig, coarse_pitch
from rvclab.models.synth.io import model_from_weights, prepare_weights, voice_checkpoint
from rvclab.models.synth.mlx.synthesizer import build_synthesizer as build_mlx
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.rules import config_of, convert_checkpoint
from rvclab.models.synth.seeded import seeded_model
from rvclab.models.synth.torch.synthesizer import build_synthesizer
from rvclab.runtime import import_mlx

CONFIG_NAMES = [f"{n}{s}" for s in ("", "-nof0") for n in SynthConfig.presets()]
N_MELS = 80


def add_arguments(parser) -> None:
    parser.add_argument("--config", default="v2-48k",
                        help=f"'all' or one of {', '.join(CONFIG_NAMES)} {text.DEFAULT}")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help=f"input length in seconds (100 fps), > 0 {text.DEFAULT}")
    parser.add_argument("--seed", type=int, default=0, help=text.seed("the weights, input projection and noise"))
    parser.add_argument("--noise", choices=("shared", "independent"), default="shared",
                        help=f"noise: shared (the same arrays on both sides) or independent draws {text.DEFAULT}")
    parser.add_argument("--clip", default=None, help="data clip name or prefix (default: first)")
    parser.add_argument("--small", action="store_true",
                        help="reduced channel counts (same hop), for quick checks")
    parser.add_argument("--weights", choices=("seeded", "init"), default="seeded",
                        help=f"seeded voice (fp16, as files are saved) or constructor init {text.DEFAULT}")
    parser.add_argument("--voice", default=None,
                        help="a voice .pth to check instead (its config; --config ignored)")


# --- inputs ---------------------------------------------------------------------------------------
def clip_inputs(config: SynthConfig, frames: int, seed: int = 0, clip=None) -> dict:
    """Deterministic synthesizer inputs from a shipped clip: phone (1, T, D) float32,
    lengths (1,), pitch (1, T) int64, f0 (1, T) float32 Hz, sid (1,)."""
    path = find_clip(clip) if clip else data_clips()[0]
    audio = load_audio(path, SAMPLE_RATE_16K)
    need = frames * HOP_16K
    if audio.size < need:  # tile short clips
        audio = np.tile(audio, int(np.ceil(need / max(audio.size, 1))))
    audio = audio[:need].astype(np.float32)
    mel = log_mel(audio, SAMPLE_RATE_16K, n_mels=N_MELS, hop=HOP_16K)[:, :frames]  # (80, T)
    mel = (mel - mel.mean(axis=1, keepdims=True)) / (mel.std(axis=1, keepdims=True) + 1e-5)
    proj = np.random.default_rng(seed).standard_normal((N_MELS, config.phone_dim))
    phone = (mel.T @ proj / np.sqrt(N_MELS)).astype(np.float32)[None]  # (1, T, D)
    f0 = librosa.yin(audio, fmin=F0_MIN, fmax=F0_MAX, sr=SAMPLE_RATE_16K, frame_length=1024,
                     hop_length=HOP_16K)[:frames]
    rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=HOP_16K)[0][:frames]
    f0 = np.where(rms > 0.05 * rms.max(), f0, 0.0).astype(np.float32)
    f0 = np.pad(f0, (0, frames - f0.size))[None]
    return {"phone": phone, "lengths": np.array([frames], np.int64), "pitch": coarse_pitch(f0),
            "f0": f0, "sid": np.array([0], np.int64), "clip": path.name}


# --- models ---------------------------------------------------------------------------------------
def torch_voice(config: SynthConfig, seed: int = 0, weights: str = "seeded") -> dict:
    """A voice checkpoint dict, as upstream saves one (fp16 weights, no enc_q), for ``config``.

    ``weights='seeded'``: :func:`rvclab.models.synth.seeded.seeded_model` (every parameter
    exercised, output level calibrated); ``'init'``: the reference's constructor init under
    ``torch.manual_seed(seed)`` with the zero coupling ``post`` convs filled (fp32, faster)."""
    if weights == "seeded":
        return voice_checkpoint(seeded_model(config, seed), info=f"rvclab seeded {seed}")
    torch.manual_seed(seed)
    model = build_synthesizer(config)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():  # coupling post convs start at zero upstream
            if ".post." in name and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return voice_checkpoint(model, info=f"rvclab init {seed}", half=False)


def models_from_voice(ckpt: dict):
    """(torch model, MLX model) from one voice checkpoint dict, each through its own loader:
    the reference's (:mod:`rvclab.models.synth.io`) and the converter (:mod:`rvclab.models.synth.rules`)."""
    config = config_of(ckpt)
    tmodel = model_from_weights(config, prepare_weights(ckpt["weight"])).requires_grad_(False)  # no autograd graph
    arrays, _ = convert_checkpoint(ckpt)
    mmodel = build_mlx(config)
    load_into_mlx(mmodel, arrays)
    return tmodel, mmodel


def run_torch(model, inp, noise, phase_form: str = DEFAULT_PHASE_FORM):
    """The torch model on ``inp`` (clip_inputs) and ``noise``: wave (B, T*hop) and the
    stages m_p, logs_p, z_p, z as (B, T, C) numpy. ``phase_form``: the NSF source's phase."""
    f0 = model.config.f0
    with torch.no_grad():
        o, _, (z, z_p, m_p, logs_p) = model.infer(
            torch.from_numpy(inp["phone"]), torch.from_numpy(inp["lengths"]),
            torch.from_numpy(inp["pitch"]) if f0 else None,
            torch.from_numpy(inp["f0"]) if f0 else None, torch.from_numpy(inp["sid"]), noise,
            phase_form=phase_form)
    t = lambda a: a.numpy().transpose(0, 2, 1)  # noqa: E731  (B, C, T) -> (B, T, C)
    return {"wave": o.numpy()[:, 0], "m_p": t(m_p), "logs_p": t(logs_p), "z_p": t(z_p),
            "z": t(z)}


def run_mlx(model, inp, noise, f0: bool, phase_form: str = DEFAULT_PHASE_FORM):
    """As :func:`run_torch` for the MLX model (``noise`` None: drawn by the port)."""
    mx = import_mlx()
    o, _, (z, z_p, m_p, logs_p) = model.infer(
        mx.array(inp["phone"]), mx.array(inp["lengths"]),
        mx.array(inp["pitch"]) if f0 else None, mx.array(inp["f0"]) if f0 else None,
        mx.array(inp["sid"]), noise, phase_form=phase_form)
    mx.eval(o, z, z_p, m_p, logs_p)
    return {"wave": np.array(o)[..., 0], "m_p": np.array(m_p), "logs_p": np.array(logs_p),
            "z_p": np.array(z_p), "z": np.array(z)}


# --- the check ------------------------------------------------------------------------------------
def compare(config: SynthConfig | None, seconds: float = 1.0, seed: int = 0,
            noise_mode: str = "shared", clip=None, ckpt=None, weights: str = "seeded") -> dict:
    """One parity row for ``config``: metrics, verdicts (``ok``: every goal of
    :data:`rvclab.tolerances.SYNTH_CHECKS`; ``guard_ok``: every guard) and timings."""
    mx = import_mlx()
    frames = max(int(round(seconds * 100)), 1)
    ckpt = ckpt if ckpt is not None else torch_voice(config, seed, weights)
    tmodel, mmodel = models_from_voice(ckpt)
    config = tmodel.config
    inp = clip_inputs(config, frames, seed, clip)
    noise = make_noise(config, 1, frames, seed)
    t0 = time.perf_counter()
    ref = run_torch(tmodel, inp, noise)
    t1 = time.perf_counter()
    if noise_mode == "independent":
        mx.random.seed(seed + 12345)
    out = run_mlx(mmodel, inp, noise if noise_mode == "shared" else None, bool(config.f0))
    t2 = time.perf_counter()
    textenc = max(metrics.max_abs(ref[k], out[k]) for k in ("m_p", "logs_p"))
    flow_alone = flow_stage_max_abs(tmodel, mmodel, ref["z_p"], inp)
    floor, mlx_vs_exact = textenc_fp64_errors(tmodel, inp, ref, out)
    row = {
        "config": config.name, "noise": noise_mode, "frames": frames,
        "samples": int(ref["wave"].size), "clip": inp["clip"],
        "textenc_max_abs": textenc,
        # the reference's own float32 error (torch fp32 vs torch fp64, same input): no float32
        # port can be expected to agree with torch much better than this
        "textenc_ref_fp32_error": floor,
        # the port's own distance from that float64 result, by the same measure
        "textenc_mlx_fp64_error": mlx_vs_exact,
        "z_p_max_abs": metrics.max_abs(ref["z_p"], out["z_p"]),
        "flow_max_abs": flow_alone,  # the flow stage on the same z_p
        "z_max_abs": metrics.max_abs(ref["z"], out["z"]),  # end to end (enc_p error carried)
        "z_corr": metrics.corr(ref["z"], out["z"]),
        "wave_corr": metrics.corr(ref["wave"], out["wave"]),
        "wave_max_abs": metrics.max_abs(ref["wave"], out["wave"]),
        "wave_rmse": metrics.rmse(ref["wave"], out["wave"]),
        "wave_rms": metrics.rms(ref["wave"]),
        "torch_s": t1 - t0, "mlx_s": t2 - t1,
    }
    row.update(tol.verdicts(row, tol.SYNTH_CHECKS))  # ok: every goal; guard_ok: every guard
    return row


def textenc_fp64_errors(tmodel, inp: dict, ref: dict, out: dict) -> tuple[float, float]:
    """Max abs difference from the float64 TextEncoder output (the reference run in float64) of
    torch's float32 output ``ref`` and of the MLX output ``out``: (torch fp32, MLX fp32)."""
    enc64 = copy.deepcopy(tmodel.enc_p).double()
    with torch.no_grad():
        m, logs, _ = enc64(torch.from_numpy(inp["phone"]).double(),
                           torch.from_numpy(inp["pitch"]) if tmodel.config.f0 else None,
                           torch.from_numpy(inp["lengths"]))
    t = lambda a: a.numpy().transpose(0, 2, 1)  # noqa: E731
    exact = {"m_p": t(m), "logs_p": t(logs)}
    return tuple(max(metrics.max_abs(run[k], exact[k]) for k in exact) for run in (ref, out))


def flow_stage_max_abs(tmodel, mmodel, z_p: np.ndarray, inp: dict) -> float:
    """Max abs difference of the reverse flow alone, both backends fed torch's z_p (B, T, C)."""
    mx = import_mlx()
    sid, lengths = inp["sid"], inp["lengths"]
    mask = (np.arange(z_p.shape[1])[None] < lengths[:, None]).astype(np.float32)
    with torch.no_grad():
        g = tmodel.emb_g(torch.from_numpy(sid)).unsqueeze(-1)
        zt = tmodel.flow(torch.from_numpy(z_p.transpose(0, 2, 1).copy()),
                         torch.from_numpy(mask[:, None]), g=g, reverse=True)
    zm = mmodel.flow(mx.array(z_p), mx.array(mask[..., None]),
                     g=mmodel.emb_g(mx.array(sid))[:, None], reverse=True)
    return metrics.max_abs(zt.numpy().transpose(0, 2, 1), np.array(zm))


def config_for(name: str, small: bool = False) -> SynthConfig:
    config = SynthConfig.preset(name)
    return config.small() if small else config


def run(args) -> dict | list[dict]:
    weights = getattr(args, "weights", "seeded")
    if getattr(args, "voice", None):
        return compare(None, args.seconds, args.seed, args.noise, getattr(args, "clip", None),
                       ckpt=load_checkpoint(args.voice))
    names = CONFIG_NAMES if args.config == "all" else [args.config]
    rows = [compare(config_for(n, getattr(args, "small", False)), args.seconds, args.seed,
                    args.noise, getattr(args, "clip", None), weights=weights) for n in names]
    return rows[0] if len(rows) == 1 else rows
