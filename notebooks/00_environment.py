# %% [markdown]
# # 00 · Environment and data
#
# What this machine runs (MLX device, the BLAS that MLX calls, versions, a matmul timed in both
# backends) and the speech clips every other notebook uses. Timings and versions vary between
# machines; nbval masks them (see `notebooks/sanitize.cfg`).

# %%
from rvclab import info
from rvclab.views import widgets
from rvclab.audio import data_clips, load_audio_native
runtime = info.collect(matmul_n=1024)
widgets.info_table(runtime)

# %% [markdown]
# On Linux CPU, MLX links a reference BLAS; `rvclab.runtime` loads the system OpenBLAS first, so
# matmuls run at torch's speed. The ratio below should be close to 1 (out of the box it is ~15-30x).

# %%
print("MLX BLAS is OpenBLAS:", "openblas" in runtime["mlx_blas"] or "Accelerate" in runtime["mlx_blas"])
print(f"MLX/torch matmul time ratio: {runtime['matmul_ratio_mlx_over_torch']:.2f}")

# %% [markdown]
# ## The shipped clips
#
# Four real recordings (provenance in `data/README.md`): two male, two female, at 8, 16 and 48 kHz.

# %%
for path in data_clips():
    audio, sr = load_audio_native(path)
    print(f"{path.name:32s} {sr:6d} Hz  {audio.size / sr:5.2f} s  peak {abs(audio).max():.3f}")

# %%
clips = data_clips()
widgets.audio_player(*load_audio_native(clips[0]), label=clips[0].name)

# %%
# display-only: the clip's rate, length and peak are printed in the table above
widgets.clip_overview(clips[0])

# %%
widgets.audio_player(*load_audio_native(clips[1]), label=clips[1].name)

# %%
# display-only: the clip's rate, length and peak are printed in the table above
widgets.clip_overview(clips[1])

# %%
widgets.audio_player(*load_audio_native(clips[2]), label=clips[2].name)

# %%
# display-only: the clip's rate, length and peak are printed in the table above
widgets.clip_overview(clips[2])

# %%
widgets.audio_player(*load_audio_native(clips[3]), label=clips[3].name)

# %%
# display-only: the clip's rate, length and peak are printed in the table above
widgets.clip_overview(clips[3])
