"""Reliability sweep, interrupted and concurrent conversions.

* ``rvclab convert`` on a folder in a subprocess, held after its first output
  (``RVCLAB_BATCH_HOLD``) and interrupted there by a real SIGINT (Ctrl+C): exit code 130, only
  complete outputs (no temp files), and a rerun converts the rest, keeping what was done.
* Ctrl+C inside an output's write leaves no partial file.
* Two conversions at once in one process (threads), on each backend, give the same samples as the
  same two conversions one at a time.
* An output is a function of its inputs and settings: a rerun skips an output made the same way and
  converts again one made otherwise (``--no-overwrite``: refused, naming the difference); a user's
  own file at the output path is replaced only with ``--force``; inputs whose names collide are
  both converted; hidden files are ignored; ``--recursive`` mirrors subfolders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from badfiles import digest, leftovers, small_models, speech_like

from rvclab.checkpoints import atomic_write
from rvclab.cli import main
from rvclab.pipeline.batch import HOLD_ENV
from rvclab.pipeline.provenance import sidecar_path

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 6
HANG_S = 600  # s: only a hung process takes this long, however busy the machine


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory.getbasetemp() / "small-models")  # made once per session


def _outputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.wav") if not p.name.startswith("."))


def test_batch_interrupted_by_sigint_keeps_complete_outputs_and_resumes(models, tmp_path):
    """A real SIGINT from outside, sent while the batch holds after its first output (the batch's
    ``RVCLAB_BATCH_HOLD`` hook), so the interrupt lands at a known point whatever the machine's speed."""
    src, out, marker = tmp_path / "in", tmp_path / "out", tmp_path / "holding"
    src.mkdir()
    for i in range(N_FILES):
        sf.write(str(src / f"clip_{i}.wav"), speech_like(0.6, seed=i), 16000)
    inputs = {p.name: digest(p) for p in src.iterdir()}
    cmd = [sys.executable, "-m", "rvclab.cli", "convert", "-m", str(models[0]), "--hubert", str(models[1]),
           "--f0-method", "pm", "--backend", "torch", "-i", str(src), "-o", str(out)]
    env = {**os.environ, HOLD_ENV: str(marker)}
    # the child's SIGINT at its default, so Ctrl+C can reach it however this process was started
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + HANG_S  # a guard against a hung batch, not a speed limit
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists() and proc.poll() is None, f"the batch never held after its first output: " \
            f"{proc.poll()=} {[p.name for p in out.glob('*')] if out.is_dir() else None}"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=HANG_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (proc.returncode, stdout, stderr)
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    done = _outputs(out)
    assert [p.name for p in done] == ["clip_0.wav"]  # the held batch had written exactly one file
    assert not leftovers(out), leftovers(out)
    frames = {sf.info(str(p)).frames for p in done}  # every file readable to its end
    assert len(frames) == 1 and frames.pop() > 0
    kept = {p.name: digest(p) for p in done}

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert rerun.returncode == 0, rerun.stderr
    assert f"converted {N_FILES - len(done)}, skipped {len(done)}" in rerun.stdout, rerun.stdout
    final = _outputs(out)
    assert [p.name for p in final] == [f"clip_{i}.wav" for i in range(N_FILES)]
    assert {p.name: digest(p) for p in final if p.name in kept} == kept  # resumed, not redone
    assert len({sf.info(str(p)).frames for p in final}) == 1 and not leftovers(out)
    assert {p.name: digest(p) for p in src.iterdir()} == inputs


@pytest.mark.parametrize("backend", ["torch", "mlx"])
def test_two_conversions_in_threads_match_one_at_a_time(backend, models):
    from rvclab.pipeline.conversion import convert_voice
    from rvclab.pipeline.networks import VoiceModel

    voice = VoiceModel(models[0])
    clips = [speech_like(0.4, seed=11), speech_like(0.4, seed=12) * 0.5]
    kwargs = {"sr": 16000, "f0_method": "pm", "backend": backend, "hubert_path": models[1]}
    alone = [convert_voice(x, voice, noise_seed=i, **kwargs).audio for i, x in enumerate(clips)]

    start = threading.Barrier(2)

    def run(i):
        start.wait()
        return convert_voice(clips[i], voice, noise_seed=i, **kwargs).audio

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(run, range(2)))
    for a, b in zip(alone, together):
        assert a.shape == b.shape and np.array_equal(a, b), (backend, float(np.abs(a - b).max()))
    assert not np.array_equal(together[0], together[1])  # two different jobs, not one answer twice


