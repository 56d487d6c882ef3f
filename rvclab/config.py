"""Model configurations shared by the torch reference and the MLX port (dataclasses)."""

from dataclasses import dataclass as _rmvpe_dataclass


# RMVPE --------------------------------------------------------------------------------------
@_rmvpe_dataclass(frozen=True)
class RmvpeConfig:
    """RMVPE pitch estimator; defaults are those of RVC's ``rmvpe.pt`` (E2E(4, 1, (2, 2)))."""

    # log-mel front end @ 16 kHz
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160  # 10 ms frames
    n_mels: int = 128
    fmin: float = 30.0
    fmax: float = 8000.0
    clamp: float = 1e-5  # log(max(mel, clamp))
    # network
    n_blocks: int = 4  # ConvBlockRes per encoder/intermediate/decoder block
    n_gru: int = 1  # BiGRU layers
    kernel_size: tuple = (2, 2)  # pooling and decoder stride
    en_de_layers: int = 5
    inter_layers: int = 4
    in_channels: int = 1
    en_out_channels: int = 16
    gru_hidden: int = 256
    n_classes: int = 360  # 20-cent bins
    # framing and decoding
    pad_multiple: int = 32  # 2 ** en_de_layers
    chunk_frames: int = 32000  # padded frames per independent network call (320 s)
    threshold: float = 0.03
    decode_window: int = 9  # bins averaged around the argmax
    cents_offset: float = 1997.3794084376191  # cents (re 10 Hz) of bin 0
    cents_step: float = 20.0


# HuBERT / ContentVec --------------------------------------------------------------------------
from dataclasses import dataclass as _hubert_dataclass  # noqa: E402
from dataclasses import field as _hubert_field  # noqa: E402

# HuBERT base's conv front end: (channels, kernel, stride) per layer; 400-sample receptive
# field, 320-sample hop (20 ms frames @ 16 kHz).
HUBERT_BASE_CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@_hubert_dataclass(frozen=True)
class HubertConfig:
    """HuBERT base / ContentVec feature extractor; defaults are RVC's ``hubert_base.pt``.

    Built from a fairseq checkpoint (``args`` Namespace or ``cfg`` dict, see
    ``rvclab.hubert_io.config_from_fairseq``) or a transformers ``config.json``
    (``config_from_transformers``). Both backends share it.
    """

    conv_layers: tuple = _hubert_field(default=HUBERT_BASE_CONV_LAYERS)
    conv_bias: bool = False
    extractor_mode: str = "default"  # group norm in the first conv layer only
    embed_dim: int = 768
    ffn_dim: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    conv_pos: int = 128  # positional conv kernel (even: one trailing frame trimmed)
    conv_pos_groups: int = 16
    final_dim: int = 256  # final_proj output (v1 features)
    layer_norm_first: bool = False  # False: post-LN transformer as HuBERT base
    layer_norm_eps: float = 1e-5
    activation: str = "gelu"  # exact (erf) GELU everywhere, as upstream
    normalize: bool = False  # task flag: layer-normalise the waveform first (False for base)
    sample_rate: int = 16000

    @property
    def conv_dim(self) -> int:
        """Channels out of the conv front end (input of the feature layer norm)."""
        return self.conv_layers[-1][0]

    @property
    def hop(self) -> int:
        """Samples per output frame (320 @ 16 kHz for the base front end)."""
        hop = 1
        for _, _, stride in self.conv_layers:
            hop *= stride
        return hop

    @property
    def receptive_field(self) -> int:
        """Samples one output frame sees (400 for the base front end): the shortest input."""
        field, jump = 1, 1
        for _, kernel, stride in self.conv_layers:
            field += (kernel - 1) * jump
            jump *= stride
        return field

    def num_frames(self, n_samples: int) -> int:
        """Output frames for ``n_samples`` samples @ 16 kHz (0 when shorter than one frame)."""
        length = int(n_samples)
        for _, kernel, stride in self.conv_layers:
            if length < kernel:
                return 0
            length = (length - kernel) // stride + 1
        return length

    @classmethod
    def small(cls) -> "HubertConfig":
        """A tiny config of the same architecture, for fast tests (same 320-sample hop)."""
        return cls(
            conv_layers=((32, 10, 5),) + ((32, 3, 2),) * 4 + ((32, 2, 2),) * 2,
            embed_dim=64,
            ffn_dim=128,
            num_layers=12,
            num_heads=4,
            conv_pos=16,
            conv_pos_groups=4,
            final_dim=32,
        )


# RVC synthesizer (voice model) ----------------------------------------------------------------
from dataclasses import asdict as _synth_asdict  # noqa: E402
from dataclasses import dataclass as _synth_dataclass  # noqa: E402
from dataclasses import replace as _synth_replace  # noqa: E402

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


@_synth_dataclass(frozen=True)
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
            gin_channels=int(values[16]), sr=_synth_sr_hz(values[17]),
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
        if ckpt.get("sr") is not None and _synth_sr_hz(ckpt["sr"]) != cfg.sr:
            raise ValueError(f"SynthConfig.from_checkpoint: sr entry {ckpt['sr']!r} disagrees "
                             f"with the config list's sample rate {cfg.sr}")
        return cfg

    def to_config_list(self) -> list:
        """The 18-entry list upstream stores (lists, not tuples; resblock a str; sr in Hz)."""
        d = _synth_asdict(self)

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
        return _synth_replace(self, inter_channels=8, hidden_channels=16, filter_channels=32,
                              n_layers=2, upsample_initial_channel=32, spk_embed_dim=3,
                              gin_channels=8)


def _synth_sr_hz(value) -> int:
    """48000, '48000', '48k' -> 48000."""
    if isinstance(value, str):
        v = value.strip().lower()
        return int(v[:-1]) * 1000 if v.endswith("k") else int(v)
    return int(value)
