# %% [markdown]
# # 01 · Voice conversion: RVC .pth to MLX weights
#
# An RVC voice file read safely, its config and keys, the converter's rule table applied to it,
# every tensor checked against its source, an atomic save and reload, and what a broken file says.

# %% [markdown]
# ## Load a voice file safely
#
# The seeded v2 48k voice (`rvclab weights make`; untrained weights in upstream's exact .pth layout).
# The loader never unpickles code: only tensors, lists and strings come back.

# %%
import tempfile
from pathlib import Path
from rvclab.models.synth import tables as sv
from rvclab.views import widgets
from rvclab.checkpoints import load_checkpoint
from rvclab.models.synth.config import SynthConfig
path = sv.ensure_voice("v2-48k")
ckpt = load_checkpoint(path)
print(path.name, "| entries:", list(ckpt))
print({k: ckpt[k] for k in ("sr", "f0", "version")}, "| config list:", len(ckpt["config"]))

# %% [markdown]
# ## Its config
#
# `SynthConfig` is built from the 18-entry `config` list plus the `version`, `f0` and `sr` entries;
# both backends build their model from it.

# %%
config = SynthConfig.from_checkpoint(ckpt)
widgets.rows_table(sv.config_rows(config))

# %% [markdown]
# ## Its keys
#
# Every tensor in `weight` (fp16, as upstream saves voices), counted per top-level module, then the
# first rows of the full key table.

# %%
keys = sv.key_table(ckpt["weight"])
print(len(keys), "tensors,", sum(r["count"] for r in keys), "values")
widgets.rows_table(sv.key_summary(ckpt["weight"]))

# %%
widgets.rows_table(keys, max_rows=12)

# %% [markdown]
# ## The converter's rules
#
# A table of pure rules, applied strictly: every source key consumed once, every MLX parameter
# produced, every shape checked. Weight norm is fused; conv kernels move to MLX's layout.

# %%
from rvclab.convert import rules_table
from rvclab.models.synth.rules import RULES
widgets.rows_table(rules_table(RULES))

# %%
arrays, metadata, report = sv.convert_with_report(ckpt)
print(len(arrays), "MLX arrays from", len(ckpt["weight"]), "source tensors; dtypes:",
      sorted({str(a.dtype) for a in arrays.values()}))
widgets.rows_table(sv.rule_counts(report))

# %% [markdown]
# ## Every tensor verified, without the converter's rules
#
# The check does not reuse the converter's layout functions. Tensors that keep their name
# (biases, LayerNorm, embeddings, linears, position tables) must equal the source bit for bit;
# every convolution kernel, plain or weight-normed, is judged by what it computes (next cell).

# %%
import numpy as np
from rvclab.models.synth.io import model_from_weights, prepare_weights
tmodel = model_from_weights(config, prepare_weights(ckpt["weight"]))  # the torch reference, from the .pth
kernels = {f"{n}.weight" for n, m in tmodel.named_modules() if "Conv" in type(m).__name__}
names = {k.replace(".weight_g", ".weight") for k in ckpt["weight"] if not k.endswith(".weight_v")}
copies = [k for k in arrays if k not in kernels]
exact = sum(np.array_equal(arrays[k], ckpt["weight"][k].float().numpy()) for k in copies)
print("same keys as the source (weight_g + weight_v -> weight):", set(arrays) == names)
print(f"{len(copies)} tensors under their own name, {exact} bit-exact; {len(kernels)} conv kernels")

# %% [markdown]
# The torch reference built from the `.pth` and the MLX port loaded from `arrays` run the same
# 20 frames with the same noise; every layer's output is compared (`rvclab.trace`), each
# convolution among them.

# %%
from rvclab.convert import load_into_mlx
from rvclab.models.synth import parity
from rvclab.models.synth.mlx.synthesizer import build_synthesizer
from rvclab.models.synth.noise import make_noise
mmodel = build_synthesizer(config)
load_into_mlx(mmodel, arrays)  # the MLX port, from the converted arrays
table, _, _ = sv.traced_run(tmodel, mmodel, parity.clip_inputs(config, 20), make_noise(config, 1, 20, 0))
convs = {r["path"].split("#")[0] for r in table if "Conv" in r["module"]}
print(f"{len(table)} layer outputs compared, {len(convs)} of the {len(kernels)} conv kernels among them;",
      "first past the tolerance:", table.first_failure())

# %% [markdown]
# Fused weight norm is also compared with torch's own fusion (`torch._weight_norm`) in float64,
# rounded once to fp32, as the converter does.

# %%
checks = [r for r in sv.verify_tensors(ckpt, arrays, report) if r["kind"] == "fused"]
fused = {r["kind"]: r for r in sv.verify_summary(checks)}["fused"]
print(f"fused {fused['tensors']} tensors, max rel <= {fused['tolerance']:g}: {fused['ok']}")
fp32 = fused["max_rel_fp32"]
print("vs torch's fusion in fp32: max rel > 1e-7:", fp32 > 1e-7, "| < 1e-6:", fp32 < 1e-6)

# %% [markdown]
# Torch's fp32 fusion accumulates rounding in the norm (up to ~5e-7 relative on the 6144-element
# rows of `dec.ups.0`); the converter's float64 fusion is within fp32 rounding of the exact value.

# %%
# NBVAL_IGNORE_OUTPUT
# (torch's fp32 fusion may round differently with its threads)
worst = sorted(checks, key=lambda r: -(r["rel_fp32"] or 0))
widgets.rows_table(worst, max_rows=8, caption="largest difference from torch's fp32 fusion first")

# %% [markdown]
# ## Save atomically and reload
#
# safetensors with the config in its metadata, written to a temporary file and renamed; the MLX
# model loads it strictly (every parameter set, every shape checked).

# %%
from rvclab.convert import save_safetensors_atomic
from rvclab.models.synth.rules import load_mlx_voice
target = Path(tempfile.mkdtemp()) / "voice_v2_48k.safetensors"
out = save_safetensors_atomic(target, arrays, metadata)
model, config2 = load_mlx_voice(out)
print(out.name, f"{out.stat().st_size / 2**20:.1f} MiB | files in folder:",
      [p.name for p in out.parent.iterdir()])
print("same config:", config2 == config,
      "| every parameter bit-identical:", sv.mlx_matches_arrays(model, arrays))

# %% [markdown]
# ## A broken file names its key
#
# A missing tensor and a mis-shaped one: the converter and the torch loader both stop and say
# which key, with the expected and found shapes. Nothing is written.

# %%
from rvclab.models.synth.rules import convert_checkpoint
missing = sv.broken(ckpt, drop="enc_p.encoder.attn_layers.1.conv_k.bias")
print("\n".join(sv.error_lines(convert_checkpoint, missing)))

# %%
from rvclab.models.synth.io import prepare_weights, validate_weights
bad = sv.broken(ckpt, reshape=("enc_p.emb_pitch.weight", (255, 192)))
print("\n".join(sv.error_lines(convert_checkpoint, bad)))
print("\n".join(sv.error_lines(validate_weights, config, prepare_weights(bad["weight"]))))
