"""RMVPE pitch estimator, PyTorch reference (faithful to RVC's ``rmvpe.pt``).

Pipeline, all at 16 kHz with a 10 ms hop (``HOP = 160`` samples):

    audio (B, N) -> log-mel (B, 128, T)         centred, reflect-padded STFT, 1024-point Hann,
                                                128 HTK mel bins 30-8000 Hz, log(clamp(., 1e-5))
    -> pad T to a multiple of 32               reflect or zeros; the U-Net halves time five times
    -> E2E: DeepUnet -> cnn (3 ch) -> BiGRU -> Linear(512, 360) -> sigmoid
                                                long inputs: DeepUnet + cnn in overlapping time
                                                segments, the BiGRU over all frames at once
    -> salience (B, T, 360)                    one bin = 20 cents, bin 0 = 1997.38 cents (~31.7 Hz)
    -> local weighted average of 9 bins around the argmax, threshold 0.03 -> Hz, 0 = unvoiced

Attribute paths equal the upstream checkpoint's keys (``unet.encoder.bn``,
``unet.encoder.layers.N.conv.M.conv.{0,1,3,4}``, ``...shortcut``, ``cnn``, ``fc.0.gru``,
``fc.1``), so ``load_state_dict`` takes ``rmvpe.pt`` as is.

On CUDA the network can run under CUDA graphs (:class:`GraphedForward`), as current upstream RVC
does with ``RVC_CUDA_GRAPH``: ``RMVPE(model, "cuda", cuda_graph=True)`` or
``RVCLAB_TORCH_CUDA_GRAPH=1``; off by default and always off elsewhere. A graph is captured per
input shape, around the whole ``E2E.forward``; its segments depend on that shape and the config
alone, so a long input's graph replays its own segmented calls.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rvclab.audio import HOP_16K, mel_filterbank
from rvclab.models.rmvpe.config import DEFAULT_PAD_MODE, RmvpeConfig, check_rmvpe_framing, unet_segments
from rvclab.models.rmvpe.graphed import GRAPH_CACHE_SIZE as GRAPH_CACHE_SIZE
from rvclab.models.rmvpe.graphed import GRAPH_WARMUP_CALLS as GRAPH_WARMUP_CALLS
from rvclab.models.rmvpe.graphed import GraphedForward as GraphedForward
from rvclab.runtime import torch_cuda_graph_enabled


class ConvBlockRes(nn.Module):
    """Two 3x3 conv+BN+ReLU with a residual; the 1x1 shortcut (channel change) has no BN.

    (B, C_in, T, F) -> (B, C_out, T, F)
    """

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.is_shortcut = in_channels != out_channels
        if self.is_shortcut:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x) if self.is_shortcut else x
        return self.conv(x) + skip


class ResEncoderBlock(nn.Module):
    """``n_blocks`` ConvBlockRes, then (optionally) 2x2 average pooling.

    Returns ``(before_pool, after_pool)`` when pooling, else the block output.
    """

    def __init__(self, in_channels, out_channels, kernel_size, n_blocks=1, momentum=0.01):
        super().__init__()
        chans = [in_channels] + [out_channels] * n_blocks
        self.conv = nn.ModuleList(
            ConvBlockRes(chans[i], chans[i + 1], momentum) for i in range(n_blocks)
        )
        self.kernel_size = kernel_size
        if kernel_size is not None:
            self.pool = nn.AvgPool2d(kernel_size)

    def forward(self, x):
        for block in self.conv:
            x = block(x)
        if self.kernel_size is None:
            return x
        return x, self.pool(x)


class Encoder(nn.Module):
    """Input BatchNorm, then ``n_encoders`` pooling blocks (channels 16, 32, ... doubling)."""

    def __init__(self, in_channels, in_size, n_encoders, kernel_size, n_blocks,
                 out_channels=16, momentum=0.01):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.layers = nn.ModuleList()
        for _ in range(n_encoders):
            self.layers.append(
                ResEncoderBlock(in_channels, out_channels, kernel_size, n_blocks, momentum)
            )
            in_channels, out_channels, in_size = out_channels, out_channels * 2, in_size // 2
        self.out_size = in_size
        self.out_channel = out_channels  # twice the last block's channels (upstream convention)

    def forward(self, x):
        """(B, 1, T, 128) -> (B, C, T/32, 4), plus the pre-pool maps of every scale."""
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            skip, x = layer(x)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    """``n_inters`` non-pooling residual blocks at the coarsest scale."""

    def __init__(self, in_channels, out_channels, n_inters, n_blocks, momentum=0.01):
        super().__init__()
        chans = [in_channels] + [out_channels] * n_inters
        self.layers = nn.ModuleList(
            ResEncoderBlock(chans[i], chans[i + 1], None, n_blocks, momentum)
            for i in range(n_inters)
        )

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    """Stride-2 transposed conv + BN + ReLU, concatenate the skip, then residual blocks."""

    def __init__(self, in_channels, out_channels, stride, n_blocks=1, momentum=0.01):
        super().__init__()
        out_padding = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               output_padding=out_padding, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        chans = [out_channels * 2] + [out_channels] * n_blocks
        self.conv2 = nn.ModuleList(
            ConvBlockRes(chans[i], chans[i + 1], momentum) for i in range(n_blocks)
        )

    def forward(self, x, skip):
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, in_channels, n_decoders, stride, n_blocks, momentum=0.01):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_decoders):
            self.layers.append(
                ResDecoderBlock(in_channels, in_channels // 2, stride, n_blocks, momentum)
            )
            in_channels //= 2

    def forward(self, x, skips):
        for i, layer in enumerate(self.layers):
            x = layer(x, skips[-1 - i])
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size, n_blocks, en_de_layers=5, inter_layers=4, in_channels=1,
                 en_out_channels=16, n_mels=128):
        super().__init__()
        self.encoder = Encoder(in_channels, n_mels, en_de_layers, kernel_size, n_blocks,
                               en_out_channels)
        self.intermediate = Intermediate(self.encoder.out_channel // 2,
                                         self.encoder.out_channel, inter_layers, n_blocks)
        self.decoder = Decoder(self.encoder.out_channel, en_de_layers, kernel_size, n_blocks)

    def forward(self, x):
        """(B, 1, T, 128) -> (B, en_out_channels, T, 128); T a multiple of 32."""
        x, skips = self.encoder(x)
        x = self.intermediate(x)
        return self.decoder(x, skips)


class BiGRU(nn.Module):
    """Bidirectional GRU, batch first: (B, T, F) -> (B, T, 2H)."""

    def __init__(self, input_features, hidden_features, num_layers):
        super().__init__()
        self.gru = nn.GRU(input_features, hidden_features, num_layers=num_layers,
                          batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.gru(x)[0]


class E2E(nn.Module):
    """DeepUnet + 3-channel conv + BiGRU + Linear + sigmoid: log-mel -> salience."""

    def __init__(self, cfg: RmvpeConfig | None = None):
        super().__init__()
        cfg = cfg or RmvpeConfig()
        self.cfg = cfg
        self.unet = DeepUnet(tuple(cfg.kernel_size), cfg.n_blocks, cfg.en_de_layers,
                             cfg.inter_layers, cfg.in_channels, cfg.en_out_channels, cfg.n_mels)
        self.cnn = nn.Conv2d(cfg.en_out_channels, 3, 3, padding=1)
        self.fc = nn.Sequential(
            BiGRU(3 * cfg.n_mels, cfg.gru_hidden, cfg.n_gru),
            nn.Linear(2 * cfg.gru_hidden, cfg.n_classes),
            nn.Dropout(0.25),
            nn.Sigmoid(),
        )

    def features(self, mel: torch.Tensor, segment_frames: int | None = None) -> torch.Tensor:
        """mel (B, 128, T), T a multiple of 32 -> BiGRU input (B, T, 384) (channel-major, then mel).

        Beyond ``segment_frames`` (default ``cfg.segment_frames``) + 2 x context frames, the
        U-Net + cnn run on overlapping time segments (:func:`unet_segments`), each segment's
        activations freed before the next; the kept frames equal one whole call's.
        """
        x = mel.transpose(-1, -2).unsqueeze(1)  # (B, 1, T, 128)
        segments = unet_segments(x.shape[2], self.cfg, segment_frames)
        if len(segments) == 1:
            return self.cnn(self.unet(x)).transpose(1, 2).flatten(-2)  # (B, 3, T, 128) -> (B, T, 384)
        parts = []
        for lo, hi, keep_lo, keep_hi in segments:
            y = self.cnn(self.unet(x[:, :, lo:hi]))[:, :, keep_lo - lo:keep_hi - lo]  # (B, 3, t, 128)
            parts.append(y.transpose(1, 2).flatten(-2))  # flatten copies the view: the maps are freed
        return torch.cat(parts, dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, 128, T), T a multiple of 32 -> salience (B, T, 360) in [0, 1]; the BiGRU sees
        all T frames at once (the U-Net in segments on long inputs: :meth:`features`)."""
        return self.fc(self.features(mel))


