"""RMVPE side of :mod:`rvclab.fixes.registry`: buggy variants of the MLX port and the measurements.

Bench: the seeded RMVPE (weights folder of :mod:`rvclab.paths`) on the first half second of a
shipped clip at 16 kHz (51 frames, padded to 64). Seeded weights give a salience that rarely passes
the 0.03 voicing threshold, so the network-internal fixes are measured on the salience itself
(max abs against the torch reference; the parity goal is
:data:`~rvclab.tolerances.RMVPE_SALIENCE_MAX_ABS`). The mel-range fix (the seed's low F0) is
measured network-independently: tones of known pitch through the port's mel front end, their
peak band read on the correct mel axis.
"""

from __future__ import annotations

import functools
import warnings
from types import SimpleNamespace

import librosa
import mlx.core as mx
import mlx.nn as nn
import numpy as np

from rvclab import metrics, paths, weights
from rvclab.audio import SAMPLE_RATE_16K, clip, load_audio, mel_filterbank
from rvclab.mlx import ops
from rvclab.models.rmvpe.config import RmvpeConfig
from rvclab.models.rmvpe.io import load_rmvpe
from rvclab.models.rmvpe.parity import (
    bump_salience,
    decoders_compare,
    estimators,
    reference_pitch,
)
from rvclab.runtime import import_mlx

CLIP = "alsa_front_female_48k"
SECONDS = 0.5
DEMO_CHUNK = 32  # frames per chunk in the chunking demo (upstream: 32000)
TONES_HZ = tuple(float(f) for f in np.geomspace(80.0, 400.0, 12))  # readout test pitches
WRONG_FMAX = 22050.0  # librosa's default fmax at 44.1 kHz
READOUT_HALF = 3  # bands each side of the peak in the readout centroid (the tone's main lobe)


# --- buggy variants -----------------------------------------------------------------------------
def _batch_norm(x, bn=None):
    """Normalise with the statistics of ``x`` itself (over every axis but channels)."""
    axes = tuple(range(x.ndim - 1))
    mean, var = mx.mean(x, axis=axes), mx.var(x, axis=axes)
    y = (x - mean) * mx.rsqrt(var + (bn.eps if bn is not None else 1e-5))
    return y if bn is None else y * bn.weight + bn.bias


def shortcut_with_batchnorm(original):
    """ConvBlockRes.__call__ with a BatchNorm (init weights, batch statistics) on the shortcut."""
    def __call__(self, x):
        skip = _batch_norm(self.shortcut(x)) if self.is_shortcut else x
        c1, c2 = self.conv[0], self.conv[3]
        (w1, b1), (w2, b2) = self.folded()
        y = nn.relu(ops.conv2d(x, w1, b1, padding=c1.padding))
        y = nn.relu(ops.conv2d(y, w2, b2, padding=c2.padding))
        return y + skip

    return __call__


def batchnorm_batch_stats(original):
    """BatchNorm2d.__call__ in training mode: statistics of the current input."""

    def __call__(self, x):
        return _batch_norm(x, self)

    return __call__


def block_unfolded(original):
    """ConvBlockRes.__call__ calling each layer (so each BatchNorm runs as a module)."""

    def __call__(self, x):
        skip = self.shortcut(x) if self.is_shortcut else x
        y = x
        for layer in self.conv:
            y = layer(y)
        return y + skip

    return __call__


def decoder_unfolded(original):
    """ResDecoderBlock.__call__ with the upsampling conv and its BatchNorm run separately."""
    def __call__(self, x, skip):
        up, bn, relu = self.conv1
        x = mx.concatenate([relu(bn(up(x))), skip], axis=-1)
        for block in self.conv2:
            x = block(x)
        return x

    return __call__


def _gru_step_bias_outside(h, gi, w_hh_t, b_hh):
    """A GRU step with the hidden bias b_hn outside the reset gate (mlx.nn.GRU's equations with
    torch's biases summed into the input bias)."""
    hidden = h.shape[-1]
    gh = h @ w_hh_t
    gb = gi + b_hh
    r = mx.sigmoid(gb[..., :hidden] + gh[..., :hidden])
    z = mx.sigmoid(gb[..., hidden:2 * hidden] + gh[..., hidden:2 * hidden])
    n = mx.tanh(gb[..., 2 * hidden:] + r * gh[..., 2 * hidden:])
    return n + z * (h - n)


def gru_step_bias_outside(original):
    return _gru_step_bias_outside


def gru_step_bias_outside_compiled(original):
    return mx.compile(_gru_step_bias_outside)


