"""Every parity tolerance in the project, in one place, next to the seed's number it beats.

Tests, parity runners, notebooks and docs read these names; nothing else hard-codes a tolerance.
"Seed" is the project we start from (see docs/background.md); its figures come from its own docs.

A parity figure has two numbers, kept together in a :class:`Check`:

* ``goal``: what docs and notebooks quote (the promise; a row's ``ok``);
* ``guard``: what the tests assert (a row's ``guard_ok``), within about 10x of ``measured``,
  today's worst figure over the clips and test inputs, so a regression fails CI long before it
  reaches the goal. ``measured_by`` names the command and date that measured it; re-measure and
  move the guard in the same change when a port change moves the figure on purpose.

A figure that is NaN (:mod:`rvclab.metrics`' "not comparable") fails both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# One float32 step (2**-23 relative) in cents: two F0 curves that differ at all differ by at
# least about this much, so a guard on a figure measured at exactly 0 cents sits above it.
F32_STEP_CENTS = 1200 * math.log2(1 + 2.0**-23)


@dataclass(frozen=True)
class Check:
    """One parity figure's goal and guard (keyword data).

    ``higher_is_better``: a correlation, cosine or agreement (perfect is 1); else a difference
    (perfect is 0). ``resolution``: the smallest non-zero distance from perfect the figure can
    show on this arithmetic (a float32 step); 0 for a count, whose guard then demands exactly
    ``measured``."""

    goal: float
    guard: float
    measured: float  # today's worst figure, the one the guard sits above
    unit: str
    higher_is_better: bool = False
    resolution: float = 0.0
    measured_by: str = ""  # command and date
    seed: str = ""  # the seed's figure this beats, where it reported one

    @property
    def ideal(self) -> float:
        return 1.0 if self.higher_is_better else 0.0

    def distance(self, value: float) -> float:
        """How far ``value`` is from perfect agreement (1 - corr, or the difference itself)."""
        return abs(self.ideal - float(value))

    def passes(self, value: float, bound: float) -> bool:
        """``value`` on the right side of ``bound``; False for NaN (not comparable)."""
        value = float(value)
        if math.isnan(value):
            return False
        return value >= bound if self.higher_is_better else value <= bound

    def goal_ok(self, value: float) -> bool:
        return self.passes(value, self.goal)

    def guard_ok(self, value: float) -> bool:
        return self.passes(value, self.guard)


def verdicts(row: dict, checks: dict[str, Check]) -> dict:
    """``{'ok': every goal met, 'guard_ok': every guard met}`` for the figures ``row[name]``."""
    return {"ok": all(c.goal_ok(row[name]) for name, c in checks.items()),
            "guard_ok": all(c.guard_ok(row[name]) for name, c in checks.items())}


def guard_failures(row: dict, checks: dict[str, Check]) -> list[str]:
    """``'name=value (guard G)'`` for each figure of ``row`` past its guard (for test messages)."""
    return [f"{name}={row[name]!r} (guard {c.guard!r})" for name, c in checks.items()
            if not c.guard_ok(row[name])]


# --- Foundation -------------------------------------------------------------------------------
# Speed goal (benchmark, not a test): MLX 2048^2 fp32 matmul within this factor of torch's time.
MATMUL_RATIO_GOAL = 1.5

# --- Converter (all models) -------------------------------------------------------------------
COPY_EXACT = 0.0  # copied tensors are bit-exact
WEIGHT_NORM_FUSION_REL = 1e-7  # fused g*v/||v|| vs torch's own fusion, relative (seed: "< 1e-6")

# --- Synthesizer (fp32, shared noise) ---------------------------------------------------------
# Seed: TextEncoder max abs 1.8e-5; generator corr 0.999847, max abs 0.0158, RMSE 0.0014;
# end to end waveform corr 0.36-0.40 (noise not shared).
_SYNTH_BY = ("rvclab parity synth --config all --seconds 0.3 --json (12 full-size rows) and "
             "tests/test_synth_parity.py's small configurations, 2026-12-03")
SYNTH_CHECKS = dict(
    textenc_max_abs=Check(goal=1e-5, guard=8e-6, measured=2.3e-6, unit="max abs",
                          measured_by=_SYNTH_BY, seed="1.8e-5"),
    flow_max_abs=Check(goal=1e-5, guard=9e-6, measured=5.5e-6, unit="max abs", measured_by=_SYNTH_BY),
    wave_corr=Check(goal=0.99999, guard=1 - 3e-10, measured=1 - 3.7e-11, unit="corr", higher_is_better=True,
                    measured_by=_SYNTH_BY, seed="generator corr 0.999847"),
    wave_max_abs=Check(goal=1e-4, guard=5e-6, measured=6.6e-7, unit="max abs", measured_by=_SYNTH_BY,
                       seed="generator max abs 0.0158"),
)
# the goals by their names, for the readers that quote them
SYNTH_TEXTENC_MAX_ABS = SYNTH_CHECKS["textenc_max_abs"].goal
SYNTH_FLOW_MAX_ABS = SYNTH_CHECKS["flow_max_abs"].goal
SYNTH_WAVE_CORR_MIN = SYNTH_CHECKS["wave_corr"].goal
SYNTH_WAVE_MAX_ABS = SYNTH_CHECKS["wave_max_abs"].goal
SYNTH_SPEED_RATIO_GOAL = 3.0  # MLX/torch for 2 s at 48k on the CPU (benchmark)

# The TextEncoder's float32 distance from a float64 run of the same weights: MLX's over torch's
# (rvclab.models.synth.textenc_precision; max abs and RMS of the error, m_p and logs_p together).
# Measured on the shipped seeded voices with real content features and on the test's input.
# The guards sit below the figures the port gave before its sums were blocked (the test's input:
# 1.23 and 1.12), so undoing rvclab.mlx.accumulate in the TextEncoder fails the test.
_TEXTENC_F64_BY = ("scripts/text_encoder_precision.py (7 seeded voices x 2 clips, 3 s, MLX on the CPU) and "
                   "tests/test_synth_parity.py's TextEncoder precision input, 2026-12-07")
TEXTENC_F64_CHECKS = dict(
    ratio_max_abs=Check(goal=1.25, guard=1.2, measured=1.025, unit="MLX / torch max abs from float64",
                        measured_by=_TEXTENC_F64_BY),
    ratio_rms_err=Check(goal=1.25, guard=1.1, measured=0.77, unit="MLX / torch RMS error from float64",
                        measured_by=_TEXTENC_F64_BY),
)

# --- HuBERT / ContentVec (fp32) ---------------------------------------------------------------
# Seed: never reported feature parity. cos_min: the lowest per-frame cosine similarity;
# max_abs_rel: max abs difference / RMS of the torch features.
_HUBERT_BY = "rvclab parity hubert --json (36 rows) and tests/test_hubert.py's inputs, 2026-12-03"
HUBERT_CHECKS = dict(
    cos_min=Check(goal=0.99999, guard=1 - 1e-10, measured=1 - 1.76e-11, unit="cosine",
                  higher_is_better=True, measured_by=_HUBERT_BY),
    max_abs_rel=Check(goal=1e-4, guard=5e-5, measured=2.34e-5, unit="max abs / RMS", measured_by=_HUBERT_BY),
)
HUBERT_COS_MIN = HUBERT_CHECKS["cos_min"].goal
HUBERT_MAX_ABS_REL = HUBERT_CHECKS["max_abs_rel"].goal
HUBERT_SPEED_RATIO_GOAL = 2.0  # MLX/torch, 10 s (benchmark)
# exact GELU, any path vs float64 on [-12, 12]; torch's fp32 kernel is at 3.8e-7, the CPU polynomial at 6.4e-7
GELU_POLY_MAX_ABS = 1e-6
EXP_ACT_MAX_ABS = 2e-7  # CPU sigmoid / tanh / SiLU-GLU kernels vs float64 (MLX's own: 1.0e-7)

# --- F0 on frames voiced in both backends (RMVPE, CREPE, FCPE): the goals ---------------------
F0_MEDIAN_CENTS_MAX = 1.0
F0_P99_CENTS_MAX = 10.0
VOICING_AGREEMENT_MIN = 0.999
PERIODICITY_MAX_ABS = 1e-4  # CREPE periodicity / FCPE confidence


def _f0_checks(by: str, *, median: tuple, p99: tuple, prefix: str = "") -> dict[str, Check]:
    """F0 median / p99 cents (each ``(guard, measured)``) and voicing agreement (exact: every
    frame agrees today) for one F0 method's rows."""
    return {
        f"{prefix}f0_median_cents": Check(goal=F0_MEDIAN_CENTS_MAX, guard=median[0], measured=median[1],
                                          unit="cents", resolution=F32_STEP_CENTS, measured_by=by),
        f"{prefix}f0_p99_cents": Check(goal=F0_P99_CENTS_MAX, guard=p99[0], measured=p99[1], unit="cents",
                                       resolution=F32_STEP_CENTS, measured_by=by),
        f"{prefix}voicing_agreement": Check(goal=VOICING_AGREEMENT_MIN, guard=1.0, measured=1.0,
                                            unit="fraction of frames", higher_is_better=True, measured_by=by),
    }


