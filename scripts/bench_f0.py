"""CPU speed of the F0 nets: MLX CREPE-tiny / FCPE (and optionally CREPE full) vs the torch
packages, on the same 10 s of real speech. Warm-up, repeats, medians; mx.eval synchronises MLX.

    .venv/bin/python scripts/bench_f0.py [--seconds 10] [--repeats 3] [--full] [--json out.json]

Times cover the network and decoding as RVC calls it (torchcrepe.predict with viterbi, batch 512;
torchfcpe infer with local_argmax). Prints JSON rows: model, backend, median_s, ratio mlx/torch.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time

import numpy as np


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (model load, first-call kernels)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also CREPE full (slow)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from rvclab.audio import clip, load_audio
    from rvclab.models.crepe import f0 as crepe
    from rvclab.models.f0_packages import import_torchcrepe, import_torchfcpe
    from rvclab.models.fcpe import f0 as fcpe
    from rvclab.runtime import import_mlx

    import_mlx()
    tc, tf = import_torchcrepe(), import_torchfcpe()
    audio = load_audio(clip("librivox_male_0870"), 16000)
    n = int(args.seconds * 16000)
    audio = np.tile(audio, n // audio.size + 1)[:n]  # 10 s of real speech
    wav = torch.from_numpy(audio)[None]
    with contextlib.redirect_stdout(io.StringIO()):
        fcpe_pkg = tf.spawn_bundled_infer_model(device="cpu")

    def torchcrepe_run(cap):
        with torch.no_grad():
            tc.predict(wav, 16000, 160, 50.0, 1100.0, cap, batch_size=512, device="cpu",
                       return_periodicity=True)

    def torchfcpe_run():
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            fcpe_pkg.infer(wav, sr=16000, decoder_mode="local_argmax", threshold=0.006)

    cases = [("crepe-tiny", lambda: torchcrepe_run("tiny"),
              lambda: crepe.predict(audio, "mlx", capacity="tiny")),
             ("fcpe", torchfcpe_run, lambda: fcpe.predict(audio, "mlx"))]
    if args.full:
        cases.append(("crepe-full", lambda: torchcrepe_run("full"),
                      lambda: crepe.predict(audio, "mlx", capacity="full")))
    rows = []
    for name, t_fn, m_fn in cases:
        t_s = timed(t_fn, args.repeats)
        m_s = timed(m_fn, args.repeats)  # predict() returns numpy: MLX work is evaluated
        rows.append({"model": name, "seconds_audio": args.seconds, "torch_s": round(t_s, 3),
                     "mlx_s": round(m_s, 3), "ratio_mlx_over_torch": round(m_s / t_s, 3),
                     "torch_threads": torch.get_num_threads()})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