def edge_pad(original):
    """reflect_pad replaced by MLX's edge padding (repeat the end value)."""
    def pad(x, axis, left, right):
        widths = [(0, 0)] * x.ndim
        widths[axis % x.ndim] = (left, right)
        return mx.pad(x, widths, mode="edge")

    return pad


def _mel_init(original, **wrong):
    def __init__(self, cfg=None):
        original(self, cfg)
        c = self.cfg
        args = {"fmin": c.fmin, "fmax": c.fmax, "htk": True, **wrong}
        with warnings.catch_warnings():  # librosa warns of empty filters for a wrong range
            warnings.simplefilter("ignore")
            fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, args["fmin"], args["fmax"],
                                args["htk"])
        self.mel_basis_t = mx.array(np.ascontiguousarray(fb.T))

    return __init__


def mel_slaney(original):
    """MelSpectrogram built on librosa's default Slaney mel scale (htk=False)."""
    return _mel_init(original, htk=False)


def mel_fmax_22050(original):
    """MelSpectrogram whose bands span 30-22050 Hz instead of 30-8000 Hz."""
    return _mel_init(original, fmax=WRONG_FMAX)


def salience_unchunked(original):
    """mel_to_salience running the whole input in one network call (chunk size ignored)."""

    def mel_to_salience(model, mel, chunk_frames=None, pad_mode="reflect"):
        from rvclab.models.rmvpe.mlx import pad_frames

        n = mel.shape[1]
        return model(pad_frames(mel, model.cfg.pad_multiple, pad_mode))[:, :n]

    return mel_to_salience


# --- the bench ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _bench(weights_dir: str):
    est_t, est_m = estimators()
    audio = load_audio(clip(CLIP), SAMPLE_RATE_16K)[:int(SECONDS * SAMPLE_RATE_16K)]
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    return SimpleNamespace(est_t=est_t, est_m=est_m, audio=audio, ref=est_t.salience(audio),
                           ref_chunked=est_t.salience(audio, DEMO_CHUNK))


def bench():
    return _bench(str(paths.weights_dir()))


def prepare():
    """Build the bench and its derived inputs now (see :func:`rvclab.fixes.registry.reintroduce`): the
    estimators are cached process-wide, so they must never be built while a bug is in."""
    bench()
    _gru_input(str(paths.weights_dir()))
    _bump(str(paths.weights_dir()))


def _salience_figures(ref, out) -> dict:
    return {"salience_max_abs": metrics.max_abs(ref, out), "salience_corr": metrics.corr(ref, out),
            "curve_salience": np.abs(out.astype(np.float64) - ref).max(axis=1)}


def measure_rmvpe() -> dict:
    """The cached MLX RMVPE as the code stands, against the torch salience."""
    b = bench()
    return _salience_figures(b.ref, b.est_m.salience(b.audio))


def measure_rmvpe_fresh_mel() -> dict:
    """As :func:`measure_rmvpe` with the mel front end built anew (it is built at init)."""
    from rvclab.models.rmvpe.mlx import RMVPE

    b = bench()
    return _salience_figures(b.ref, RMVPE(b.est_m.model).salience(b.audio))


def measure_rmvpe_reconverted() -> dict:
    """The RMVPE state dict converted by the converter as it stands, run on the bench clip:
    ``rmvpe_salience_max_abs`` / ``rmvpe_salience_corr`` against the torch salience."""
    from rvclab.models.rmvpe.mlx import RMVPE

    b = bench()
    out = RMVPE(load_rmvpe(weights.default_rmvpe(), "mlx")).salience(b.audio)
    return {"rmvpe_salience_max_abs": metrics.max_abs(b.ref, out),
            "rmvpe_salience_corr": metrics.corr(b.ref, out)}


def measure_rmvpe_chunked() -> dict:
    """Both sides asked for chunks of DEMO_CHUNK frames."""
    b = bench()
    return _salience_figures(b.ref_chunked, b.est_m.salience(b.audio, DEMO_CHUNK))


@functools.lru_cache(maxsize=2)
def _gru_input(weights_dir: str) -> np.ndarray:
    """The BiGRU's input (1, T, 384) for the bench clip, from the port (at parity)."""
    from rvclab.models.rmvpe.mlx import pad_frames

    mx = import_mlx()
    b = bench()
    m = b.est_m
    feats = m.model.features(pad_frames(m.mel(mx.array(b.audio)[None]), m.cfg.pad_multiple))
    mx.eval(feats)
    return np.array(feats)


