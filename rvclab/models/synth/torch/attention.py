"""Transformer encoder of the RVC text (content) encoder: relative-position self-attention.

Layout (B, C, T) throughout, frames at 100 fps (hop 10 ms of the 16 kHz content features,
repeated x2 by the pipeline). Names and shapes follow upstream checkpoints:

* ``LayerNorm.gamma`` / ``.beta`` (C,) over the channel axis (not ``weight``/``bias``).
* ``MultiHeadAttention.emb_rel_k`` / ``emb_rel_v``: (1, 2*window+1, C/heads) = (1, 21, 96) for
  the real configs; plain parameters, no ``.weight`` suffix; shared by all heads.
* ``conv_q/k/v/o``: 1x1 Conv1d (C, C, 1).
* ``FFN.conv_1`` (filter, C, k), ``conv_2`` (C, filter, k), 'same' padding, ReLU.

Inputs longer than ``TORCH_FULL_ATTENTION_FRAMES`` run the attention in blocks of ``ATTN_ROW_BLOCK``
query rows with the relative terms as a band (memory T x block instead of T x T), as the MLX port.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rvclab.models.synth.config import (
    ATTN_ROW_BLOCK,
    LAYER_NORM_EPS,
    MASK_FILL,
    TORCH_FULL_ATTENTION_FRAMES,
    WINDOW_SIZE,
)
from rvclab.models.synth.torch.layers import rel_stddev


class LayerNorm(nn.Module):
    """Layer norm over channels of a (B, C, T) tensor; parameters ``gamma``, ``beta`` (C,)."""

    def __init__(self, channels: int, eps: float = LAYER_NORM_EPS):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, -1)
        x = F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with learned relative-position keys and values (window +-10 frames).

    ``forward(x, c, attn_mask)``: x, c (B, C, T); attn_mask (B, 1, T, T) of 0/1 -> (B, C_out, T).
    Scores at masked positions are set to MASK_FILL before the softmax, as upstream.
    """

    def __init__(self, channels: int, out_channels: int, n_heads: int, p_dropout: float = 0.0,
                 window_size: int | None = WINDOW_SIZE):
        super().__init__()
        assert channels % n_heads == 0
        self.channels = channels
        self.out_channels = out_channels
        self.n_heads = n_heads
        self.window_size = window_size
        self.k_channels = channels // n_heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)
        if window_size is not None:
            std = rel_stddev(self.k_channels)
            n_rel = 2 * window_size + 1
            self.emb_rel_k = nn.Parameter(torch.randn(1, n_rel, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, n_rel, self.k_channels) * std)
        nn.init.xavier_uniform_(self.conv_q.weight)
        nn.init.xavier_uniform_(self.conv_k.weight)
        nn.init.xavier_uniform_(self.conv_v.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None = None):
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        out = self.attention(q, k, v, attn_mask)
        return self.conv_o(out)

    def attention(self, query, key, value, mask=None) -> torch.Tensor:
        """(B, C, T) q/k/v -> (B, C, T); heads split as (B, H, T, C/H)."""
        b, d, t_s = key.shape
        t_t = query.shape[2]
        h, dk = self.n_heads, self.k_channels
        query = query.view(b, h, dk, t_t).transpose(2, 3) / math.sqrt(dk)  # (B, H, Tt, dk)
        key = key.view(b, h, dk, t_s).transpose(2, 3)
        value = value.view(b, h, dk, t_s).transpose(2, 3)
        if self.window_size is not None:
            assert t_s == t_t, "relative attention needs self-attention"
        if self.window_size is not None and t_t > TORCH_FULL_ATTENTION_FRAMES:
            out = self._attention_rows(query, key, value, mask)
        else:
            out = self._attention_full(query, key, value, mask)
        return out.transpose(2, 3).contiguous().view(b, d, t_t)

    def _attention_full(self, q, k, v, mask):
        """(B, H, T, dk) each -> (B, H, T, dk), with (B, H, T, T) scores: upstream's steps."""
        t_s = k.shape[2]
        scores = q @ k.transpose(-2, -1)  # (B, H, Tt, Ts)
        if self.window_size is not None:
            rel_k = self._relative_embeddings(self.emb_rel_k, t_s)  # (1, 2T-1, dk)
            rel_logits = q @ rel_k.unsqueeze(0).transpose(-2, -1)  # (B, H, T, 2T-1)
            scores = scores + self._relative_to_absolute(rel_logits)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, MASK_FILL)
        p_attn = self.drop(F.softmax(scores, dim=-1))
        out = p_attn @ v  # (B, H, T, dk)
        if self.window_size is not None:
            rel_w = self._absolute_to_relative(p_attn)  # (B, H, T, 2T-1)
            rel_v = self._relative_embeddings(self.emb_rel_v, t_s)
            out = out + rel_w @ rel_v.unsqueeze(0)
        return out

    def _attention_rows(self, q, k, v, mask):
        """As :meth:`_attention_full` in blocks of ``ATTN_ROW_BLOCK`` query rows: each block's
        (B, H, rows, T) scores are made, softmaxed and used before the next, and the
        relative-position terms enter as the band of +-window keys they are nonzero on, so memory
        grows with T x block, not T x T. Per row the same terms; sums may round in another order."""
        t_s = k.shape[2]
        k_t = k.transpose(-2, -1)
        outs = []
        for r0 in range(0, q.shape[2], ATTN_ROW_BLOCK):
            q_b = q[:, :, r0:r0 + ATTN_ROW_BLOCK]  # (B, H, n, dk)
            scores = q_b @ k_t + self._band_to_keys(q_b @ self.emb_rel_k[0].T, r0, t_s)  # (B, H, n, Ts)
            if mask is not None:
                scores = scores.masked_fill(mask[:, :, r0:r0 + ATTN_ROW_BLOCK] == 0, MASK_FILL)
            p_attn = self.drop(F.softmax(scores, dim=-1))
            outs.append(p_attn @ v + self._keys_to_band(p_attn, r0) @ self.emb_rel_v[0])
        return torch.cat(outs, dim=2)

    def _band_to_keys(self, band: torch.Tensor, r0: int, t_s: int) -> torch.Tensor:
        """(B, H, n, 2w+1) terms of query rows r0.. for key offsets -w..w -> (B, H, n, Ts), zero
        off the band: row i's entry m lands on key r0 + i - w + m (dropped outside 0..Ts-1)."""
        b, h, n, width = band.shape
        w = self.window_size
        skew = F.pad(band, (0, n)).reshape(b, h, n * (n + width))
        skew = skew[:, :, :n * (n + width - 1)].reshape(b, h, n, n + width - 1)  # column c: key r0 - w + c
        lo = r0 - w
        if lo < 0:
            skew, lo = skew[..., -lo:], 0
        skew = skew[..., :t_s - lo]
        return F.pad(skew, (lo, t_s - lo - skew.shape[-1]))

    def _keys_to_band(self, p_attn: torch.Tensor, r0: int) -> torch.Tensor:
        """(B, H, n, Ts) weights of query rows r0.. -> (B, H, n, 2w+1): row i's weights on keys
        r0 + i - w .. r0 + i + w (zero where the key is outside 0..Ts-1)."""
        b, h, n, t_s = p_attn.shape
        w = self.window_size
        width = n + 2 * w  # column c: key r0 - w + c
        start, end = max(r0 - w, 0), min(r0 + n + w, t_s)
        left = start - (r0 - w)
        ext = F.pad(p_attn[..., start:end], (left, width - left - (end - start)))
        flat = F.pad(ext.reshape(b, h, n * width), (0, n))
        return flat.reshape(b, h, n, width + 1)[..., :2 * w + 1]

    def _relative_embeddings(self, emb: torch.Tensor, length: int) -> torch.Tensor:
        """(1, 2W+1, dk) -> (1, 2*length-1, dk): zero-padded or cropped around the centre."""
        w = self.window_size
        pad = max(length - (w + 1), 0)
        start = max((w + 1) - length, 0)
        if pad > 0:
            emb = F.pad(emb, (0, 0, pad, pad))
        return emb[:, start:start + 2 * length - 1]

    @staticmethod
    def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
        """(B, H, L, 2L-1) relative logits -> (B, H, L, L) by the pad-and-reshape skew."""
        b, h, length, _ = x.shape
        x = F.pad(x, (0, 1))  # (B, H, L, 2L)
        flat = F.pad(x.reshape(b, h, 2 * length * length), (0, length - 1))
        return flat.view(b, h, length + 1, 2 * length - 1)[:, :, :length, length - 1:]

    @staticmethod
    def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
        """(B, H, L, L) attention weights -> (B, H, L, 2L-1), the inverse skew."""
        b, h, length, _ = x.shape
        x = F.pad(x, (0, length - 1))  # (B, H, L, 2L-1)
        flat = F.pad(x.reshape(b, h, length * (2 * length - 1)), (length, 0))
        return flat.view(b, h, length, 2 * length)[:, :, :, 1:]


class FFN(nn.Module):
    """Position-wise conv feed-forward: conv_1 -> ReLU -> conv_2, input masked before each conv.

    (B, C, T), mask (B, 1, T) -> (B, C_out, T).
    """

    def __init__(self, in_channels: int, out_channels: int, filter_channels: int,
                 kernel_size: int, p_dropout: float = 0.0):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _same_pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._same_pad(x * x_mask)))
        x = self.drop(x)
        x = self.conv_2(self._same_pad(x * x_mask))
        return x * x_mask


class Encoder(nn.Module):
    """Post-LN transformer: n_layers x (attention, add & LayerNorm, FFN, add & LayerNorm).

    (B, C, T), mask (B, 1, T) -> (B, C, T).
    """

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int = 1, p_dropout: float = 0.0, window_size: int = WINDOW_SIZE):
        super().__init__()
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(MultiHeadAttention(
                hidden_channels, hidden_channels, n_heads, p_dropout, window_size))
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels,
                                       kernel_size, p_dropout))
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)  # (B, 1, T, T)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1,
                                           self.ffn_layers, self.norm_layers_2):
            x = norm1(x + self.drop(attn(x, x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask
