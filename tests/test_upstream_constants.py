"""Signal constants, filterbanks and framing pinned to upstream's values, by value.

Both backends read their constants from backend-neutral modules (``rvclab/audio.py``,
``rvclab/models/<family>/config.py``): a wrong value there is wrong in both, and no parity test can
see it. Here each value is written out as upstream has it (RVC WebUI's ``rmvpe.py``, ``models.py``
and ``configs/``; fairseq's HuBERT base; torchcrepe 0.0.24; torchfcpe 0.0.4's bundled config), the
mel filterbanks are recomputed from the mel-scale formulas in numpy (no librosa), and where the
torchcrepe / torchfcpe packages import, their own constants and arrays are compared as well.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from rvclab import audio
from rvclab.f0 import F0_MAX, F0_MIN
from rvclab.models import f0_packages
from rvclab.models.crepe import config as crepe
from rvclab.models.fcpe import config as fcpe
from rvclab.models.hubert.config import V1_LAYER, V2_LAYER, HubertConfig
from rvclab.models.rmvpe.config import RmvpeConfig
from rvclab.models.synth import config as synth
from rvclab.models.synth import noise

CENTS_OFFSET = 1997.3794084376191  # CREPE / RMVPE: cents (re 10 Hz) of bin 0, ~31.7 Hz


# --- the mel filterbank, from the formulas -------------------------------------------------------
def hz_to_mel(hz, htk: bool):
    """HTK: 2595 log10(1 + f/700). Slaney: linear below 1 kHz (200/3 Hz per mel), log above."""
    hz = np.asarray(hz, np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    step, brk = 200.0 / 3.0, 1000.0
    log_step = np.log(6.4) / 27.0
    return np.where(hz < brk, hz / step, brk / step + np.log(np.maximum(hz, brk) / brk) / log_step)


def mel_to_hz(mel, htk: bool):
    mel = np.asarray(mel, np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    step, brk = 200.0 / 3.0, 1000.0
    log_step = np.log(6.4) / 27.0
    return np.where(mel < brk / step, mel * step, brk * np.exp(log_step * (mel - brk / step)))


def reference_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool):
    """(n_mels, n_fft//2 + 1) float64 triangles on n_mels + 2 mel-spaced edges, each scaled to
    unit area in Hz (2 / (right edge - left edge): Slaney's normalisation)."""
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft  # Hz of each FFT bin
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise, fall = (bins - lo) / (mid - lo), (hi - bins) / (hi - mid)
    return np.maximum(0.0, np.minimum(rise, fall)) * (2.0 / (hi - lo))


def assert_filterbank(got, want):
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * want.max())


def test_mel_scale_formulas_round_trip_and_differ():
    hz = np.array([0.0, 30.0, 700.0, 1000.0, 4000.0, 8000.0])
    for htk in (True, False):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz, htk), htk), hz, atol=1e-9)
    assert hz_to_mel(700.0, True) == pytest.approx(2595.0 * np.log10(2.0))
    assert hz_to_mel(1000.0, False) == pytest.approx(15.0)
    # the two scales give filterbanks far apart: the check below can tell them apart
    htk = reference_filterbank(16000, 1024, 128, 30.0, 8000.0, True)
    slaney = reference_filterbank(16000, 1024, 128, 30.0, 8000.0, False)
    assert np.abs(htk - slaney).max() > 0.1 * htk.max()


def test_mel_filterbank_matches_the_formula():
    for args in ((16000, 1024, 128, 30.0, 8000.0, True), (16000, 1024, 128, 0.0, 8000.0, False),
                 (48000, 2048, 80, 0.0, 24000.0, True)):
        assert_filterbank(audio.mel_filterbank(*args), reference_filterbank(*args))


