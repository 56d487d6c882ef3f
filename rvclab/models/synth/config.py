"""RVC synthesizer configuration and constants, shared by the torch reference and the MLX port."""

from dataclasses import asdict, dataclass, replace

import numpy as np

from rvclab.f0 import F0_MAX, F0_MIN

# The four upstream classes (RVC WebUI infer_pack/models.py): name -> feature version and F0.
SYNTHESIZER_CLASSES = {
    "SynthesizerTrnMs256NSFsid": dict(version="v1", f0=True),
    "SynthesizerTrnMs768NSFsid": dict(version="v2", f0=True),
    "SynthesizerTrnMs256NSFsid_nono": dict(version="v1", f0=False),
    "SynthesizerTrnMs768NSFsid_nono": dict(version="v2", f0=False),
}

LRELU_SLOPE = 0.1  # leaky ReLU of the text encoder, the generator stages and the resblocks
POST_LRELU_SLOPE = 0.01  # before the generator's conv_post: torch's default slope, as upstream
WINDOW_SIZE = 10  # relative-position window of the text encoder's attention (+-10 frames)
# Long inputs: the TextEncoder's attention runs in blocks of ATTN_ROW_BLOCK query rows, with the
# relative-position terms as their +-WINDOW_SIZE band, beyond ATTN_ROW_BLOCK frames on MLX and beyond
# TORCH_FULL_ATTENTION_FRAMES on torch (up to there the torch reference keeps upstream's full
# (T, T) scores, bit-exact with upstream; its decoder leaves its one-call path at the same length)
ATTN_ROW_BLOCK = 512
TORCH_FULL_ATTENTION_FRAMES = 1000
MASK_FILL = -1e4  # attention score of masked positions, before the softmax
LAYER_NORM_EPS = 1e-5
# the prior flow: FLOW_COUPLINGS x (coupling, Flip); each coupling's WaveNet has FLOW_LAYERS
# gated convs of kernel FLOW_KERNEL_SIZE, dilation FLOW_DILATION_RATE ** layer
FLOW_COUPLINGS, FLOW_KERNEL_SIZE, FLOW_DILATION_RATE, FLOW_LAYERS = 4, 5, 1, 3
# SineGen, the NSF source: sine amplitude, noise std on voiced samples (SINE_AMP / 3 on
# unvoiced ones), voiced iff F0 > VOICED_THRESHOLD (Hz)
SINE_AMP, SINE_NOISE_STD, VOICED_THRESHOLD = 0.1, 0.003, 0.0
# How SineGen builds the phase (a reference profile's ``sine_phase``):
#   "interpolated-cumsum": RVC WebUI's cumulative frame phase, linearly upsampled, with wrap corrections;
#   "frame-wrapped": Applio's per-frame ramps f0/sr * (1..hop) plus the previous frames' end phases,
#   each wrapped to [-0.5, 0.5) and their running sum wrapped with fmod; harmonics scale the phase.
PHASE_FORMS = ("interpolated-cumsum", "frame-wrapped")
DEFAULT_PHASE_FORM = PHASE_FORMS[0]


def check_phase_form(phase_form: str) -> str:
    """``phase_form`` itself, or ValueError naming the known forms."""
    if phase_form not in PHASE_FORMS:
        raise ValueError(f"unknown NSF sine phase form {phase_form!r}; known: {', '.join(PHASE_FORMS)}")
    return phase_form
# coarse pitch: ids 1..255 (PITCH_BINS embedding rows), mel scale between F0_MIN and F0_MAX (Hz)
PITCH_BINS = 256
F0_MEL_MIN = 1127.0 * np.log(1.0 + F0_MIN / 700.0)
F0_MEL_MAX = 1127.0 * np.log(1.0 + F0_MAX / 700.0)

