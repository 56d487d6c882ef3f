"""HuBERT / ContentVec configuration, feature layers and the length check, shared by both backends."""

from dataclasses import dataclass, field

# HuBERT base's conv front end: (channels, kernel, stride) per layer; 400-sample receptive
# field, 320-sample hop (20 ms frames @ 16 kHz).
HUBERT_BASE_CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2

V1_LAYER = 9  # RVC WebUI: v1 models read layer 9, projected to 256-d by final_proj
V2_LAYER = 12  # v2 models read the last layer, 768-d
VERSION_LAYERS = {"v1": V1_LAYER, "v2": V2_LAYER}
# How the torch reference computes self attention, as the upstream code it follows does:
# "explicit": (q * scale) @ k^T, softmax in fp32, @ v (fairseq's MultiheadAttention);
# "sdpa": torch.nn.functional.scaled_dot_product_attention on unscaled q (transformers' default
# HubertSdpaAttention). Same maths, different rounding.
ATTENTION_KERNELS = ("explicit", "sdpa")


@dataclass(frozen=True)
class HubertConfig:
    """HuBERT base / ContentVec feature extractor; defaults are RVC's ``hubert_base.pt``.

    Built from a fairseq checkpoint (``args`` Namespace or ``cfg`` dict, see
    :func:`rvclab.models.hubert.rules.config_from_fairseq`) or a transformers ``config.json``
    (``config_from_transformers``). Both backends share it.
    """

    conv_layers: tuple = field(default=HUBERT_BASE_CONV_LAYERS)
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


class TooShortError(ValueError):
    """Audio shorter than one HuBERT frame (the front end's receptive field)."""


def check_length(n_samples: int, config: HubertConfig) -> int:
    """Frames for ``n_samples`` @ 16 kHz; raises :class:`TooShortError` below one frame."""
    frames = config.num_frames(n_samples)
    if frames < 1:
        need = config.receptive_field
        raise TooShortError(
            f"audio of {n_samples} samples is shorter than one HuBERT frame: need at least "
            f"{need} samples ({1000 * need / config.sample_rate:g} ms @ {config.sample_rate} Hz)"
        )
    return frames
