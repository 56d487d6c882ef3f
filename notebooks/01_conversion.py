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
# ## Every tensor verified
#
# Copies and layout moves must be bit-exact. Fused weight norm is compared with torch's own fusion
# (`torch._weight_norm`) in float64, rounded once to fp32, as the converter does.

# %%
checks = sv.verify_tensors(ckpt, arrays, report)
summary = sv.verify_summary(checks)
for row in summary:
    print(f"{row['kind']:6s} {row['tensors']:4d} tensors, {row['bit-exact']:4d} bit-exact, "
          f"max rel <= {row['tolerance']:g}: {row['ok']}")
fp32 = summary[1]["max_rel_fp32"]
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
