"""Peak RSS per step of one conversion: which step sets a long conversion's memory.

``python scripts/step_memory.py --backend torch --seconds 120`` loads the models with a 3 s
conversion, then converts ``--seconds`` of the shipped speech (v2-48k voice, rmvpe) with the
kernel's high-water mark (``/proc/self/clear_refs``, Linux) reset at the start of every step of
:class:`rvclab.pipeline.networks.StepTimes`, and prints each step's peak RSS, largest first
(a step that runs per chunk: its largest chunk).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager

from rvclab.bench.memory import reset_peak_rss, status_kib
from rvclab.bench.stages import StageOptions, speech, voice_model
from rvclab.pipeline import conversion, networks

GIB_KIB = 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="torch", choices=("torch", "mlx"))
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args(argv)
    peaks: dict[str, float] = {}

    @contextmanager
    def step(self, name):
        reset_peak_rss()
        t = time.perf_counter()
        try:
            yield
        finally:
            peaks[name] = max(peaks.get(name, 0.0), status_kib("VmHWM") / GIB_KIB)
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t

    voice = voice_model(StageOptions())
    conversion.convert_voice(speech(3), voice, sr=16000, backend=args.backend, f0_method="rmvpe")
    if not reset_peak_rss():
        print("step_memory: this kernel refuses /proc/self/clear_refs; per-step peaks need it", file=sys.stderr)
        return 2
    print(f"models loaded: {status_kib('VmHWM') / GIB_KIB:.2f} GiB")
    networks.StepTimes.__call__ = step
    conv = conversion.convert_voice(speech(args.seconds), voice, sr=16000, backend=args.backend,
                                    f0_method="rmvpe", profile=True)
    for name, peak in sorted(peaks.items(), key=lambda kv: -kv[1]):
        print(f"{name:24s} {peak:6.2f} GiB  {conv.steps.get(name, 0.0):7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
