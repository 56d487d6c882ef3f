"""The catalogue of documented fixes, as keyword data: one :class:`rvclab.fixes.fix.Fix` per bug,
its toggles (:mod:`rvclab.fixes.synth`, ``.rmvpe``, ``.features``) and the metric that shows it.
:mod:`rvclab.fixes.registry` indexes it and runs it."""

from __future__ import annotations

from rvclab import tolerances as tol
from rvclab.fixes import features as fixes_features
from rvclab.fixes import rmvpe as fixes_rmvpe
from rvclab.fixes import synth as fixes_synth
from rvclab.fixes.fix import E2E, F0, FEATURES, NOT_DOCUMENTED, SYNTH, Fix, Worse
from rvclab.fixes.toggle import Swap

S, R, H = fixes_synth, fixes_rmvpe, fixes_features


def _prepare_layouts():
    S.prepare()
    R.prepare()


_SYN = "rvclab.models.synth.rules:RULES"
_RMV = "rvclab.models.rmvpe.rules:RULES"

# Checks several fixes share: the metric, the way the bug moves it, the threshold it crosses with
# the bug on and the parity goal it is back within with the bug off.
FLOW_MAX_ABS = dict(metric="flow_max_abs", worse=Worse.HIGHER, threshold=tol.FIX_FLOW_MAX_ABS_MIN,
                    goal=tol.SYNTH_FLOW_MAX_ABS)
TEXTENC_MAX_ABS = dict(metric="textenc_max_abs", worse=Worse.HIGHER, threshold=tol.FIX_TEXTENC_MAX_ABS_MIN,
                       goal=tol.SYNTH_TEXTENC_MAX_ABS)
WAVE_CORR = dict(metric="wave_corr", worse=Worse.LOWER, threshold=tol.FIX_CORR_MAX, goal=tol.SYNTH_WAVE_CORR_MIN)
SALIENCE_MAX_ABS = dict(metric="salience_max_abs", worse=Worse.HIGHER, threshold=tol.FIX_SALIENCE_MAX_ABS_MIN,
                        goal=tol.RMVPE_SALIENCE_MAX_ABS)

