"""RMVPE's U-Net + cnn in overlapping time segments (long inputs): the same salience as one whole
call on both backends, a context no narrower than the receptive field, segments that really run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rvclab import tolerances as tol
from rvclab.models.rmvpe import torch as T
from rvclab.models.rmvpe.config import RmvpeConfig, unet_context, unet_half_width, unet_segments

# Shallow U-Net (half-width 59 frames, context 64): a 64-frame core gives many segments in ~350 frames.
SMALL = RmvpeConfig(n_blocks=1, en_de_layers=3, inter_layers=1, en_out_channels=4, gru_hidden=16,
                    segment_frames=64)
# The real U-Net's depth (en_de_layers 5, n_blocks 4, inter_layers 4; context 1600 frames) with
# 1 channel at full resolution instead of 16 and 32 mel bins instead of 128 (the time axis is the
# real one), so it runs in seconds; a 1632-frame core: 3 segments at the smallest length that segments.
DEEP = RmvpeConfig(en_out_channels=1, n_mels=32, gru_hidden=16, segment_frames=1632)


def whole(cfg: RmvpeConfig) -> RmvpeConfig:
    """``cfg`` with a core longer than any test input: one U-Net call, today's path."""
    return dataclasses.replace(cfg, segment_frames=1 << 30)


def threshold(cfg: RmvpeConfig) -> int:
    """Padded frames above which E2E segments."""
    return cfg.segment_frames + 2 * unet_context(cfg)


def random_state_dict(cfg: RmvpeConfig, seed: int) -> dict:
    """torch's default init (seeded) with BatchNorm running statistics drawn around (0, 1)."""
    torch.manual_seed(seed)
    sd = T.E2E(cfg).state_dict()
    gen = torch.Generator().manual_seed(seed)
    for key, value in sd.items():
        if key.endswith("running_mean"):
            value.copy_(0.2 * torch.randn(value.shape, generator=gen))
        elif key.endswith("running_var"):
            value.copy_(torch.exp(0.3 * torch.randn(value.shape, generator=gen)))
    return sd


def torch_model(cfg: RmvpeConfig, sd: dict) -> T.E2E:
    model = T.E2E(cfg)
    model.load_state_dict(sd)
    return model.eval()


def mlx_model(cfg: RmvpeConfig, sd: dict):
    from rvclab.convert import load_into_mlx
    from rvclab.models.rmvpe import mlx as M
    from rvclab.models.rmvpe.rules import convert_checkpoint

    model = M.E2E(cfg)
    load_into_mlx(model, convert_checkpoint(sd, cfg)[0])
    return model


def log_mel(frames: int, seed: int, batch: int = 1, n_mels: int = 128) -> np.ndarray:
    """(B, n_mels, frames) float32, log-mel-like values."""
    return (np.random.default_rng(seed).standard_normal((batch, n_mels, frames)) * 2.0 - 5.0).astype(np.float32)


@pytest.fixture(scope="module")
def mx():
    from rvclab.runtime import import_mlx

    return import_mlx()


# --- the segment plan ----------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [SMALL, DEEP, RmvpeConfig()], ids=["small", "deep", "default"])
def test_segments_tile_the_input_and_keep_their_context(cfg):
    ctx, core, m = unet_context(cfg), cfg.segment_frames, cfg.pad_multiple
    assert ctx % m == 0 and unet_half_width(cfg) <= ctx < unet_half_width(cfg) + m
    assert unet_segments(threshold(cfg), cfg) == [(0, threshold(cfg), 0, threshold(cfg))]
    frames = 3 * core + 2 * ctx + 5 * m
    segs = unet_segments(frames, cfg)
    assert len(segs) >= 4
    assert [s[2] for s in segs] == list(range(0, frames, core))  # kept parts tile [0, frames)
    assert [s[3] for s in segs[:-1]] == [s[2] for s in segs[1:]] and segs[-1][3] == frames
    for lo, hi, keep_lo, keep_hi in segs:
        assert lo % m == 0 and hi % m == 0 and hi - lo <= core + 2 * ctx
        assert (keep_lo - lo >= ctx or lo == 0) and (hi - keep_hi >= ctx or hi == frames)


def test_segments_reject_a_core_off_the_pooling_grid():
    with pytest.raises(ValueError, match=r"segment_frames \(100\).*multiples of pad_multiple \(32\)"):
        unet_segments(4000, dataclasses.replace(SMALL, segment_frames=100))
    with pytest.raises(ValueError, match=r"padded frame count \(4001\)"):
        unet_segments(4001, SMALL)