# --- RMVPE (seeded weights, fp32) -------------------------------------------------------------
# Seed: F0 about 18% (~20 Hz) low, voiced frames 123 vs 124 (0.8% voicing error).
# bump_*: both decoders on an all-voiced salience (rvclab.models.rmvpe.parity).
_RMVPE_BY = "rvclab parity rmvpe --json (4 clips) and tests/test_rmvpe.py's inputs, 2026-12-03"
RMVPE_CHECKS = dict(
    salience_max_abs=Check(goal=1e-4, guard=5e-5, measured=1.94e-5, unit="max abs", measured_by=_RMVPE_BY),
    **_f0_checks(_RMVPE_BY, median=(2e-3, 3.75e-4), p99=(1e-2, 2.04e-3)),
    **_f0_checks(_RMVPE_BY, median=(2e-3, 3.18e-4), p99=(1e-2, 1.34e-3), prefix="bump_"),
)
RMVPE_SALIENCE_MAX_ABS = RMVPE_CHECKS["salience_max_abs"].goal
RMVPE_THRESHOLD = 0.03  # decoding threshold, as upstream
# U-Net + cnn in overlapping time segments vs one whole call, same backend (tests/test_rmvpe_segments.py):
# the same arithmetic on every kept frame, up to the convolution kernels' summation order.
RMVPE_SEGMENT_MAX_ABS = 1e-6

