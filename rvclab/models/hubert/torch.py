"""HuBERT base / ContentVec feature extractor: the PyTorch reference.

wav (B, N) @ 16 kHz -> conv front end (B, 512, T) @ 50 Hz -> projection -> positional conv ->
12 post-LN transformer layers -> v1: layer 9 through final_proj (B, T, 256); v2: layer 12
(B, T, 768). Parameter names are fairseq's (keys of RVC's ``hubert_base.pt``); exact (erf) GELU
everywhere. Data flow and format notes: docs/hubert.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rvclab.models.hubert.config import (
    ATTENTION_KERNELS,
    VERSION_LAYERS,
    HubertConfig,
    TooShortError,
    check_length,
)

__all__ = ["HubertModel", "TooShortError", "VERSION_LAYERS", "init_weights"]


class GroupNorm32(nn.GroupNorm):
    """Group norm computed in fp32 (fairseq's Fp32GroupNorm); input (B, C, T)."""

    def forward(self, x):
        out = F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(),
                           self.eps)
        return out.type_as(x)


class ConvFeatureExtractor(nn.Module):
    """Strided conv stack: (B, N) @ 16 kHz -> (B, C, T) @ 50 Hz.

    Each layer is an ``nn.Sequential`` of (conv, dropout, [group norm], GELU) so its keys read
    ``conv_layers.{i}.0.weight`` and, for layer 0, ``conv_layers.0.2.{weight,bias}``.
    """

    def __init__(self, config: HubertConfig):
        super().__init__()
        if config.extractor_mode != "default":
            raise ValueError(
                f"extractor_mode '{config.extractor_mode}' is not supported (HuBERT base uses "
                "'default': group norm in the first conv layer)"
            )
        layers, in_ch = [], 1
        for i, (dim, kernel, stride) in enumerate(config.conv_layers):
            conv = nn.Conv1d(in_ch, dim, kernel, stride=stride, bias=config.conv_bias)
            if i == 0:
                block = nn.Sequential(conv, nn.Dropout(0.0), GroupNorm32(dim, dim), nn.GELU())
            else:
                block = nn.Sequential(conv, nn.Dropout(0.0), nn.GELU())
            layers.append(block)
            in_ch = dim
        self.conv_layers = nn.ModuleList(layers)

    def forward(self, wav):
        x = wav.unsqueeze(1)  # (B, 1, N)
        for block in self.conv_layers:
            x = block(x)
        return x  # (B, C, T)


class WeightNormConv1d(nn.Module):
    """Conv1d with weight norm: weight = v * (g / ||v||), the norm over all dims but ``dim``.

    Keys ``weight_g``, ``weight_v``, ``bias`` as torch's legacy weight_norm writes them. HuBERT's
    positional conv uses ``dim=2`` (kernel axis): g has shape (1, 1, K).
    """

    def __init__(self, in_ch, out_ch, kernel, padding, groups, dim=2):
        super().__init__()
        self.padding, self.groups, self.dim = padding, groups, dim
        v = torch.empty(out_ch, in_ch // groups, kernel)
        g_shape = [1] * 3
        g_shape[dim] = v.shape[dim]
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(torch.ones(g_shape))
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def weight(self):
        # torch's own weight-norm op, v * (g / ||v||), as fairseq and transformers call it: the same
        # bits (g * v / ||v|| differs from it by rounding: docs/reference_profiles.md)
        return torch._weight_norm(self.weight_v, self.weight_g, self.dim)

    def forward(self, x):  # (B, C, T) -> (B, C, T + 2 * padding - K + 1)
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    """Drop the extra trailing frame an even kernel with ``padding = K // 2`` produces."""

    def __init__(self, kernel: int):
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x):  # (B, C, T + 1) -> (B, C, T)
        return x[:, :, : -self.remove] if self.remove else x