def test_sigint_is_mapped_in_main(monkeypatch, capsys):
    """KeyboardInterrupt inside any command becomes exit 130 with a one-line message."""
    from rvclab import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_info", interrupted)
    assert cli.main(["info"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_interrupt_while_writing_leaves_no_partial_file(tmp_path):
    """Ctrl+C inside an output's write (after bytes reached the temp file): no temp file, no target."""
    target = tmp_path / "clip.wav"

    def interrupted(tmp):
        tmp.write_bytes(b"RIFF partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert list(tmp_path.iterdir()) == []


def test_subprocesses_use_the_session_weights_folder():
    """The CLI subprocesses above inherit the session's temp weights folder (conftest.py), so
    they never write into the repository's weights/."""
    code = "from rvclab.paths import weights_dir; print(weights_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=HANG_S,
                         check=True)
    folder = Path(out.stdout.strip().splitlines()[-1]).resolve()
    assert folder == Path(os.environ["RVCLAB_WEIGHTS"]).resolve()
    assert not folder.is_relative_to(ROOT), folder


# --- an output is a function of its inputs and settings (issue 18) -----------------------------


def _convert(models, inp, out, *extra):
    return ["convert", "-m", str(models[0]), "--hubert", str(models[1]), "--f0-method", "pm",
            "--backend", "mlx", "-i", str(inp), "-o", str(out), *extra]


def _sidecar(path: Path) -> dict:
    return json.loads(sidecar_path(path).read_text())


def test_a_rerun_skips_only_an_output_made_the_same_way(models, tmp_path, capsys):
    src, out = tmp_path / "a.wav", tmp_path / "out.wav"
    sf.write(str(src), speech_like(0.4, seed=3), 16000)
    assert main(_convert(models, src, out)) == 0
    assert f"{src} -> {out}\n" in capsys.readouterr().out  # the output path is printed
    first = digest(out)
    assert _sidecar(out)["input"]["sha256"] == digest(src) and _sidecar(out)["output"]["sha256"] == first

    assert main(_convert(models, src, out)) == 0  # unchanged: skipped, untouched
    printed = capsys.readouterr().out
    assert "converted 0, skipped 1 (up to date)" in printed and "(skipped: up to date)" in printed, printed
    assert digest(out) == first

    assert main(_convert(models, src, out, "--pitch", "12")) == 0  # a setting changed: converted again
    printed = capsys.readouterr().out
    assert "converted 1, skipped 0," in printed and "(replaced: --pitch 0.0 -> 12.0)" in printed, printed
    assert digest(out) != first and _sidecar(out)["settings"]["f0_up_key"] == 12.0
    assert _sidecar(out)["output"]["sha256"] == digest(out) and not leftovers(tmp_path)

    again = digest(out)
    assert main(_convert(models, src, out, "--no-overwrite")) == 2  # asked to keep: refused, named
    err = capsys.readouterr().err
    assert f"{out}: made from other inputs or settings (--pitch 12.0 -> 0.0)" in err, err
    assert digest(out) == again


def test_a_users_file_at_the_output_path_is_replaced_only_with_force(models, tmp_path, capsys):
    src, mine = tmp_path / "a.wav", tmp_path / "mine.wav"
    sf.write(str(src), speech_like(0.4, seed=4), 16000)
    sf.write(str(mine), speech_like(0.4, seed=5), 16000)
    before = digest(mine)
    assert main(_convert(models, src, mine)) == 2
    assert f"{mine}: exists and rvclab did not make it" in capsys.readouterr().err
    assert digest(mine) == before and not sidecar_path(mine).exists()
    assert main(_convert(models, src, mine, "--force")) == 0
    assert "(replaced: --force)" in capsys.readouterr().out
    assert digest(mine) != before and _sidecar(mine)["output"]["sha256"] == digest(mine)


def test_a_folder_converts_colliding_names_ignores_hidden_files_and_mirrors_subfolders(models, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    sf.write(str(src / "a.wav"), speech_like(0.4, seed=6), 16000)
    sf.write(str(src / "a.flac"), speech_like(0.4, seed=7), 16000)
    sf.write(str(src / ".hidden.wav"), speech_like(0.4, seed=8), 16000)
    sf.write(str(src / "sub" / "b.wav"), speech_like(0.4, seed=9), 16000)
    (src / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (src / "._a.wav").write_bytes(b"\0\5\26\7")  # macOS AppleDouble metadata beside a.wav
    inputs = {p: digest(p) for p in src.rglob("*") if p.is_file()}

    assert main(_convert(models, src, out)) == 0
    printed = capsys.readouterr().out
    assert "converted 2, skipped 0, failed 0, ignored 3 (3 hidden), 1 subfolder not converted" in printed, printed
    assert f"{src / 'a.flac'} -> {out / 'a.flac.wav'} (renamed: a.wav is the output of a.wav)" in printed
    assert f"{src / 'a.wav'} -> {out / 'a.wav'}\n" in printed
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".wav") == ["a.flac.wav", "a.wav"]
    for made, source in ((out / "a.wav", src / "a.wav"), (out / "a.flac.wav", src / "a.flac")):
        assert _sidecar(made)["input"]["sha256"] == digest(source)  # each from its own input
    assert digest(out / "a.wav") != digest(out / "a.flac.wav")

    assert main(_convert(models, src, out, "--recursive")) == 0
    printed = capsys.readouterr().out
    assert "converted 1, skipped 2 (up to date), failed 0, ignored 3 (3 hidden)\n" in printed, printed
    assert f"{src / 'sub' / 'b.wav'} -> {out / 'sub' / 'b.wav'}" in printed
    assert sf.info(str(out / "sub" / "b.wav")).frames > 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == ["a.flac.wav", "a.wav", "sub/b.wav"]
    assert {p: digest(p) for p in src.rglob("*") if p.is_file()} == inputs and not leftovers(out)