# --- CREPE and FCPE (real weights, vs torchcrepe / torchfcpe), keyed by the rows' "model" -----
# CREPE's F0 is bit-identical on most frames (median 0): its median guard sits a few float32
# steps up. periodicity_max_abs: CREPE's periodicity, FCPE's confidence.
_CREPE_BY = ("rvclab parity crepe --json, rvclab parity crepe-tiny --json (4 whole clips) and "
             "tests/test_f0_methods.py's inputs, 2026-12-03")
_FCPE_BY = "rvclab parity fcpe --json (4 clips) and tests/test_f0_methods.py's inputs, 2026-12-03"
F0_CHECKS = {
    "crepe-full": dict(**_f0_checks(_CREPE_BY, median=(1e-3, 0.0), p99=(2e-3, 3.34e-4)),
                       periodicity_max_abs=Check(goal=PERIODICITY_MAX_ABS, guard=3e-6, measured=4.17e-7,
                                                 unit="max abs", measured_by=_CREPE_BY)),
    "crepe-tiny": dict(**_f0_checks(_CREPE_BY, median=(1e-3, 0.0), p99=(2e-3, 2.9e-4)),
                       periodicity_max_abs=Check(goal=PERIODICITY_MAX_ABS, guard=8e-5, measured=3.59e-5,
                                                 unit="max abs", measured_by=_CREPE_BY)),
    "fcpe": dict(**_f0_checks(_FCPE_BY, median=(3e-3, 5.57e-4), p99=(1e-2, 1.73e-3)),
                 periodicity_max_abs=Check(goal=PERIODICITY_MAX_ABS, guard=8e-5, measured=3.76e-5,
                                           unit="max abs", measured_by=_FCPE_BY)),
}

# --- End to end (same input, same noise, same chunking) ---------------------------------------
# Seed: waveform corr 0.36-0.40, spectrogram corr 0.986 (0.93-0.99), RMS ratio 1.0005.
_E2E_BY = ("rvclab parity e2e --max-seconds 3 --json (17 cases) and tests/test_pipeline.py's inputs, "
           "2026-12-03")
