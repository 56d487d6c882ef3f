"""The porting fixes, executable: each one a named toggle that puts its bug back, with a metric.

The seed project documented 13 fixes in prose (layout transposes, LayerNorm names, relative
position tables, flow index mapping, ...), plus an unexplained ~18% low RMVPE F0. Here every one
of them, and a few pitfalls the seed did not document, is a :class:`Fix`: what goes wrong, the
seed's symptom and number, the stage it affects, the metric that shows it, the threshold the
metric crosses with the bug on, and a function measuring that metric on seeded models and the
shipped clips.

One mechanism re-introduces a bug, :func:`reintroduce`::

    with fixes.reintroduce("flow_reverse_order"):
        figures = fixes.get("flow_reverse_order").measure()   # the bug is back
    # everything restored here, also after an exception

A toggle is a list of :class:`Swap`: a named attribute (a function in a module, a method of an
MLX module class, or a rule in a converter table) replaced by its buggy variant for the duration
of the ``with`` block. The buggy variants live in ``rvclab/fixes_*.py``; the model and converter
files contain no toggle checks at all, so with every toggle off the code path is exactly the
normal one. :func:`run` measures a fix with the bug on and off; :func:`run_all` does it for the
registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rvclab import tolerances as tol
from rvclab.fixes import features as fixes_features
from rvclab.fixes import rmvpe as fixes_rmvpe
from rvclab.fixes import synth as fixes_synth
from rvclab.fixes.toggle import Swap, swapped

__all__ = ["Fix", "Swap", "REGISTRY", "DOCUMENTED", "get", "reintroduce", "snapshot", "run",
           "run_all", "make_row", "summary"]

NOT_DOCUMENTED = "not documented by the seed"


@dataclass(frozen=True)
class Fix:
    """One documented fix (or undocumented pitfall) and how to see it.

    ``measure()`` returns a dict of figures computed with the code as it is at call time;
    ``metric`` names the figure that shows the bug, ``bug_past(value)`` says whether it crossed
    ``threshold`` (the bug is visible), ``fixed_ok(value)`` whether it is within ``goal`` (the
    parity goal from :mod:`rvclab.tolerances`)."""

    name: str
    title: str
    seed: str  # "fix N" in the seed's list, a symptom it reported, or NOT_DOCUMENTED
    seed_symptom: str
    stage: str
    why: str
    metric: str
    higher_is_worse: bool
    threshold: float
    goal: float
    swaps: tuple[Swap, ...]
    measure: Callable[[], dict]
    reproducible: bool = True
    note: str = ""
    extra: tuple[str, ...] = field(default=())  # other figures worth showing
    prepare: Callable[[], object] | None = None  # builds (and caches) the bench, code unswapped

    def bug_past(self, value: float) -> bool:
        return value > self.threshold if self.higher_is_worse else value < self.threshold

    def fixed_ok(self, value: float) -> bool:
        return value <= self.goal if self.higher_is_worse else value >= self.goal

    @property
    def documented(self) -> bool:
        return self.seed != NOT_DOCUMENTED


def reintroduce(*names: str):
    """Put the bugs of the named fixes back for the duration of a ``with`` block; restore on exit.

    Restoring happens in reverse order in a ``finally`` clause, so an exception inside the block
    leaves the code as it was; unknown names fail before anything is swapped. Thread safety: the
    swaps are process-wide, so other threads running models meanwhile see the buggy code too
    (toggles are for notebooks, tests and scripts doing one thing at a time); a re-entrant lock
    serialises toggles against each other (see :mod:`rvclab.fixes.toggle`). Before swapping,
    each fix's bench is prepared (built once and cached) with the code unswapped, so cached
    models and references never carry a bug into later measurements."""
    chosen = [get(name) for name in names]
    for fix in chosen:  # the bench (models, references, caches) is built with the correct code
        if fix.prepare is not None:
            fix.prepare()
    return swapped([swap for fix in chosen for swap in fix.swaps])


def snapshot(*names: str) -> dict[tuple[str, str], object]:
    """{(target, name): object in place} for every swap of the named fixes (all by default)."""
    chosen = [get(n) for n in names] if names else list(REGISTRY.values())
    return {(s.target, s.name): s.current() for f in chosen for s in f.swaps}


def run(name: str) -> dict:
    """Measure one fix with its bug on, then off: a row for tables and docs."""
    fix = get(name)
    with reintroduce(name):
        bug = fix.measure()
    fixed = fix.measure()
    return make_row(fix, bug, fixed)


def make_row(fix: Fix, bug: dict, fixed: dict) -> dict:
    """The row of :func:`run` from figures measured with the bug on and off."""
    row = {"fix": fix.name, "title": fix.title, "seed": fix.seed,
           "seed_symptom": fix.seed_symptom, "stage": fix.stage, "metric": fix.metric,
           "bug_on": bug[fix.metric], "fixed": fixed[fix.metric],
           "threshold": ("> " if fix.higher_is_worse else "< ") + f"{fix.threshold:g}",
           "goal": ("<= " if fix.higher_is_worse else ">= ") + f"{fix.goal:g}",
           "bug_visible": fix.bug_past(bug[fix.metric]),
           "fixed_within_goal": fix.fixed_ok(fixed[fix.metric]),
           "reproducible": fix.reproducible,
           "figures_bug": bug, "figures_fixed": fixed}
    return row


def run_all(names=None) -> list[dict]:
    return [run(n) for n in (names or REGISTRY)]


def get(name: str) -> Fix:
    if name not in REGISTRY:
        raise KeyError(f"unknown fix {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def summary(rows: list[dict], digits: int = 3) -> list[dict]:
    """Compact rows (fix, seed, stage, metric, bug on, fixed, both checks) for display."""
    def fmt(v):
        return float(f"{v:.{digits}g}") if isinstance(v, float) else v

    return [{"fix": r["fix"], "seed": r["seed"], "stage": r["stage"], "metric": r["metric"],
             "bug_on": fmt(r["bug_on"]), "threshold": r["threshold"], "fixed": fmt(r["fixed"]),
             "goal": r["goal"], "bug_visible": r["bug_visible"],
             "fixed_within_goal": r["fixed_within_goal"]} for r in rows]


# --- the registry -------------------------------------------------------------------------------
S, R, H = fixes_synth, fixes_rmvpe, fixes_features


def _prepare_layouts():
    S.prepare()
    R.prepare()

_SYN = "rvclab.models.synth.rules:RULES"
_RMV = "rvclab.models.rmvpe.rules:RULES"

_FIXES = [
    Fix("layout_transposes", "Layout: torch (B, C, T) is MLX (B, T, C)", "fix 1",
        "missing transposes: corr -0.056 -> 0.59", "synthesizer flow",
        "An axis index copied from torch without the layout change: torch's Flip reverses dim 1 "
        "(channels); in MLX dim 1 is time, so the copied index reverses the utterance in time "
        "between the coupling layers.",
        "flow_max_abs", True, tol.FIX_FLOW_MAX_ABS_MIN, tol.SYNTH_FLOW_MAX_ABS,
        (Swap("rvclab.models.synth.mlx.modules:Flip", "__call__", S.flip_time_axis),),
        S.measure_synth, extra=("z_corr", "wave_corr"),
        prepare=S.prepare),
    Fix("layernorm_gamma_beta", "LayerNorm parameters are gamma / beta", "fix 2",
        "gamma/beta vs weight/bias: 0.59 -> 0.70", "synthesizer TextEncoder",
        "Upstream's LayerNorm names its parameters gamma and beta. A converter expecting "
        "weight/bias finds nothing to load and the port keeps its init (gamma 1, beta 0): every "
        "TextEncoder layer is normalised with the wrong scale and shift.",
        "textenc_max_abs", True, tol.FIX_TEXTENC_MAX_ABS_MIN, tol.SYNTH_TEXTENC_MAX_ABS,
        (Swap(_SYN, "LayerNorm", S.layernorm_left_at_init),),
        S.measure_synth_reconverted, extra=("textenc_corr", "z_corr"),
        prepare=S.prepare),
    Fix("rel_pos_not_transposed", "Relative-position tables copied untransposed", "fix 3",
        "emb_rel_k / emb_rel_v (1, 21, 96) must not be transposed, no .weight suffix",
        "converter (TextEncoder attention)",
        "emb_rel_k / emb_rel_v look like conv weights (3-D) but are lookup tables (1, 2w+1, "
        "head_dim). Run through the conv layout rule they become (1, 96, 21); our strict "
        "converter refuses that and names both keys with expected and found shapes (the port "
        "could not even run with them).",
        "conversion_problems", True, 0.5, 0.0,
        (Swap(_SYN, "relative position tables", S.rel_tables_as_conv),),
        S.measure_conversion,
        prepare=S.prepare),
    Fix("rel_to_abs_off_by_one", "Relative -> absolute position: drop the FIRST column", "fix 4",
        "an off-by-one silently shifts attention", "synthesizer TextEncoder",
        "Absolute attention weights (L, L) become relative ones (L, 2L-1) by padding, reshaping "
        "to (L, 2L) and dropping the first column. Dropping the last one instead keeps every "
        "shape and shifts each row's relative offsets by one: attention reads its neighbour's "
        "value table.",
        "textenc_max_abs", True, tol.FIX_TEXTENC_MAX_ABS_MIN, tol.SYNTH_TEXTENC_MAX_ABS,
        (Swap("rvclab.models.synth.mlx.attention:MultiHeadAttention",
              "_absolute_position_to_relative_position", S.abs_to_rel_drop_last),),
        S.measure_synth, extra=("textenc_corr", "z_corr"),
        prepare=S.prepare),
    Fix("flow_index_mapping", "Flow index mapping: coupling i sits at torch index 2i", "fix 5",
        "50% of coupling layers left random: RMS ~0.5 -> 1.0, spectrogram corr 0.986",
        "converter (flow)",
        "torch's flow.flows interleaves [coupling, Flip, coupling, Flip, ...]. A converter that "
        "maps torch index k to port index k / 2 (compact numbering) puts couplings 0 and 2 into "
        "slots 0 and 1 (a Flip, which has no weights) and leaves the couplings at 4 and 6 with "
        "no weights. Loaded leniently, as the seed did, half the flow keeps its init; our strict "
        "converter reports every such key instead.",
        "flow_max_abs_lenient", True, tol.FIX_FLOW_MAX_ABS_MIN, tol.SYNTH_FLOW_MAX_ABS,
        (Swap(_SYN, "conv1d weight norm", S.flow_compact_index),
         Swap(_SYN, "conv1d", S.flow_compact_index),
         Swap(_SYN, "bias", S.flow_compact_index)),
        S.measure_lenient, extra=("conversion_problems", "z_corr_lenient"),
        prepare=S.prepare),
    Fix("flow_reverse_order", "Flow reverse pass: Flip first, then the coupling", "fix 6",
        "Swift port 72% -> 92% spectrogram corr", "synthesizer flow",
        "Inference runs the flow backwards: the module list reversed, so each Flip comes before "
        "its coupling. Running the pairs in reverse but each pair in forward order (coupling, "
        "then Flip) feeds every coupling the wrong half of the channels.",
        "flow_max_abs", True, tol.FIX_FLOW_MAX_ABS_MIN, tol.SYNTH_FLOW_MAX_ABS,
        (Swap("rvclab.models.synth.mlx.synthesizer:ResidualCouplingBlock", "__call__",
              S.flow_pairs_coupling_first),),
        S.measure_synth, extra=("z_corr", "wave_corr"),
        prepare=S.prepare),
    Fix("wavenet_cond_slicing", "WaveNet: one cond_layer, sliced per layer", "fix 7",
        "cond_layer gives 2*hidden*n_layers channels sliced per layer; last res_skip is hidden "
        "wide", "synthesizer flow (WaveNet)",
        "The speaker condition goes through one conv producing 2*hidden channels for every "
        "layer; layer i takes slice i. Giving every layer the first slice keeps all shapes. "
        "(The last res_skip layer's width, hidden not 2*hidden, is a shape the converter "
        "checks: a wrong width cannot load.)",
        "flow_max_abs", True, tol.FIX_FLOW_MAX_ABS_MIN, tol.SYNTH_FLOW_MAX_ABS,
        (Swap("rvclab.models.synth.mlx.modules:WN", "__call__", S.wn_first_slice_everywhere),),
        S.measure_synth, extra=("z_corr",),
        prepare=S.prepare),
    Fix("weight_norm_fusion", "Weight norm: w = g * v / ||v||, norm over all but dim 0", "fix 8",
        "fuse w = g * v / ||v|| at conversion (norm over every axis but the output one)",
        "converter (vocoder, flow)",
        "Weight norm keeps a magnitude g per output channel and a direction v. Taking the norm "
        "over the whole tensor instead of per output channel rescales every channel by a "
        "different factor.",
        "wave_corr", False, tol.FIX_CORR_MAX, tol.SYNTH_WAVE_CORR_MIN,
        (Swap(_SYN, "upsampler weight norm", S.weight_norm_global),
         Swap(_SYN, "conv1d weight norm", S.weight_norm_global)),
        S.measure_synth_reconverted, extra=("z_corr", "wave_max_abs"),
        prepare=S.prepare),
    Fix("conv_weight_layouts", "Conv weight layouts: transpose, never reshape", "fix 9",
        "conv1d (O,I,K)->(O,K,I); conv_transpose1d (I,O,K)->(O,K,I); conv2d (O,I,H,W)->(O,H,W,I)",
        "converter (all convs)",
        "A kernel reshaped to the port's layout instead of transposed keeps its shape and "
        "scrambles which input channel and tap each number belongs to (1x1 kernels excepted, "
        "where the two agree). Measured on the synthesizer (conv1d, transposed conv1d) and on "
        "RMVPE (conv2d, transposed conv2d), both reconverted.",
        "wave_corr", False, tol.FIX_CORR_MAX, tol.SYNTH_WAVE_CORR_MIN,
        (Swap(_SYN, "conv1d", S.conv_reshaped),
         Swap(_SYN, "conv1d weight norm", S.conv_reshaped),
         Swap(_SYN, "upsampler weight norm", S.conv_reshaped),
         Swap(_RMV, "conv2d", S.conv_reshaped),
         Swap(_RMV, "conv_transpose2d", S.conv_reshaped)),
        S.measure_layouts, extra=("textenc_corr", "rmvpe_salience_max_abs", "rmvpe_salience_corr"),
        prepare=_prepare_layouts),
    Fix("rmvpe_shortcut_no_bn", "RMVPE ConvBlockRes: the 1x1 shortcut has no BatchNorm", "fix 10",
        "the shortcut conv has no BatchNorm", "RMVPE U-Net",
        "The residual blocks' 3x3 convs are followed by BatchNorm, the 1x1 shortcut is not. A "
        "port that copies the pattern adds a BatchNorm there; with no weights for it in the "
        "checkpoint it keeps its init and, in MLX's default training mode, normalises with the "
        "batch statistics.",
        "salience_max_abs", True, tol.FIX_SALIENCE_MAX_ABS_MIN, tol.RMVPE_SALIENCE_MAX_ABS,
        (Swap("rvclab.models.rmvpe.mlx:ConvBlockRes", "__call__", R.shortcut_with_batchnorm),),
        R.measure_rmvpe, extra=("salience_corr",),
        prepare=R.prepare),
    Fix("pytorch_gru", "GRU with torch's equations", "fix 11",
        "max diff 0.26 -> 0.0039 with a PyTorch-compatible GRU", "RMVPE BiGRU",
        "torch adds the hidden bias b_hn inside the reset-gated term, "
        "n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); mlx.nn.GRU's equations put it outside "
        "(summed into the input bias when torch weights are mapped onto it).",
        "gru_max_abs", True, tol.FIX_GRU_MAX_ABS_MIN, tol.RMVPE_GRU_MAX_ABS,
        (Swap("rvclab.models.rmvpe.gru", "_step", R.gru_step_bias_outside),
         Swap("rvclab.models.rmvpe.gru", "_step_compiled", R.gru_step_bias_outside_compiled)),
        R.measure_gru, extra=("gru_corr",),
        prepare=R.prepare),
    Fix("mel_reflect_pad", "Mel front end: reflect padding", "fix 12",
        "reflect padding (MLX only has constant/edge pad)", "RMVPE mel",
        "The STFT is centred with reflect padding and the mel frames are padded to a multiple "
        "of 32 by reflection too. MLX's pad offers constant and edge modes; edge padding "
        "changes the first and last frames and the padded tail the U-Net sees.",
        "salience_max_abs", True, tol.FIX_SALIENCE_MAX_ABS_MIN, tol.RMVPE_SALIENCE_MAX_ABS,
        (Swap("rvclab.models.rmvpe.mlx", "reflect_pad", R.edge_pad, also_home=True),),
        R.measure_rmvpe, extra=("salience_corr",),
        prepare=R.prepare),
    Fix("mel_htk", "Mel front end: HTK mel scale (librosa htk=True)", "fix 12",
        "HTK-style librosa filterbank", "RMVPE mel",
        "RMVPE's filterbank is librosa's with htk=True; librosa's default (Slaney) scale places "
        "the 128 bands differently, so every harmonic lands in other bins.",
        "salience_max_abs", True, tol.FIX_SALIENCE_MAX_ABS_MIN, tol.RMVPE_SALIENCE_MAX_ABS,
        (Swap("rvclab.models.rmvpe.mlx:MelSpectrogram", "__init__", R.mel_slaney),),
        R.measure_rmvpe_fresh_mel, extra=("salience_corr",),
        prepare=R.prepare),
    Fix("rmvpe_chunking", "RMVPE input chunked at 32k frames, as upstream", "fix 12",
        "RMVPE input chunked at 32k frames", "RMVPE BiGRU",
        "Upstream runs the network on independent chunks of 32000 frames (320 s), so the BiGRU "
        "state restarts at every chunk. A port that runs the whole input at once differs from "
        "the first chunk boundary on. Shown with both sides chunked at 64 frames (the same rule "
        "scaled to a 1 s clip).",
        "salience_max_abs", True, tol.FIX_SALIENCE_MAX_ABS_MIN, tol.RMVPE_SALIENCE_MAX_ABS,
        (Swap("rvclab.models.rmvpe.mlx", "mel_to_salience", R.salience_unchunked),),
        R.measure_rmvpe_chunked, extra=("salience_corr",),
        prepare=R.prepare),
    Fix("faiss_openmp_macos", "faiss + OpenMP on macOS: one thread", "fix 13",
        "faiss and torch's OpenMP in one process can crash on macOS (OMP_NUM_THREADS=1)",
        "index retrieval (macOS only)",
        "faiss and torch each bring an OpenMP runtime; on macOS two in one process can abort or "
        "crash. The crash cannot happen on Linux, so it is not reproduced here: the metric is "
        "whether the guard sets OMP_NUM_THREADS=1 on a simulated macOS.",
        "guard_sets_one_thread", False, 0.5, 1.0,
        (Swap("rvclab.runtime", "guard_faiss_openmp", H.guard_missing),
         Swap("rvclab.pipeline.index", "guard_faiss_openmp", H.guard_missing)),
        H.measure_faiss_guard, reproducible=False,
        note="not reproducible on Linux: the guard is checked on a simulated macOS"),
    Fix("rmvpe_mel_fmax", "RMVPE's ~18% low F0: mel filterbank up to 8 kHz",
        "reported, no fix (RMVPE figures)",
        "F0 about 18% (~20 Hz) low, accepted as is (RMVPE section of the seed's report)",
        "RMVPE mel",
        "RMVPE's 128 mel bands span 30-8000 Hz. A filterbank built with fmax = 22050 Hz (librosa "
        "default at 44.1 kHz) squeezes the 30-8000 Hz range into fewer, wider bands, so a "
        "harmonic lands in a lower band and a network trained on the right axis reads it low: "
        "here from 16% at 80 Hz to 30% at 400 Hz (notebook 02: -17.5% at a shipped clip's "
        "pitches). Measured network-independently: a tone's peak band on the port's mel, read "
        "on the correct axis.",
        "f0_readout_rel_err", True, tol.FIX_F0_REL_ERR_MIN, tol.MEL_READOUT_REL_ERR_MAX,
        (Swap("rvclab.models.rmvpe.mlx:MelSpectrogram", "__init__", R.mel_fmax_22050),),
        R.measure_mel_readout, extra=("f0_readout_signed",),
        note="the seed reported it without a cause; notebook 02 compares every candidate",
        prepare=R.prepare),
    # --- pitfalls the seed did not document ---------------------------------------------------
    Fix("sinegen_phase_fp16", "SineGen phase accumulated in float16", NOT_DOCUMENTED,
        "-", "synthesizer NSF source",
        "The sine source integrates F0 into a phase with two cumulative sums over every audio "
        "sample. Run in float16 (a model cast to half precision for speed), the running phase "
        "reaches hundreds of cycles where float16 resolves only ~0.1 cycle: the sine drifts.",
        "wave_max_abs", True, tol.FIX_WAVE_MAX_ABS_MIN, tol.SYNTH_WAVE_MAX_ABS,
        (Swap("rvclab.models.synth.mlx.vocoder", "cumsum_acc", S.cumsum_fp16),),
        S.measure_synth, extra=("wave_corr",),
        prepare=S.prepare),
    Fix("hubert_gelu_tanh", "HuBERT GELU: exact (erf), not the tanh approximation", NOT_DOCUMENTED,
        "-", "HuBERT / ContentVec",
        "fairseq and transformers use the exact erf GELU. The tanh approximation (mlx.nn's "
        "gelu_approx, common in ports) differs by up to ~1e-3 per activation; over 12 layers "
        "the content features move far past the parity goal.",
        "max_abs_rel", True, tol.FIX_HUBERT_MAX_ABS_REL_MIN, tol.HUBERT_MAX_ABS_REL,
        (Swap("rvclab.models.hubert.mlx:GELU", "__call__", H.gelu_tanh_method),
         Swap("rvclab.models.hubert.mlx:TransformerLayer", "__call__", H.layer_with_tanh_gelu)),
        H.measure_hubert, extra=("cos_min",),
        prepare=H.prepare),
    Fix("rmvpe_batchnorm_train", "RMVPE BatchNorm in eval mode (running statistics)", NOT_DOCUMENTED,
        "-", "RMVPE U-Net",
        "At inference BatchNorm must use the running mean and variance stored in the "
        "checkpoint. Left in training mode (MLX modules start in it), it normalises with the "
        "statistics of the current input instead.",
        "salience_max_abs", True, tol.FIX_SALIENCE_MAX_ABS_MIN, tol.RMVPE_SALIENCE_MAX_ABS,
        (Swap("rvclab.models.rmvpe.mlx:BatchNorm2d", "__call__", R.batchnorm_batch_stats),
         Swap("rvclab.models.rmvpe.mlx:ConvBlockRes", "__call__", R.block_unfolded),
         Swap("rvclab.models.rmvpe.mlx:ResDecoderBlock", "__call__", R.decoder_unfolded)),
        R.measure_rmvpe, extra=("salience_corr",),
        prepare=R.prepare),
    Fix("rmvpe_cents_map", "RMVPE decoding: the cents map padded like the salience", NOT_DOCUMENTED,
        "-", "RMVPE decoding",
        "Decoding averages the cents of 9 bins around the peak; the salience is padded by 4 bins "
        "each side so the window never leaves it, and the bin-to-cents map must be padded the "
        "same way. Padded at the end only, the map is read 4 bins (80 cents) too high: every F0 "
        "comes out 4.7% sharp while voicing stays right.",
        "f0_median_cents", True, tol.FIX_F0_CENTS_MIN, tol.F0_MEDIAN_CENTS_MAX,
        (Swap("rvclab.models.rmvpe.mlx", "to_local_average_cents", R.cents_map_padded_at_end),),
        R.measure_decoding, extra=("voicing_agreement",),
        prepare=R.prepare),
]
REGISTRY: dict[str, Fix] = {f.name: f for f in _FIXES}

# The fixes the documentation names, in its words -> registry names.
DOCUMENTED = {
    "layout transposes": "layout_transposes",
    "LayerNorm gamma/beta": "layernorm_gamma_beta",
    "relative-position embeddings not transposed": "rel_pos_not_transposed",
    "relative->absolute position off-by-one": "rel_to_abs_off_by_one",
    "flow index mapping": "flow_index_mapping",
    "flow reverse order": "flow_reverse_order",
    "WaveNet cond_layer slicing and last res_skip width": "wavenet_cond_slicing",
    "weight-norm fusion": "weight_norm_fusion",
    "conv/transposed-conv/conv2d weight layouts": "conv_weight_layouts",
    "RMVPE shortcut without BatchNorm": "rmvpe_shortcut_no_bn",
    "PyTorch-compatible GRU": "pytorch_gru",
    "reflect-padded HTK mel and 32k-frame chunking": ("mel_reflect_pad", "mel_htk",
                                                        "rmvpe_chunking"),
    "faiss/OpenMP on macOS": "faiss_openmp_macos",
    "RMVPE ~18% F0 error": "rmvpe_mel_fmax",
}