# --- RMVPE (RVC WebUI infer/lib/rmvpe.py) ---------------------------------------------------------
def test_rmvpe_front_end_and_decoding_constants():
    c = RmvpeConfig()
    assert (c.sample_rate, c.hop_length, c.n_fft, c.win_length) == (16000, 160, 1024, 1024)
    assert (c.n_mels, c.fmin, c.fmax, c.clamp) == (128, 30.0, 8000.0, 1e-5)
    assert (c.threshold, c.n_classes, c.cents_step, c.cents_offset) == (0.03, 360, 20.0, CENTS_OFFSET)
    assert (c.pad_multiple, c.chunk_frames, c.decode_window) == (32, 32000, 9)
    assert (c.n_blocks, c.n_gru, c.kernel_size, c.en_de_layers, c.inter_layers) == (4, 1, (2, 2), 5, 4)
    assert (c.in_channels, c.en_out_channels, c.gru_hidden) == (1, 16, 256)
    np.testing.assert_array_equal(c.bin_cents(), 20.0 * np.arange(360) + CENTS_OFFSET)
    assert 10 * 2 ** (c.bin_cents()[0] / 1200) == pytest.approx(31.7, abs=0.01)


def test_rmvpe_filterbank_in_both_backends_is_htk_30_8000():
    from rvclab.models.rmvpe import mlx as M
    from rvclab.models.rmvpe import torch as T

    want = reference_filterbank(16000, 1024, 128, 30.0, 8000.0, True)
    assert_filterbank(T.MelSpectrogram().mel_basis.numpy(), want)
    assert_filterbank(np.array(M.MelSpectrogram().mel_basis_t).T, want)


def test_rmvpe_cents_mapping_is_upstreams():
    from rvclab.models.rmvpe.torch import cents_mapping

    want = np.pad(20 * np.arange(360) + CENTS_OFFSET, (4, 4))  # upstream: 360 bins + 4 zeros each side
    np.testing.assert_allclose(cents_mapping(), want, rtol=1e-7)


# --- CREPE (torchcrepe 0.0.24, as RVC calls it) ---------------------------------------------------
def test_crepe_constants():
    assert (crepe.WINDOW, crepe.PITCH_BINS, crepe.CENTS_PER_BIN) == (1024, 360, 20)
    assert crepe.CENTS_OFFSET == CENTS_OFFSET
    assert audio.SAMPLE_RATE_16K == 16000 and audio.HOP_16K == 160
    assert (crepe.STD_FLOOR, crepe.PERIODICITY_THRESHOLD, crepe.FILTER_WIN) == (1e-10, 0.1, 3)
    assert crepe.BN_EPS == float(np.float32(1e-3))
    assert crepe.CHANNELS["full"] == (1024, 128, 128, 128, 256, 512)
    assert crepe.CHANNELS["tiny"] == (128, 16, 16, 16, 32, 64)
    assert crepe.KERNELS == (512,) + (64,) * 5 and crepe.STRIDES == (4,) + (1,) * 5