def measure_gru() -> dict:
    """The BiGRU alone on the same input: torch's nn.GRU vs the port's GRU as it stands."""
    import torch

    mx = import_mlx()
    b = bench()
    x = _gru_input(str(paths.weights_dir()))
    with torch.no_grad():
        ref = b.est_t.model.fc[0](torch.from_numpy(x)).numpy()
    out = b.est_m.model.fc[0](mx.array(x))
    mx.eval(out)
    out = np.array(out)
    return {"gru_max_abs": metrics.max_abs(ref, out), "gru_corr": metrics.corr(ref, out),
            "curve_gru": np.abs(out.astype(np.float64) - ref)[0].max(axis=1)}


def tones(sr: int = 16000, seconds: float = 0.25) -> np.ndarray:
    """(len(TONES_HZ), N) pure tones at TONES_HZ, amplitude 0.5."""
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * np.asarray(TONES_HZ)[:, None] * t)).astype(np.float32)


def mel_readout(mel_frames: np.ndarray, cfg) -> np.ndarray:
    """Pitch (Hz) read from log-mel frames (B, 128) on the CORRECT HTK axis: centroid of the
    magnitudes over the peak band +- READOUT_HALF bands, mapped through the correct centres."""
    centres = librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.fmin, fmax=cfg.fmax, htk=True)[1:-1]
    mag = np.exp(mel_frames.astype(np.float64))
    k = np.argmax(mag, axis=1)
    out = []
    for row, i in zip(mag, k):
        lo, hi = max(i - READOUT_HALF, 0), min(i + READOUT_HALF + 1, len(row))
        idx = np.arange(lo, hi)
        out.append(np.interp(np.sum(idx * row[lo:hi]) / np.sum(row[lo:hi]), np.arange(len(row)),
                             centres))
    return np.asarray(out)


def measure_mel_readout() -> dict:
    """Tones through the port's mel front end (built as the code stands), read on the correct
    axis: median relative pitch error (signed and absolute)."""
    from rvclab.models.rmvpe.mlx import MelSpectrogram

    mx = import_mlx()
    cfg = RmvpeConfig()
    mel = np.array(MelSpectrogram(cfg)(mx.array(tones())))  # (B, T, 128)
    read = mel_readout(mel[:, mel.shape[1] // 2], cfg)
    per_tone = read / np.asarray(TONES_HZ) - 1
    rel = float(np.median(per_tone))
    return {"f0_readout_rel_err": abs(rel), "f0_readout_signed": rel,
            "f0_readout_per_tone": [float(v) for v in per_tone]}


# --- decoding: the cents map padded like the salience --------------------------------------------
def cents_map_padded_at_end(original):
    """to_local_average_cents with the cents map padded at the end only: the window indices,
    which count the salience's left padding, read the map 4 bins (80 cents) too high."""

    def to_local_average_cents(salience, threshold=RmvpeConfig.threshold, cfg=None):
        cfg = cfg or RmvpeConfig()
        half = cfg.decode_window // 2
        mapping = mx.array(np.pad(cfg.bin_cents(), (0, 2 * half)).astype(np.float32))  # not centred
        padded = mx.pad(salience, [(0, 0), (half, half)])
        idx = (mx.argmax(salience, axis=1) + half)[:, None] + mx.arange(-half, half + 1)[None, :]
        local = mx.take_along_axis(padded, idx, axis=1)
        weights = local.sum(axis=1)
        out = (local * mapping[idx]).sum(axis=1) / mx.where(weights > 0, weights, 1.0)
        return mx.where(salience.max(axis=1) > threshold, out, 0.0)

    return to_local_average_cents


@functools.lru_cache(maxsize=2)
def _bump(weights_dir: str) -> np.ndarray:
    """An all-voiced salience (T, 360): a Gaussian bump at the bench clip's YIN pitch."""
    return bump_salience(reference_pitch(bench().audio))


def measure_decoding() -> dict:
    """Both decoders on the same all-voiced salience: F0 cents error on frames voiced in both."""
    f0_t, f0_m = decoders_compare(_bump(str(paths.weights_dir())))
    err = metrics.cents_error(f0_m, f0_t)
    return {"f0_median_cents": err["median"], "f0_p99_cents": err["p99"],
            "voicing_agreement": metrics.voicing_agreement(f0_t, f0_m),
            "curve_cents": np.abs(metrics.cents(np.maximum(f0_m, 1e-3), np.maximum(f0_t, 1e-3)))}
