"""The TextEncoder's transformer in MLX: LayerNorm, relative-position attention, FFN, Encoder.

Layout ``(B, T, C)``; attention internals ``(B, heads, T, head_dim)``. Relative-position tables
``emb_rel_k`` / ``emb_rel_v`` are ``(1, 2*window+1, head_dim)``, copied from torch untransposed.
The relative<->absolute index conversions are the same pad/reshape/slice steps as the reference,
so the two backends index the same elements. Inputs longer than ``ATTN_ROW_BLOCK`` frames run in
blocks of query rows with the relative terms as a band (memory T x block instead of T x T).

Sums are blocked (:mod:`rvclab.mlx.accumulate`): the softmax denominator, LayerNorm's mean and
variance, and the 1x1 convs' contractions (``k_block``), which brings the float32 TextEncoder
as close to float64 as torch's own float32 run (docs/synthesizer.md, "TextEncoder precision").
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from rvclab.mlx.accumulate import MATMUL_K_BLOCK, layer_norm, softmax
from rvclab.models.synth.config import ATTN_ROW_BLOCK, LAYER_NORM_EPS, MASK_FILL, WINDOW_SIZE
from rvclab.models.synth.mlx.layers import Conv1d


class LayerNorm(nn.Module):
    """LayerNorm over channels (the last axis in (B, T, C)); parameters keep torch's
    ``gamma``/``beta`` names so conversion is a plain copy."""

    def __init__(self, channels, eps=LAYER_NORM_EPS):
        super().__init__()
        self.eps = eps
        self.gamma = mx.ones((channels,))
        self.beta = mx.zeros((channels,))

    def __call__(self, x):  # (B, T, C)
        return layer_norm(x, self.gamma, self.beta, self.eps)


class MultiHeadAttention(nn.Module):
    """Self-attention with windowed relative position keys and values (heads share the tables)."""

    def __init__(self, channels, out_channels, n_heads, window_size=WINDOW_SIZE):
        super().__init__()
        assert channels % n_heads == 0, f"channels {channels} not divisible by heads {n_heads}"
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = Conv1d(channels, channels, 1, k_block=MATMUL_K_BLOCK)
        self.conv_k = Conv1d(channels, channels, 1, k_block=MATMUL_K_BLOCK)
        self.conv_v = Conv1d(channels, channels, 1, k_block=MATMUL_K_BLOCK)
        self.conv_o = Conv1d(channels, out_channels, 1, k_block=MATMUL_K_BLOCK)
        if window_size is not None:
            self.emb_rel_k = mx.zeros((1, 2 * window_size + 1, self.k_channels))
            self.emb_rel_v = mx.zeros((1, 2 * window_size + 1, self.k_channels))

    def __call__(self, x, c, attn_mask=None):  # x, c (B, T, C); attn_mask (B, 1, T, T)
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        return self.conv_o(self.attention(q, k, v, attn_mask))

    def _heads(self, t):  # (B, T, C) -> (B, H, T, dk)
        b, n, _ = t.shape
        return t.reshape(b, n, self.n_heads, self.k_channels).transpose(0, 2, 1, 3)

    def attention(self, query, key, value, mask=None):
        b, t_t, d = query.shape
        t_s = key.shape[1]
        q = self._heads(query) / math.sqrt(self.k_channels)
        k, v = self._heads(key), self._heads(value)
        if self.window_size is not None and t_s != t_t:
            raise ValueError(f"relative attention is self-attention only: {t_t} queries, {t_s} keys")
        if t_t > ATTN_ROW_BLOCK and self.window_size is not None:
            out = self._attention_rows(q, k, v, mask)
        else:
            out = self._attention_full(q, k, v, mask)
        return out.transpose(0, 2, 1, 3).reshape(b, t_t, d)

    def _attention_full(self, q, k, v, mask):
        """(B, H, T, dk) each -> (B, H, T, dk), with (B, H, T, T) scores: the reference's steps."""
        t_s = k.shape[2]
        scores = q @ k.transpose(0, 1, 3, 2)  # (B, H, Tt, Ts)
        if self.window_size is not None:
            rel_k = self._get_relative_embeddings(self.emb_rel_k, t_s)  # (1, 2T-1, dk)
            rel_logits = q @ rel_k[None].transpose(0, 1, 3, 2)  # (B, H, T, 2T-1)
            scores = scores + self._relative_position_to_absolute_position(rel_logits)
        if mask is not None:
            scores = mx.where(mask == 0, mx.array(MASK_FILL, scores.dtype), scores)
        p_attn = softmax(scores)
        out = p_attn @ v  # (B, H, T, dk)
        if self.window_size is not None:
            rel_w = self._absolute_position_to_relative_position(p_attn)  # (B, H, T, 2T-1)
            rel_v = self._get_relative_embeddings(self.emb_rel_v, t_s)
            out = out + rel_w @ rel_v[None]
        return out

    def _attention_rows(self, q, k, v, mask):
        """As :meth:`_attention_full` for inputs longer than ``ATTN_ROW_BLOCK`` frames, in blocks of
        that many query rows: each block's (B, H, rows, T) scores are made, softmaxed and used before
        the next, and the relative-position terms enter as the band of +-window keys they are
        nonzero on (:meth:`_band_to_keys`, :meth:`_keys_to_band`), so memory grows with T x block,
        not T x T. Per row the same terms; sums may round in another order."""
        t_s = k.shape[2]
        k_t = k.transpose(0, 1, 3, 2)
        outs = []
        for r0 in range(0, q.shape[2], ATTN_ROW_BLOCK):
            q_b = q[:, :, r0:r0 + ATTN_ROW_BLOCK]  # (B, H, n, dk)
            scores = q_b @ k_t + self._band_to_keys(q_b @ self.emb_rel_k[0].T, r0, t_s)  # (B, H, n, Ts)
            if mask is not None:
                scores = mx.where(mask[:, :, r0:r0 + ATTN_ROW_BLOCK] == 0, mx.array(MASK_FILL, scores.dtype), scores)
            p_attn = softmax(scores)
            outs.append(p_attn @ v + self._keys_to_band(p_attn, r0) @ self.emb_rel_v[0])  # (B, H, n, dk)
            mx.eval(outs[-1])
        return mx.concatenate(outs, axis=2)

    def _band_to_keys(self, band, r0: int, t_s: int):
        """(B, H, n, 2w+1) terms of query rows r0.. for key offsets -w..w -> (B, H, n, Ts), zero
        off the band: row i's entry m lands on key r0 + i - w + m (dropped outside 0..Ts-1)."""
        b, h, n, width = band.shape
        w = self.window_size
        skew = mx.pad(band, [(0, 0), (0, 0), (0, 0), (0, n)]).reshape(b, h, n * (n + width))
        skew = skew[:, :, :n * (n + width - 1)].reshape(b, h, n, n + width - 1)  # column c: key r0 - w + c
        lo = r0 - w
        if lo < 0:
            skew, lo = skew[..., -lo:], 0
        skew = skew[..., :t_s - lo]
        return mx.pad(skew, [(0, 0), (0, 0), (0, 0), (lo, t_s - lo - skew.shape[-1])])

    def _keys_to_band(self, p_attn, r0: int):
        """(B, H, n, Ts) weights of query rows r0.. -> (B, H, n, 2w+1): row i's weights on keys
        r0 + i - w .. r0 + i + w (zero where the key is outside 0..Ts-1)."""
        b, h, n, t_s = p_attn.shape
        w = self.window_size
        width = n + 2 * w  # column c: key r0 - w + c
        start, end = max(r0 - w, 0), min(r0 + n + w, t_s)
        left = start - (r0 - w)
        ext = mx.pad(p_attn[..., start:end], [(0, 0), (0, 0), (0, 0), (left, width - left - (end - start))])
        flat = mx.pad(ext.reshape(b, h, n * width), [(0, 0), (0, 0), (0, n)])
        return flat.reshape(b, h, n, width + 1)[..., :2 * w + 1]

    def _get_relative_embeddings(self, emb, length):
        """Window table (1, 2w+1, dk) -> (1, 2*length-1, dk), zero-padded where length > w+1."""
        w = self.window_size
        pad = max(length - (w + 1), 0)
        start = max((w + 1) - length, 0)
        if pad > 0:
            emb = mx.pad(emb, [(0, 0), (pad, pad), (0, 0)])
        return emb[:, start:start + 2 * length - 1]

    @staticmethod
    def _relative_position_to_absolute_position(x):
        """(B, H, L, 2L-1) relative logits -> (B, H, L, L) absolute."""
        b, h, n, _ = x.shape
        x = mx.pad(x, [(0, 0), (0, 0), (0, 0), (0, 1)])  # (B, H, L, 2L)
        x = mx.pad(x.reshape(b, h, n * 2 * n), [(0, 0), (0, 0), (0, n - 1)])
        return x.reshape(b, h, n + 1, 2 * n - 1)[:, :, :n, n - 1:]

    @staticmethod
    def _absolute_position_to_relative_position(x):
        """(B, H, L, L) absolute weights -> (B, H, L, 2L-1) relative."""
        b, h, n, _ = x.shape
        x = mx.pad(x, [(0, 0), (0, 0), (0, 0), (0, n - 1)])  # (B, H, L, 2L-1)
        x = mx.pad(x.reshape(b, h, n * n + n * (n - 1)), [(0, 0), (0, 0), (n, 0)])
        return x.reshape(b, h, n, 2 * n)[:, :, :, 1:]


