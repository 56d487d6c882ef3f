"""Long inputs in bounded memory: the decoder in overlapping segments (both backends: the same
waveform as one call, and the context it carries is what makes it so; rvclab.models.synth.window)
and the MLX TextEncoder's attention in blocks of query rows (the same output as full scores)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from rvclab.models.synth.config import TORCH_FULL_ATTENTION_FRAMES, SynthConfig
from rvclab.models.synth.mlx.attention import ATTN_ROW_BLOCK, MultiHeadAttention
from rvclab.models.synth.noise import make_noise
from rvclab.models.synth.parity import clip_inputs, models_from_voice, torch_voice
from rvclab.models.synth.torch import attention as torch_attention
from rvclab.models.synth.torch.attention import MultiHeadAttention as TorchAttention
from rvclab.models.synth.window import DECODE_SEGMENT_FRAMES, decode_segments, decoder_context
from rvclab.runtime import import_mlx

mx = import_mlx()

from mlx.utils import tree_map  # noqa: E402  (after the runtime is prepared)

# the real vocoder layout (rates, kernels, resblocks) with few channels, so long inputs stay cheap
SMALL = {name: replace(SynthConfig.preset(name), inter_channels=8, hidden_channels=16, filter_channels=32,
                       upsample_initial_channel=32, spk_embed_dim=3, gin_channels=8)
         for name in ("v2-48k", "v1-32k")}
FRAMES, SEGMENT = 170, 40  # five segments
SAME = 1e-6  # segmented vs one call: float rounding only


@pytest.fixture(scope="module", params=sorted(SMALL))
def models(request):
    config = SMALL[request.param]
    tmodel, mmodel = models_from_voice(torch_voice(config, seed=3, weights="init"))
    return config, tmodel, mmodel


def _inputs(config, frames, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, frames, config.inter_channels)).astype(np.float32)
    g = rng.standard_normal((1, 1, config.gin_channels)).astype(np.float32)
    har = np.tanh(rng.standard_normal((1, frames * config.hop_length, 1))).astype(np.float32)
    return x, g, har


def _torch_body(dec, x, g, har, segment):
    with torch.no_grad():
        out = dec.body(torch.from_numpy(x).transpose(1, 2), torch.from_numpy(g).transpose(1, 2),
                       torch.from_numpy(har).transpose(1, 2), segment=segment)
    return out[0, 0].numpy()


def _mlx_body(dec, x, g, har, segment):
    return np.array(dec.body(mx.array(x), mx.array(g), mx.array(har), segment=segment)[0, :, 0])


def test_plan_tiles_the_input_in_order():
    plan = decode_segments(1234, 15, 100)
    assert [a for _, _, a, _ in plan] == list(range(0, 1234, 100))
    assert plan[-1][3] == 1234 and all(b == plan[i + 1][2] for i, (_, _, _, b) in enumerate(plan[:-1]))
    assert all(lo == max(a - 15, 0) and hi == min(b + 15, 1234) for lo, hi, a, b in plan[:-1])
    assert decode_segments(130, 15, 100) == [(0, 130, 0, 130)]  # short enough for one call
    assert len(decode_segments(131, 15, 100)) == 2
    with pytest.raises(ValueError, match="frames 0"):
        decode_segments(0, 15)


def test_context_covers_every_preset():
    for name in ("v1-32k", "v1-40k", "v1-48k", "v2-32k", "v2-40k", "v2-48k"):
        c = SynthConfig.preset(name)
        ctx = decoder_context(c.upsample_rates, c.upsample_kernel_sizes, c.resblock_kernel_sizes,
                              c.resblock_dilation_sizes)
        assert 8 <= ctx <= 30, (name, ctx)  # conv_pre alone reaches 3 frames, the first stage's resblocks ~5
        assert ctx < DECODE_SEGMENT_FRAMES // 10  # the overlap costs little


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_segmented_decoder_equals_one_call(models, backend):
    config, tmodel, mmodel = models
    x, g, har = _inputs(config, FRAMES)
    dec, run = (tmodel.dec, _torch_body) if backend == "torch" else (mmodel.dec, _mlx_body)
    whole = run(dec, x, g, har, FRAMES)
    assert len(decode_segments(FRAMES, dec.context, SEGMENT)) == 5
    parts = run(dec, x, g, har, SEGMENT)
    assert parts.shape == whole.shape == (FRAMES * config.hop_length,)
    assert np.abs(parts - whole).max() <= SAME
    assert np.abs(whole).max() > 0.05  # a waveform, not silence
    # with too little context the seams differ: the equality above depends on the context
    full = dec.context
    dec.context = 1
    try:
        short = run(dec, x, g, har, SEGMENT)
    finally:
        dec.context = full
    assert np.abs(short - whole).max() > 100 * SAME


def _infer(model, backend, inp, noise):
    if backend == "torch":
        with torch.no_grad():
            o = model.infer(*(torch.from_numpy(inp[k]) for k in ("phone", "lengths", "pitch", "f0", "sid")), noise)[0]
        return o[0, 0].numpy()
    o = model.infer(*(mx.array(inp[k]) for k in ("phone", "lengths", "pitch", "f0", "sid")), noise)[0]
    return np.array(o[0, :, 0])


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_long_inputs_decode_in_segments(models, backend, monkeypatch):
    """``infer`` on an input longer than one segment (by default) runs the decoder's body once per
    segment, and gives the waveform of a one-call decode of the same input."""
    config, tmodel, mmodel = models
    model = tmodel if backend == "torch" else mmodel
    frames = DECODE_SEGMENT_FRAMES + 2 * model.dec.context + 5
    inp = clip_inputs(config, frames, seed=1)
    noise = make_noise(config, 1, frames, 1)
    calls = []
    body = type(model.dec)._body
    monkeypatch.setattr(type(model.dec), "_body", lambda self, *a: calls.append(a[0].shape) or body(self, *a))
    wave = _infer(model, backend, inp, noise)
    assert len(calls) == 2
    model.dec.segment_frames = frames
    try:
        whole = _infer(model, backend, inp, noise)
    finally:
        model.dec.segment_frames = DECODE_SEGMENT_FRAMES
    assert len(calls) == 3
    assert wave.shape == whole.shape == (frames * config.hop_length,)
    assert np.abs(wave - whole).max() <= SAME and np.abs(whole).max() > 0.05


@pytest.mark.parametrize("frames", [ATTN_ROW_BLOCK + 1, 2 * ATTN_ROW_BLOCK + 100])
def test_attention_in_row_blocks_equals_full_scores(frames):
    """The TextEncoder's attention on long inputs (blocks of query rows, relative terms as a band)
    gives the full-score form's output, padding mask included."""
    rng = np.random.default_rng(frames)
    attn = MultiHeadAttention(16, 16, 2)
    attn.update(tree_map(lambda a: mx.array(rng.standard_normal(a.shape).astype(np.float32) * 0.5),
                         attn.parameters()))
    x = mx.array(rng.standard_normal((2, frames, 16)).astype(np.float32))
    lengths = np.array([frames, frames - 37])
    m = mx.array((np.arange(frames)[None] < lengths[:, None]).astype(np.float32))
    mask = (m[:, :, None] * m[:, None, :])[:, None]
    q, k, v = (attn._heads(conv(x)) for conv in (attn.conv_q, attn.conv_k, attn.conv_v))
    q = q / np.sqrt(attn.k_channels)
    full = np.array(attn._attention_full(q, k, v, mask))
    rows = np.array(attn._attention_rows(q, k, v, mask))
    assert np.abs(rows - full).max() <= 1e-5 * np.abs(full).max()
    assert np.abs(full).max() > 0.1
    # the band carries the relative terms: without them the rows differ
    saved = attn.emb_rel_v
    attn.emb_rel_v = mx.zeros_like(saved)
    try:
        assert np.abs(np.array(attn._attention_rows(q, k, v, mask)) - full).max() > 1e-3
    finally:
        attn.emb_rel_v = saved
    calls = []
    attn._attention_rows = lambda *a: calls.append(1) or MultiHeadAttention._attention_rows(attn, *a)
    attn(x, x, mask)
    assert calls == [1]  # long inputs take the row-block path


