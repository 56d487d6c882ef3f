"""HuBERT base / ContentVec feature extractor: the MLX port of :mod:`rvclab.models.hubert.torch`.

Same class names and attribute paths as the reference, so conversion is layout only: activations
(B, T, C), conv weights (O, K, I), the positional conv's weight norm fused at conversion
(``encoder.pos_conv.0.weight``). Exact (erf) GELU. Strided front-end convs run as one matmul over
K gathered views; the grouped positional conv goes through :func:`rvclab.mlx.ops.conv1d`.
Long inputs run in bounded memory: the front end in segments of ``FRONT_END_SEGMENT_FRAMES``
output frames and the attention in blocks of ``ATTN_ROW_BLOCK`` query rows.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from rvclab.mlx.activations import gelu
from rvclab.mlx.ops import conv1d
from rvclab.models.hubert.config import VERSION_LAYERS, HubertConfig, TooShortError, check_length

__all__ = ["HubertModel", "TooShortError", "VERSION_LAYERS"]

# Long inputs in bounded memory: output frames per front-end segment (10 s) and query rows per
# block of attention scores; inputs at or under these take one call, as the reference does.
FRONT_END_SEGMENT_FRAMES = 500
ATTN_ROW_BLOCK = 512


def strided_conv1d(x: mx.array, weight: mx.array, stride: int, bias=None) -> mx.array:
    """Valid conv1d as one matmul: x (B, L, I), weight (O, K, I) -> (B, T, O),
    T = (L - K) // stride + 1."""
    out_ch, kernel, in_ch = weight.shape
    frames = (x.shape[1] - kernel) // stride + 1
    span = stride * (frames - 1) + 1
    taps = [x[:, k : k + span : stride, :] for k in range(kernel)]  # K x (B, T, I)
    cols = mx.concatenate(taps, axis=-1) if kernel > 1 else taps[0]  # (B, T, K*I)
    out = cols @ weight.reshape(out_ch, kernel * in_ch).T
    return out + bias if bias is not None else out


class Conv1d(nn.Module):
    """Strided valid conv; weight (O, K, I) as converted from torch's (O, I, K)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool):
        super().__init__()
        self.stride = stride
        self.weight = mx.zeros((out_ch, kernel, in_ch))
        if bias:
            self.bias = mx.zeros((out_ch,))

    def __call__(self, x):  # (B, L, I) -> (B, T, O)
        return strided_conv1d(x, self.weight, self.stride, self.get("bias"))


class Dropout(nn.Module):
    """Placeholder with no parameters, keeping torch's Sequential indices (inference only)."""

    def __call__(self, x):
        return x


class GELU(nn.Module):
    """Exact (erf) GELU, as torch's nn.GELU() default."""

    def __call__(self, x):
        return gelu(x)


class GroupNorm32(nn.Module):
    """Group norm with one channel per group over time (HuBERT's first conv layer); (B, T, C)."""

    def __init__(self, num_groups: int, channels: int, eps: float = 1e-5):
        super().__init__()
        if num_groups != channels:
            raise ValueError("only per-channel group norm (groups == channels) is used here")
        self.eps = eps
        self.weight = mx.ones((channels,))
        self.bias = mx.zeros((channels,))

    def __call__(self, x):  # (B, T, C), statistics over T per channel
        mean = time_mean(x)
        var = time_mean(mx.square(x - mean))
        return (x - mean) * mx.rsqrt(var + self.eps) * self.weight + self.bias