class MelSpectrogram(nn.Module):
    """Log-mel front end: audio (B, N) @ 16 kHz -> (B, 128, N // 160 + 1)."""

    def __init__(self, cfg: RmvpeConfig | None = None):
        super().__init__()
        cfg = cfg or RmvpeConfig()
        self.cfg = cfg
        fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, htk=True)
        self.register_buffer("mel_basis", torch.from_numpy(np.array(fb)).float(),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        spec = torch.stft(audio, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                          window=self.window, center=True, pad_mode="reflect",
                          return_complex=True)
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2))  # (B, 513, T)
        return torch.log(torch.clamp(self.mel_basis @ mag, min=c.clamp))


def pad_frames(mel: torch.Tensor, multiple: int = RmvpeConfig.pad_multiple,
               mode: str = DEFAULT_PAD_MODE) -> torch.Tensor:
    """Pad the frame axis of (B, 128, T) at the end up to a multiple of ``multiple``.

    ``mode`` "reflect" (Applio) or "constant" (zeros, RVC WebUI). Reflect padding needs more
    frames than it adds, so with it inputs of fewer than 17 frames (audio under ~0.16 s) raise
    ValueError (upstream fails the same way, less clearly); zeros have no minimum.
    """
    n = mel.shape[-1]
    pad = multiple * ((n - 1) // multiple + 1) - n
    if mode == "reflect" and pad >= n:
        raise ValueError(
            f"RMVPE needs at least {pad + 1} mel frames to reflect-pad {n} frames to a multiple "
            f"of {multiple}; got {n} (audio too short: at least ~{(pad + 1) * HOP_16K} samples)"
        )
    return F.pad(mel, (0, pad), mode=mode) if pad else mel


@torch.no_grad()
def mel_to_salience(model: E2E, mel: torch.Tensor, chunk_frames: int | None = RmvpeConfig.chunk_frames,
                    forward=None, pad_mode: str = DEFAULT_PAD_MODE):
    """(B, 128, T) log-mel -> (B, T, 360) salience; padded to 32 frames (``pad_mode``), run in chunks.

    Chunks of ``chunk_frames`` padded frames run independently (the GRU restarts at each
    boundary), as Applio does, which bounds memory on long inputs; None runs the whole input in
    one call (RVC WebUI). ``forward`` runs one chunk (default ``model`` itself;
    :class:`GraphedForward` replays it from CUDA graphs).
    """
    check_rmvpe_framing(pad_mode, chunk_frames, model.cfg.pad_multiple)
    forward = forward or model
    n = mel.shape[-1]
    padded = pad_frames(mel, model.cfg.pad_multiple, pad_mode)
    chunk = chunk_frames or padded.shape[-1]
    outs = [forward(padded[..., s:s + chunk]) for s in range(0, padded.shape[-1], chunk)]
    return torch.cat(outs, dim=1)[:, :n]


def cents_mapping(cfg: RmvpeConfig | None = None) -> np.ndarray:
    """Cents of each of the 360 bins, zero-padded by half a window each side: (368,)."""
    cfg = cfg or RmvpeConfig()
    half = cfg.decode_window // 2
    return np.pad(cfg.bin_cents(), (half, half))


def to_local_average_cents(salience: np.ndarray, threshold: float = RmvpeConfig.threshold,
                           cfg: RmvpeConfig | None = None) -> np.ndarray:
    """(T, 360) salience -> (T,) cents; 0 where the peak is <= threshold.

    Weighted mean of the bin cents over the ``decode_window`` bins centred on the argmax
    (bins beyond the edge count as zero salience).
    """
    cfg = cfg or RmvpeConfig()
    half = cfg.decode_window // 2
    sal = np.asarray(salience, dtype=np.float32)
    centre = np.argmax(sal, axis=1) + half
    padded = np.pad(sal, ((0, 0), (half, half)))
    idx = centre[:, None] + np.arange(-half, half + 1)[None, :]
    local = np.take_along_axis(padded, idx, axis=1)
    mapping = cents_mapping(cfg)[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        cents = (local * mapping).sum(1) / local.sum(1)
    cents[padded.max(1) <= threshold] = 0.0
    return np.nan_to_num(cents, nan=0.0)


def cents_to_hz(cents: np.ndarray) -> np.ndarray:
    """Cents re 10 Hz -> Hz; 0 cents (unvoiced) -> 0 Hz."""
    f0 = 10.0 * 2.0 ** (np.asarray(cents) / 1200.0)
    f0[f0 == 10.0] = 0.0
    return f0


def decode(salience: np.ndarray, threshold: float = RmvpeConfig.threshold, cfg: RmvpeConfig | None = None):
    """(T, 360) salience -> (T,) F0 in Hz, 0 = unvoiced."""
    return cents_to_hz(to_local_average_cents(salience, threshold, cfg))


class RMVPE:
    """Audio -> F0 with the torch reference: ``RMVPE(model).infer(audio_16k)``."""

    def __init__(self, model: E2E, device: str = "cpu", cuda_graph: bool | None = None):
        """``cuda_graph``: run the network under CUDA graphs (:class:`GraphedForward`); None reads
        ``RVCLAB_TORCH_CUDA_GRAPH`` (default off); never on a device other than CUDA."""
        self.model = model.eval().to(device)
        self.cfg = model.cfg
        self.mel = MelSpectrogram(model.cfg).to(device)
        self.device = device
        self.cuda_graph = torch_cuda_graph_enabled(device, cuda_graph)
        self.graphed = GraphedForward(self.model) if self.cuda_graph else None

    @torch.no_grad()
    def salience(self, audio: np.ndarray, chunk_frames: int | None = RmvpeConfig.chunk_frames,
                 pad_mode: str = DEFAULT_PAD_MODE) -> np.ndarray:
        """(N,) float audio @ 16 kHz -> (N // 160 + 1, 360) float32 (framing: :func:`mel_to_salience`)."""
        x = torch.from_numpy(np.asarray(audio, dtype=np.float32)).to(self.device)[None]
        mel = self.mel(x)
        sal = mel_to_salience(self.model, mel, chunk_frames, self.graphed, pad_mode)
        return sal[0].float().cpu().numpy()

    def infer(self, audio: np.ndarray, threshold: float | None = None,
              chunk_frames: int | None = RmvpeConfig.chunk_frames, pad_mode: str = DEFAULT_PAD_MODE) -> np.ndarray:
        """(N,) audio @ 16 kHz -> (N // 160 + 1,) F0 Hz, 0 = unvoiced."""
        thr = self.cfg.threshold if threshold is None else threshold
        return decode(self.salience(audio, chunk_frames, pad_mode), thr, self.cfg)