E2E_CHECKS = dict(
    wave_corr=Check(goal=0.9999, guard=1 - 1e-7, measured=1 - 1.1e-8, unit="corr", higher_is_better=True,
                    measured_by=_E2E_BY, seed="0.36-0.40"),
    spec_corr=Check(goal=0.9999, guard=1 - 2e-7, measured=1 - 2.1e-8, unit="corr", higher_is_better=True,
                    measured_by=_E2E_BY, seed="0.986 (0.93-0.99)"),
)
E2E_WAVE_CORR_MIN = E2E_CHECKS["wave_corr"].goal
E2E_SPEC_CORR_MIN = E2E_CHECKS["spec_corr"].goal

# --- Against upstream's own code (``rvclab parity upstream``, issue 19) ----------------------------
# Each reference profile against its own release's code, same files, every random draw zero (the
# pipeline: the same draws both sides), by (stage, backend): the figure a row's ``ok`` bounds and
# its bound. Synthesizer and HuBERT torch: bit-exact; pipeline: int16 samples within one step
# (Applio writes float32: one step is 1/32768 there).
UPSTREAM_GOALS = dict(
    synth=dict(torch=dict(figure="max_abs", goal=0.0), mlx=dict(figure="max_abs", goal=1e-6)),
    hubert=dict(torch=dict(figure="max_abs", goal=0.0), mlx=dict(figure="max_abs_rel", goal=HUBERT_MAX_ABS_REL)),
    rmvpe=dict(torch=dict(figure="max_abs", goal=RMVPE_SALIENCE_MAX_ABS),
               mlx=dict(figure="max_abs", goal=RMVPE_SALIENCE_MAX_ABS)),
    pipeline=dict(torch=dict(figure="max_int16_steps", goal=1), mlx=dict(figure="max_int16_steps", goal=1)),
)

# Every check above, by the runner whose rows carry it (tests/test_tolerances.py walks this).
ALL_CHECKS = {"synth": SYNTH_CHECKS, "hubert": HUBERT_CHECKS, "rmvpe": RMVPE_CHECKS,
              **F0_CHECKS, "e2e": E2E_CHECKS}

# --- precision modes (rvclab.precision): each reduced mode against fp32 on the same backend ----
# Figures: the worst of torch and MLX, synthesizer on 60 frames of the v2-48k voice, HuBERT on
# 0.6 s of speech, CPU. Guards: the tighter of the goal and 10x today's distance from perfect.
# F0 runs fp32 or tf32 only (rvclab.precision.HALF_STAGES); tf32 exists on CUDA only, so its
# figures wait for the GPU run (scripts/gpu_bench.sh): measured NaN until then.
_PRECISION_BY = "tests/test_precision.py's inputs on the CPU, both backends, 2026-12-03"
_TF32_BY = "not yet measured: CUDA only (scripts/gpu_bench.sh)"
# torch's CPU bf16 depends on the CPU: 0.99920 where the bars were first measured, 0.99883 on an AMD
# EPYC with AVX2 and no native bf16 (2026-12-07), where the first bar (0.999) failed; the bar holds
# on both. MLX's bf16 on that machine: 0.99994.
_BF16_BY = "tests/test_precision.py's inputs, torch on an AMD EPYC CPU (AVX2), 2026-12-07"
PRECISION_BARS = {
    "fp16": dict(
        synth_spec_corr=Check(goal=0.9999, guard=0.99992, measured=0.9999916, unit="corr",
                              higher_is_better=True, measured_by=_PRECISION_BY),
        synth_max_abs=Check(goal=0.01, guard=0.01, measured=1.6e-3, unit="abs", measured_by=_PRECISION_BY),
        hubert_cos=Check(goal=0.9995, guard=0.9998, measured=0.999982, unit="cos", higher_is_better=True,
                         measured_by=_PRECISION_BY),
    ),
    "bf16": dict(
        synth_spec_corr=Check(goal=0.998, guard=0.998, measured=0.99883, unit="corr", higher_is_better=True,
                              measured_by=_BF16_BY),
        synth_max_abs=Check(goal=0.05, guard=0.05, measured=0.0145, unit="abs", measured_by=_PRECISION_BY),
        hubert_cos=Check(goal=0.995, guard=0.995, measured=0.99804, unit="cos", higher_is_better=True,
                         measured_by=_PRECISION_BY),
    ),
    "tf32": dict(
        synth_spec_corr=Check(goal=0.99999, guard=0.99999, measured=math.nan, unit="corr",
                              higher_is_better=True, measured_by=_TF32_BY),
        synth_max_abs=Check(goal=5e-3, guard=5e-3, measured=math.nan, unit="abs", measured_by=_TF32_BY),
        hubert_cos=Check(goal=0.9999, guard=0.9999, measured=math.nan, unit="cos", higher_is_better=True,
                         measured_by=_TF32_BY),
        f0_cents_p99=Check(goal=5.0, guard=5.0, measured=math.nan, unit="cents", measured_by=_TF32_BY),
        voicing=Check(goal=VOICING_AGREEMENT_MIN, guard=VOICING_AGREEMENT_MIN, measured=math.nan,
                      unit="agreement", higher_is_better=True, measured_by=_TF32_BY),
    ),
}

