"""RMVPE configuration shared by the torch reference and the MLX port."""

from dataclasses import dataclass


@dataclass(frozen=True)
class RmvpeConfig:
    """RMVPE pitch estimator; defaults are those of RVC's ``rmvpe.pt`` (E2E(4, 1, (2, 2)))."""

    # log-mel front end @ 16 kHz
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160  # 10 ms frames
    n_mels: int = 128
    fmin: float = 30.0
    fmax: float = 8000.0
    clamp: float = 1e-5  # log(max(mel, clamp))
    # network
    n_blocks: int = 4  # ConvBlockRes per encoder/intermediate/decoder block
    n_gru: int = 1  # BiGRU layers
    kernel_size: tuple = (2, 2)  # pooling and decoder stride
    en_de_layers: int = 5
    inter_layers: int = 4
    in_channels: int = 1
    en_out_channels: int = 16
    gru_hidden: int = 256
    n_classes: int = 360  # 20-cent bins
    # framing and decoding
    pad_multiple: int = 32  # 2 ** en_de_layers
    chunk_frames: int = 32000  # padded frames per independent network call (320 s)
    threshold: float = 0.03
    decode_window: int = 9  # bins averaged around the argmax
    cents_offset: float = 1997.3794084376191  # cents (re 10 Hz) of bin 0
    cents_step: float = 20.0