class MultiheadAttention(nn.Module):
    """Self attention with separate q/k/v/out projections (fairseq key names); (B, T, C).

    ``attention``: one of :data:`~rvclab.models.hubert.config.ATTENTION_KERNELS`."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, key_padding_mask=None, attention: str = "explicit"):
        b, t, c = x.shape
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        if attention == "sdpa":  # (B, H, T, D); the kernel scales q by head_dim ** -0.5 itself
            q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
            mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            return self.out_proj(out.transpose(1, 2).reshape(b, t, c))
        q = (self.q_proj(x) * self.scaling).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(-1, -2)  # (B, H, T, T)
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        attn = torch.softmax(scores.float(), dim=-1).type_as(x)
        out = (attn @ v).transpose(1, 2).reshape(b, t, c)
        return self.out_proj(out)


class TransformerLayer(nn.Module):
    """One HuBERT encoder layer (post-LN unless ``layer_norm_first``); (B, T, C)."""

    def __init__(self, config: HubertConfig):
        super().__init__()
        dim, eps = config.embed_dim, config.layer_norm_eps
        self.layer_norm_first = config.layer_norm_first
        self.self_attn = MultiheadAttention(dim, config.num_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, config.ffn_dim)
        self.fc2 = nn.Linear(config.ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, key_padding_mask=None, attention: str = "explicit"):
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_padding_mask, attention)
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        x = self.self_attn_layer_norm(x + self.self_attn(x, key_padding_mask, attention))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    """Positional conv + transformer stack; ``forward`` stops after ``num_layers`` layers."""

    def __init__(self, config: HubertConfig):
        super().__init__()
        dim, k = config.embed_dim, config.conv_pos
        self.layer_norm_first = config.layer_norm_first
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, dim, k, padding=k // 2, groups=config.conv_pos_groups, dim=2),
            SamePad(k),
            nn.GELU(),
        )
        self.layers = nn.ModuleList(TransformerLayer(config) for _ in range(config.num_layers))
        self.layer_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, x, padding_mask=None, num_layers=None, attention: str = "explicit"):  # (B, T, C)
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        n = len(self.layers) if num_layers is None else num_layers
        for layer in self.layers[:n]:
            x = layer(x, padding_mask, attention)
        return x  # pre-LN models: fairseq skips the final norm when a layer is selected


class HubertModel(nn.Module):
    """HuBERT base / ContentVec; ``extract_features`` gives RVC's v1/v2 content features."""

    def __init__(self, config: HubertConfig):
        super().__init__()
        self.config = config
        self.feature_extractor = ConvFeatureExtractor(config)
        self.layer_norm = nn.LayerNorm(config.conv_dim, eps=config.layer_norm_eps)
        self.post_extract_proj = nn.Linear(config.conv_dim, config.embed_dim)
        self.encoder = TransformerEncoder(config)
        self.final_proj = nn.Linear(config.embed_dim, config.final_dim)

    def frame_padding_mask(self, padding_mask, frames: int):
        """(B, N) sample mask (True = padding) -> (B, T) frame mask, as fairseq reduces it:
        drop the remainder samples, group the rest evenly per frame, a frame is padding only
        when all its samples are."""
        extra = padding_mask.shape[1] % frames
        if extra:
            padding_mask = padding_mask[:, :-extra]
        return padding_mask.view(padding_mask.shape[0], frames, -1).all(-1)

    def layer_output(self, wav, output_layer: int, padding_mask=None, attention: str = "explicit"):
        """Output of transformer layer ``output_layer`` (1-based): (B, N) -> (B, T, C)."""
        if wav.dim() == 1:
            wav = wav[None]
        check_length(wav.shape[-1], self.config)
        if not 1 <= output_layer <= len(self.encoder.layers):
            raise ValueError(f"output_layer {output_layer} not in 1..{len(self.encoder.layers)}")
        if attention not in ATTENTION_KERNELS:
            raise ValueError(f"attention must be one of {ATTENTION_KERNELS}, got {attention!r}")
        if self.config.normalize:
            wav = F.layer_norm(wav, wav.shape[-1:])
        feats = self.feature_extractor(wav).transpose(1, 2)  # (B, T, 512)
        feats = self.layer_norm(feats)
        mask = None
        if padding_mask is not None:
            mask = self.frame_padding_mask(padding_mask.bool(), feats.shape[1])
        x = self.post_extract_proj(feats)  # (B, T, 768)
        return self.encoder(x, mask, num_layers=output_layer, attention=attention)

    def extract_features(self, wav, version: str = "v1", padding_mask=None, output_layer=None,
                         attention: str = "explicit"):
        """RVC content features: (B, N) or (N,) float @ 16 kHz -> (B, T, 256 | 768) @ 50 Hz.

        ``version="v1"``: layer 9 through ``final_proj`` (256-d, RVC WebUI); ``"v2"``: layer 12
        (768-d). ``output_layer`` overrides the layer (Applio's v1 reads layer 12 through
        final_proj: ``version="v1", output_layer=12``). ``padding_mask`` (B, N) bool, True at
        padded samples; RVC passes all False, which equals None. ``attention``: the kernel
        (:data:`~rvclab.models.hubert.config.ATTENTION_KERNELS`) of the upstream code followed.
        T = config.num_frames(N); raises TooShortError when N < 400 samples (one frame).
        """
        if version not in VERSION_LAYERS:
            raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
        layer = output_layer or VERSION_LAYERS[version]
        x = self.layer_output(wav, layer, padding_mask, attention)
        return self.final_proj(x) if version == "v1" else x


# Init gains per linear (see init_weights): sharper attention than a plain fan-in init, a lighter
# attention branch; chosen so frames stay distinct through 12 layers without making the seeded
# network chaotic (a 1e-6 input perturbation must not grow past ~1e-5 at the output).
SEED_GAINS = {"q_proj": 1.5, "k_proj": 1.5, "out_proj": 0.3}


def init_weights(model: HubertModel, seed: int) -> HubertModel:
    """Seeded weights with realistic activation scales (He-style convs, unit-ish LayerNorms).

    Deterministic for a given seed and config; used by tests and ``rvclab weights make``.
    """
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=gen) * std

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):
                continue
            if name.endswith("bias"):
                p.copy_(normal(p.shape, 0.02))
            elif p.dim() == 1:  # norm scales
                p.copy_(1.0 + normal(p.shape, 0.05))
            elif "feature_extractor" in name:  # conv (O, I, K): keep the scale through GELUs
                w = normal(p.shape, 1.25 * math.sqrt(2.0 / (p.shape[1] * p.shape[2])))
                p.copy_(w - w.mean(dim=(1, 2), keepdim=True) if p.shape[1] > 1 else w)
            elif name.endswith("weight_v"):
                p.copy_(normal(p.shape, 1.0))
            else:  # linear (out, in)
                # peaky attention (q, k larger) and a lighter attention branch keep frames
                # distinct through 12 layers, as in trained HuBERT; uniform attention would
                # average them into one vector
                gain = SEED_GAINS.get(name.split(".")[-2], 1.0)
                w = normal(p.shape, gain / math.sqrt(p.shape[1]))
                if name.endswith("fc2.weight"):  # zero-mean rows: no constant offset from GELU
                    w -= w.mean(dim=1, keepdim=True)
                p.copy_(w)
        conv = model.encoder.pos_conv[0]
        fan_in = conv.weight_v.shape[1] * conv.weight_v.shape[2]
        # g = ||v|| over (out, in) per tap, scaled so the fused weight has std ~ 1/sqrt(fan_in)
        norm = conv.weight_v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()
        conv.weight_g.copy_(norm / math.sqrt(fan_in) * (1.0 + normal(norm.shape, 0.1)))
    return model
