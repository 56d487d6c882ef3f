"""Stage rows of ``rvclab parity upstream``: upstream's synthesizer, HuBERT and RMVPE against rvclab's.

Each function takes the checkout's code (:class:`rvclab.parity_upstream.checkout.CheckoutCode`),
the reference profile and the files rvclab loads (seeded voices, ``weights/contentvec_base``,
``weights/rmvpe.pt``), builds upstream's model from the same file, runs both on the same input and
returns one row per backend (:func:`row`). Upstream's random draws are zero, and so are rvclab's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from rvclab import metrics
from rvclab.audio import SAMPLE_RATE_16K
from rvclab.checkpoints import load_checkpoint
from rvclab.models.f0_packages import ensure_torchaudio
from rvclab.models.hubert.io import load_hubert
from rvclab.models.rmvpe.f0 import get_estimator
from rvclab.models.synth.noise import noise_shapes
from rvclab.models.synth.parity import clip_inputs, models_from_voice, run_mlx, run_torch
from rvclab.models.synth.rules import config_of
from rvclab.parity_upstream.checkout import CheckoutCode, quiet
from rvclab.parity_upstream.draws import upstream_draws, zeros
from rvclab.profiles import ReferenceProfile
from rvclab.runtime import import_mlx
from rvclab.tolerances import UPSTREAM_GOALS

BACKENDS = ("torch", "mlx")
WEBUI_SYNTH_CLASSES = {("v1", 1): "SynthesizerTrnMs256NSFsid", ("v1", 0): "SynthesizerTrnMs256NSFsid_nono",
                       ("v2", 1): "SynthesizerTrnMs768NSFsid", ("v2", 0): "SynthesizerTrnMs768NSFsid_nono"}


def row(stage: str, backend: str, profile: ReferenceProfile, figures: dict, **info) -> dict:
    """One JSON row; ``ok``: the figure :data:`rvclab.tolerances.UPSTREAM_GOALS` names for (stage,
    backend) is within its goal (False for NaN)."""
    goal = UPSTREAM_GOALS[stage][backend]
    ok = bool(float(figures[goal["figure"]]) <= goal["goal"])  # NaN compares False
    return {"stage": stage, "backend": backend, "reference": profile.name, **info, **figures,
            "goal": f"{goal['figure']} <= {goal['goal']:g}", "ok": ok, "status": "pass" if ok else "fail"}


def skipped(stage: str, profile: ReferenceProfile, reason: str, **info) -> list[dict]:
    """One row per backend saying why ``stage`` did not run (``ok`` None: nothing is claimed)."""
    return [{"stage": stage, "backend": b, "reference": profile.name, **info, "ok": None, "status": reason}
            for b in BACKENDS]


def first_over(ref: np.ndarray, test: np.ndarray, goal: float, axis_len: int | None = None) -> int | None:
    """Index of the first frame (axis 0 of ``ref``) where |test - ref| exceeds ``goal``; None if none."""
    diff = np.abs(np.asarray(test, np.float64) - np.asarray(ref, np.float64))
    per = diff.reshape(diff.shape[0], -1).max(axis=1) if diff.ndim > 1 else diff
    bad = np.nonzero(per > goal)[0]
    return int(bad[0]) if bad.size else None


# --- synthesizer ---------------------------------------------------------------------------------
def build_upstream_synth(code: CheckoutCode, ckpt: dict):
    """Upstream's synthesizer for voice ``ckpt``, built as upstream's inference builds it (fp32,
    ``enc_q`` deleted, weights loaded non-strictly); None when its module does not import.
    RuntimeError naming the keys when the file leaves any of upstream's parameters unset."""
    cpt = copy.deepcopy({k: v for k, v in ckpt.items() if k != "weight"})
    config = list(cpt["config"])
    config[-3] = int(ckpt["weight"]["emb_g.weight"].shape[0])  # speakers, as upstream sets them
    version, f0 = cpt.get("version", "v1"), int(cpt.get("f0", 1))
    layout = code.layout
    if layout.synth_family == "webui":
        cls = code.attr(layout.synth, WEBUI_SYNTH_CLASSES[(version, f0)])
        kwargs = {"is_half": False}
    else:
        cls = code.attr(layout.synth, "Synthesizer")
        kwargs = {"use_f0": bool(f0), "text_enc_hidden_dim": 768 if version == "v2" else 256,
                  "vocoder": cpt.get("vocoder", "HiFi-GAN")}
    if cls is None:
        return None
    with quiet():
        net = cls(*config, **kwargs)
    del net.enc_q
    missing, _ = net.load_state_dict(ckpt["weight"], strict=False)
    if missing:
        raise RuntimeError(f"upstream's {cls.__name__} has parameters the voice file does not set: "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return net.eval().float()


def synth_rows(code: CheckoutCode, profile: ReferenceProfile, voice: Path, seconds: float, seed: int) -> list[dict]:
    """Upstream's ``infer`` vs rvclab's torch and MLX synthesizers on one voice file: waveform rows.

    Some layouts import torchaudio beside the synthesizer (Applio: its RefineGAN vocoder) without
    using it for the NSF-HiFiGAN voices compared here: rvclab's stand-in lets that import succeed
    (it raises if anything in it is used), and each row names which torchaudio it ran with."""
    ckpt = load_checkpoint(voice)
    config = config_of(ckpt)
    torchaudio = ensure_torchaudio()
    net = build_upstream_synth(code, ckpt)
    if net is None:
        return skipped("synth", profile, code.skip_reason(code.layout.synth), config=config.name,
                       torchaudio=torchaudio)
    frames = max(int(round(seconds * 100)), 1)
    inp = clip_inputs(config, frames, seed)
    noise = {k: np.zeros(s, np.float32) for k, s in noise_shapes(config, 1, frames).items()}
    args = [torch.from_numpy(inp[k]) for k in ("phone", "lengths")]
    args += [torch.from_numpy(inp["pitch"]), torch.from_numpy(inp["f0"])] if config.f0 else []
    with torch.no_grad(), upstream_draws(zeros), quiet():
        o, _, (z, _, m_p, logs_p) = net.infer(*args, torch.from_numpy(inp["sid"]))
    ref = {"wave": o.numpy()[:, 0], "m_p": m_p.numpy().transpose(0, 2, 1), "logs_p": logs_p.numpy().transpose(0, 2, 1),
           "z": z.numpy().transpose(0, 2, 1)}
    tmodel, mmodel = models_from_voice(ckpt)
    runs = {"torch": run_torch(tmodel, inp, noise, profile.sine_phase),
            "mlx": run_mlx(mmodel, inp, noise, bool(config.f0), profile.sine_phase)}
    rows = []
    for backend, out in runs.items():
        first = next((k for k in ("m_p", "logs_p", "z", "wave") if metrics.max_abs(ref[k], out[k]) > 0), None)
        figures = {"max_abs": metrics.max_abs(ref["wave"], out["wave"]), "corr": metrics.corr(ref["wave"], out["wave"]),
                   "textenc_max_abs": max(metrics.max_abs(ref[k], out[k]) for k in ("m_p", "logs_p")),
                   "first_differing_output": first}
        rows.append(row("synth", backend, profile, figures, config=config.name, voice=voice.name, frames=frames,
                        samples=int(ref["wave"].size), torchaudio=torchaudio))
    return rows


# --- HuBERT / ContentVec -------------------------------------------------------------------------
def upstream_features(code: CheckoutCode, model, wav: torch.Tensor, version: str) -> torch.Tensor | None:
    """Upstream's content features (1, T, 256 | 768) of ``wav`` (1, N): the 2026 release's own
    ``extract_hubert_features`` where the checkout has it, else (Applio) its pipeline's reading:
    ``last_hidden_state``, through ``final_proj`` for v1."""
    extract = getattr(code.module(code.layout.hubert), "extract_hubert_features", None)
    with torch.no_grad():
        if extract is not None:
            return extract(model, wav, version, padding_mask=torch.zeros(wav.shape, dtype=torch.bool))
        last = model(wav)["last_hidden_state"]
        return model.final_proj(last) if version == "v1" else last


def hubert_rows(code: CheckoutCode, profile: ReferenceProfile, folder: Path, clips: list) -> list[dict]:
    """Upstream's HuBERT (transformers ``HubertModelWithFinalProj`` read from ``folder``) vs
    rvclab's, v1 (the profile's layer) and v2 features over ``clips`` [(name, (N,) float32 @ 16 kHz)]."""
    cls = code.attr(code.layout.hubert, code.layout.hubert_class)
    if cls is None or not hasattr(cls, "from_pretrained"):
        reason = code.skip_reason(code.layout.hubert) or (
            f"skipped: {code.layout.hubert}.{code.layout.hubert_class} is not a transformers model (fairseq HuBERT)")
        return [r for v in ("v1", "v2") for r in skipped("hubert", profile, reason, version=v)]
    with quiet():
        model = cls.from_pretrained(str(folder), local_files_only=True, torch_dtype=torch.float32).eval()
    ours = {"torch": load_hubert(folder, "torch"), "mlx": load_hubert(folder, "mlx")}
    rows = []
    for version in ("v1", "v2"):
        layer = profile.hubert_v1_layer if version == "v1" else None
        worst = {b: (-1.0, "", 0.0) for b in BACKENDS}
        for name, audio in clips:
            wav = torch.from_numpy(audio)[None]
            ref = upstream_features(code, model, wav, version)[0].numpy()
            with torch.no_grad():
                got = {"torch": ours["torch"].extract_features(wav, version=version, output_layer=layer,
                                                               attention=profile.hubert_attention)[0].numpy()}
            mx = import_mlx()
            out = ours["mlx"].extract_features(mx.array(audio)[None], version=version, output_layer=layer)
            got["mlx"] = np.array(out[0])
            for b in BACKENDS:
                d = metrics.max_abs(ref, got[b])
                if d > worst[b][0]:
                    worst[b] = (d, name, d / max(metrics.rms(ref), 1e-12))
        for b in BACKENDS:
            d, name, rel = worst[b]
            rows.append(row("hubert", b, profile, {"max_abs": d, "max_abs_rel": rel, "worst_clip": name},
                            version=version, layer=layer or 12, clips=len(clips),
                            upstream_attention=getattr(model.config, "_attn_implementation", None)))
    return rows


# --- RMVPE ---------------------------------------------------------------------------------------
def rmvpe_rows(code: CheckoutCode, profile: ReferenceProfile, model_path: Path, clips: list) -> list[dict]:
    """Upstream's RMVPE salience (its mel front end and ``mel2hidden``) vs rvclab's torch and MLX on
    every frame of ``clips``; rvclab chunks as the profile says (``rmvpe_chunk_frames``)."""
    cls = code.attr(code.layout.rmvpe, code.layout.rmvpe_class)
    if cls is None:
        return skipped("rmvpe", profile, code.skip_reason(code.layout.rmvpe))
    with quiet():
        upstream = cls(str(model_path), **dict(code.layout.rmvpe_kwargs))
    goal = UPSTREAM_GOALS["rmvpe"]["torch"]["goal"]
    worst = {b: {"max_abs": -1.0} for b in BACKENDS}
    for name, audio in clips:
        with torch.no_grad():
            mel = upstream.mel_extractor(torch.from_numpy(audio).float()[None], center=True)
            ref = upstream.mel2hidden(mel)[0].float().numpy()
        frames = ref.shape[0]
        chunk = profile.rmvpe_chunk_frames or 32 * ((frames - 1) // 32 + 1)  # None: one call
        for b in BACKENDS:
            got = get_estimator(b, model_path).salience(audio, chunk, profile.rmvpe_pad_mode)
            d = metrics.max_abs(ref, got) if got.shape == ref.shape else float("inf")  # frame counts differ
            if d > worst[b]["max_abs"]:
                worst[b] = {"max_abs": d, "worst_clip": name, "frames": frames,
                            "first_frame_over_goal": first_over(ref, got, goal) if got.shape == ref.shape else 0,
                            "last_frame_max_abs": metrics.max_abs(ref[-1], got[-1])}
    return [row("rmvpe", b, profile, worst[b], clips=len(clips),
                chunk_frames=profile.rmvpe_chunk_frames) for b in BACKENDS]


def clip_list(paths: list[Path], max_seconds: float, load) -> list[tuple[str, np.ndarray]]:
    """[(stem, (N,) float32 @ 16 kHz)] of ``paths``, each cut to ``max_seconds`` (0: whole)."""
    out = []
    for p in paths:
        audio = np.asarray(load(p, SAMPLE_RATE_16K), np.float32)
        out.append((p.stem, audio[: int(max_seconds * SAMPLE_RATE_16K)] if max_seconds else audio))
    return out
