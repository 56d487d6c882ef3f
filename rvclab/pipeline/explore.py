"""Voice conversion, viewed: both backends on one input, their parity row, an index from clips,
and the stage swap that says where two runs part. numpy in, dicts out; no UI (the plots and
the explorer widget are in :mod:`rvclab.views.widgets`, notebook 05 uses both).

Every run here passes the same ``noise_seed`` and chunking to both backends, so the torch and
MLX waveforms compare sample by sample.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rvclab import metrics
from rvclab.audio import SAMPLE_RATE_16K, data_clips, load_audio
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.index import build_index, load_index, write_index
from rvclab.pipeline.networks import VoiceModel, embedder, features
from rvclab.profiles import get_profile
from rvclab.tolerances import E2E_SPEC_CORR_MIN, E2E_WAVE_CORR_MIN
from rvclab.voices import default_voice as seeded_voice
from rvclab.voices import seeded_voices

DEFAULT_VOICE = "voice_v2_32k.pth"  # the cheapest synthesizer of the seeded v2 voices
_DEFAULT = get_profile()


@dataclass
class Params:
    """The explorer's knobs, named as :func:`rvclab.pipeline.conversion.convert_voice` names them."""

    f0_method: str = _DEFAULT.default_f0_method
    f0_up_key: int = 0
    index_rate: float = _DEFAULT.default_index_rate
    protect: float = _DEFAULT.default_protect
    rms_mix_rate: float = _DEFAULT.default_rms_mix_rate
    reference: str = _DEFAULT.name  # the release followed (rvclab.profiles); the defaults above are its

    def kwargs(self) -> dict:
        return asdict(self)


def voice_paths() -> list[Path]:
    """The voices in weights/ (the seeded set, ``rvclab weights make``, written if there is none)."""
    return seeded_voices()


def default_voice():
    """The seeded v2 32 kHz voice as a :class:`rvclab.pipeline.conversion.VoiceModel` (written if missing)."""
    return VoiceModel(seeded_voice(DEFAULT_VOICE))


def load_clip(path, seconds: float | None = None) -> np.ndarray:
    """A clip as (N,) float32 @ 16 kHz, cut to its first ``seconds`` when given."""
    audio = load_audio(path, SAMPLE_RATE_16K)
    return audio[: int(seconds * SAMPLE_RATE_16K)] if seconds else audio


def convert_both(audio16: np.ndarray, voice, *, noise_seed: int = 0, index=None, backends=("torch", "mlx"),
                 **params) -> dict:
    """{backend: Conversion} for (N,) float32 @ 16 kHz, same noise and chunking on each.

    ``params`` go to :func:`rvclab.pipeline.conversion.convert_voice` (f0_method, f0_up_key, index_rate, ...).
    """
    return {b: convert_voice(audio16, voice, sr=SAMPLE_RATE_16K, backend=b, index=index,
                             noise_seed=noise_seed, **params) for b in backends}


def parity_row(ref, test) -> dict:
    """Numbers comparing two Conversions (``ref`` usually torch): waveform and spectrogram
    correlation, RMS ratio (test/ref), largest sample difference, F0 agreement, seconds spent."""
    n = min(ref.audio.size, test.audio.size)
    a, b = ref.audio[:n], test.audio[:n]
    return {
        "wave_corr": metrics.corr(a, b),
        "spec_corr": metrics.spectral_corr(a, b, ref.sr),
        "rms_ratio": metrics.rms_ratio(b, a),
        "max_abs": metrics.max_abs(a, b),
        "f0_cents_p99": metrics.cents_error(ref.f0, test.f0)["p99"],
        "voicing_agreement": metrics.voicing_agreement(ref.f0, test.f0),
        "same_length": ref.audio.size == test.audio.size,
        "time_ref_s": sum(ref.timings.values()),
        "time_test_s": sum(test.timings.values()),
    }


def passes(row: dict) -> bool:
    """The end-to-end goal (rvclab.tolerances): wave and spectrogram corr, equal lengths."""
    return bool(row["wave_corr"] >= E2E_WAVE_CORR_MIN and row["spec_corr"] >= E2E_SPEC_CORR_MIN
                and row["same_length"])


def stable(row: dict, digits: int = 4) -> dict:
    """``row`` as text that reads the same on every machine (notebooks under nbval): floats to
    ``digits`` decimals, tiny differences as the power of ten above them ('< 1e-05'), timings as
    'x.xx s' (masked by notebooks/sanitize.cfg)."""
    out = {}
    for key, value in row.items():
        if key.startswith("time_"):
            out[key] = f"{value:.2f} s"
        elif key in ("max_abs", "f0_cents_p99"):
            out[key] = f"< {_ceiling(value)}" if value > 0 else "0"
        elif isinstance(value, float):
            out[key] = f"{value:.{digits}f}"
        else:
            out[key] = value
    return out


def _ceiling(value: float) -> str:
    """The next power of ten above ``value`` (1e-05 for 5.1e-06): stable across machines."""
    return f"1e{int(np.floor(np.log10(value))) + 1:+03d}"


def features_of(clips, version: str, seconds: float | None = None, backend: str = "torch") -> np.ndarray:
    """HuBERT features (N, 256|768) @ 50 fps of ``clips`` (each cut to ``seconds``), stacked."""
    hub = embedder(backend)
    return np.concatenate([features(hub, load_clip(c, seconds), version, backend) for c in clips])


def index_from_clips(clips, version: str, out_dir: str | Path | None = None, seconds: float | None = None,
                     name: str = "clips"):
    """Build, write (RVC's file naming) and reload a FAISS index of ``clips``' features.

    Returns (FeatureIndex, BuildReport, path). ``out_dir`` defaults to a fresh temporary folder.
    """
    feats = features_of(clips, version, seconds)
    index, report = build_index(feats, version=version, seed=0)
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="rvclab-index-"))
    path = write_index(index, out_dir, name, version, force=True)
    return load_index(path, version), report, path


def stage_swap(audio16: np.ndarray, voice, runs: dict, *, noise_seed: int = 0, index=None, **params) -> dict:
    """Torch features and F0 into the MLX synthesizer, compared with both full runs.

    ``runs`` is :func:`convert_both`'s result for the same input and params. Returns
    {"swap": Conversion, "rows": {label: parity row}}: the swap against torch isolates the
    synthesizer's share of the difference, the swap against MLX the features' and F0's share.
    """
    swap = convert_voice(audio16, voice, sr=SAMPLE_RATE_16K, backend="mlx", index=index, noise_seed=noise_seed,
                         backends={"features": "torch", "f0": "torch", "synth": "mlx"}, **params)
    rows = {
        "torch vs MLX (everything differs)": parity_row(runs["torch"], runs["mlx"]),
        "torch vs swap (synthesizer only)": parity_row(runs["torch"], swap),
        "swap vs MLX (features + F0 only)": parity_row(swap, runs["mlx"]),
    }
    return {"swap": swap, "rows": rows}


def other_clips(chosen) -> list[Path]:
    """Every shipped clip except ``chosen`` (the index is built from what is not converted)."""
    chosen = Path(chosen)
    return [c for c in data_clips() if c.name != chosen.name]


def trim_pad(f0: np.ndarray, x_pad: float = 1.0, fps: int = 100) -> np.ndarray:
    """A Conversion's F0 (on the reflect-padded input) without its ``x_pad`` seconds each side,
    so frame 0 is the clip's first 10 ms."""
    n = int(round(x_pad * fps))
    return f0[n: f0.size - n] if f0.size > 2 * n else f0
