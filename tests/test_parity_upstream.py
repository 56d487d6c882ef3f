"""`rvclab parity upstream`: bad input without a checkout; the real comparison against a user's
checkout where RVCLAB_UPSTREAM_CHECKOUT (RVC WebUI) or RVCLAB_APPLIO_CHECKOUT points to one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rvclab.cli import main
from rvclab.cli.exit_codes import EXIT_BAD_INPUT
from rvclab.models import f0_packages
from rvclab.models.synth.config import SynthConfig
from rvclab.models.synth.noise import SINE_NOISE, Z_P, make_noise
from rvclab.parity_upstream import run_upstream
from rvclab.parity_upstream.checkout import LAYOUTS, UpstreamCheckoutError, checkout_code, find_layout
from rvclab.parity_upstream.draws import DrawingSynth, RvclabDraws, upstream_draws, zeros
from rvclab.parity_upstream.pipeline import _method_skip
from rvclab.parity_upstream.stages import rmvpe_rows, row, skipped
from rvclab.profiles import PROFILES, get_profile


def _fake_layout(root: Path, layout: str) -> Path:
    for marker in LAYOUTS[layout].markers:
        (root / marker).parent.mkdir(parents=True, exist_ok=True)
        (root / marker).write_text("")
    return root


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(UpstreamCheckoutError, match="no such folder"):
        find_layout(tmp_path / "nowhere")


def test_a_folder_that_is_no_checkout_lists_the_files_looked_for(tmp_path):
    (tmp_path / "infer").mkdir()
    (tmp_path / "infer" / "rmvpe.py").write_text("")  # one file of the 2026 layout is not enough
    with pytest.raises(UpstreamCheckoutError) as err:
        find_layout(tmp_path)
    for layout in LAYOUTS.values():
        assert layout.name in str(err.value)
        assert all(m in str(err.value) for m in layout.markers)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_layout_is_found_and_implies_its_profile(tmp_path, layout):
    root, found = find_layout(_fake_layout(tmp_path, layout))
    assert found.name == layout and found.profile in PROFILES and root == tmp_path.resolve()


def test_unknown_profile_lists_the_known_ones(tmp_path):
    _fake_layout(tmp_path, "rvc-webui-2026")
    with pytest.raises(ValueError, match="known profiles: " + ", ".join(PROFILES)):
        run_upstream(tmp_path, "rvc-webui-2099", stages=())


def test_cli_bad_input_exits_2_with_the_reason(tmp_path, capsys):
    assert main(["parity", "upstream", "--checkout", str(tmp_path / "nowhere")]) == EXIT_BAD_INPUT
    assert "no such folder" in capsys.readouterr().err
    assert main(["parity", "upstream", "--checkout", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "infer/vc/pipeline.py" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: the known profiles in the message
        main(["parity", "upstream", "--checkout", str(tmp_path), "--reference", "nope"])
    assert exc.value.code == EXIT_BAD_INPUT
    assert "rvc-webui-2026" in capsys.readouterr().err


def test_a_module_that_fails_to_import_skips_its_stages_with_the_reason(tmp_path):
    root = _fake_layout(tmp_path, "rvc-webui-2026")
    (root / "infer" / "__init__.py").write_text("")
    (root / "infer" / "rmvpe.py").write_text("import no_such_package_for_rvclab_tests\n")
    profile = get_profile("rvc-webui-2026")
    with checkout_code(*find_layout(root)) as code:
        rows = run_stage_rmvpe(code, profile)
        assert "infer" in sys.modules  # imported from the checkout while the block runs
    assert "infer" not in sys.modules  # and gone after it
    assert [r["backend"] for r in rows] == ["torch", "mlx"]
    for r in rows:
        assert r["ok"] is None  # nothing claimed
        assert r["status"].startswith("skipped: infer.rmvpe does not import")
        assert "no_such_package_for_rvclab_tests" in r["status"]


def _without_torchaudio(monkeypatch):
    """This process as if torchaudio did not import: any torchaudio module dropped, its import failing."""
    names = {"torchaudio", "torchaudio.transforms"} | {m for m in sys.modules if m.startswith("torchaudio.")}
    for name in names:  # each restored (or removed again) after the test, the stand-in included
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(sys.modules, name)
    failing = _failing_torchaudio(f0_packages.importlib.import_module)
    monkeypatch.setattr(f0_packages.importlib, "import_module", failing)


def _failing_torchaudio(import_module):
    def fake(name, *args, **kwargs):
        if name == "torchaudio":
            raise ImportError("torchaudio has no build for this torch (test)")
        return import_module(name, *args, **kwargs)
    return fake


def test_fcpe_rows_record_the_torchaudio_stand_in_and_the_stand_in_raises_when_used(tmp_path, monkeypatch):
    _without_torchaudio(monkeypatch)
    root = _fake_layout(tmp_path, "rvc-webui-2026")
    (root / "torchfcpe.py").write_text("import torchaudio\nRESAMPLE = torchaudio.transforms.Resample\n")
    with checkout_code(*find_layout(root)) as code:
        monkeypatch.delitem(sys.modules, "torchfcpe", raising=False)
        assert f0_packages.ensure_torchaudio() == "stand-in"  # as pipeline_rows does first; rows carry it
        assert _method_skip(code, "fcpe") == ""  # imports
        assert _method_skip(code, "rmvpe") == ""
        with pytest.raises(RuntimeError, match="torchaudio is not usable"):
            sys.modules["torchfcpe"].RESAMPLE(44100, 16000)  # resampling would fail loudly, never pass
    assert f0_packages.torchaudio_status() == "stand-in"


def test_fcpe_rows_skip_with_the_reason_when_torchfcpe_still_fails(tmp_path, monkeypatch):
    _without_torchaudio(monkeypatch)
    root = _fake_layout(tmp_path, "rvc-webui-2026")
    (root / "torchfcpe.py").write_text("import no_such_package_for_rvclab_tests\n")
    with checkout_code(*find_layout(root)) as code:
        monkeypatch.delitem(sys.modules, "torchfcpe", raising=False)
        f0_packages.ensure_torchaudio()
        skip = _method_skip(code, "fcpe")
    assert skip.startswith("skipped: torchfcpe does not import") and "no_such_package_for_rvclab_tests" in skip


def run_stage_rmvpe(code, profile):
    return rmvpe_rows(code, profile, Path("unused.pt"), [])


def test_rows_judge_the_named_figure():
    p = get_profile("rvc-webui-2026")
    assert row("synth", "torch", p, {"max_abs": 0.0})["ok"] is True
    assert row("synth", "torch", p, {"max_abs": 1e-9})["ok"] is False  # bit-exact goal
    assert row("synth", "mlx", p, {"max_abs": float("nan")})["ok"] is False
    assert row("hubert", "mlx", p, {"max_abs": 1.0, "max_abs_rel": 1e-6})["ok"] is True  # relative figure
    assert row("synth", "torch", get_profile("applio"), {"max_abs": 0.0})["reference"] == "applio"
    assert all(r["ok"] is None for r in skipped("hubert", p, "skipped: x"))


def test_draws_are_replaced_only_inside_the_block():
    before = torch.randn_like
    with upstream_draws(zeros):
        assert not torch.randn_like(torch.ones(3)).any() and not torch.rand(2, 3).any()
        assert torch.rand((4,)).shape == (4,)
    assert torch.randn_like is before


def test_rvclab_draws_hand_upstream_each_chunks_noise_in_order():
    config = SynthConfig.preset("v2-40k").small()
    draws = RvclabDraws(config, seed=5)
    for chunk, frames in enumerate((7, 4)):
        want = make_noise(config, 1, frames, 5 + chunk)
        z = draws((1, config.inter_channels, frames), torch.float32, "cpu")
        np.testing.assert_array_equal(z.numpy(), want[Z_P])
        noise = draws((1, frames * config.hop_length, 1), torch.float32, "cpu")
        np.testing.assert_array_equal(noise.numpy(), want[SINE_NOISE])
    with pytest.raises(RuntimeError, match=r"shape \(3, 3\)"):
        draws((3, 3), torch.float32, "cpu")


def test_drawing_synth_replaces_draws_in_infer_only():
    class Net:
        name = "net"

        def infer(self, x):
            return torch.randn_like(x)

    net = DrawingSynth(Net(), zeros)
    assert not net.infer(torch.ones(5)).any() and net.name == "net"
    assert torch.randn_like(torch.ones(1000)).any()  # the real RNG outside


# --- against a real checkout (skipped without one) ---------------------------------------------
CHECKOUTS = {"RVCLAB_UPSTREAM_CHECKOUT": os.environ.get("RVCLAB_UPSTREAM_CHECKOUT"),
             "RVCLAB_APPLIO_CHECKOUT": os.environ.get("RVCLAB_APPLIO_CHECKOUT")}


@pytest.mark.parametrize("var", list(CHECKOUTS))
def test_real_checkout_synthesizer_and_rmvpe(var):
    if not CHECKOUTS[var]:
        pytest.skip(f"{var} is not set: no RVC WebUI / Applio checkout to compare with")
    rows = run_upstream(CHECKOUTS[var], stages=("synth", "rmvpe"), seconds=0.2)
    assert {r["config"] for r in rows if r["stage"] == "synth"} == {"v1-40k", "v2-40k", "v2-48k", "v2-32k"}
    ran = [r for r in rows if r["ok"] is not None]
    for r in rows:
        assert r["status"] in ("pass", "fail") or r["status"].startswith("skipped: "), r
    for r in ran:  # every stage that ran meets its goal
        assert r["ok"], r
    if len(ran) < len(rows):
        pytest.skip("part of the checkout's code does not import here: "
                    + "; ".join(sorted({r["status"] for r in rows if r["ok"] is None})))


def test_upstream_f0_runs_with_the_dither_seeded_as_rvclab_and_the_callers_rng_restored():
    """torchcrepe dithers from numpy's global RNG: seeded as rvclab's CREPE seeds its own, upstream's
    CREPE F0 is reproducible; the caller's RNG carries on as if nothing ran."""
    from rvclab.models.crepe.f0 import DITHER_SEED
    from rvclab.parity_upstream.pipeline import _seeded_dither

    np.random.seed(123)
    expected_next = np.random.RandomState(123).random_sample(3)
    drawn = _seeded_dither(lambda n: np.random.random_sample(n), 4)
    np.testing.assert_array_equal(drawn, np.random.RandomState(DITHER_SEED).random_sample(4))
    np.testing.assert_array_equal(np.random.random_sample(3), expected_next)


