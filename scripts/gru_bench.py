"""RMVPE's BiGRU, and the RMVPE network around it, on every recurrence path: MLX's paths (loop vs
the fused ones, rvclab.runtime.GRU_PATHS) and torch eager vs CUDA graphs.

    python scripts/gru_bench.py --device cpu|gpu [--frames 6000] [--repeats 5] [--warmup 2]
        [--network] [--split-sweep] [--backends mlx,torch] [--json out.json]

Shapes are RMVPE's: B = 1, 384 inputs, 256 hidden units a direction, both directions; 6000 frames
are a 60 s clip. ``bigru`` rows time the BiGRU alone (input projections included): MLX on each
path that runs on its device, torch's ``nn.GRU`` eager and, on CUDA, replayed from a CUDA graph.
``network`` rows (``--network``; slow on a CPU) time the E2E network (log-mel -> salience) with the
seeded full-size weights the same ways. Each row: median/min/max seconds over ``--repeats`` calls
after ``--warmup`` calls, each synchronised (``mx.eval``, ``torch.cuda.synchronize``), and, for MLX,
the largest difference from the loop's output. ``--split-sweep`` (MLX on CUDA) times the
``cuda_split`` kernel alone over units per block and slices of k. The precision in force (TF32
switches) is in every row. One JSON list on stdout, and in ``--json`` (written atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rvclab import runtime  # noqa: E402  (prepares the platform before torch or MLX loads)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--frames", type=int, default=6000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--network", action="store_true", help="also time the whole E2E network")
    ap.add_argument("--split-sweep", action="store_true", help="cuda_split over units and slices (MLX on CUDA)")
    ap.add_argument("--backends", default="mlx,torch", help="comma-separated: mlx, torch")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args(argv)
    if args.frames < 32 or args.repeats < 1 or args.warmup < 0:
        ap.error("--frames >= 32, --repeats >= 1, --warmup >= 0")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"mlx", "torch"}:
        ap.error(f"--backends: mlx and/or torch, got {args.backends!r}")

    import torch  # before MLX: on Linux with MLX-CUDA, torch's cuDNN loads first

    from rvclab.bench.timing import machine_info, timeit
    from rvclab.checkpoints import atomic_write
    from rvclab.models.rmvpe import gru as G
    from rvclab.models.rmvpe.config import RmvpeConfig
    from rvclab.models.rmvpe.io import load_rmvpe
    from rvclab.models.rmvpe.torch import GraphedForward

    mx = runtime.import_mlx()
    tdev = "cuda" if args.device == "gpu" else "cpu"
    if args.device == "gpu" and not torch.cuda.is_available():
        print("gru_bench: --device gpu needs CUDA, and torch sees none", file=sys.stderr)
        return 2
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    kind = runtime.mlx_device_kind(mx)
    cfg = RmvpeConfig()
    frames = args.frames
    precision = {"mlx_enable_tf32": os.environ.get("MLX_ENABLE_TF32", "1"),
                 "torch_matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
                 "torch_cudnn_tf32": torch.backends.cudnn.allow_tf32}
    base = {**machine_info(args.device), **precision, "frames": frames, "batch": 1,
            "inputs": 3 * cfg.n_mels, "hidden": cfg.gru_hidden,
            "command": "python scripts/gru_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    paths = [p for p, (dev, _) in runtime.GRU_PATHS.items() if dev in (kind, "any")]
    rows: list[dict] = []

    def mlx_sync(out):
        mx.eval(out)

    def torch_sync(out):
        if tdev == "cuda":
            torch.cuda.synchronize()

    def add(row):
        rows.append({**base, **row})
        print(json.dumps({k: v for k, v in row.items() if k != "times_s"}), flush=True)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, frames, 3 * cfg.n_mels)).astype(np.float32)
    torch.manual_seed(0)
    tgru = torch.nn.GRU(3 * cfg.n_mels, cfg.gru_hidden, batch_first=True, bidirectional=True).eval().to(tdev)

    if "mlx" in backends:
        ours = G.GRU(3 * cfg.n_mels, cfg.gru_hidden, bidirectional=True)
        ours.load_weights([(k, mx.array(v.detach().cpu().numpy())) for k, v in tgru.named_parameters()])
        xm = mx.array(x)
        ref = np.array(ours(xm, path="loop")[0])
        for path in paths:
            got = np.array(ours(xm, path=path)[0])
            t = timeit(lambda p=path: ours(xm, path=p)[0], mlx_sync, args.warmup, args.repeats)
            add({"kind": "bigru", "backend": "mlx", "path": path, **t,
                 "max_abs_vs_loop": float(np.abs(got - ref).max())})
        if args.split_sweep and kind == "cuda":
            from rvclab.models.rmvpe import gru_kernels as K

            gi = mx.stack([xm @ ours.weight_ih_l0.T + ours.bias_ih_l0,
                           xm[:, ::-1] @ ours.weight_ih_l0_reverse.T + ours.bias_ih_l0_reverse])
            w_t = mx.contiguous(mx.stack([ours.weight_hh_l0.T, ours.weight_hh_l0_reverse.T]))
            b_hh = mx.stack([ours.bias_hh_l0, ours.bias_hh_l0_reverse])
            mx.eval(gi, w_t, b_hh)
            loop = np.array(G.gru_scan(gi, mx.swapaxes(w_t, -1, -2), b_hh))
            for units in (8, 16, 32):
                for slices in (4, 8, 16):
                    lay = K.split_layout(cfg.gru_hidden, units, slices)
                    if lay is None:
                        continue
                    def call(u=units, s=slices):
                        return K.cuda_split_scan(gi, w_t, b_hh, u, s)
                    got = np.array(call())
                    t = timeit(call, mlx_sync, args.warmup, args.repeats)
                    add({"kind": "split_sweep", "backend": "mlx", "path": "cuda_split", "units": units,
                         "slices": slices, "blocks": 2 * lay.blocks, "threads": lay.threads,
                         "shared_bytes": lay.shared_bytes, **t, "max_abs_vs_loop": float(np.abs(got - loop).max())})
    if "torch" in backends:
        xt = torch.from_numpy(x).to(tdev)
        modes = {"eager": lambda v: tgru(v)[0]}
        if tdev == "cuda":
            modes["cuda_graph"] = GraphedForward(lambda v: tgru(v)[0])
        for mode, fn in modes.items():
            with torch.no_grad():
                t = timeit(lambda fn=fn: fn(xt), torch_sync, args.warmup, args.repeats)
            add({"kind": "bigru", "backend": "torch", "mode": mode, **t})

    if args.network:
        padded = -(-frames // cfg.pad_multiple) * cfg.pad_multiple
        mel = (rng.standard_normal((1, cfg.n_mels, padded)) - 4.0).astype(np.float32)  # log-mel-like
        if "mlx" in backends:
            net = load_rmvpe(None, "mlx")
            melm = mx.array(np.ascontiguousarray(mel.transpose(0, 2, 1)))
            os.environ[runtime.GRU_PATH_ENV] = "loop"
            ref = np.array(net(melm))
            for path in paths:
                os.environ[runtime.GRU_PATH_ENV] = path
                got = np.array(net(melm))
                t = timeit(lambda: net(melm), mlx_sync, args.warmup, args.repeats)
                add({"kind": "network", "backend": "mlx", "path": path, **t,
                     "max_abs_vs_loop": float(np.abs(got - ref).max())})
            os.environ.pop(runtime.GRU_PATH_ENV, None)
        if "torch" in backends:
            tnet = load_rmvpe(None, "torch").eval().to(tdev)
            melt = torch.from_numpy(mel).to(tdev)
            modes = {"eager": tnet}
            if tdev == "cuda":
                modes["cuda_graph"] = GraphedForward(tnet)
            for mode, fn in modes.items():
                with torch.no_grad():
                    t = timeit(lambda fn=fn: fn(melt), torch_sync, args.warmup, args.repeats)
                add({"kind": "network", "backend": "torch", "mode": mode, **t})

    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.json_out, lambda p: Path(p).write_text(json.dumps(rows, indent=1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
