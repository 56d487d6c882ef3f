"""Notebook 02 (RMVPE walkthrough) as data: every stage of the torch reference, one frame decoded
by hand, and a catalogue of plausible porting bugs with the F0 error each one gives.

The catalogue measures each bug against the correct torch reference in two ways:

* ``net_rel_err``: through the seeded network (what the bug does to *this* network's output); for
  network-internal bugs (GRU, BatchNorm, padding) the only measure without real weights, and it
  says nothing of the sign or size on the trained network;
* ``apparent_rel_err``: network-independent, for front-end and decoding bugs: where a harmonic at
  the clip's reference pitch (YIN) lands on the wrong mel axis, read back on the correct one; the
  decoding bugs act on a salience built from the reference pitch.

The plots are in :mod:`rvclab.views.rmvpe`.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import librosa
import numpy as np
import torch
import torch.nn.functional as F

from rvclab.audio import mel_filterbank
from rvclab.metrics import relative_f0_error, voicing_agreement
from rvclab.models.rmvpe.config import RmvpeConfig
from rvclab.models.rmvpe.parity import bump_salience, reference_pitch
from rvclab.models.rmvpe.parity import estimators as parity_estimators
from rvclab.models.rmvpe.torch import decode, pad_frames

SEED_REL_ERR = -0.18  # the seed's report: F0 about 18% (~20 Hz) low


def estimators(model_path=None):
    """(torch RMVPE, MLX RMVPE) on ``model_path`` (default: the seeded weights/rmvpe.pt)."""
    return parity_estimators(model_path)


def stages(est_t, audio: np.ndarray) -> dict:
    """Every intermediate of the torch reference for (N,) audio @ 16 kHz (batch 1, numpy).

    Keys: stft (513, T), mel (128, T), encoder [(C, T/2^i, 128/2^i)...], intermediate,
    decoder [...], cnn (3, T, 128), gru (T, 512), salience (T, 360), f0 (T,).
    """
    model, cfg = est_t.model, est_t.cfg
    x = torch.from_numpy(np.asarray(audio, np.float32))[None]
    out = {}
    with torch.no_grad():
        spec = torch.stft(x, cfg.n_fft, cfg.hop_length, cfg.win_length, est_t.mel.window,
                          center=True, pad_mode="reflect", return_complex=True).abs()
        mel = est_t.mel(x)
        n = mel.shape[-1]
        h = pad_frames(mel).transpose(-1, -2).unsqueeze(1)
        h, skips = model.unet.encoder(h)
        out["encoder"] = [s[0].numpy() for s in skips]
        h = model.unet.intermediate(h)
        out["intermediate"] = h[0].numpy()
        dec = []
        for i, layer in enumerate(model.unet.decoder.layers):
            h = layer(h, skips[-1 - i])
            dec.append(h[0].numpy())
        out["decoder"] = dec
        c = model.cnn(h)
        g = model.fc[0](c.transpose(1, 2).flatten(-2))
        sal = model.fc[3](model.fc[1](g))
    out.update(stft=spec[0].numpy(), mel=mel[0].numpy(), cnn=c[0, :, :n].numpy(),
               gru=g[0, :n].numpy(), salience=sal[0, :n].numpy())
    out["f0"] = decode(out["salience"], cfg.threshold, cfg)
    return out


def decode_frame(salience: np.ndarray, t: int, cfg: RmvpeConfig | None = None) -> dict:
    """Decode frame ``t`` of a (T, 360) salience step by step (numpy only), as a dict."""
    cfg = cfg or RmvpeConfig()
    row = salience[t]
    k = int(np.argmax(row))
    half = cfg.decode_window // 2
    lo, hi = max(k - half, 0), min(k + half + 1, cfg.n_classes)
    bins = np.arange(lo, hi)
    cents = cfg.bin_cents()[lo:hi]
    w = row[lo:hi]
    mean = float((w * cents).sum() / w.sum())
    voiced = bool(row.max() > cfg.threshold)
    return {"frame": t, "argmax_bin": k, "peak": float(row.max()), "bins": bins.tolist(),
            "weights": np.round(w, 4).tolist(), "bin_cents": np.round(cents, 1).tolist(),
            "weighted_cents": mean, "voiced": voiced,
            "hz": 10 * 2 ** (mean / 1200) if voiced else 0.0}


# --- bug catalogue ---------------------------------------------------------------------------
def _mel_centres(cfg: RmvpeConfig, fmin=None, fmax=None, htk=True) -> np.ndarray:
    return librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.fmin if fmin is None else fmin,
                                   fmax=cfg.fmax if fmax is None else fmax, htk=htk)[1:-1]


def apparent_pitch(f0: np.ndarray, cfg: RmvpeConfig, **wrong) -> np.ndarray:
    """Pitch read on the correct mel axis from harmonics placed on a wrong one (Hz)."""
    good = _mel_centres(cfg)
    bad = _mel_centres(cfg, **wrong)
    k = np.interp(f0, bad, np.arange(cfg.n_mels))
    return np.interp(k, np.arange(cfg.n_mels), good)


MEL_BUGS = {
    "mel: fmin 50 (f0_min passed as mel fmin)": {"fmin": 50.0},
    "mel: fmax 16000 (sr instead of sr/2)": {"fmax": 16000.0},
    "mel: fmax 22050 (fmax=None at 44.1 kHz)": {"fmax": 22050.0},
    "mel: Slaney scale (htk=False)": {"htk": False},
    "mel: fmin 0": {"fmin": 0.0},
}


def _mel_bug_model(est_t, wrong: dict):
    c = est_t.cfg
    fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, wrong.get("fmin", c.fmin),
                        wrong.get("fmax", c.fmax), wrong.get("htk", True))
    return torch.from_numpy(np.array(fb))


def _net_f0(est_t, audio, *, mel_basis=None, pad_mode="reflect", center=True, gru=None,
            bn_train=False):
    """F0 of the torch reference with one bug switched on (restored afterwards)."""
    model, cfg, melmod = est_t.model, est_t.cfg, est_t.mel
    x = torch.from_numpy(np.asarray(audio, np.float32))[None]
    saved = {k: v.clone() for k, v in model.fc[0].gru.state_dict().items()}
    try:
        if gru is not None:
            model.fc[0].gru.load_state_dict(gru(saved))
        if bn_train:
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
                    m.track_running_stats = False
        with torch.no_grad():
            spec = torch.stft(x, cfg.n_fft, cfg.hop_length, cfg.win_length, melmod.window,
                              center=center, pad_mode="reflect", return_complex=True).abs()
            basis = melmod.mel_basis if mel_basis is None else mel_basis
            mel = torch.log(torch.clamp(basis @ spec, min=cfg.clamp))
            n = mel.shape[-1]
            m = cfg.pad_multiple
            pad = m * ((n - 1) // m + 1) - n
            if pad_mode == "reflect":
                mel = F.pad(mel, (0, pad), mode="reflect")
            else:
                mel = F.pad(mel, (0, pad), value=float(np.log(cfg.clamp)))
            sal = model(mel)[0, :n].numpy()
    finally:
        model.fc[0].gru.load_state_dict(saved)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.track_running_stats = True
        model.eval()
    f0 = decode(sal, cfg.threshold, cfg)
    if not center:  # frames start 512 samples (3.2 frames) later; keep the count for comparison
        f0 = np.pad(f0, (0, len(audio) // cfg.hop_length + 1 - len(f0)))
    return f0


def _swap_rz(sd):
    out = {}
    for k, v in sd.items():
        h = v.shape[0] // 3
        out[k] = torch.cat([v[h:2 * h], v[:h], v[2 * h:]])
    return out


def _naive_bias(sd):
    """b_hn moved outside the reset gate (all of bias_hh summed into the input bias)."""
    out = dict(sd)
    for k in sd:
        if k.startswith("bias_hh"):
            h = sd[k].shape[0] // 3
            ih = k.replace("bias_hh", "bias_ih")
            out[ih] = sd[ih] + torch.cat([torch.zeros(2 * h), sd[k][2 * h:]])
            out[k] = torch.cat([sd[k][:2 * h], torch.zeros(h)])
    return out


def _decode_bug(salience, cfg, bug: str):
    if bug == "offset":  # bin 0 at 0 cents instead of 1997.38
        return decode(salience, cfg.threshold, replace(cfg, cents_offset=0.0))
    if bug == "unpadded":  # padded salience indexed into the unpadded 360-entry map
        return decode(salience, cfg.threshold, replace(cfg, cents_offset=cfg.cents_offset - 80))
    if bug == "argmax":  # no local average
        return decode(salience, cfg.threshold, replace(cfg, decode_window=1))
    if bug == "wide":  # weighted mean over the whole 360 bins
        return decode(salience, cfg.threshold, replace(cfg, decode_window=719))
    raise ValueError(bug)


def rel_err(f0_test: np.ndarray, f0_ref: np.ndarray) -> float:
    """Median (test - ref) / ref on frames voiced in both (negative: F0 too low)."""
    return relative_f0_error(f0_test, f0_ref)


def bug_table(est_t, audio: np.ndarray) -> list[dict]:
    """One row per bug: net_rel_err (seeded network), apparent_rel_err (network-independent)."""
    cfg = est_t.cfg
    ref = _net_f0(est_t, audio)
    yin = reference_pitch(audio)
    voiced = yin[(yin > 60) & (yin < 500)]
    bump = bump_salience(yin, cfg)
    bump_ref = decode(bump, cfg.threshold, cfg)
    rows = [{"bug": "seed's report", "net_rel_err": None, "apparent_rel_err": SEED_REL_ERR,
             "voicing_agreement": None}]

    def add(name, f0, apparent):
        rows.append({"bug": name, "net_rel_err": round_display(rel_err(f0, ref), 4),
                     "apparent_rel_err": None if apparent is None else round_display(apparent, 4),
                     "voicing_agreement": round_display(voicing_agreement(f0, ref), 4)})

    for name, wrong in MEL_BUGS.items():
        app = float(np.median(apparent_pitch(voiced, cfg, **wrong) / voiced - 1))
        with warnings.catch_warnings():  # librosa warns of empty filters for some wrong ranges
            warnings.simplefilter("ignore")
            basis = _mel_bug_model(est_t, wrong)
        add(name, _net_f0(est_t, audio, mel_basis=basis), app)
    add("padding: constant instead of reflect (frames)", _net_f0(est_t, audio, pad_mode="zeros"),
        None)
    add("padding: STFT not centred", _net_f0(est_t, audio, center=False), None)
    add("GRU: r and z gates swapped", _net_f0(est_t, audio, gru=_swap_rz), None)
    add("GRU: b_hn outside the reset gate", _net_f0(est_t, audio, gru=_naive_bias), None)
    add("BatchNorm: batch statistics (train mode)", _net_f0(est_t, audio, bn_train=True), None)
    sal = stages_salience(est_t, audio)
    for name, key in (("cents: offset 1997.38 dropped", "offset"),
                      ("cents: map not padded (4-bin shift)", "unpadded"),
                      ("decoding: argmax only (window 1)", "argmax"),
                      ("decoding: mean over all 360 bins", "wide")):
        app = rel_err(_decode_bug(bump, cfg, key), bump_ref)
        add(name, _decode_bug(sal, cfg, key), app)
    return rows


def stages_salience(est_t, audio) -> np.ndarray:
    return est_t.salience(np.asarray(audio, np.float32))


def closest_to_seed(rows: list[dict]) -> dict:
    """The bug whose (apparent, else network) relative error is nearest :data:`SEED_REL_ERR`."""
    def err(r):
        v = r["apparent_rel_err"] if r["apparent_rel_err"] is not None else r["net_rel_err"]
        return abs(v - SEED_REL_ERR)

    return min((r for r in rows[1:]), key=err)


def round_display(v: float, digits: int) -> float:
    """``v`` rounded to ``digits``, never -0.0 (a tiny negative error rounds to 0.0, not -0.0)."""
    return round(v, digits) + 0.0


def rounded(rows: list[dict], digits: int = 3) -> list[dict]:
    """Rows with floats rounded for display (no negative zero)."""
    return [{k: round_display(v, digits) if isinstance(v, float) else v for k, v in r.items()}
            for r in rows]