SYNTH_SR_TAGS = {32000: "32k", 40000: "40k", 48000: "48k"}
SYNTH_PHONE_DIMS = {"v1": 256, "v2": 768}  # content-feature width per version
# Generator of each upstream preset (configs/v1/*.json, configs/v2/*.json; v2 40k reuses v1's):
# (filter_length, upsample_rates, upsample_kernel_sizes)
_SYNTH_GENERATORS = {
    ("v1", 32000): (1024, (10, 4, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v1", 40000): (2048, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v1", 48000): (2048, (10, 6, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v2", 32000): (1024, (10, 8, 2, 2), (20, 16, 4, 4)),
    ("v2", 40000): (2048, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v2", 48000): (2048, (12, 10, 2, 2), (24, 20, 4, 4)),
}


@dataclass(frozen=True)
class SynthConfig:
    """RVC synthesizer (SynthesizerTrnMs{256,768}NSFsid[_nono]); shared by torch and MLX.

    The first 18 fields are, in order, the ``config`` list upstream stores in a voice ``.pth``:
    [spec_channels (filter_length//2+1), segment_size (32), inter, hidden, filter, heads, layers,
    kernel, p_dropout, resblock, resblock kernels, dilations, upsample rates, upsample initial
    channel, upsample kernels, spk_embed_dim, gin_channels, sr (Hz)]. ``version`` ("v1": 256-d
    features, "v2": 768-d) and ``f0`` (NSF generator or plain HiFi-GAN) come from the file's
    ``version`` and ``f0`` entries. Defaults are v2 48k with F0.
    """

    spec_channels: int = 1025
    segment_size: int = 32
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 768
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0
    resblock: str = "1"
    resblock_kernel_sizes: tuple = (3, 7, 11)
    resblock_dilation_sizes: tuple = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple = (12, 10, 2, 2)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple = (24, 20, 4, 4)
    spk_embed_dim: int = 109
    gin_channels: int = 256
    sr: int = 48000
    version: str = "v2"
    f0: bool = True

    def __post_init__(self):
        if self.version not in SYNTH_PHONE_DIMS:
            raise ValueError(f"SynthConfig: version must be 'v1' or 'v2', got {self.version!r}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("SynthConfig: upsample_rates and upsample_kernel_sizes differ in "
                             f"length: {self.upsample_rates} vs {self.upsample_kernel_sizes}")

    # -- derived -------------------------------------------------------------------------------
    @property
    def phone_dim(self) -> int:
        """Content-feature width: 256 (v1) or 768 (v2)."""
        return SYNTH_PHONE_DIMS[self.version]

    @property
    def hop_length(self) -> int:
        """Output samples per 100 fps frame: prod(upsample_rates) (sr / 100 for real presets)."""
        hop = 1
        for r in self.upsample_rates:
            hop *= int(r)
        return hop

    @property
    def sr_tag(self) -> str:
        """'32k' / '40k' / '48k' as upstream's ``sr`` entry (or e.g. '44100' otherwise)."""
        return SYNTH_SR_TAGS.get(self.sr, str(self.sr))

    @property
    def name(self) -> str:
        """Short label, e.g. 'v2-48k' or 'v1-40k-nof0'."""
        return f"{self.version}-{self.sr_tag}" + ("" if self.f0 else "-nof0")

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, f0: bool | None = None) -> "SynthConfig":
        """Upstream preset: 'v1-32k', 'v1-40k', 'v1-48k', 'v2-32k', 'v2-40k', 'v2-48k'.

        A '-nof0' suffix (or ``f0=False``) selects the no-F0 model.
        """
        key = name.strip().lower()
        if key.endswith("-nof0"):
            key, f0 = key[: -len("-nof0")], False if f0 is None else f0
        try:
            version, tag = key.split("-")
            sr = {v: k for k, v in SYNTH_SR_TAGS.items()}[tag]
            filter_length, rates, kernels = _SYNTH_GENERATORS[(version, sr)]
        except (ValueError, KeyError):
            known = sorted(f"{v}-{SYNTH_SR_TAGS[s]}" for v, s in _SYNTH_GENERATORS)
            raise ValueError(f"SynthConfig.preset: unknown {name!r}; known: {known}") from None
        return cls(spec_channels=filter_length // 2 + 1, upsample_rates=rates,
                   upsample_kernel_sizes=kernels, sr=sr, version=version,
                   f0=True if f0 is None else bool(f0))

    @classmethod
    def presets(cls) -> list[str]:
        """Names accepted by :meth:`preset` (without the '-nof0' variants)."""
        return [f"{v}-{SYNTH_SR_TAGS[s]}" for v, s in _SYNTH_GENERATORS]

    @classmethod
    def from_config_list(cls, values, version: str = "v1", f0=1) -> "SynthConfig":
        """From upstream's 18-entry ``config`` list (+ the file's version and f0 entries)."""
        values = list(values)
        if len(values) != 18:
            raise ValueError(f"SynthConfig: config list must have 18 entries, got {len(values)}")

        def tup(x):
            return tuple(tup(i) for i in x) if isinstance(x, (list, tuple)) else int(x)

        return cls(
            spec_channels=int(values[0]), segment_size=int(values[1]),
            inter_channels=int(values[2]), hidden_channels=int(values[3]),
            filter_channels=int(values[4]), n_heads=int(values[5]), n_layers=int(values[6]),
            kernel_size=int(values[7]), p_dropout=values[8], resblock=str(values[9]),
            resblock_kernel_sizes=tup(values[10]), resblock_dilation_sizes=tup(values[11]),
            upsample_rates=tup(values[12]), upsample_initial_channel=int(values[13]),
            upsample_kernel_sizes=tup(values[14]), spk_embed_dim=int(values[15]),
            gin_channels=int(values[16]), sr=synth_sr_hz(values[17]),
            version=str(version), f0=bool(int(f0)))

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "SynthConfig":
        """From a loaded voice ``.pth`` dict (``config``, ``version``, ``f0``, ``sr``, ``weight``).

        As upstream: version defaults to 'v1', f0 to 1, and ``spk_embed_dim`` is taken from
        ``weight['emb_g.weight']`` when present. The ``sr`` entry ('48k' or 48000) must agree with
        the config list's last entry.
        """
        if not isinstance(ckpt, dict) or "config" not in ckpt:
            raise ValueError("SynthConfig.from_checkpoint: not an RVC voice checkpoint "
                             "(no 'config' list)")
        values = list(ckpt["config"])
        weight = ckpt.get("weight") or {}
        if "emb_g.weight" in weight and len(values) == 18:
            values[15] = int(weight["emb_g.weight"].shape[0])
        version = ckpt.get("version", "v1")
        if version not in SYNTH_PHONE_DIMS:
            raise ValueError(f"SynthConfig.from_checkpoint: unknown version {version!r} "
                             "(expected 'v1' or 'v2')")
        cfg = cls.from_config_list(values, version=version, f0=ckpt.get("f0", 1))
        if ckpt.get("sr") is not None and synth_sr_hz(ckpt["sr"]) != cfg.sr:
            raise ValueError(f"SynthConfig.from_checkpoint: sr entry {ckpt['sr']!r} disagrees "
                             f"with the config list's sample rate {cfg.sr}")
        return cfg

    def to_config_list(self) -> list:
        """The 18-entry list upstream stores (lists, not tuples; resblock a str; sr in Hz)."""
        d = asdict(self)

        def lst(x):
            return [lst(i) for i in x] if isinstance(x, (list, tuple)) else x

        order = ["spec_channels", "segment_size", "inter_channels", "hidden_channels",
                 "filter_channels", "n_heads", "n_layers", "kernel_size", "p_dropout",
                 "resblock", "resblock_kernel_sizes", "resblock_dilation_sizes",
                 "upsample_rates", "upsample_initial_channel", "upsample_kernel_sizes",
                 "spk_embed_dim", "gin_channels", "sr"]
        return [lst(d[k]) for k in order]

    def small(self) -> "SynthConfig":
        """Same architecture and hop, far fewer channels: for fast tests only."""
        return replace(self, inter_channels=8, hidden_channels=16, filter_channels=32,
                              n_layers=2, upsample_initial_channel=32, spk_embed_dim=3,
                              gin_channels=8)


def synth_sr_hz(value) -> int:
    """48000, '48000', '48k' -> 48000."""
    if isinstance(value, str):
        v = value.strip().lower()
        return int(v[:-1]) * 1000 if v.endswith("k") else int(v)
    return int(value)


def synthesizer_class_name(version: str, f0) -> str:
    """The upstream class of a (version, f0) pair, e.g. ('v2', True) -> SynthesizerTrnMs768NSFsid."""
    for name, spec in SYNTHESIZER_CLASSES.items():
        if spec["version"] == str(version) and spec["f0"] == bool(f0):
            return name
    raise ValueError(f"unknown synthesizer version/f0 {(version, bool(f0))}; "
                     "expected v1|v2 with f0 0|1")


def coarse_pitch(f0: np.ndarray) -> np.ndarray:
    """(T,) Hz (0 = unvoiced) -> (T,) int32 pitch ids in 1..255, as upstream computes them.

    mel = 1127 ln(1 + f0/700); voiced (mel > 0) frames map linearly so F0_MIN -> 1 and
    F0_MAX -> 255; then values <= 1 become 1, > 255 become 255, rounded half to even (np.rint).
    Computed in the input's float dtype, as upstream.
    """
    f0 = np.asarray(f0)
    if not np.issubdtype(f0.dtype, np.floating):
        f0 = f0.astype(np.float64)
    mel = 1127 * np.log(1 + f0 / 700)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - F0_MEL_MIN) * 254 / (F0_MEL_MAX - F0_MEL_MIN) + 1
    mel[mel <= 1] = 1
    mel[mel > 255] = 255
    return np.rint(mel).astype(np.int32)