# --- Generic activation checks used by the layer tracer ---------------------------------------
# Seed's stated rule of thumb: activations RMSE < 0.01. Ours, per layer, relative to the layer's
# RMS, is far stricter; the tracer marks the first layer past it.
TRACE_REL_MAX_ABS = 1e-4

# --- Convolution kernels (rvclab/mlx/ops.py), fp32 ----------------------------------------------
# max |MLX - torch| / max |torch| for conv1d / conv_transpose1d / conv2d, both paths.
OPS_CONV_REL_MAX_ABS = 1e-5

# --- Documented fixes (rvclab/fixes/registry.py): what a re-introduced bug must do to its metric --------
# With the bug off every metric is back within the parity goals above; with it on it must cross
# these thresholds (a toggle that changes nothing fails tests/test_fixes.py).
# Seed's fix 1 (missing transposes): corr -0.056; fix 5 (flow mapping): RMS ~0.5.
FIX_CORR_MAX = 0.9  # waveform correlation below this (weight norm, conv layouts)
FIX_TEXTENC_MAX_ABS_MIN = 1e-3  # TextEncoder max abs above 100x SYNTH_TEXTENC_MAX_ABS
FIX_FLOW_MAX_ABS_MIN = 1e-2  # reverse flow alone (same z_p) above 1000x SYNTH_FLOW_MAX_ABS
FIX_WAVE_MAX_ABS_MIN = 1e-3  # waveform max abs above 10x SYNTH_WAVE_MAX_ABS
# Seed's fix 11: GRU max diff 0.26 before its fix; ours must show at least 100x the parity goal.
FIX_GRU_MAX_ABS_MIN = 1e-2
RMVPE_GRU_MAX_ABS = 1e-3  # BiGRU output alone, same input (seed's GRU after its fix: 0.0039)
FIX_SALIENCE_MAX_ABS_MIN = 1e-3  # RMVPE salience max abs above 10x RMVPE_SALIENCE_MAX_ABS
FIX_HUBERT_MAX_ABS_REL_MIN = 1e-3  # HuBERT features, 10x HUBERT_MAX_ABS_REL
# Seed: RMVPE F0 about 18% low. The mel readout (a tone's peak band read on the correct mel axis)
# must be off by more than 5% with a wrong mel range, and within 1% with the right one.
FIX_F0_REL_ERR_MIN = 0.05
MEL_READOUT_REL_ERR_MAX = 0.01
FIX_F0_CENTS_MIN = 10.0  # RMVPE decoding: F0 median cents error above 10x F0_MEDIAN_CENTS_MAX

# --- Streaming (rvclab/stream) ------------------------------------------------------------------
# torch vs MLX streams (same blocks, same per-block noise) meet the end-to-end goals above.
# Streamed vs offline output (different noise draws), F0 left unvoiced where offline leaves it
# (fill_unvoiced=False): the log-mel correlation may fall at most this far below offline-vs-offline
# with another noise seed (measured 0.021 below: small v2-40k, fcpe, 2 s, block 0.2 s, extra 0.3 s).
STREAM_OFFLINE_SPEC_CORR_MARGIN = 0.03
# F0 the stream gives the synthesizer vs offline's, median |cents| on frames voiced in both
# (measured: 5.8-5.9 cents with fcpe; the window-limited F0 and the pitch cache's 3-frame cut).
STREAM_F0_CENTS_MEDIAN_MAX = 20.0
