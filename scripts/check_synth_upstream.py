"""Check the torch synthesizer reference against an upstream RVC WebUI checkout (dev tool).

Builds upstream's model class for each preset from a local checkout (imported at run time; no
upstream code lives in this repository), compares state-dict keys, shapes and order, loads
upstream's (perturbed) weights into ours, and runs both ``infer`` with the same noise: upstream's
``torch.randn_like`` / ``torch.rand`` calls are answered with the arrays of
:func:`rvclab.models.synth.noise.make_noise`.

    .venv/bin/python scripts/check_synth_upstream.py --upstream RVC-WebUI/ v2-48k v1-32k-nof0

The checkout is the repository root; models are looked up as ``infer.lib.infer_pack.models``
(classic layout) or ``infer.module.models`` (2026 layout). Prints one JSON row per preset.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import warnings

import numpy as np
import torch

from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.noise import SINE_NOISE, SINE_PHASE, Z_P, make_noise
from rvclab.models.synth.torch.synthesizer import build_synthesizer

UPSTREAM_CLASSES = {
    ("v1", True): "SynthesizerTrnMs256NSFsid",
    ("v1", False): "SynthesizerTrnMs256NSFsid_nono",
    ("v2", True): "SynthesizerTrnMs768NSFsid",
    ("v2", False): "SynthesizerTrnMs768NSFsid_nono",
}


def _upstream_models(root: str):
    sys.path.insert(0, root)
    for name in ("infer.lib.infer_pack.models", "infer.module.models"):
        with contextlib.suppress(ModuleNotFoundError):
            return importlib.import_module(name)
    raise SystemExit(f"{root}: no infer/lib/infer_pack/models.py or infer/module/models.py")


@contextlib.contextmanager
def _shared_noise(noise: dict):
    """Answer upstream's randn_like (z_p, then SineGen's noise) and rand (initial phases)."""
    normals = [noise[Z_P]] + ([noise[SINE_NOISE]] if SINE_NOISE in noise else [])
    used = []
    randn_like, rand = torch.randn_like, torch.rand

    def fake_randn_like(x, *args, **kwargs):
        arr = normals[len(used)]
        used.append(arr.shape)
        if tuple(x.shape) != arr.shape:
            raise AssertionError(f"upstream drew {tuple(x.shape)}, shared noise is {arr.shape}")
        return torch.from_numpy(arr).to(x)

    def fake_rand(*shape, **kwargs):
        return torch.from_numpy(noise[SINE_PHASE]).clone()

    torch.randn_like, torch.rand = fake_randn_like, fake_rand
    try:
        yield used
    finally:
        torch.randn_like, torch.rand = randn_like, rand


def check(models, preset: str, frames: int = 37, seed: int = 0) -> dict:
    config = SynthConfig.preset(preset)
    cls = getattr(models, UPSTREAM_CLASSES[(config.version, config.f0)])
    torch.manual_seed(seed)
    up = cls(*config.to_config_list(), is_half=False)
    del up.enc_q  # as upstream's inference does before loading a voice
    up.eval()
    usd = up.state_dict()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # make every tensor matter (upstream zero-inits the flow's post convs)
        for value in usd.values():
            value.add_(0.02 * torch.randn(value.shape, generator=gen))
    ours = build_synthesizer(config)
    osd = ours.state_dict()
    row = {
        "preset": preset,
        "keys": len(usd),
        "keys_equal": set(usd) == set(osd),
        "order_equal": list(usd) == list(osd),
        "shapes_equal": all(tuple(usd[k].shape) == tuple(osd[k].shape) for k in usd if k in osd),
    }
    ours.load_state_dict(usd, strict=True)
    g = torch.Generator().manual_seed(seed + 2)
    phone = torch.randn(2, frames, config.phone_dim, generator=g)
    lengths = torch.tensor([frames, frames - 6])
    pitch = torch.randint(1, 256, (2, frames), generator=g)
    f0 = 100 + 300 * torch.rand(2, frames, generator=g)
    f0[:, 3:8] = 0.0
    sid = torch.tensor([0, 5])
    noise = make_noise(config, 2, frames, seed)
    with torch.no_grad():
        with _shared_noise(noise):
            if config.f0:
                u = up.infer(phone, lengths, pitch, f0, sid)
            else:
                u = up.infer(phone, lengths, sid)
        o = ours.infer(phone, lengths, pitch if config.f0 else None, f0 if config.f0 else None,
                       sid, noise)
    names = ["audio", "x_mask", "z", "z_p", "m_p", "logs_p"]
    for name, a, b in zip(names, [u[0], u[1], *u[2]], [o[0], o[1], *o[2]]):
        row[f"{name}_max_abs"] = float((a - b).abs().max())
    row["audio_rms"] = float(np.sqrt(float(u[0].pow(2).mean())))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="RVC WebUI checkout (repository root)")
    parser.add_argument("presets", nargs="*", default=["v2-48k"],
                        help="e.g. v1-32k v2-48k v1-40k-nof0 (default v2-48k)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    models = _upstream_models(args.upstream)
    for preset in args.presets:
        print(json.dumps(check(models, preset)))


if __name__ == "__main__":
    main()
