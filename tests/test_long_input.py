"""Long inputs: chunks converted and let go one by one, Ctrl+C between layers, a bar per chunk.

Nothing here reads a clock: interruptions are delivered at known points (after a chunk, inside a
layer) and what ran after them is counted; memory is numpy's own allocation count (tracemalloc).
"""

from __future__ import annotations

import signal
import tracemalloc

import numpy as np
import pytest

from rvclab.audio import clip, load_audio
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.seeded import make_one
from rvclab.pipeline import conversion, networks, pieces
from rvclab.pipeline.conversion import convert_voice
from rvclab.pipeline.networks import VoiceModel
from rvclab.pipeline.parity import SMALL_CHUNKS

# Numpy memory a conversion may add per second of input, beyond what it had at a shorter length:
# the input (16 kHz float32 and float64 copies), F0 arrays, the output (40 kHz float32) and
# RMVPE's per-frame decoding (about 1 MB/s together). Keeping every chunk's features, or the
# output stage's float64 temporaries over the whole output, costs 4 MB/s and more.
NUMPY_BYTES_PER_INPUT_SECOND_MAX = 2_000_000


@pytest.fixture(scope="module")
def voice(tmp_path_factory):
    """A seeded v2-40k voice with the real architecture and far fewer channels (fast)."""
    path = tmp_path_factory.mktemp("voices") / "small_v2_40k.pth"
    return VoiceModel(make_one(path, SynthConfig.preset("v2-40k").small(), seed=0))


@pytest.fixture(scope="module")
def speech():
    """9 s of speech: under SMALL_CHUNKS (a cut every 2 s) that is 5 chunks."""
    a = load_audio(clip("librivox_male_0870"), 16000)
    return np.concatenate([a, a])[: 9 * 16000]


def _numpy_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_beyond_the_buffers_does_not_grow_with_length(voice, speech):
    def run(seconds):
        return lambda: convert_voice(speech[: seconds * 16000], voice, sr=16000, pad_config=SMALL_CHUNKS)

    run(1)()  # models loaded and cached outside the measurement
    short, long = _numpy_peak(run(2)), _numpy_peak(run(6))
    assert (long - short) / 4 < NUMPY_BYTES_PER_INPUT_SECOND_MAX, (short, long)


def test_features_kept_only_when_asked(voice, speech):
    plain = convert_voice(speech[: 3 * 16000], voice, sr=16000, pad_config=SMALL_CHUNKS)
    kept = convert_voice(speech[: 3 * 16000], voice, sr=16000, pad_config=SMALL_CHUNKS, keep_features=True)
    assert plain.features == [] and len(kept.features) == len(kept.chunks) == 2
    assert kept.features[0].shape[1] == 768
    assert np.array_equal(plain.audio, kept.audio)


def test_sigint_after_a_chunk_stops_before_the_next(voice, speech, ctrl_c):
    done = []

    def interrupt_after_first(i, n):
        done.append(i)
        if i == 0:
            signal.raise_signal(signal.SIGINT)  # as Ctrl+C: Python's handler raises KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_voice(speech, voice, sr=16000, pad_config=SMALL_CHUNKS, on_chunk=interrupt_after_first)
    assert done == [0]


def _not_swapped(model) -> bool:
    return all(type(m).__module__ != pieces.__name__ for _, m in model.named_modules())


def test_mlx_synthesizer_runs_layer_by_layer_with_the_same_output(voice):
    synth = voice.model("mlx")
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((60, 768)).astype(np.float32)
    pitchf = np.full(60, 150.0, np.float32)
    pitch = np.full(60, 50, np.int32)
    whole = networks.synthesize(synth, voice, frames, pitch, pitchf, 0, 0, "mlx")
    seen = []
    with pieces.mlx_module_by_module(synth, on_piece=seen.append):
        layered = networks.synthesize(synth, voice, frames, pitch, pitchf, 0, 0, "mlx")
    assert np.array_equal(whole, layered)
    assert {"enc_p", "flow", "dec.ups.0", "dec.resblocks.0"} <= set(seen) and len(seen) > 100
    assert _not_swapped(synth)


def test_sigint_inside_an_mlx_chunk_stops_at_the_next_layer(voice, speech, monkeypatch, ctrl_c):
    """A signal delivered while the synthesizer runs (after its 20th layer) ends the conversion
    there: no further layer runs, and every model is left as it was."""
    wrapped, after_signal = [], []
    real = pieces.mlx_module_by_module

    def counting(model, on_piece=None):
        wrapped.append(model)
        is_synth = model is voice.model("mlx")
        layers = []

        def piece(path):
            if after_signal:
                after_signal.append(path)
            layers.append(path)
            if is_synth and len(layers) == 20:
                after_signal.append("signal")
                signal.raise_signal(signal.SIGINT)

        return real(model, on_piece=piece)

    monkeypatch.setattr(conversion, "mlx_module_by_module", counting)
    with pytest.raises(KeyboardInterrupt):
        convert_voice(speech, voice, sr=16000, backend="mlx", pad_config=SMALL_CHUNKS)
    assert after_signal == ["signal"]
    assert len(wrapped) == 3  # RMVPE, HuBERT and the synthesizer each ran layer by layer
    assert all(_not_swapped(m) for m in wrapped)


def test_progress_bar_on_request_only(voice, speech, capsys):
    convert_voice(speech[: 3 * 16000], voice, sr=16000, pad_config=SMALL_CHUNKS, progress=True)
    assert "chunk" in capsys.readouterr().err
    convert_voice(speech[: 3 * 16000], voice, sr=16000, pad_config=SMALL_CHUNKS)  # stderr is no tty here
    assert capsys.readouterr().err == ""