@pytest.mark.parametrize("frames", [TORCH_FULL_ATTENTION_FRAMES + 1, TORCH_FULL_ATTENTION_FRAMES + ATTN_ROW_BLOCK + 37])
def test_torch_attention_in_row_blocks_equals_full_scores_and_the_port(frames, monkeypatch):
    """The torch reference beyond TORCH_FULL_ATTENTION_FRAMES: row blocks with the relative band
    give its full-score output (padding mask included) and agree with the MLX port's rows."""
    torch.manual_seed(frames)
    attn = TorchAttention(16, 16, 2).eval()
    rng = np.random.default_rng(frames)
    x = rng.standard_normal((2, 16, frames)).astype(np.float32)
    m = (np.arange(frames)[None] < np.array([frames, frames - 37])[:, None]).astype(np.float32)
    mask = (m[:, :, None] * m[:, None, :])[:, None]
    with torch.no_grad():
        rows = attn(torch.from_numpy(x), torch.from_numpy(x), torch.from_numpy(mask)).numpy()
        monkeypatch.setattr(torch_attention, "TORCH_FULL_ATTENTION_FRAMES", frames)  # the full-score path
        full = attn(torch.from_numpy(x), torch.from_numpy(x), torch.from_numpy(mask)).numpy()
    scale = np.abs(full).max()
    assert np.abs(rows - full).max() <= 1e-5 * scale and scale > 0.1
    port = MultiHeadAttention(16, 16, 2)
    convs = {name: {"weight": getattr(attn, name).weight.detach().numpy().transpose(0, 2, 1),
                    "bias": getattr(attn, name).bias.detach().numpy()}
             for name in ("conv_q", "conv_k", "conv_v", "conv_o")}
    port.update(tree_map(mx.array, {**convs, "emb_rel_k": attn.emb_rel_k.detach().numpy(),
                                    "emb_rel_v": attn.emb_rel_v.detach().numpy()}))
    xt = mx.array(x.transpose(0, 2, 1))
    got = np.array(port(xt, xt, mx.array(mask))).transpose(0, 2, 1)
    assert np.abs(got - rows).max() <= 1e-5 * scale