def blocked_time_sum(x, block: int = 64):
    """Sum over axis 1 of (B, T, C) by a tree of blocked sums (``block`` frames per level) ->
    (B, 1, C): the accuracy a long fp32 sum needs (:func:`time_mean`)."""
    total = x
    while total.shape[1] > block:
        b, n, c = total.shape
        nb = -(-n // block)
        total = mx.pad(total, [(0, 0), (0, nb * block - n), (0, 0)])
        total = mx.sum(total.reshape(b, nb, block, c), axis=2)  # (B, nb, C)
    return mx.sum(total, axis=1, keepdims=True)


def time_mean(x, block: int = 64):
    """Mean over axis 1 of (B, T, C) by a tree of blocked sums (``block`` frames per level).

    A single running fp32 sum over T ~ 10^5 frames (30 s at the first conv layer) drifts by
    ~T * 6e-8 relative, while torch's reduction is pairwise-accurate; the tree keeps the error
    at ~block * log_block(T) * 6e-8, which the 1e-4 feature goal needs on long inputs."""
    return blocked_time_sum(x, block) / x.shape[1]


class ConvFeatureExtractor(nn.Module):
    """(B, N) @ 16 kHz -> (B, T, C) @ 50 Hz; ``conv_layers[i]`` lists mirror torch's indices."""

    def __init__(self, config: HubertConfig):
        super().__init__()
        self.config = config  # its frame count, hop and receptive field
        layers, in_ch = [], 1
        for i, (dim, kernel, stride) in enumerate(config.conv_layers):
            conv = Conv1d(in_ch, dim, kernel, stride, config.conv_bias)
            if i == 0:
                layers.append([conv, Dropout(), GroupNorm32(dim, dim), GELU()])
            else:
                layers.append([conv, Dropout(), GELU()])
            in_ch = dim
        self.conv_layers = layers

    def __call__(self, wav, segment_frames: int | None = None):
        """(B, N) -> (B, T, C); more than ``segment_frames`` (default ``FRONT_END_SEGMENT_FRAMES``)
        output frames run in segments (:meth:`_segmented`)."""
        segment_frames = segment_frames or FRONT_END_SEGMENT_FRAMES
        if self.config.num_frames(wav.shape[-1]) <= segment_frames:
            x = wav[..., None]  # (B, N, 1)
            for block in self.conv_layers:
                for layer in block:
                    x = layer(x)
            return x
        return self._segmented(wav, segment_frames)

    def _segmented(self, wav, segment_frames: int):
        """The front end on long inputs, ``segment_frames`` output frames at a time.

        The convs are valid and strided, so output frames a..b-1 need exactly samples
        ``a * hop .. (b - 1) * hop + field`` (hop: the strides' product, field: the receptive
        field). Only layer 0's GroupNorm looks at the whole input: its per-channel mean and
        variance are summed first, segment by segment (two passes over layer 0's conv, as the
        one-call path computes them, mean first), then applied in each segment.
        """
        conv0, _, norm, act0 = self.conv_layers[0]
        k0, s0 = conv0.weight.shape[1], conv0.stride
        hop, field = self.config.hop, self.config.receptive_field
        n0 = (wav.shape[-1] - k0) // s0 + 1  # layer-0 frames
        step = segment_frames * (hop // s0)  # layer-0 frames per segment of the statistics passes

        def layer0(a, b):  # layer-0 conv output for its frames a..b-1
            return conv0(wav[:, a * s0:(b - 1) * s0 + k0, None])

        total = None
        for a in range(0, n0, step):
            part = blocked_time_sum(layer0(a, min(a + step, n0)))
            total = part if total is None else total + part
            mx.eval(total)
        mean = total / n0
        total = None
        for a in range(0, n0, step):
            part = blocked_time_sum(mx.square(layer0(a, min(a + step, n0)) - mean))
            total = part if total is None else total + part
            mx.eval(total)
        inv_std = mx.rsqrt(total / n0 + norm.eps)
        frames = self.config.num_frames(wav.shape[-1])
        outs = []
        for a in range(0, frames, segment_frames):
            b = min(a + segment_frames, frames)
            x = act0((conv0(wav[:, a * hop:(b - 1) * hop + field, None]) - mean) * inv_std * norm.weight + norm.bias)
            for block in self.conv_layers[1:]:
                for layer in block:
                    x = layer(x)
            mx.eval(x)
            outs.append(x)
        return mx.concatenate(outs, axis=1)


class PosConv(nn.Module):
    """Grouped positional conv, padding K // 2 each side; weight (O, K, I / groups), fused."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        self.weight = mx.zeros((dim, kernel, dim // groups))
        self.bias = mx.zeros((dim,))

    def __call__(self, x):  # (B, T, C) -> (B, T + 2 * pad - K + 1, C)
        return conv1d(x, self.weight, self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def __call__(self, x):  # (B, T + 1, C) -> (B, T, C)
        return x[:, : -self.remove, :] if self.remove else x


class MultiheadAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def __call__(self, x, key_padding_mask=None):  # (B, T, C)
        b, t, c = x.shape

        def heads(y):
            return y.reshape(b, t, self.heads, self.head_dim).transpose(0, 2, 1, 3)

        q = heads(self.q_proj(x) * self.scaling)
        k, v = heads(self.k_proj(x)), heads(self.v_proj(x))
        k_t = k.transpose(0, 1, 3, 2)
        outs = []
        for r0 in range(0, t, ATTN_ROW_BLOCK):  # one block of query rows unless T > ATTN_ROW_BLOCK
            scores = q[:, :, r0:r0 + ATTN_ROW_BLOCK] @ k_t  # (B, H, rows, T)
            if key_padding_mask is not None:
                scores = mx.where(key_padding_mask[:, None, None, :], -mx.inf, scores)
            outs.append(mx.softmax(scores, axis=-1, precise=True) @ v)  # (B, H, rows, dh)
            if t > ATTN_ROW_BLOCK:
                mx.eval(outs[-1])  # one block's scores alive at a time
        out = outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=2)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(b, t, c))


class TransformerLayer(nn.Module):
    def __init__(self, config: HubertConfig):
        super().__init__()
        dim, eps = config.embed_dim, config.layer_norm_eps
        self.layer_norm_first = config.layer_norm_first
        self.self_attn = MultiheadAttention(dim, config.num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, config.ffn_dim)
        self.fc2 = nn.Linear(config.ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def __call__(self, x, key_padding_mask=None):
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_padding_mask)
            return x + self.fc2(gelu(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, key_padding_mask))
        return self.final_layer_norm(x + self.fc2(gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, config: HubertConfig):
        super().__init__()
        dim, k = config.embed_dim, config.conv_pos
        self.layer_norm_first = config.layer_norm_first
        self.pos_conv = [PosConv(dim, k, config.conv_pos_groups), SamePad(k), GELU()]
        self.layers = [TransformerLayer(config) for _ in range(config.num_layers)]
        self.layer_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def __call__(self, x, padding_mask=None, num_layers=None):  # (B, T, C)
        if padding_mask is not None:
            x = mx.where(padding_mask[..., None], 0.0, x)
        pos = x
        for layer in self.pos_conv:
            pos = layer(pos)
        x = x + pos
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        n = len(self.layers) if num_layers is None else num_layers
        for layer in self.layers[:n]:
            x = layer(x, padding_mask)
        return x


class HubertModel(nn.Module):
    """MLX HuBERT; ``extract_features`` mirrors the torch reference (same args, same frames)."""

    def __init__(self, config: HubertConfig):
        super().__init__()
        self.config = config
        self.feature_extractor = ConvFeatureExtractor(config)
        self.layer_norm = nn.LayerNorm(config.conv_dim, eps=config.layer_norm_eps)
        self.post_extract_proj = nn.Linear(config.conv_dim, config.embed_dim)
        self.encoder = TransformerEncoder(config)
        self.final_proj = nn.Linear(config.embed_dim, config.final_dim)

    @staticmethod
    def frame_padding_mask(padding_mask, frames: int):
        """(B, N) bool sample mask -> (B, T) frame mask (see the torch reference)."""
        extra = padding_mask.shape[1] % frames
        if extra:
            padding_mask = padding_mask[:, :-extra]
        return mx.all(padding_mask.reshape(padding_mask.shape[0], frames, -1), axis=-1)

    def layer_output(self, wav, output_layer: int, padding_mask=None):
        """Output of transformer layer ``output_layer`` (1-based): (B, N) -> (B, T, C)."""
        wav = mx.array(wav) if not isinstance(wav, mx.array) else wav
        if wav.ndim == 1:
            wav = wav[None]
        check_length(wav.shape[-1], self.config)
        if not 1 <= output_layer <= len(self.encoder.layers):
            raise ValueError(f"output_layer {output_layer} not in 1..{len(self.encoder.layers)}")
        wav = wav.astype(mx.float32)
        if self.config.normalize:
            mean = mx.mean(wav, axis=-1, keepdims=True)
            var = mx.var(wav, axis=-1, keepdims=True)
            wav = (wav - mean) * mx.rsqrt(var + 1e-5)
        feats = self.layer_norm(self.feature_extractor(wav))  # (B, T, 512)
        mask = None
        if padding_mask is not None:
            pm = mx.array(padding_mask) if not isinstance(padding_mask, mx.array) else padding_mask
            mask = self.frame_padding_mask(pm.astype(mx.bool_), feats.shape[1])
        x = self.post_extract_proj(feats)
        return self.encoder(x, mask, num_layers=output_layer)

    def extract_features(self, wav, version: str = "v1", padding_mask=None, output_layer=None):
        """(B, N) or (N,) @ 16 kHz -> (B, T, 256 | 768) @ 50 Hz; see the torch reference."""
        if version not in VERSION_LAYERS:
            raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
        x = self.layer_output(wav, output_layer or VERSION_LAYERS[version], padding_mask)
        return self.final_proj(x) if version == "v1" else x
