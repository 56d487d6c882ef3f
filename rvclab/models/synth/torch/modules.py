"""Encoders, flow and residual blocks of the RVC synthesizer (torch reference).

Frames are 100 fps content frames; every tensor is (B, C, T) unless stated.
Weight-normed convolutions store ``weight_g``/``weight_v`` (see :mod:`.layers`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rvclab.models.synth.config import FLOW_COUPLINGS, LRELU_SLOPE, PITCH_BINS
from rvclab.models.synth.torch.attention import Encoder
from rvclab.models.synth.torch.layers import (
    WNConv1d,
    fused_add_tanh_sigmoid_multiply,
    get_padding,
    sequence_mask,
)


class WN(nn.Module):
    """Non-causal WaveNet stack with gated activations and optional global conditioning.

    One ``cond_layer`` (gin -> 2*hidden*n_layers, 1x1) is sliced per layer; every
    ``res_skip_layers[i]`` outputs 2*hidden channels (residual | skip) except the last one,
    which outputs hidden (skip only). x (B, hidden, T), x_mask (B, 1, T), g (B, gin, 1).
    """

    def __init__(self, hidden_channels: int, kernel_size: int, dilation_rate: int,
                 n_layers: int, gin_channels: int = 0, p_dropout: float = 0.0):
        super().__init__()
        assert kernel_size % 2 == 1
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels != 0:
            self.cond_layer = WNConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(WNConv1d(
                hidden_channels, 2 * hidden_channels, kernel_size, dilation=dilation,
                padding=get_padding(kernel_size, dilation)))
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WNConv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None):
        hc = self.hidden_channels
        output = torch.zeros_like(x)
        if g is not None:
            g = self.cond_layer(g)  # (B, 2*hc*n_layers, 1)
        for i in range(self.n_layers):
            x_in = self.in_layers[i](x)
            g_l = g[:, 2 * hc * i:2 * hc * (i + 1)] if g is not None else torch.zeros_like(x_in)
            acts = self.drop(fused_add_tanh_sigmoid_multiply(x_in, g_l, hc))
            res_skip = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                x = (x + res_skip[:, :hc]) * x_mask
                output = output + res_skip[:, hc:]
            else:
                output = output + res_skip
        return output * x_mask


class ResBlock1(nn.Module):
    """HiFi-GAN resblock type "1": three (dilated conv, conv) pairs with leaky ReLU, residual.

    ``convs1`` use dilations ``dilation`` (1, 3, 5); ``convs2`` dilation 1. (B, C, T) -> same.
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList([
            WNConv1d(channels, channels, kernel_size, dilation=d,
                     padding=get_padding(kernel_size, d)) for d in dilation])
        self.convs2 = nn.ModuleList([
            WNConv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, 1))
            for _ in dilation])

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor | None = None) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            if x_mask is not None:
                xt = xt * x_mask
            xt = F.leaky_relu(c1(xt), LRELU_SLOPE)
            if x_mask is not None:
                xt = xt * x_mask
            x = c2(xt) + x
        return x * x_mask if x_mask is not None else x


class ResBlock2(nn.Module):
    """HiFi-GAN resblock type "2": two dilated convs with leaky ReLU, residual. (B, C, T)."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList([
            WNConv1d(channels, channels, kernel_size, dilation=d,
                     padding=get_padding(kernel_size, d)) for d in dilation])

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor | None = None) -> torch.Tensor:
        for c in self.convs:
            xt = F.leaky_relu(x, LRELU_SLOPE)
            if x_mask is not None:
                xt = xt * x_mask
            x = c(xt) + x
        return x * x_mask if x_mask is not None else x


class Flip(nn.Module):
    """Reverses the channel axis; no parameters (odd indices of ``flow.flows``)."""

    def forward(self, x: torch.Tensor, *args, reverse: bool = False, **kwargs):
        x = torch.flip(x, [1])
        if reverse:
            return x
        return x, torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class ResidualCouplingLayer(nn.Module):
    """Affine coupling (mean-only in RVC): x1 <- x1 + m(x0) forward, x1 - m(x0) in reverse.

    ``pre`` (hidden, C/2, 1) -> ``enc`` (WN) -> ``post`` (C/2 * (2 - mean_only), hidden, 1).
    Upstream zero-initialises ``post`` so a fresh flow is the identity.
    """

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int,
                 dilation_rate: int, n_layers: int, p_dropout: float = 0.0,
                 gin_channels: int = 0, mean_only: bool = False):
        super().__init__()
        assert channels % 2 == 0
        self.half_channels = channels // 2
        self.mean_only = mean_only
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers,
                      gin_channels=gin_channels, p_dropout=p_dropout)
        self.post = nn.Conv1d(hidden_channels, self.half_channels * (2 - mean_only), 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(self, x, x_mask, g=None, reverse: bool = False):
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        stats = self.post(h) * x_mask
        if self.mean_only:
            m, logs = stats, torch.zeros_like(stats)
        else:
            m, logs = torch.split(stats, [self.half_channels] * 2, 1)
        if not reverse:
            x1 = m + x1 * torch.exp(logs) * x_mask
            return torch.cat([x0, x1], 1), torch.sum(logs, [1, 2])
        x1 = (x1 - m) * torch.exp(-logs) * x_mask
        return torch.cat([x0, x1], 1)


class ResidualCouplingBlock(nn.Module):
    """n_flows x [ResidualCouplingLayer, Flip]: couplings at even indices of ``flows``.

    Reverse (inference) walks the list backwards: Flip first, then the coupling, per pair.
    x (B, C, T), x_mask (B, 1, T), g (B, gin, 1).
    """

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int,
                 dilation_rate: int, n_layers: int, n_flows: int = FLOW_COUPLINGS,
                 gin_channels: int = 0):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(
                channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                gin_channels=gin_channels, mean_only=True))
            self.flows.append(Flip())

    def forward(self, x, x_mask, g=None, reverse: bool = False):
        if not reverse:
            for flow in self.flows:
                x, _ = flow(x, x_mask, g=g, reverse=False)
        else:
            for flow in reversed(self.flows):
                x = flow(x, x_mask, g=g, reverse=True)
        return x


class PosteriorEncoder(nn.Module):
    """Spectrogram encoder ``enc_q`` (training only; upstream drops it from saved voices).

    y (B, spec_channels, T), lengths (B,), g (B, gin, 1), noise (B, out, T) standard normal
    -> z, m, logs, mask.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int = 0):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers,
                      gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, y, lengths, noise, g=None):
        mask = sequence_mask(lengths, y.size(2)).unsqueeze(1).to(y.dtype)
        h = self.enc(self.pre(y) * mask, mask, g=g)
        m, logs = torch.split(self.proj(h) * mask, self.out_channels, dim=1)
        z = (m + noise * torch.exp(logs)) * mask
        return z, m, logs, mask


class TextEncoder(nn.Module):
    """Content encoder ``enc_p``: features (+ coarse pitch) -> prior mean and log-std.

    phone (B, T, in_channels) float (256 v1 / 768 v2), pitch (B, T) int in 0..255 or None
    (no-F0 models), lengths (B,) -> m, logs (B, out_channels, T), mask (B, 1, T).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
                 p_dropout: float, f0: bool = True):
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(in_channels, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(PITCH_BINS, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers,
                               kernel_size, float(p_dropout))
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, phone, pitch, lengths):
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), LRELU_SLOPE)  # (B, T, H)
        x = x.transpose(1, -1)  # (B, H, T)
        mask = sequence_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * mask, mask)
        m, logs = torch.split(self.proj(x) * mask, self.out_channels, dim=1)
        return m, logs, mask