class FFN(nn.Module):
    """Two convs (kernel ``kernel_size``, 'same' padding) with ReLU, masked."""

    def __init__(self, in_channels, out_channels, filter_channels, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = Conv1d(filter_channels, out_channels, kernel_size)

    def _same_pad(self, x):
        k = self.kernel_size
        if k == 1:
            return x
        return mx.pad(x, [(0, 0), ((k - 1) // 2, k // 2), (0, 0)])

    def __call__(self, x, x_mask):  # (B, T, C), (B, T, 1)
        x = mx.maximum(self.conv_1(self._same_pad(x * x_mask)), 0)
        return self.conv_2(self._same_pad(x * x_mask)) * x_mask


class Encoder(nn.Module):
    """``n_layers`` x (attention, LayerNorm, FFN, LayerNorm), post-norm residuals."""

    def __init__(self, hidden_channels, filter_channels, n_heads, n_layers, kernel_size=1,
                 window_size=WINDOW_SIZE):
        super().__init__()
        self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2 = [], [], [], []
        for _ in range(int(n_layers)):
            self.attn_layers.append(MultiHeadAttention(hidden_channels, hidden_channels, n_heads,
                                                       window_size=window_size))
            self.norm_layers_1.append(LayerNorm(hidden_channels))
            self.ffn_layers.append(FFN(hidden_channels, hidden_channels, filter_channels,
                                       kernel_size))
            self.norm_layers_2.append(LayerNorm(hidden_channels))

    def __call__(self, x, x_mask):  # x (B, T, H), x_mask (B, T, 1)
        m = x_mask[..., 0]
        attn_mask = (m[:, :, None] * m[:, None, :])[:, None]  # (B, 1, T, T)
        x = x * x_mask
        for attn, n1, ffn, n2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                     self.norm_layers_2):
            x = n1(x + attn(x, x, attn_mask))
            x = n2(x + ffn(x, x_mask))
        return x * x_mask
