"""Where a conversion applies each field of its reference profile, and the fields it cannot.

:data:`FIELD_USE` is the one table: every :class:`rvclab.profiles.ReferenceProfile` field -> a
:class:`Use` naming the function that applies it, or why (some of) its values are not
reproduced. :func:`reference_gaps` lists a profile's fields whose value rvclab does not
reproduce; :func:`warn_gaps` warns once per process per (profile, field) with
:class:`ReferenceGapWarning`. The consumers (:mod:`rvclab.pipeline.conversion`, the stream) read
fields only, never a profile's name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import MappingProxyType

from rvclab.profiles import DEFAULT_PROFILE, ReferenceProfile, get_profile


class ReferenceGapWarning(UserWarning):
    """A reference profile field whose value rvclab does not reproduce (the message says why)."""


@dataclass(frozen=True)
class Use:
    """How rvclab treats one profile field.

    where: the function(s) that apply it ("" when no value is applied); reproduced: the values
    rvclab reproduces (None: every value); why: what differs for the other values.
    """

    where: str
    reproduced: tuple | None = None
    why: str = ""


_CONVERT = "rvclab.pipeline.conversion.convert_voice"
FIELD_USE = MappingProxyType(dict(
    name=Use("Conversion.reference, the provenance sidecar (rvclab.pipeline.provenance)"),
    release=Use("docs and messages only (no inference choice)"),
    source=Use("docs and messages only (no inference choice)"),
    f0_methods=Use(f"{_CONVERT}: check_f0_method, then rvclab.pitch.estimate_f0 with f0_params(method)"),
    default_f0_method=Use(f"{_CONVERT}: f0_method=None"),
    f0_fill_unvoiced=Use("rvclab.pipeline.steps.postprocess_f0(fill=...), before the key shift"),
    f0_curve_file=Use(f"{_CONVERT}: an f0_curve with a profile without one is refused"),
    rmvpe_pad_mode=Use("rvclab.models.rmvpe.f0.estimate(pad_mode=...)"),
    rmvpe_chunk_frames=Use("rvclab.models.rmvpe.f0.estimate(chunk_frames=...)"),
    hubert_v1_layer=Use("rvclab.pipeline.networks.features(v1_layer=...) on both backends"),
    hubert_attention=Use("rvclab.pipeline.networks.features(attention=...): the torch HuBERT's kernel; MLX "
                         "has one attention, within the HuBERT tolerances of both"),
    index_k=Use("rvclab.pipeline.index.FeatureIndex.blend(k=...)"),
    index_weight_power=Use("rvclab.pipeline.index.neighbour_weights (1 / score ** 2)", reproduced=(2,),
                           why="rvclab weighs neighbours by 1 / score ** 2 only"),
    default_index_rate=Use(f"{_CONVERT}: index_rate=None"),
    protect_off=Use("rvclab.pipeline.steps.features_to_frames(protect_off=...)"),
    default_protect=Use(f"{_CONVERT}: protect=None"),
    pad_config=Use(f"{_CONVERT}: pad_config=None (rvclab.pipeline.reference.device_pad_config)"),
    half_pad_config=Use(f"{_CONVERT}: pad_config=None and the synthesizer in fp16 (device_pad_config)"),
    low_memory_pad_config=Use(f"{_CONVERT}: pad_config=None and a torch CUDA GPU of <= 4 GB (device_pad_config)"),
    split_quietness=Use("rvclab.pipeline.chunks.plan_chunks(quietness=...)"),
    sine_phase=Use("rvclab.pipeline.networks.synthesize(phase_form=...) and the stream's run_synth: "
                   "Synthesizer.infer(phase_form=...) on both backends"),
    input_resampler=Use("rvclab.audio.resample(res_type=...) when the input is not at 16 kHz",
                        reproduced=("soxr_vhq", "soxr_hq"),
                        why="rvclab does not run the ffmpeg CLI; inputs not at 16 kHz are resampled "
                            "with soxr_hq (librosa) instead"),
    input_dtype=Use("", reproduced=("float32",),
                    why="rvclab loads and converts the 16 kHz input as float32"),
    default_rms_mix_rate=Use(f"{_CONVERT}: rms_mix_rate=None"),
    rms_dtype=Use("rvclab.pipeline.output.frame_rms(dtype=...), mix_rms_(output_dtype=...)"),
    output_resampler=Use(f"{_CONVERT}: resample_sr through rvclab.audio.resample(res_type=...); "
                         "None: resample_sr is refused"),
    output_int16=Use("rvclab convert (rvclab.pipeline.batch.output_samples): 16-bit PCM of "
                     "rvclab.pipeline.output.to_int16_webui (True) or float32 (False); Conversion.audio "
                     "is float32 either way"),
))

_WARNED: set[tuple[str, str]] = set()


def resolve(reference: str | ReferenceProfile | None = DEFAULT_PROFILE) -> ReferenceProfile:
    """A profile from its name (ValueError listing the known ones) or the profile itself."""
    if isinstance(reference, ReferenceProfile):
        return reference
    return get_profile(DEFAULT_PROFILE if reference is None else reference)


def reference_gaps(profile: ReferenceProfile) -> tuple[str, ...]:
    """The fields of ``profile`` whose value rvclab does not reproduce, in field order."""
    gaps = []
    for field, use in FIELD_USE.items():
        value = getattr(profile, field)
        if use.reproduced is not None and value not in use.reproduced:
            gaps.append(field)
    return tuple(gaps)


def gap_text(profile: ReferenceProfile, field: str) -> str:
    """One line: the field, the profile's value, and why rvclab does not reproduce it."""
    return (f"reference profile {profile.name!r} ({profile.release}): {field}={getattr(profile, field)!r} "
            f"is not reproduced: {FIELD_USE[field].why}")


def warn_gaps(profile: ReferenceProfile, stacklevel: int = 3, gaps: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Warn (:class:`ReferenceGapWarning`) once per process for each gap of ``profile`` (or each of
    ``gaps``, those that apply to one conversion); returns them."""
    gaps = reference_gaps(profile) if gaps is None else gaps
    for field in gaps:
        if (profile.name, field) not in _WARNED:
            _WARNED.add((profile.name, field))
            warnings.warn(gap_text(profile, field), ReferenceGapWarning, stacklevel=stacklevel)
    return gaps


# F0 estimator keywords a method takes from profile fields (beyond its f0_params): method ->
# {estimator keyword: profile field}
METHOD_FIELDS = MappingProxyType(dict(
    rmvpe=dict(pad_mode="rmvpe_pad_mode", chunk_frames="rmvpe_chunk_frames"),
))


def f0_keywords(profile: ReferenceProfile, method: str, filter_radius: int | None = None) -> dict:
    """The keyword arguments ``rvclab.pitch.estimate_f0`` runs ``method`` with under ``profile``.

    ValueError naming the offered methods when the profile lacks ``method``, and naming the
    profile when ``filter_radius`` is given for a method that takes none there.
    """
    kwargs = profile.f0_params(method)
    kwargs.update({key: getattr(profile, field) for key, field in METHOD_FIELDS.get(method, {}).items()})
    if filter_radius is not None:
        if "filter_radius" not in kwargs:
            raise ValueError(f"filter_radius={filter_radius}: F0 method {method!r} of reference profile "
                             f"{profile.name!r} takes no filter_radius (only harvest has one, in profiles "
                             "that offer it)")
        kwargs["filter_radius"] = filter_radius
    return kwargs


def device_pad_config(profile: ReferenceProfile, half: bool, gpu_memory_gb: float | None):
    """(x_pad, x_query, x_center, x_max) seconds as the release picks them for a device:
    ``half_pad_config`` when the networks run in fp16 (and the release has one), then
    ``low_memory_pad_config`` on a GPU whose memory rounds to <= 4 GB, else ``pad_config``."""
    config = profile.half_pad_config if half and profile.half_pad_config is not None else profile.pad_config
    if gpu_memory_gb is not None and int(gpu_memory_gb + 0.4) <= 4:
        config = profile.low_memory_pad_config
    return config
