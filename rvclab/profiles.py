"""Reference profiles: the inference choices on which RVC WebUI's releases and Applio differ.

A :class:`ReferenceProfile` names each such choice as a field; :data:`PROFILES` holds one profile
per release, written as keyword data, and :data:`DEFAULT_PROFILE` names the current RVC WebUI.
Consumers (pitch, pipeline, RMVPE, CLI ``--reference``, widgets, streaming) read fields and never
branch on a profile's name. The upstream file and function each value was read from, per release:
docs/reference_profiles.md. Plain data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

PadSeconds = tuple[int, int, int, int]  # (x_pad, x_query, x_center, x_max), seconds


@dataclass(frozen=True)
class F0Method:
    """One F0 method as a release calls it.

    ``name`` is rvclab's method name (a key of ``rvclab.pitch.METHODS``); ``params`` are the
    release's values as (keyword, value) pairs, sorted, each a keyword of rvclab's estimator for
    that method, so ``estimate_f0(audio, name, **dict(params))`` runs it as the release does.
    """

    name: str
    params: tuple[tuple[str, float | int | str], ...] = ()

    @classmethod
    def of(cls, name: str, **params: float | int | str) -> F0Method:
        return cls(name, tuple(sorted(params.items())))


@dataclass(frozen=True)
class ReferenceProfile:
    """Every inference choice on which the releases differ, with one release's value.

    Fields listed in :data:`SHARED_FIELDS` hold the same value in every profile (checked upstream
    and kept so that consumers read them here too); every other field differs between releases.
    """

    name: str  # registry key, e.g. "rvc-webui-2026"
    release: str  # the upstream release, as its authors name it
    source: str  # "owner/repo@commit" whose code the values were read from

    # --- F0 -------------------------------------------------------------------------------------
    f0_methods: tuple[F0Method, ...]  # the methods the release offers, in its UI order
    default_f0_method: str  # the UI's default method
    f0_fill_unvoiced: bool  # True: every 0 Hz frame is filled by linear interpolation between voiced
    #   frames (edges hold the nearest value) before the key shift, so none stays unvoiced
    f0_curve_file: bool  # True: a user F0 curve file ("time,hz" lines) can replace the estimate
    rmvpe_pad_mode: str  # log-mel frames padded at the end to a multiple of 32: "reflect" | "constant" (0)
    rmvpe_chunk_frames: int | None  # padded frames per independent network call; None: one call

    # --- features -------------------------------------------------------------------------------
    hubert_v1_layer: int  # transformer layer (1..12) whose output final_proj maps to v1's 256-d features
    hubert_attention: str  # the torch HuBERT's attention kernel (rvclab.models.hubert.config.ATTENTION_KERNELS):
    #   "sdpa" (transformers' default HubertSdpaAttention) | "explicit" (fairseq's MultiheadAttention)
    index_k: int  # neighbours retrieved per 50 fps frame
    index_weight_power: int  # neighbour weight = score ** -power, normalised (score: faiss squared L2)
    default_index_rate: float  # the UI's default blend, retrieved * rate + features * (1 - rate)
    protect_off: float  # protect >= this leaves unvoiced frames' features as blended
    default_protect: float  # the UI's default protect, in [0, 0.5]

    # --- chunking (device configs, seconds) -----------------------------------------------------
    pad_config: PadSeconds  # fp32 devices
    half_pad_config: PadSeconds | None  # fp16 GPUs; None: the release never runs in half precision
    low_memory_pad_config: PadSeconds  # GPUs with <= 4 GB
    split_quietness: str  # quietest split point by "sum-abs" (sum of |x| over 160 samples)
    #   | "abs-sum" (|sum of x| over 160 samples)

    # --- synthesizer ----------------------------------------------------------------------------
    sine_phase: str  # NSF source phase: "interpolated-cumsum" (frame cumsum, linearly upsampled, wrap
    #   corrections) | "frame-wrapped" (per-frame ramps, frame offsets wrapped with fmod)

    # --- input and output -----------------------------------------------------------------------
    input_resampler: str  # file -> 16 kHz mono: "ffmpeg" (the ffmpeg CLI, libswresample defaults)
    #   | a librosa res_type ("soxr_vhq", "soxr_hq")
    input_dtype: str  # the loaded 16 kHz input: "float32" | "float64"
    default_rms_mix_rate: float  # the UI's default RMS mix ("volume envelope"); 1 leaves the output
    rms_dtype: str  # half-second RMS envelopes and their mix: "signal" (each in its signal's dtype:
    #   float64 input, float32 output) | "float32" | "float64"
    output_resampler: str | None  # resample_sr's librosa res_type; None: the release offers no resampling
    output_int16: bool  # True: int16 = x * 32768 (scaled when the peak exceeds 0.99), truncated;
    #   False: float32, divided by peak / 0.99 when the peak exceeds 0.99

    @property
    def f0_method_names(self) -> tuple[str, ...]:
        """The offered methods' names, in the release's order."""
        return tuple(m.name for m in self.f0_methods)

    def check_f0_method(self, method: str) -> str:
        """``method`` when this profile offers it; ValueError naming the methods it offers."""
        if method not in self.f0_method_names:
            raise ValueError(
                f"F0 method {method!r} is not offered by reference profile {self.name!r} "
                f"({self.release}); it offers: {', '.join(self.f0_method_names)}"
            )
        return method

    def f0_params(self, method: str) -> dict[str, float | int | str]:
        """The keyword arguments this release runs ``method`` with (a new dict each call)."""
        self.check_f0_method(method)
        return dict(next(m for m in self.f0_methods if m.name == method).params)


# --- F0 methods as the releases call them ----------------------------------------------------------
_F0_RANGE = dict(f0_min=50.0, f0_max=1100.0)  # Hz: every release's range for the methods that take one
_PM = F0Method.of("pm", **_F0_RANGE, voicing_threshold=0.6)
_HARVEST = F0Method.of("harvest", **_F0_RANGE, filter_radius=3)  # > 2: median filter of width 3
_CREPE = dict(**_F0_RANGE, decoder="viterbi", threshold=0.1, batch_size=512)  # threshold on periodicity
_RMVPE = F0Method.of("rmvpe", threshold=0.03)  # salience peak <= threshold: unvoiced
_FCPE = F0Method.of("fcpe", decoder="local_argmax", threshold=0.006)

# --- values every release shares ---------------------------------------------------------------------
_SHARED = dict(
    default_f0_method="rmvpe",
    index_k=8,
    index_weight_power=2,
    default_index_rate=0.75,
    protect_off=0.5,
    pad_config=(1, 6, 38, 41),
    low_memory_pad_config=(1, 5, 30, 32),
)
SHARED_FIELDS = frozenset(_SHARED)  # fields with one value in every profile

# --- values both RVC WebUI releases share (Applio has its own) -----------------------------------
_WEBUI_RELEASES = dict(
    rmvpe_pad_mode="constant",
    rmvpe_chunk_frames=None,
    hubert_v1_layer=9,
    default_protect=0.33,
    half_pad_config=(3, 10, 60, 65),
    split_quietness="sum-abs",
    sine_phase="interpolated-cumsum",
    input_resampler="ffmpeg",
    input_dtype="float32",
    default_rms_mix_rate=0.25,
)

_WEBUI = "RVC-Project/Retrieval-based-Voice-Conversion-WebUI"
_PROFILES = (
    ReferenceProfile(
        **_SHARED,
        **_WEBUI_RELEASES,
        name="rvc-webui-2026",
        hubert_attention="sdpa",
        release="RVC 20260716",
        source=f"{_WEBUI}@5d47da14888d2a33a8b6ce6a480b4b84c9481143",
        f0_methods=(_PM, _RMVPE, _FCPE),
        f0_fill_unvoiced=True,
        f0_curve_file=False,
        rms_dtype="float32",
        output_resampler="soxr_hq",
        output_int16=True,
    ),
    ReferenceProfile(
        **_SHARED,
        **_WEBUI_RELEASES,
        name="rvc-webui-2024",
        hubert_attention="explicit",
        release="RVC 20240604",
        source=f"{_WEBUI}@64b78bed3b48f595e27fbe302819b2df13124095",
        f0_methods=(_PM, _HARVEST, F0Method.of("crepe", **_CREPE), _RMVPE),
        f0_fill_unvoiced=False,
        f0_curve_file=True,
        rms_dtype="signal",
        output_resampler="kaiser_best",
        output_int16=True,
    ),
    ReferenceProfile(
        **_SHARED,
        name="applio",
        release="Applio 3.6.4",
        source="IAHispano/Applio@da174445ec98d15d006175ac99db3879bd3a73d1",
        f0_methods=(F0Method.of("crepe", **_CREPE), F0Method.of("crepe-tiny", **_CREPE), _RMVPE, _FCPE),
        f0_fill_unvoiced=False,
        f0_curve_file=False,
        rmvpe_pad_mode="reflect",
        rmvpe_chunk_frames=32000,
        hubert_v1_layer=12,
        hubert_attention="sdpa",
        default_protect=0.5,
        half_pad_config=None,
        split_quietness="abs-sum",
        sine_phase="frame-wrapped",
        input_resampler="soxr_vhq",
        input_dtype="float64",
        default_rms_mix_rate=1.0,
        rms_dtype="float32",
        output_resampler=None,
        output_int16=False,
    ),
)
PROFILES = MappingProxyType({p.name: p for p in _PROFILES})  # name -> profile
DEFAULT_PROFILE = "rvc-webui-2026"  # the current RVC WebUI release


def get_profile(name: str = DEFAULT_PROFILE) -> ReferenceProfile:
    """The profile called ``name``; ValueError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown reference profile {name!r}; known profiles: {', '.join(PROFILES)}"
        ) from None