# --- the context covers the receptive field ------------------------------------------------------
@pytest.mark.parametrize("blocks,levels,inters", [(1, 3, 1), (2, 2, 2)])
def test_receptive_field_within_the_formula(blocks, levels, inters):
    """Gradient of single U-Net + cnn output frames, one of each phase modulo 2 ** levels, w.r.t.
    the input log-mel (float64): non-zero no farther than unet_half_width frames, and as far as
    90% of it on some phase (so the formula is neither too small nor much too large)."""
    cfg = RmvpeConfig(n_blocks=blocks, en_de_layers=levels, inter_layers=inters, en_out_channels=4)
    half, period = unet_half_width(cfg), 2 ** levels
    spacing = period * (2 * half // period + 3)  # supports of different frames never overlap
    centres = [half + period + k * (spacing + 1) for k in range(period)]  # every phase once
    frames = 32 * -(-(centres[-1] + half + period) // 32)
    torch.manual_seed(blocks)
    model = T.E2E(cfg).double().eval()
    mel = torch.from_numpy(log_mel(frames, seed=levels)).double().requires_grad_(True)
    with torch.enable_grad():  # whatever an earlier test in this process left set
        out = model.cnn(model.unet(mel.transpose(-1, -2).unsqueeze(1)))  # (1, 3, T, 128)
        (grad,) = torch.autograd.grad(out[:, :, centres].sum(), mel)
    hit = np.nonzero(grad.abs().sum((0, 1)).numpy())[0]
    reach = []
    for c in centres:
        near = hit[np.abs(hit - c) <= spacing // 2]
        reach.append(int(max(c - near.min(), near.max() - c)))
    print(f"n_blocks {blocks}, en_de_layers {levels}, inter_layers {inters}: formula {half}, "
          f"gradient reach per phase {reach}")
    assert max(reach) <= half
    assert max(reach) >= 0.9 * half


# --- segmented == whole --------------------------------------------------------------------------
@pytest.mark.parametrize("cfg,frames,batch", [(SMALL, 350, 2), (DEEP, None, 1)], ids=["small", "deep"])
def test_segmented_salience_equals_one_call(mx, cfg, frames, batch):
    """Salience through mel_to_salience (zero padding, one call: the rvc-webui-2026 framing) with
    the U-Net in segments vs one U-Net call, each backend against itself; DEEP at the smallest
    length that segments."""
    from rvclab.models.rmvpe import mlx as M

    frames = frames or threshold(cfg) + cfg.pad_multiple - 3  # padded: the smallest that segments
    padded = 32 * -(-frames // 32)
    assert len(unet_segments(padded, cfg)) >= 3
    sd = random_state_dict(cfg, seed=5)
    mel = log_mel(frames, seed=6, batch=batch, n_mels=cfg.n_mels)
    errs = {}
    with torch.no_grad():
        seg, one = (T.mel_to_salience(torch_model(c, sd), torch.from_numpy(mel), None, pad_mode="constant")
                    for c in (cfg, whole(cfg)))
    errs["torch"] = float((seg - one).abs().max())
    mel_m = mx.array(np.ascontiguousarray(mel.transpose(0, 2, 1)))
    seg_m, one_m = (np.array(M.mel_to_salience(mlx_model(c, sd), mel_m, None, pad_mode="constant"))
                    for c in (cfg, whole(cfg)))
    errs["mlx"] = float(np.abs(seg_m - one_m).max())
    print(f"{len(unet_segments(padded, cfg))} segments over {padded} frames: segmented vs whole max abs {errs}")
    assert seg.shape == (batch, frames, cfg.n_classes) and seg_m.shape == seg.shape
    assert float(one.std()) > 1e-3  # a salience that varies, not a constant
    assert max(errs.values()) <= tol.RMVPE_SEGMENT_MAX_ABS


# --- segmentation is not skipped -----------------------------------------------------------------
def test_long_inputs_run_the_unet_per_segment(mx, monkeypatch):
    """The U-Net is called once per planned segment, never on more than core + 2 x context frames,
    on both backends; an input at the threshold is one call on all its frames."""
    from rvclab.models.rmvpe import mlx as M

    sd = random_state_dict(SMALL, seed=2)
    lengths = {"torch": [], "mlx": []}
    tm = torch_model(SMALL, sd)
    tm.unet.register_forward_pre_hook(lambda _mod, args: lengths["torch"].append(args[0].shape[2]))
    mlx_call = M.DeepUnet.__call__

    def counted(self, x):
        lengths["mlx"].append(x.shape[1])
        return mlx_call(self, x)

    monkeypatch.setattr(M.DeepUnet, "__call__", counted)
    mm = mlx_model(SMALL, sd)
    limit = threshold(SMALL)
    for frames in (limit, 6 * limit):
        plan = unet_segments(frames, SMALL)
        for seen in lengths.values():
            seen.clear()
        with torch.no_grad():
            tm(torch.from_numpy(log_mel(frames, seed=3)))
        mx.eval(mm(mx.array(log_mel(frames, seed=3).transpose(0, 2, 1))))
        for seen in lengths.values():
            assert seen == [hi - lo for lo, hi, _, _ in plan]
        if frames == limit:
            assert lengths["mlx"] == [limit]
        else:
            assert len(plan) >= 6 and max(lengths["mlx"]) == limit


# --- CUDA graphs ---------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cuda_graph_replays_a_segmented_call():
    """Under GraphedForward a long input (captured once, around the whole forward) replays its
    segmented call: the same salience as eager segments and as one whole eager call."""
    if not torch.cuda.is_available():
        pytest.skip("needs torch with CUDA")
    sd = random_state_dict(SMALL, seed=4)
    mel = torch.from_numpy(log_mel(6 * threshold(SMALL), seed=4)).cuda()
    model, one = torch_model(SMALL, sd).cuda(), torch_model(whole(SMALL), sd).cuda()
    graphed = T.GraphedForward(model)
    with torch.no_grad():
        eager, reference = model(mel), one(mel)
        first, second = graphed(mel), graphed(mel)
    assert (graphed.captures, graphed.replays, graphed.fallbacks) == (1, 2, 0)
    for got in (first, second):
        assert float((got - eager).abs().max()) <= tol.RMVPE_SALIENCE_MAX_ABS
        assert float((got - reference).abs().max()) <= tol.RMVPE_SALIENCE_MAX_ABS