def test_a_fairseq_hubert_that_does_not_import_is_replaced_by_rvclabs_behind_its_interface(tmp_path, monkeypatch):
    """RVC WebUI 2024 reads HuBERT with fairseq: where fairseq does not import, upstream's pipeline
    gets rvclab's torch HuBERT behind fairseq's extract_features interface, and the label says so."""
    from rvclab.models.hubert.config import HubertConfig
    from rvclab.models.hubert.torch import HubertModel
    from rvclab.parity_upstream import pipeline as up_pipeline

    torch.manual_seed(0)
    model = HubertModel(HubertConfig.small()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    monkeypatch.setattr(up_pipeline, "embedder", lambda backend, path: model)
    root = _fake_layout(tmp_path, "rvc-webui-2024")
    (root / "fairseq").mkdir()
    (root / "fairseq" / "__init__.py").write_text("raise ImportError('fairseq needs Python < 3.11 (test)')\n")
    with checkout_code(*find_layout(root)) as code:
        hubert, label = up_pipeline.upstream_hubert_model(code, get_profile("rvc-webui-2024"), tmp_path)
    assert label.startswith("rvclab's torch HuBERT behind fairseq's interface (fairseq.checkpoint_utils")
    assert "fairseq needs Python < 3.11 (test)" in label
    wav = torch.randn(1, 16000)
    with torch.no_grad():
        feats, mask = hubert.extract_features(source=wav, padding_mask=None, output_layer=2)
        assert torch.isfinite(feats).all() and float(feats.abs().max()) > 0
        torch.testing.assert_close(feats, model.layer_output(wav, 2, attention="explicit"), rtol=0, atol=0)
        assert hubert.final_proj is model.final_proj and mask is None