def test_crepe_frames_by_hand():
    """Centred 1024-sample frames every 160 samples, zero-mean, unit (unbiased) std."""
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    fr = crepe.frames(x)
    assert fr.shape == (1000 // 160 + 1, 1024)
    padded = np.concatenate([np.zeros(512), x, np.zeros(512)])
    for i in (0, 3, 6):
        raw = padded[160 * i:160 * i + 1024]
        want = (raw - raw.mean()) / raw.std(ddof=1)
        np.testing.assert_allclose(fr[i], want, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def torchcrepe():
    try:
        return f0_packages.import_torchcrepe()
    except Exception as exc:  # not installed, or its dependencies do not import here
        pytest.skip(f"torchcrepe does not import here ({exc}); its constants are pinned by value above")


def test_crepe_matches_torchcrepe(torchcrepe, monkeypatch):
    assert torchcrepe.SAMPLE_RATE == audio.SAMPLE_RATE_16K
    assert torchcrepe.WINDOW_SIZE == crepe.WINDOW and torchcrepe.PITCH_BINS == crepe.PITCH_BINS
    assert torchcrepe.CENTS_PER_BIN == crepe.CENTS_PER_BIN
    monkeypatch.setattr(torchcrepe.convert, "dither", lambda cents: cents)  # its grid, undithered
    grid = torchcrepe.convert.bins_to_cents(torch.arange(360, dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(grid, crepe.CENTS_PER_BIN * np.arange(360) + crepe.CENTS_OFFSET)
    x = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    want = next(torchcrepe.preprocess(torch.from_numpy(x)[None], 16000, 160, None, "cpu", True))
    np.testing.assert_allclose(crepe.frames(x), want.numpy(), rtol=1e-5, atol=1e-5)


# --- FCPE (torchfcpe 0.0.4, bundled fcpe_c_v001) ---------------------------------------------------
def test_fcpe_constants_and_filterbank():
    assert (fcpe.SAMPLE_RATE, fcpe.N_FFT, fcpe.WIN, fcpe.HOP, fcpe.N_MELS) == (16000, 1024, 1024, 160, 128)
    assert (fcpe.FMIN, fcpe.FMAX, fcpe.LOG_CLAMP, fcpe.MAG_EPS) == (0.0, 8000.0, 1e-5, 1e-9)
    assert fcpe.DEFAULT_THRESHOLD == 0.006
    assert (fcpe.CENT_F0_MIN, fcpe.CENT_F0_MAX, fcpe.OUT_DIMS) == (32.7, 1975.5, 360)
    assert (fcpe.HIDDEN, fcpe.N_LAYERS, fcpe.DW_KERNEL) == (512, 6, 31)
    assert_filterbank(fcpe.mel_basis(), reference_filterbank(16000, 1024, 128, 0.0, 8000.0, False))


@pytest.fixture(scope="module")
def bundled_fcpe():
    try:
        torchfcpe = f0_packages.import_torchfcpe()
        return torchfcpe.spawn_bundled_infer_model(device="cpu")
    except Exception as exc:  # not installed, or its dependencies do not import here
        pytest.skip(f"torchfcpe does not import here ({exc}); its constants are pinned by value above")


def test_fcpe_matches_torchfcpe(bundled_fcpe):
    from rvclab.models.fcpe.mlx import log_mel

    mel = bundled_fcpe.args_dict["mel"]
    assert (mel["sr"], mel["n_fft"], mel["win_size"], mel["hop_size"], mel["num_mels"]) == (
        fcpe.SAMPLE_RATE, fcpe.N_FFT, fcpe.WIN, fcpe.HOP, fcpe.N_MELS)
    assert (mel["fmin"], mel["fmax"]) == (fcpe.FMIN, fcpe.FMAX)
    assert bundled_fcpe.get_model_f0_range() == {"f0_min": fcpe.CENT_F0_MIN, "f0_max": fcpe.CENT_F0_MAX}
    threshold = inspect.signature(type(bundled_fcpe).infer).parameters["threshold"].default
    assert threshold == fcpe.DEFAULT_THRESHOLD
    extractor = bundled_fcpe.wav2mel.mel_extractor
    assert extractor.clip_val == fcpe.LOG_CLAMP
    np.testing.assert_array_equal(fcpe.mel_basis(), extractor.mel_basis.numpy())
    # the MLX front end (its own framing, window and magnitude) against torchfcpe's Wav2Mel
    t = np.arange(5000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(2).standard_normal(5000)
    x = x.astype(np.float32)  # the noise floor keeps every band away from the log clamp
    want = bundled_fcpe.wav2mel(torch.from_numpy(x)[None, :, None], 16000)[0].numpy()
    got = np.array(log_mel(x, fcpe.mel_basis()))[0]
    assert got.shape == want.shape == (5000 // 160 + 1, 128)
    assert np.abs(got - want).max() < 1e-4


# --- HuBERT base (fairseq) -------------------------------------------------------------------------
def test_hubert_front_end_and_layers():
    c = HubertConfig()
    assert c.conv_layers == ((512, 10, 5), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 3, 2),
                             (512, 2, 2), (512, 2, 2))
    assert (c.sample_rate, c.hop, c.receptive_field) == (16000, 320, 400)
    assert audio.HUBERT_HOP_16K == 320 and audio.HUBERT_FRAME_RATE == 50 and audio.F0_FRAME_RATE == 100
    assert (c.embed_dim, c.ffn_dim, c.num_layers, c.num_heads, c.final_dim) == (768, 3072, 12, 12, 256)
    assert (c.conv_pos, c.conv_pos_groups, c.conv_bias, c.extractor_mode) == (128, 16, False, "default")
    assert (c.layer_norm_first, c.layer_norm_eps, c.activation, c.normalize) == (False, 1e-5, "gelu", False)
    assert (V1_LAYER, V2_LAYER) == (9, 12)
    assert [c.num_frames(n) for n in (399, 400, 719, 720, 16000)] == [0, 1, 1, 2, 49]


# --- the synthesizer (RVC WebUI infer/lib/infer_pack) ---------------------------------------------
UPSTREAM_PRESETS = {  # configs/v1/*.json, configs/v2/*.json: (upsample rates, kernels, hop, filter_length)
    "v1-32k": ((10, 4, 2, 2, 2), (16, 16, 4, 4, 4), 320, 1024),
    "v1-40k": ((10, 10, 2, 2), (16, 16, 4, 4), 400, 2048),
    "v1-48k": ((10, 6, 2, 2, 2), (16, 16, 4, 4, 4), 480, 2048),
    "v2-32k": ((10, 8, 2, 2), (20, 16, 4, 4), 320, 1024),
    "v2-40k": ((10, 10, 2, 2), (16, 16, 4, 4), 400, 2048),
    "v2-48k": ((12, 10, 2, 2), (24, 20, 4, 4), 480, 2048),
}


@pytest.mark.parametrize("name", sorted(UPSTREAM_PRESETS))
def test_synth_presets_are_upstreams(name):
    rates, kernels, hop, filter_length = UPSTREAM_PRESETS[name]
    c = synth.SynthConfig.preset(name)
    assert (c.upsample_rates, c.upsample_kernel_sizes, c.hop_length) == (rates, kernels, hop)
    assert c.spec_channels == filter_length // 2 + 1 and c.sr == hop * 100
    assert c.to_config_list()[1:12] == [32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11],
                                        [[1, 3, 5], [1, 3, 5], [1, 3, 5]]]
    assert c.to_config_list()[13:17] == [512, list(kernels), 109, 256]
    assert c.phone_dim == {"v1": 256, "v2": 768}[name[:2]]


def test_synth_constants():
    assert (synth.SINE_AMP, synth.SINE_NOISE_STD, synth.VOICED_THRESHOLD) == (0.1, 0.003, 0.0)
    assert noise.Z_P_SCALE == 0.66666 and noise.HARMONIC_NUM == 0
    assert (synth.LRELU_SLOPE, synth.POST_LRELU_SLOPE) == (0.1, 0.01)
    assert (synth.WINDOW_SIZE, synth.MASK_FILL, synth.LAYER_NORM_EPS) == (10, -1e4, 1e-5)
    assert (synth.FLOW_COUPLINGS, synth.FLOW_KERNEL_SIZE, synth.FLOW_DILATION_RATE,
            synth.FLOW_LAYERS) == (4, 5, 1, 3)
    assert synth.PITCH_BINS == 256 and (F0_MIN, F0_MAX) == (50.0, 1100.0)
    assert synth.F0_MEL_MIN == pytest.approx(1127 * np.log(1 + 50 / 700))
    assert synth.F0_MEL_MAX == pytest.approx(1127 * np.log(1 + 1100 / 700))
    np.testing.assert_array_equal(synth.coarse_pitch(np.array([0.0, 50.0, 1100.0, 5000.0])),
                                  [1, 1, 255, 255])


def test_synth_sine_sources_use_the_constants():
    from rvclab.models.synth.mlx import vocoder as mv
    from rvclab.models.synth.torch import vocoder as tv

    for gen in (tv.SineGen(48000), mv.SineGen(48000)):
        assert (gen.sine_amp, gen.noise_std, gen.voiced_threshold, gen.dim) == (0.1, 0.003, 0.0, 1)
