"""CREPE parity: the MLX port vs torchcrepe itself, real weights, every shipped clip.

``rvclab parity crepe`` (full) and ``rvclab parity crepe-tiny``. Per clip (16 kHz, fp32), both
sides run RVC's call: hop 160, 50-1100 Hz, batches of 512, Viterbi, periodicity median(3),
F0 mean(3), F0 = 0 where periodicity < 0.1. The dither noise is shared: numpy's global state is
seeded with ``--seed`` before torchcrepe runs, and the MLX side draws from a RandomState with
the same seed (the same stream). Reported:

* ``f0_median_cents`` / ``f0_p99_cents`` / ``f0_max_cents`` on frames voiced in both;
* ``voicing_agreement``; ``periodicity_max_abs`` (raw periodicity, before filtering);
* ``probs_max_abs`` (network output, MLX vs the reference's);
* ``ok`` / ``guard_ok``: every goal / guard of :data:`rvclab.tolerances.F0_CHECKS` met;
* ``reference``: "torchcrepe <version>" when the package imports (with rvclab's torchaudio
  stand-in if the real torchaudio cannot load: ``torchaudio``), else "rvclab.models.crepe.torch"
  (the same net and weights, proved bit-identical to torchcrepe where it imports).
"""

from __future__ import annotations

import numpy as np

from rvclab import help_text as text
from rvclab import metrics
from rvclab.audio import HOP_16K, SAMPLE_RATE_16K
from rvclab.f0 import F0_MAX, F0_MIN
from rvclab.models.common import clips_audio, f0_row_verdicts
from rvclab.models.crepe import f0 as f0crepe
from rvclab.models.crepe.config import (
    BATCH_SIZE,
    FILTER_WIN,
    PERIODICITY_THRESHOLD,
    PITCH_BINS,
)
from rvclab.models.f0_packages import import_torchcrepe, package_version, torchaudio_status

CAPACITY = "full"


def add_arguments(parser) -> None:
    parser.add_argument("--clip", default=None, help="only clips whose name starts with this")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help=f"{text.MAX_SECONDS}; CREPE full is heavy (default: none, whole clips)")
    parser.add_argument("--seed", type=int, default=0, help=text.seed("the dither both sides share"))


def reference(audio: np.ndarray, capacity: str, seed: int) -> dict:
    """torchcrepe (or our torch reference) on ``audio`` as RVC calls it -> raw and final F0."""
    try:
        import torch

        tc = import_torchcrepe()
        np.random.seed(seed)
        f0s, pds, probs = [], [], []
        with torch.no_grad():  # torchcrepe.predict's own steps, keeping the network output
            wav = torch.from_numpy(audio)[None]
            for fr in tc.preprocess(wav, SAMPLE_RATE_16K, HOP_16K, BATCH_SIZE, "cpu"):
                p = tc.infer(fr, capacity, "cpu")
                probs.append(p.numpy().copy())
                p = p.reshape(1, -1, PITCH_BINS).transpose(1, 2)
                f0_b, pd_b = tc.postprocess(p, F0_MIN, F0_MAX, tc.decode.viterbi,
                                            return_periodicity=True)
                f0s.append(f0_b)
                pds.append(pd_b)
        f0, pd = torch.cat(f0s, 1), torch.cat(pds, 1)
        raw_f0, raw_pd = f0[0].numpy().copy(), pd[0].numpy().copy()
        net = np.concatenate(probs)
        pd_f = tc.filter.median(pd, FILTER_WIN)
        f0_f = tc.filter.mean(f0, FILTER_WIN)
        f0_f[pd_f < PERIODICITY_THRESHOLD] = 0
        final = np.nan_to_num(f0_f[0].numpy(), nan=0.0)
        name = f"torchcrepe {package_version('torchcrepe')}"
        status = torchaudio_status()
    except ImportError:
        out = f0crepe.predict(audio, "torch", capacity=capacity, seed=seed)
        raw_f0, raw_pd, net = out["f0"], out["periodicity"], out["probs"]
        final = f0crepe.postprocess(raw_f0, raw_pd)
        name, status = "rvclab.models.crepe.torch", "not needed"
    return {"f0": raw_f0, "periodicity": raw_pd, "final": final, "probs": net, "name": name,
            "torchaudio": status}


def run_capacity(args, capacity: str) -> list[dict]:
    rows = []
    for path, audio in clips_audio(args):
        ref = reference(audio, capacity, args.seed)
        out = f0crepe.predict(audio, "mlx", capacity=capacity, seed=args.seed)
        final = f0crepe.postprocess(out["f0"], out["periodicity"])
        err = metrics.cents_error(final, ref["final"])
        row = {
            "clip": path.name, "model": f"crepe-{capacity}",
            "seconds": round(audio.size / SAMPLE_RATE_16K, 2),
            "frames": int(final.size), "frames_ref": int(ref["final"].size),
            "reference": ref["name"], "torchaudio": ref["torchaudio"],
            "f0_median_cents": err["median"], "f0_p99_cents": err["p99"],
            "f0_max_cents": err["max"], "voiced_both": err["frames"],
            "voicing_agreement": metrics.voicing_agreement(final, ref["final"]),
            "periodicity_max_abs": float(np.max(np.abs(out["periodicity"] - ref["periodicity"]))),
            "probs_max_abs": float(np.max(np.abs(out["probs"] - ref["probs"]))),
        }
        row.update(f0_row_verdicts(row))
        rows.append(row)
    return rows


def run(args) -> list[dict]:
    return run_capacity(args, CAPACITY)
