"""CLI entry points and the F0 dispatcher's validation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rvclab import pitch
from rvclab.audio import AudioError
from rvclab.cli import main


def test_info_json():
    out = subprocess.run([sys.executable, "-m", "rvclab.cli", "info", "--json", "-n", "128"],
                         capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    for key in ("python", "torch", "mlx", "numpy", "mlx_device", "mlx_blas", "matmul_128_torch_ms",
                "matmul_128_mlx_ms"):
        assert key in info, key
    assert info["matmul_128_mlx_ms"] > 0


def test_convert_weights_refuses_bad_input(tmp_path, capsys):
    src = tmp_path / "in.pth"
    src.write_text("not a checkpoint")
    assert main(["convert-weights", str(src), str(src)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert main(["convert-weights", str(src), str(tmp_path / "out.safetensors")]) == 2
    assert "not a checkpoint" in capsys.readouterr().err
    assert main(["convert-weights", str(tmp_path / "missing.pth"), str(tmp_path / "o.st")]) == 2
    assert not (tmp_path / "out.safetensors").exists()


def test_weights_make_rejects_unknown_family(tmp_path, capsys):
    assert main(["weights", "make", "--out", str(tmp_path), "--only", "nonsense"]) == 2
    assert "unknown family" in capsys.readouterr().err


def test_pitch_dispatcher_validates():
    audio = np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match="unknown F0 method"):
        pitch.estimate_f0(audio, "yin")
    with pytest.raises(ValueError, match="unknown backend"):
        pitch.estimate_f0(audio, "rmvpe", backend="tpu")
    with pytest.raises(ValueError, match="f0_min"):
        pitch.estimate_f0(audio, "rmvpe", f0_min=500, f0_max=100)
    with pytest.raises(AudioError, match="shorter than one F0 frame"):
        pitch.estimate_f0(np.zeros(100, np.float32), "rmvpe")
    with pytest.raises(AudioError, match="NaN"):
        pitch.estimate_f0(np.full(1600, np.nan, np.float32), "rmvpe")
    with pytest.raises(AudioError, match="mono"):
        pitch.estimate_f0(np.zeros((2, 1600), np.float32), "rmvpe")


def test_pitch_alignment_and_shift():
    f0 = np.array([100.0, 0.0, 200.0], np.float32)
    a, v = pitch.align(f0, f0 > 0, 5)
    assert a.tolist() == [100, 0, 200, 0, 0] and v.tolist() == [True, False, True, False, False]
    a, v = pitch.align(f0, f0 > 0, 2)
    assert a.tolist() == [100, 0]
    assert np.allclose(pitch.shift_semitones(f0, 12), [200, 0, 400])
    assert pitch.frames_for(16000) == 100
