"""Encoders, flow and residual blocks of the MLX synthesizer: WaveNet, couplings, ResBlocks, TextEncoder.

Layout ``(B, T, C)`` throughout, frames at 100 fps (torch: ``(B, C, T)``); masks ``(B, T, 1)``.
Attribute names follow the torch reference so that conversion is layout only. Inference only.
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from rvclab.mlx.accumulate import MATMUL_K_BLOCK
from rvclab.models.synth.config import FLOW_COUPLINGS, LRELU_SLOPE, PITCH_BINS
from rvclab.models.synth.mlx.attention import Encoder
from rvclab.models.synth.mlx.layers import (
    Conv1d,
    Embedding,
    Linear,
    get_padding,
    leaky_relu,
    sequence_mask,
)


# --- WaveNet and the coupling flow ----------------------------------------------------------------
class WN(nn.Module):
    """Non-causal WaveNet of gated dilated convs. One ``cond_layer`` makes
    ``2*hidden*n_layers`` channels, sliced per layer; the last ``res_skip_layers`` entry outputs
    ``hidden`` channels (skip only), the others ``2*hidden`` (residual + skip)."""

    def __init__(self, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=0):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        if gin_channels:
            self.cond_layer = Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        self.in_layers = []
        self.res_skip_layers = []
        for i in range(n_layers):
            d = dilation_rate**i
            self.in_layers.append(Conv1d(hidden_channels, 2 * hidden_channels, kernel_size,
                                         dilation=d, padding=(kernel_size * d - d) // 2))
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(Conv1d(hidden_channels, out, 1))

    def __call__(self, x, x_mask, g=None):  # x (B, T, H), x_mask (B, T, 1), g (B, 1, gin)
        h = self.hidden_channels
        output = mx.zeros_like(x)
        if g is not None:
            g = self.cond_layer(g)  # (B, 1, 2*H*n_layers)
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            x_in = in_layer(x)
            if g is not None:
                x_in = x_in + g[..., i * 2 * h:(i + 1) * 2 * h]
            acts = mx.tanh(x_in[..., :h]) * mx.sigmoid(x_in[..., h:])
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[..., :h]) * x_mask
                output = output + rs[..., h:]
            else:
                output = output + rs
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the first half of the channels predicts a shift of the second."""

    def __init__(self, channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                 gin_channels=0, mean_only=True):
        super().__init__()
        self.half_channels = channels // 2
        self.mean_only = mean_only
        self.pre = Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = Conv1d(hidden_channels, self.half_channels * (2 - mean_only), 1)

    def __call__(self, x, x_mask, g=None, reverse=True):  # (B, T, C)
        hc = self.half_channels
        x0, x1 = x[..., :hc], x[..., hc:]
        h = self.pre(x0) * x_mask
        h = self.enc(h, x_mask, g=g)
        stats = self.post(h) * x_mask
        if self.mean_only:
            m, logs = stats, mx.zeros_like(stats)
        else:
            m, logs = stats[..., :hc], stats[..., hc:]
        if reverse:
            x1 = (x1 - m) * mx.exp(-logs) * x_mask
        else:
            x1 = m + x1 * mx.exp(logs) * x_mask
        return mx.concatenate([x0, x1], axis=-1)


class Flip(nn.Module):
    """Reverses the channel order (its own inverse); no parameters."""

    def __call__(self, x, x_mask=None, g=None, reverse=True):
        return x[..., ::-1]


class ResidualCouplingBlock(nn.Module):
    """``n_flows`` coupling layers interleaved with Flip: flows = [coupling, Flip, coupling, ...],
    so parameters sit at even indices exactly as in torch (flows.0, flows.2, ...)."""

    def __init__(self, channels, hidden_channels, kernel_size, dilation_rate, n_layers,
                 n_flows=FLOW_COUPLINGS, gin_channels=0):
        super().__init__()
        self.flows = []
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden_channels, kernel_size,
                                                    dilation_rate, n_layers, gin_channels,
                                                    mean_only=True))
            self.flows.append(Flip())

    def __call__(self, x, x_mask, g=None, reverse=True):
        """Inference: ``reverse=True``, last module first, so each Flip precedes its coupling."""
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x = flow(x, x_mask, g=g, reverse=reverse)
        return x


# --- HiFi-GAN residual blocks ---------------------------------------------------------------------
class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs with leaky ReLU and residual adds."""

    def __init__(self, channels, kernel_size=3, dilation=(1, 3, 5)):
        super().__init__()
        self.convs1 = [Conv1d(channels, channels, kernel_size, dilation=d,
                              padding=get_padding(kernel_size, d)) for d in dilation]
        self.convs2 = [Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size))
                       for _ in dilation]

    def __call__(self, x, x_mask=None):  # (B, T, C)
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = leaky_relu(x)
            if x_mask is not None:
                xt = xt * x_mask
            xt = leaky_relu(c1(xt))
            if x_mask is not None:
                xt = xt * x_mask
            x = c2(xt) + x
        return x if x_mask is None else x * x_mask


class ResBlock2(nn.Module):
    """Two dilated convs with leaky ReLU and residual adds."""

    def __init__(self, channels, kernel_size=3, dilation=(1, 3)):
        super().__init__()
        self.convs = [Conv1d(channels, channels, kernel_size, dilation=d,
                             padding=get_padding(kernel_size, d)) for d in dilation]

    def __call__(self, x, x_mask=None):
        for c in self.convs:
            xt = leaky_relu(x)
            if x_mask is not None:
                xt = xt * x_mask
            x = c(xt) + x
        return x if x_mask is None else x * x_mask


# --- the text encoder ------------------------------------------------------------------------------
class TextEncoder(nn.Module):
    """phone (B, T, in) + coarse pitch (B, T) int -> m, logs (B, T, out), mask (B, T, 1)."""

    def __init__(self, in_channels, out_channels, hidden_channels, filter_channels, n_heads,
                 n_layers, kernel_size, p_dropout=0.0, f0=True):
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = Linear(in_channels, hidden_channels, k_block=MATMUL_K_BLOCK)
        if f0:
            self.emb_pitch = Embedding(PITCH_BINS, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = Conv1d(hidden_channels, out_channels * 2, 1, k_block=MATMUL_K_BLOCK)

    def __call__(self, phone, pitch, lengths):
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = leaky_relu(x * math.sqrt(self.hidden_channels), LRELU_SLOPE)  # (B, T, H)
        x_mask = sequence_mask(lengths, x.shape[1])
        x = self.encoder(x * x_mask, x_mask)
        stats = self.proj(x) * x_mask
        return stats[..., :self.out_channels], stats[..., self.out_channels:], x_mask
