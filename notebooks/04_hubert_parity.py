# %% [markdown]
# # 04 · HuBERT / ContentVec parity
#
# RVC's content features come from HuBERT base (fairseq `hubert_base.pt`) or ContentVec (a
# transformers folder). This notebook runs the torch reference and the MLX port on real speech and
# compares them stage by stage and frame by frame.

# %% [markdown]
# ## Seeded weights in both upstream formats
#
# Seeded (not trained) weights of a small config with the real layout: same conv front end
# strides, 12 transformer layers, narrower channels. `rvclab parity hubert` runs the full base config.

# %%
import tempfile
from pathlib import Path
import matplotlib.pyplot as plt
import numpy as np
from rvclab.models.hubert import io as hubert_io
from rvclab import metrics, tolerances, trace
from rvclab.audio import clip, load_audio
from rvclab.models.hubert.config import HubertConfig
from rvclab.models.hubert import parity
from rvclab.models.hubert import seeded
folder = Path(tempfile.mkdtemp()); config = HubertConfig.small()
print(f"small config: {config.embed_dim}-d, {config.num_layers} layers, {config.num_heads} heads, "
      f"final_proj {config.final_dim}-d")

# %%
paths = seeded.make(folder, seed=0, force=False, config=config)
print([p.relative_to(folder).as_posix() for p in paths])
fs = hubert_io.read_hubert(folder / "hubert_base.pt")
hf = hubert_io.read_hubert(folder / "contentvec_base")
print("formats:", fs.format, hf.format, "| same config:", fs.config == hf.config)
print("dropped (training only):", fs.dropped, hf.dropped)
print("same weights:", all(np.array_equal(fs.state[k], hf.state[k]) for k in fs.state))

# %% [markdown]
# ## What HuBERT computes
#
# Seven strided convs turn 16 kHz samples into 50 frames/s (400-sample receptive field, 320-sample
# hop); a positional conv and 12 transformer layers follow. v1 reads layer 9 through `final_proj`,
# v2 reads layer 12.

# %%
wav = load_audio(clip("librivox_male_0880"), 16000).astype(np.float32)
print(f"{wav.size} samples = {wav.size / 16000:.2f} s -> {config.num_frames(wav.size)} frames")
print("hop", config.hop, "receptive field", config.receptive_field,
      "| frames = (N - 400) // 320 + 1 =", (wav.size - 400) // 320 + 1)
tmodel, mmodel = hubert_io.torch_model(fs), hubert_io.mlx_model(fs)

# %% [markdown]
# ## The conv front end
#
# Output of the last conv layer in both backends (channels x frames) and their difference; the
# difference is at fp32 rounding level.

# %%
ref, test = parity.torch_stages(tmodel, wav), parity.mlx_stages(mmodel, wav)
a, b = ref["feature_extractor.conv_layers.6"], test["feature_extractor.conv_layers.6"]
fig, ax = plt.subplots(1, 2, figsize=(11, 3))
ax[0].imshow(a.T, aspect="auto", origin="lower"); ax[0].set_title("torch: conv front end (C x T)")
ax[1].imshow((b - a).T, aspect="auto", origin="lower", cmap="coolwarm"); ax[1].set_title("MLX - torch")
plt.show()
print("front end max_abs / RMS below the goal:", metrics.max_abs(a, b) / metrics.rms(a) < tolerances.HUBERT_MAX_ABS_REL)

# %% [markdown]
# ## Layer by layer
#
# `rvclab.trace` hooks every submodule on both sides (matched by attribute path) and compares
# outputs; the table lists the conv layers, the projection and each transformer layer.

# %%
# NBVAL_IGNORE_OUTPUT
# (the last digits of fp32 rounding differences vary with BLAS threads; the next cell checks)
import torch
def run_torch():
    with torch.no_grad():
        return tmodel.extract_features(torch.from_numpy(wav), "v2")
table = trace.trace(tmodel, mmodel, run_torch, lambda: mmodel.extract_features(wav, "v2"))
keep = [r for r in table if r["path"].count(".") <= 2 and r["module"] not in ("Dropout", "GELU")]
print(table.to_markdown(keep))

# %%
print(len(table), "submodule outputs compared; all within", tolerances.TRACE_REL_MAX_ABS,
      "x RMS:", all(r["ok"] for r in table))
print("first failure:", table.first_failure())

# %% [markdown]
# ## Cosine similarity per frame
#
# Goal for every frame: cosine >= 0.99999 and max abs difference <= 1e-4 x feature RMS.

# %%
rows = {}
for version in ("v1", "v2"):
    t_feat, m_feat = parity.features((tmodel, mmodel), wav, version)
    rows[version] = (t_feat, m_feat, metrics.cosine_per_frame(t_feat, m_feat))
    r = parity.compare(t_feat, m_feat)
    print(version, t_feat.shape, "frames", r["frames_torch"], r["frames_mlx"],
          "| cos_min >= goal:", r["cos_min"] >= tolerances.HUBERT_COS_MIN,
          "| max_abs_rel <= goal:", r["max_abs_rel"] <= tolerances.HUBERT_MAX_ABS_REL)

# %%
# display-only: the per-frame cosines drawn here are summarised in the table above
fig, ax = plt.subplots(figsize=(11, 2.5))
for version, (_, _, cos) in rows.items():
    ax.plot(1 - cos, label=f"{version}: 1 - cosine")
ax.axhline(1 - tolerances.HUBERT_COS_MIN, color="k", ls="--", label="goal")
ax.set_yscale("symlog", linthresh=1e-9); ax.set_xlabel("frame (20 ms)"); ax.legend(); plt.show()

# %% [markdown]
# ## v1 vs v2 features
#
# v1 models take 256-d features (layer 9 through `final_proj`; here the small config's 32-d), v2
# models the 768-d layer 12 output (here 64-d). Applio's v1 reads layer 12 through `final_proj`.

# %%
# display-only: the features drawn here are compared in the table above
fig, ax = plt.subplots(1, 2, figsize=(11, 3))
for axis, (version, (t_feat, _, _)) in zip(ax, rows.items()):
    axis.imshow(t_feat.T, aspect="auto", origin="lower")
    axis.set_title(f"{version}: {t_feat.shape[1]}-d x {t_feat.shape[0]} frames")
plt.show()

# %% [markdown]
# The full base config (768-d, 12 heads) on every clip and on 0.5-30 s inputs, both formats:
# `rvclab parity hubert --json`. Speed: `scripts/bench_hubert.py`.
