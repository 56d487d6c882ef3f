"""Benchmark HuBERT base feature extraction: torch reference vs MLX port on the same audio.

Usage: .venv/bin/python scripts/bench_hubert.py [--seconds 10] [--repeats 5] [--version v2]
       [--stages] [--json out.json]

Seeded base-config weights (same in both backends), speech from data/ cut to the length, one
warm-up run per backend, then ``repeats`` alternating timed runs; MLX is synchronised with
``mx.eval``. Prints JSON rows with median seconds and the MLX/torch ratio
(goal: rvclab.tolerances.HUBERT_SPEED_RATIO_GOAL). ``--stages`` adds per-stage medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from rvclab import tolerances
from rvclab.models.hubert import io as hubert_io
from rvclab.models.hubert.config import HubertConfig
from rvclab.models.hubert.parity import test_inputs
from rvclab.models.hubert.seeded import seeded_state
from rvclab.runtime import blas_in_use, import_mlx

mx = import_mlx()


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--version", default="v2", choices=("v1", "v2"))
    ap.add_argument("--stages", action="store_true", help="also time front end / encoder")
    ap.add_argument("--json", default=None, help="write the rows to this file")
    args = ap.parse_args()

    config = HubertConfig()
    weights = hubert_io.HubertWeights(config, seeded_state(config, 0), "fairseq", "seeded")
    tmodel, mmodel = hubert_io.torch_model(weights), hubert_io.mlx_model(weights)
    n = int(args.seconds * config.sample_rate)
    _, wav = test_inputs((n,), clips=False)[0]
    wt, wm = torch.from_numpy(wav), mx.array(wav)

    def run_torch():
        with torch.no_grad():
            return tmodel.extract_features(wt, args.version)

    def run_mlx():
        out = mmodel.extract_features(wm, args.version)
        mx.eval(out)
        return out

    run_torch(), run_mlx()  # warm-up
    t_torch, t_mlx = [], []
    for _ in range(args.repeats):  # alternate, so load changes hit both sides alike
        t_torch += timed(run_torch, 1)
        t_mlx += timed(run_mlx, 1)
    row = {
        "stage": "hubert", "seconds_audio": args.seconds, "version": args.version,
        "torch_s": statistics.median(t_torch), "mlx_s": statistics.median(t_mlx),
        "torch_threads": torch.get_num_threads(), "blas": blas_in_use(),
        "repeats": args.repeats,
    }
    row["ratio_mlx_over_torch"] = row["mlx_s"] / row["torch_s"]
    row["goal"] = tolerances.HUBERT_SPEED_RATIO_GOAL
    rows = [row]
    if args.stages:
        rows += stage_rows(tmodel, mmodel, wt, wm, args.repeats)
    text = json.dumps(rows, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")


def stage_rows(tmodel, mmodel, wt, wm, repeats: int) -> list[dict]:
    """Median seconds of the conv front end and of the transformer, per backend."""
    with torch.no_grad():
        feats_t = tmodel.feature_extractor(wt[None])
        x_t = tmodel.post_extract_proj(tmodel.layer_norm(feats_t.transpose(1, 2)))
    feats_m = mmodel.feature_extractor(wm[None])
    x_m = mmodel.post_extract_proj(mmodel.layer_norm(feats_m))
    mx.eval(x_m)

    def front_torch():
        with torch.no_grad():
            tmodel.feature_extractor(wt[None])

    def enc_torch():
        with torch.no_grad():
            tmodel.encoder(x_t)

    def pos_torch():
        with torch.no_grad():
            tmodel.encoder.pos_conv(x_t.transpose(1, 2))

    def pos_mlx():
        y = x_m
        for layer in mmodel.encoder.pos_conv:
            y = layer(y)
        mx.eval(y)

    cases = {
        "front_end": (front_torch, lambda: mx.eval(mmodel.feature_extractor(wm[None]))),
        "pos_conv": (pos_torch, pos_mlx),
        "encoder": (enc_torch, lambda: mx.eval(mmodel.encoder(x_m))),
    }
    rows = []
    for name, (ft, fm) in cases.items():
        ft(), fm()
        tt, tm = np.median(timed(ft, repeats)), np.median(timed(fm, repeats))
        rows.append({"stage": name, "torch_s": float(tt), "mlx_s": float(tm),
                     "ratio_mlx_over_torch": float(tm / tt)})
    return rows


if __name__ == "__main__":
    main()