FIXES = (
    Fix(
        name="layout_transposes",
        title="Layout: torch (B, C, T) is MLX (B, T, C)",
        seed="fix 1",
        seed_symptom="missing transposes: corr -0.056 -> 0.59",
        stage="synthesizer flow",
        why="An axis index copied from torch without the layout change: torch's Flip reverses dim 1 "
            "(channels); in MLX dim 1 is time, so the copied index reverses the utterance in time "
            "between the coupling layers.",
        **FLOW_MAX_ABS,
        swaps=(Swap("rvclab.models.synth.mlx.modules:Flip", "__call__", S.flip_time_axis),),
        measure=S.measure_synth,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("z_corr", "wave_corr"),
        prepare=S.prepare,
    ),
    Fix(
        name="layernorm_gamma_beta",
        title="LayerNorm parameters are gamma / beta",
        seed="fix 2",
        seed_symptom="gamma/beta vs weight/bias: 0.59 -> 0.70",
        stage="synthesizer TextEncoder",
        why="Upstream's LayerNorm names its parameters gamma and beta. A converter expecting "
            "weight/bias finds nothing to load and the port keeps its init (gamma 1, beta 0): every "
            "TextEncoder layer is normalised with the wrong scale and shift.",
        **TEXTENC_MAX_ABS,
        swaps=(Swap(_SYN, "LayerNorm", S.layernorm_left_at_init),),
        measure=S.measure_synth_reconverted,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("textenc_corr", "z_corr"),
        prepare=S.prepare,
    ),
    Fix(
        name="rel_pos_not_transposed",
        title="Relative-position tables copied untransposed",
        seed="fix 3",
        seed_symptom="emb_rel_k / emb_rel_v (1, 21, 96) must not be transposed, no .weight suffix",
        stage="converter (TextEncoder attention)",
        why="emb_rel_k / emb_rel_v look like conv weights (3-D) but are lookup tables (1, 2w+1, "
            "head_dim). Run through the conv layout rule they become (1, 96, 21); our strict "
            "converter refuses that and names both keys with expected and found shapes (the port "
            "could not even run with them).",
        metric="conversion_problems", worse=Worse.HIGHER, threshold=0.5, goal=0.0,
        swaps=(Swap(_SYN, "relative position tables", S.rel_tables_as_conv),),
        measure=S.measure_conversion,
        breaks=(SYNTH,), e2e=E2E.REFUSED,
        prepare=S.prepare,
    ),
    Fix(
        name="rel_to_abs_off_by_one",
        title="Relative -> absolute position: drop the FIRST column",
        seed="fix 4",
        seed_symptom="an off-by-one silently shifts attention",
        stage="synthesizer TextEncoder",
        why="Absolute attention weights (L, L) become relative ones (L, 2L-1) by padding, reshaping "
            "to (L, 2L) and dropping the first column. Dropping the last one instead keeps every "
            "shape and shifts each row's relative offsets by one: attention reads its neighbour's "
            "value table.",
        **TEXTENC_MAX_ABS,
        swaps=(Swap("rvclab.models.synth.mlx.attention:MultiHeadAttention",
                    "_absolute_position_to_relative_position", S.abs_to_rel_drop_last),),
        measure=S.measure_synth,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("textenc_corr", "z_corr"),
        prepare=S.prepare,
    ),
    Fix(
        name="flow_index_mapping",
        title="Flow index mapping: coupling i sits at torch index 2i",
        seed="fix 5",
        seed_symptom="50% of coupling layers left random: RMS ~0.5 -> 1.0, spectrogram corr 0.986",
        stage="converter (flow)",
        why="torch's flow.flows interleaves [coupling, Flip, coupling, Flip, ...]. A converter that "
            "maps torch index k to port index k / 2 (compact numbering) puts couplings 0 and 2 into "
            "slots 0 and 1 (a Flip, which has no weights) and leaves the couplings at 4 and 6 with "
            "no weights. Loaded leniently, as the seed did, half the flow keeps its init; our strict "
            "converter reports every such key instead.",
        metric="flow_max_abs_lenient", worse=Worse.HIGHER,
        threshold=tol.FIX_FLOW_MAX_ABS_MIN, goal=tol.SYNTH_FLOW_MAX_ABS,
        swaps=(Swap(_SYN, "conv1d weight norm", S.flow_compact_index),
               Swap(_SYN, "conv1d", S.flow_compact_index),
               Swap(_SYN, "bias", S.flow_compact_index)),
        measure=S.measure_lenient,
        breaks=(SYNTH,), e2e=E2E.REFUSED,
        extra=("conversion_problems", "z_corr_lenient"),
        prepare=S.prepare,
    ),
    Fix(
        name="flow_reverse_order",
        title="Flow reverse pass: Flip first, then the coupling",
        seed="fix 6",
        seed_symptom="Swift port 72% -> 92% spectrogram corr",
        stage="synthesizer flow",
        why="Inference runs the flow backwards: the module list reversed, so each Flip comes before "
            "its coupling. Running the pairs in reverse but each pair in forward order (coupling, "
            "then Flip) feeds every coupling the wrong half of the channels.",
        **FLOW_MAX_ABS,
        swaps=(Swap("rvclab.models.synth.mlx.modules:ResidualCouplingBlock", "__call__",
                    S.flow_pairs_coupling_first),),
        measure=S.measure_synth,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("z_corr", "wave_corr"),
        prepare=S.prepare,
    ),
    Fix(
        name="wavenet_cond_slicing",
        title="WaveNet: one cond_layer, sliced per layer",
        seed="fix 7",
        seed_symptom="cond_layer gives 2*hidden*n_layers channels sliced per layer; last res_skip is hidden "
                     "wide",
        stage="synthesizer flow (WaveNet)",
        why="The speaker condition goes through one conv producing 2*hidden channels for every "
            "layer; layer i takes slice i. Giving every layer the first slice keeps all shapes. "
            "(The last res_skip layer's width, hidden not 2*hidden, is a shape the converter "
            "checks: a wrong width cannot load.)",
        **FLOW_MAX_ABS,
        swaps=(Swap("rvclab.models.synth.mlx.modules:WN", "__call__", S.wn_first_slice_everywhere),),
        measure=S.measure_synth,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("z_corr",),
        prepare=S.prepare,
    ),
    Fix(
        name="weight_norm_fusion",
        title="Weight norm: w = g * v / ||v||, norm over all but dim 0",
        seed="fix 8",
        seed_symptom="fuse w = g * v / ||v|| at conversion (norm over every axis but the output one)",
        stage="converter (vocoder, flow)",
        why="Weight norm keeps a magnitude g per output channel and a direction v. Taking the norm "
            "over the whole tensor instead of per output channel rescales every channel by a "
            "different factor.",
        **WAVE_CORR,
        swaps=(Swap(_SYN, "upsampler weight norm", S.weight_norm_global),
               Swap(_SYN, "conv1d weight norm", S.weight_norm_global)),
        measure=S.measure_synth_reconverted,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("z_corr", "wave_max_abs"),
        prepare=S.prepare,
    ),
    Fix(
        name="conv_weight_layouts",
        title="Conv weight layouts: transpose, never reshape",
        seed="fix 9",
        seed_symptom="conv1d (O,I,K)->(O,K,I); conv_transpose1d (I,O,K)->(O,K,I); conv2d (O,I,H,W)->(O,H,W,I)",
        stage="converter (all convs)",
        why="A kernel reshaped to the port's layout instead of transposed keeps its shape and "
            "scrambles which input channel and tap each number belongs to (1x1 kernels excepted, "
            "where the two agree). Measured on the synthesizer (conv1d, transposed conv1d) and on "
            "RMVPE (conv2d, transposed conv2d), both reconverted.",
        **WAVE_CORR,
        swaps=(Swap(_SYN, "conv1d", S.conv_reshaped),
               Swap(_SYN, "conv1d weight norm", S.conv_reshaped),
               Swap(_SYN, "upsampler weight norm", S.conv_reshaped),
               Swap(_RMV, "conv2d", S.conv_reshaped),
               Swap(_RMV, "conv_transpose2d", S.conv_reshaped)),
        measure=S.measure_layouts,
        breaks=(SYNTH, F0), e2e=E2E.FAILS,
        extra=("textenc_corr", "rmvpe_salience_max_abs", "rmvpe_salience_corr"),
        prepare=_prepare_layouts,
    ),
    Fix(
        name="rmvpe_shortcut_no_bn",
        title="RMVPE ConvBlockRes: the 1x1 shortcut has no BatchNorm",
        seed="fix 10",
        seed_symptom="the shortcut conv has no BatchNorm",
        stage="RMVPE U-Net",
        why="The residual blocks' 3x3 convs are followed by BatchNorm, the 1x1 shortcut is not. A "
            "port that copies the pattern adds a BatchNorm there; with no weights for it in the "
            "checkpoint it keeps its init and, in MLX's default training mode, normalises with the "
            "batch statistics.",
        **SALIENCE_MAX_ABS,
        swaps=(Swap("rvclab.models.rmvpe.mlx:ConvBlockRes", "__call__", R.shortcut_with_batchnorm),),
        measure=R.measure_rmvpe,
        breaks=(F0,),
        extra=("salience_corr",),
        prepare=R.prepare,
    ),
    Fix(
        name="pytorch_gru",
        title="GRU with torch's equations",
        seed="fix 11",
        seed_symptom="max diff 0.26 -> 0.0039 with a PyTorch-compatible GRU",
        stage="RMVPE BiGRU",
        why="torch adds the hidden bias b_hn inside the reset-gated term, "
            "n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); mlx.nn.GRU's equations put it outside "
            "(summed into the input bias when torch weights are mapped onto it).",
        metric="gru_max_abs", worse=Worse.HIGHER, threshold=tol.FIX_GRU_MAX_ABS_MIN, goal=tol.RMVPE_GRU_MAX_ABS,
        swaps=(Swap("rvclab.models.rmvpe.gru", "_step", R.gru_step_bias_outside),
               Swap("rvclab.models.rmvpe.gru", "_step_compiled", R.gru_step_bias_outside_compiled)),
        measure=R.measure_gru,
        breaks=(F0,),
        extra=("gru_corr",),
        prepare=R.prepare,
    ),
    Fix(
        name="mel_reflect_pad",
        title="Mel front end: reflect padding",
        seed="fix 12",
        seed_symptom="reflect padding (MLX only has constant/edge pad)",
        stage="RMVPE mel",
        why="The STFT is centred with reflect padding and the mel frames are padded to a multiple "
            "of 32 by reflection too. MLX's pad offers constant and edge modes; edge padding "
            "changes the first and last frames and the padded tail the U-Net sees.",
        **SALIENCE_MAX_ABS,
        swaps=(Swap("rvclab.models.rmvpe.mlx", "reflect_pad", R.edge_pad, also_home=True),),
        measure=R.measure_rmvpe,
        breaks=(F0,),
        extra=("salience_corr",),
        prepare=R.prepare,
    ),
    Fix(
        name="mel_htk",
        title="Mel front end: HTK mel scale (librosa htk=True)",
        seed="fix 12",
        seed_symptom="HTK-style librosa filterbank",
        stage="RMVPE mel",
        why="RMVPE's filterbank is librosa's with htk=True; librosa's default (Slaney) scale places "
            "the 128 bands differently, so every harmonic lands in other bins.",
        **SALIENCE_MAX_ABS,
        swaps=(Swap("rvclab.models.rmvpe.mlx:MelSpectrogram", "__init__", R.mel_slaney),),
        measure=R.measure_rmvpe_fresh_mel,
        breaks=(F0,),
        extra=("salience_corr",),
        prepare=R.prepare,
    ),
    Fix(
        name="rmvpe_chunking",
        title="RMVPE input chunked at 32k frames, as upstream",
        seed="fix 12",
        seed_symptom="RMVPE input chunked at 32k frames",
        stage="RMVPE BiGRU",
        why="Upstream runs the network on independent chunks of 32000 frames (320 s), so the BiGRU "
            "state restarts at every chunk. A port that runs the whole input at once differs from "
            "the first chunk boundary on. Shown with both sides chunked at 64 frames (the same rule "
            "scaled to a 1 s clip).",
        **SALIENCE_MAX_ABS,
        swaps=(Swap("rvclab.models.rmvpe.mlx", "mel_to_salience", R.salience_unchunked),),
        measure=R.measure_rmvpe_chunked,
        breaks=(F0,),
        extra=("salience_corr",),
        prepare=R.prepare,
    ),
    Fix(
        name="faiss_openmp_macos",
        title="faiss + OpenMP on macOS: one thread",
        seed="fix 13",
        seed_symptom="faiss and torch's OpenMP in one process can crash on macOS (OMP_NUM_THREADS=1)",
        stage="index retrieval (macOS only)",
        why="faiss and torch each bring an OpenMP runtime; on macOS two in one process can abort or "
            "crash. The crash cannot happen on Linux, so it is not reproduced here: the metric is "
            "whether the guard sets OMP_NUM_THREADS=1 on a simulated macOS.",
        metric="guard_sets_one_thread", worse=Worse.LOWER, threshold=0.5, goal=1.0,
        swaps=(Swap("rvclab.runtime", "guard_faiss_openmp", H.guard_missing),
               Swap("rvclab.pipeline.index", "guard_faiss_openmp", H.guard_missing)),
        measure=H.measure_faiss_guard,
        breaks=(),
        reproducible=False,
        note="not reproducible on Linux: the guard is checked on a simulated macOS",
    ),
    Fix(
        name="rmvpe_mel_fmax",
        title="RMVPE's ~18% low F0: mel filterbank up to 8 kHz",
        seed="reported, no fix (RMVPE figures)",
        seed_symptom="F0 about 18% (~20 Hz) low, accepted as is (RMVPE section of the seed's report)",
        stage="RMVPE mel",
        why="RMVPE's 128 mel bands span 30-8000 Hz. A filterbank built with fmax = 22050 Hz (librosa "
            "default at 44.1 kHz) squeezes the 30-8000 Hz range into fewer, wider bands, so a "
            "harmonic lands in a lower band and a network trained on the right axis reads it low: "
            "here from 16% at 80 Hz to 30% at 400 Hz (notebook 02: -17.5% at a shipped clip's "
            "pitches). Measured network-independently: a tone's peak band on the port's mel, read "
            "on the correct axis.",
        metric="f0_readout_rel_err", worse=Worse.HIGHER,
        threshold=tol.FIX_F0_REL_ERR_MIN, goal=tol.MEL_READOUT_REL_ERR_MAX,
        swaps=(Swap("rvclab.models.rmvpe.mlx:MelSpectrogram", "__init__", R.mel_fmax_22050),),
        measure=R.measure_mel_readout,
        breaks=(F0,),
        extra=("f0_readout_signed",),
        note="the seed reported it without a cause; notebook 02 compares every candidate",
        prepare=R.prepare,
    ),
    # --- pitfalls the seed did not document ---------------------------------------------------
    Fix(
        name="sinegen_phase_fp16",
        title="SineGen phase accumulated in float16",
        seed=NOT_DOCUMENTED,
        seed_symptom="-",
        stage="synthesizer NSF source",
        why="The sine source integrates F0 into a phase with two cumulative sums over every audio "
            "sample. Run in float16 (a model cast to half precision for speed), the running phase "
            "reaches hundreds of cycles where float16 resolves only ~0.1 cycle: the sine drifts.",
        metric="wave_max_abs", worse=Worse.HIGHER, threshold=tol.FIX_WAVE_MAX_ABS_MIN, goal=tol.SYNTH_WAVE_MAX_ABS,
        swaps=(Swap("rvclab.models.synth.mlx.vocoder", "cumsum_acc", S.cumsum_fp16),),
        measure=S.measure_synth,
        breaks=(SYNTH,), e2e=E2E.FAILS,
        extra=("wave_corr",),
        prepare=S.prepare,
    ),
    Fix(
        name="hubert_gelu_tanh",
        title="HuBERT GELU: exact (erf), not the tanh approximation",
        seed=NOT_DOCUMENTED,
        seed_symptom="-",
        stage="HuBERT / ContentVec",
        why="fairseq and transformers use the exact erf GELU. The tanh approximation (mlx.nn's "
            "gelu_approx, common in ports) differs by up to ~1e-3 per activation; over 12 layers "
            "the content features move far past the parity goal.",
        metric="max_abs_rel", worse=Worse.HIGHER, threshold=tol.FIX_HUBERT_MAX_ABS_REL_MIN, goal=tol.HUBERT_MAX_ABS_REL,
        swaps=(Swap("rvclab.models.hubert.mlx:GELU", "__call__", H.gelu_tanh_method),
               Swap("rvclab.models.hubert.mlx:TransformerLayer", "__call__", H.layer_with_tanh_gelu)),
        measure=H.measure_hubert,
        breaks=(FEATURES,), e2e=E2E.WITHIN_GOAL,
        note="end to end it stays within the goal: the features move by far less than the waveform goal "
             "can see; the HuBERT stage goal is the check that catches it",
        extra=("cos_min",),
        prepare=H.prepare,
    ),
    Fix(
        name="rmvpe_batchnorm_train",
        title="RMVPE BatchNorm in eval mode (running statistics)",
        seed=NOT_DOCUMENTED,
        seed_symptom="-",
        stage="RMVPE U-Net",
        why="At inference BatchNorm must use the running mean and variance stored in the "
            "checkpoint. Left in training mode (MLX modules start in it), it normalises with the "
            "statistics of the current input instead.",
        **SALIENCE_MAX_ABS,
        swaps=(Swap("rvclab.models.rmvpe.mlx:BatchNorm2d", "__call__", R.batchnorm_batch_stats),
               Swap("rvclab.models.rmvpe.mlx:ConvBlockRes", "__call__", R.block_unfolded),
               Swap("rvclab.models.rmvpe.mlx:ResDecoderBlock", "__call__", R.decoder_unfolded)),
        measure=R.measure_rmvpe,
        breaks=(F0,),
        extra=("salience_corr",),
        prepare=R.prepare,
    ),
    Fix(
        name="rmvpe_cents_map",
        title="RMVPE decoding: the cents map padded like the salience",
        seed=NOT_DOCUMENTED,
        seed_symptom="-",
        stage="RMVPE decoding",
        why="Decoding averages the cents of 9 bins around the peak; the salience is padded by 4 bins "
            "each side so the window never leaves it, and the bin-to-cents map must be padded the "
            "same way. Padded at the end only, the map is read 4 bins (80 cents) too high: every F0 "
            "comes out 4.7% sharp while voicing stays right.",
        metric="f0_median_cents", worse=Worse.HIGHER, threshold=tol.FIX_F0_CENTS_MIN, goal=tol.F0_MEDIAN_CENTS_MAX,
        swaps=(Swap("rvclab.models.rmvpe.mlx", "to_local_average_cents", R.cents_map_padded_at_end),),
        measure=R.measure_decoding,
        breaks=(F0,),
        extra=("voicing_agreement",),
        prepare=R.prepare,
    ),
)
