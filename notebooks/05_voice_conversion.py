# %% [markdown]
# # 05 · Voice conversion on both backends
#
# One clip converted end to end with PyTorch and with MLX (same pipeline, chunking and noise),
# then listened to, compared number by number, retrieved against a FAISS index, and taken apart
# by a stage swap, then under two reference profiles (releases). The last cell is an explorer to
# try other clips, voices and parameters.
#
# **The voice model here is seeded, not trained**: `weights/voice_v2_32k.pth` has RVC's
# architecture and file layout with random weights, so the output sounds like noise shaped by the
# speech's pitch and loudness, not like a singer. To use a real voice, pass its `.pth` (from RVC
# WebUI or Applio) as the model: `VoiceModel("path/to/voice.pth")` here, or
# `rvclab convert -m voice.pth -i in.wav -o out.wav`; the real `hubert_base.pt` and `rmvpe.pt` go in
# `weights/` (see `weights/README.md`). Parity does not depend on training: both backends run the
# same weights.

# %%
from rvclab import metrics
from rvclab.pipeline import explore as vc_views
from rvclab.views import widgets
from rvclab.audio import clip
voice = vc_views.default_voice()
source = clip("librivox_male_0880")
audio = vc_views.load_clip(source, seconds=1.5)  # (N,) float32 @ 16 kHz
print(f"{source.name}: {audio.size / 16000:.2f} s | voice {voice.path.name}: {voice.version}, {voice.sr} Hz, F0 {voice.has_f0}")

# %% [markdown]
# ## Convert with each backend
#
# `convert_voice` with the current RVC WebUI's defaults (reference profile `rvc-webui-2026`: rmvpe,
# protect 0.33, rms_mix_rate 0.25), once per backend; both draw the synthesizer's noise from the same seed.

# %%
runs = vc_views.convert_both(audio, voice, noise_seed=0, f0_method="rmvpe", keep_features=True)
for name, run in runs.items():
    print(f"{name:5s} {run.audio.size} samples @ {run.sr} Hz, {len(run.chunks)} chunk(s), "
          f"{(vc_views.trim_pad(run.f0) > 0).mean():.0%} voiced, took {sum(run.timings.values()):.2f} s")

# %% [markdown]
# ## Listen
#
# A/B players: torch left, MLX right. They should sound the same (and, with a seeded voice, like
# pitched noise).

# %%
# NBVAL_IGNORE_OUTPUT
# (the players carry the converted audio's bytes, which differ across machines)
widgets.ab_player(runs["torch"].audio, runs["mlx"].audio, runs["torch"].sr)

# %% [markdown]
# ## Compare
#
# The parity row: waveform and log-mel correlation (goal ≥ 0.9999 each), RMS ratio, the largest
# sample difference (as the power of ten above it), F0 agreement and time spent per backend.

# %%
row = vc_views.parity_row(runs["torch"], runs["mlx"])
print("meets the end-to-end goal:", vc_views.passes(row))
widgets.conversion_table({"torch vs MLX": row})

# %% [markdown]
# F0 from RMVPE on each backend (the padding trimmed): the tracks lie on top of each other; the
# lower panel shows their difference in cents on frames voiced in both.

# %%
# display-only: the F0 agreement (cents p99, voicing) is in the parity table above
widgets.f0_overlay(vc_views.trim_pad(runs["torch"].f0), vc_views.trim_pad(runs["mlx"].f0))

# %% [markdown]
# ## Transpose: what `f0_up_key` does
#
# The clip's F0 from FCPE (real weights, so the speaker's own pitch; the seeded RMVPE above gives
# random values). Move the slider: the F0 the synthesizer would receive (in Hz, and as RVC's coarse
# pitch ids 1..255) and a buzz at that pitch follow at once, with no conversion.

# %%
# NBVAL_IGNORE_OUTPUT
# (a widget: its HTML fallback depends on the front end running it)
from rvclab.pitch import estimate_f0
widgets.pitch_shift_view(estimate_f0(audio, "fcpe", backend="mlx").f0, value=0)

# %% [markdown]
# Log-mel spectrograms of both outputs and their difference: the colour bar of the difference
# panel gives its scale (fp32 rounding, far below the spectrogram's own range).

# %%
# display-only: the spectrogram correlation is in the parity table above
widgets.spectrogram_diff(runs["torch"].audio, runs["mlx"].audio, runs["torch"].sr)

# %% [markdown]
# ## Build an index and use it
#
# A FAISS index (RVC's IVF layout and file name) of the HuBERT features of the *other* clips (first
# 2 s of each); with `index_rate` 0.75 each frame's features move three quarters of the way to their
# 8 nearest stored neighbours.

# %%
index, report, path = vc_views.index_from_clips(vc_views.other_clips(source), voice.version, seconds=2.0)
print(path.name, "|", report)
indexed = vc_views.convert_both(audio, voice, noise_seed=0, f0_method="rmvpe", index=index, index_rate=0.75,
                                keep_features=True, backends=("mlx",))
moved = metrics.corr(runs["mlx"].features[0], indexed["mlx"].features[0])
print(f"synthesizer input features, without vs with the index: corr {moved:.2f}")
# two different conversions: 3 decimals, since retrieval amplifies the last bits that differ between CPUs
widgets.conversion_table({"MLX: no index vs index_rate 0.75": vc_views.parity_row(runs["mlx"], indexed["mlx"])},
                         digits=3)

# %% [markdown]
# The features moved (see their correlation above) and the output with them: the waveform by
# about 2e-4 in correlation and the log-mel spectrogram by about 3e-3, both past the end-to-end
# goal's 1e-4. The seeded voices are made so (docs/synthesizer.md, "Seeded voices"): their output
# shares out between the content path and the F0 excitation, so a wrong feature, TextEncoder or flow
# fails the end-to-end check too (notebook 06, "End to end"). A trained voice changes its timbre
# audibly with an index.
# Torch against MLX *with* an index is one of the cases of `rvclab parity e2e`.

# %% [markdown]
# ## Stage swap: where does the difference come from?
#
# Torch features and torch F0 fed to the MLX synthesizer. Compared with the torch run it isolates
# the synthesizer's share; compared with the MLX run, the share of HuBERT and RMVPE.

# %%
swap = vc_views.stage_swap(audio, voice, runs, noise_seed=0, f0_method="rmvpe")
widgets.conversion_table(swap["rows"])

# %% [markdown]
# The synthesizer alone leaves the smaller difference; most of what remains between the two full
# runs enters with the features and F0, all of it at fp32 rounding level.

# %% [markdown]
# ## Reference profiles: which release to follow
#
# Conversions follow the current RVC WebUI release by default (`reference="rvc-webui-2026"`);
# `rvc-webui-2024` and `applio` follow the releases older voices came from (docs/reference_profiles.md).
# With pm F0 most unvoiced frames show the biggest difference: 2026 fills them by interpolation before
# the synthesizer sees them, 2024 leaves them at 0 Hz. Switch the profiles or the F0 method (torch
# backend, one noise seed): F0 curves, the log-mel difference and A/B players follow.

# %%
from IPython.display import display
switcher = widgets.profile_switcher(audio, voice, a="rvc-webui-2024", b="rvc-webui-2026", method="pm")
print({k: round(v, 3) if isinstance(v, float) else v for k, v in switcher.last.items()})
display(switcher)

# %% [markdown]
# ## Explorer
#
# Choose a clip, voice, F0 method and parameters, then press Run: both backends, A/B players, F0
# overlay, spectrogram difference and parity table. Nothing runs until you press it.

# %%
widgets.conversion_explorer()
