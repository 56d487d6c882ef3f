"""RVC voice files (.pth): read one into the torch reference, or build one from a model.

A voice file is a dict: ``weight`` (fp16 state dict without ``enc_q.*``), ``config`` (18 entries,
:class:`rvclab.models.synth.config.SynthConfig`), ``info``, ``sr``, ``f0``, ``version``
(docs/synthesizer.md). Newer weight-norm names are mapped by :func:`rename_weight_norm_keys`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rvclab.checkpoints import CheckpointError, load_checkpoint
from rvclab.models.synth.config import SYNTH_PHONE_DIMS, SynthConfig
from rvclab.models.synth.torch.synthesizer import synthesizer_class

NEW_WN_G = ".parametrizations.weight.original0"
NEW_WN_V = ".parametrizations.weight.original1"
_NEW_WN = re.compile(r"(^|\.)parametrizations\.weight\.original([01])$")
DROPPED_PREFIXES = ("enc_q.",)  # training-only posterior encoder: upstream never loads it


def rename_weight_norm_keys(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Map ``X.parametrizations.weight.original0/1`` to ``X.weight_g``/``X.weight_v``.

    Keys already in the old form pass through; order is kept.
    """
    out = {}
    for key, value in sd.items():
        new = _NEW_WN.sub(lambda m: m.group(1) + ("weight_g" if m.group(2) == "0" else "weight_v"),
                          key)
        if new in out:
            raise CheckpointError(f"weight-norm key {key!r} collides with {new!r}")
        out[new] = value
    return out


def prepare_weights(weight: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Upstream ``weight`` dict -> fp32 state dict: new weight-norm names renamed, fp16/bf16
    upcast to fp32 (exact), ``enc_q.*`` dropped."""
    out = {}
    for key, value in rename_weight_norm_keys(weight).items():
        if key.startswith(DROPPED_PREFIXES):
            continue
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"weight entry {key!r} is a {type(value).__name__}, "
                                  "not a tensor")
        out[key] = value.float() if value.is_floating_point() else value
    return out


def expected_shapes(config: SynthConfig) -> dict[str, tuple[int, ...]]:
    """{key: shape} of the inference state dict for ``config`` (built on the meta device)."""
    return dict(_expected_shapes(config))


@functools.lru_cache(maxsize=32)
def _expected_shapes(config: SynthConfig) -> tuple:
    with torch.device("meta"):
        model = synthesizer_class(config)(*config.to_config_list())
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def _architecture_problems(config: SynthConfig, sd: Mapping[str, torch.Tensor]) -> list[str]:
    """Mismatches between the file's version/f0/generator entries and what its weights are."""
    problems = []
    emb = sd.get("enc_p.emb_phone.weight")
    if emb is not None and emb.dim() == 2:
        dims = {v: k for k, v in SYNTH_PHONE_DIMS.items()}
        found = dims.get(int(emb.shape[1]))
        if found != config.version:
            problems.append(
                f"enc_p.emb_phone.weight takes {int(emb.shape[1])}-d features "
                f"({found or 'unknown version'}) but the file says version {config.version!r} "
                f"({config.phone_dim}-d)")
    has_f0 = "enc_p.emb_pitch.weight" in sd or any(k.startswith("dec.m_source.") for k in sd)
    if has_f0 != bool(config.f0):
        problems.append(
            f"the weights are those of a {'F0' if has_f0 else 'no-F0'} model "
            f"(enc_p.emb_pitch / dec.m_source {'present' if has_f0 else 'absent'}) but the file "
            f"says f0={int(config.f0)}")
    n_ups = len({k.split(".")[2] for k in sd if k.startswith("dec.ups.")})
    if n_ups and n_ups != len(config.upsample_rates):
        problems.append(f"the generator has {n_ups} upsampling stages (dec.ups.*) but the config "
                        f"list says {len(config.upsample_rates)}: {list(config.upsample_rates)}")
    return problems


def validate_weights(config: SynthConfig, sd: Mapping[str, torch.Tensor],
                     source: str = "checkpoint") -> None:
    """Raise CheckpointError naming ``source``, the key and expected/found shapes on mismatch."""
    problems = _architecture_problems(config, sd)
    if problems:
        raise CheckpointError(f"{source}: not a {config.name} voice: " + "; ".join(problems))
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [(k, expected[k], tuple(sd[k].shape)) for k in expected
             if k in sd and tuple(sd[k].shape) != expected[k]]
    lines = []
    lines += [f"missing key {k!r} (expected shape {expected[k]})" for k in missing[:8]]
    lines += [f"unexpected key {k!r} (shape {tuple(sd[k].shape)})" for k in unexpected[:8]]
    lines += [f"key {k!r}: expected shape {e}, found {f}" for k, e, f in wrong[:8]]
    if lines:
        counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} mis-shaped"
        raise CheckpointError(f"{source}: weights do not fit a {config.name} synthesizer "
                              f"({counts}): " + "; ".join(lines))


def model_from_weights(config: SynthConfig, sd: Mapping[str, torch.Tensor],
                       source: str = "checkpoint"):
    """Validated fp32 state dict -> eval-mode torch synthesizer holding those tensors."""
    validate_weights(config, sd, source)
    with torch.device("meta"):
        model = synthesizer_class(config)(*config.to_config_list())
    model.load_state_dict({k: v.contiguous() for k, v in sd.items()}, strict=True, assign=True)
    return model.eval()


def load_voice(path: str | os.PathLike):
    """Read an RVC voice ``.pth`` -> (SynthConfig, eval-mode fp32 torch model).

    Reads through the safe loader; raises :class:`CheckpointError` naming the file for a file
    that is not a voice, a version/f0/generator entry that contradicts the weights, and any
    missing, unexpected or mis-shaped key (expected vs found shape).
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, Mapping) or "weight" not in ckpt or "config" not in ckpt:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not an RVC voice file (needs 'weight' and 'config'; "
                              f"found {keys})")
    sd = prepare_weights(ckpt["weight"])
    try:
        config = SynthConfig.from_checkpoint({**ckpt, "weight": sd})
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return config, model_from_weights(config, sd, source=str(path))


def voice_checkpoint(model, info: str = "", half: bool = True) -> dict:
    """The dict upstream saves for ``model``: weight (fp16, no enc_q), config, info, sr, f0,
    version — in upstream's key order."""
    config: SynthConfig = model.config
    weight = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).clone()
              for k, v in model.state_dict().items() if not k.startswith(DROPPED_PREFIXES)}
    return {
        "weight": weight,
        "config": config.to_config_list(),
        "info": info,
        "sr": config.sr_tag,
        "f0": int(config.f0),
        "version": config.version,
    }
