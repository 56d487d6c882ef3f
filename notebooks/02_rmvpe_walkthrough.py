# %% [markdown]
# # 02 · RMVPE walkthrough
#
# RMVPE (RVC's default pitch estimator) step by step on a real clip with seeded weights: STFT, log-mel, U-Net, BiGRU, 360-bin salience, decoding, then torch vs MLX.
# The seed's MLX port gave F0 about 18% low; the last section re-introduces each plausible bug and measures its F0 error.

# %%
import numpy as np
from rvclab.views import rmvpe as W
from rvclab.views import widgets
from rvclab.audio import clip, data_clips, load_audio

est_t, est_m = W.estimators()  # weights/rmvpe.pt (seeded, made if missing)
path = clip("librivox_male_0880")
audio = load_audio(path, 16000)
st = W.stages(est_t, audio)
print(path.name, audio.shape, "->", st["mel"].shape[1], "frames of 10 ms")

# %% [markdown]
# Centred, reflect-padded STFT (1024-point Hann, hop 160), then 128 HTK mel bins from 30 to 8000 Hz and log(max(mel, 1e-5)):

# %%
# display-only: a picture of one stage's output; the stages' torch/MLX agreement is printed below
W.plot_image(np.log(np.maximum(st["stft"], 1e-5)), "STFT magnitude (log)", "FFT bin")

# %%
# display-only: a picture of one stage's output; the stages' torch/MLX agreement is printed below
W.plot_image(st["mel"], "log-mel (the network input)", "mel bin")

# %% [markdown]
# The U-Net halves time and mel five times (16 to 256 channels), runs 4 intermediate blocks at 512 channels, and comes back up with skip connections. Channel means at each scale:

# %%
# display-only: a picture of the U-Net's feature maps; the stages' torch/MLX agreement is printed below
W.plot_unet(st)

# %% [markdown]
# A 3-channel conv gives 3 x 128 = 384 features per frame; the bidirectional GRU (256 per direction) reads them in both directions:

# %%
# display-only: a picture of one stage's output; the stages' torch/MLX agreement is printed below
W.plot_image(st["gru"].T, "BiGRU output (forward units 0-255, backward 256-511)", "unit", "coolwarm")

# %%
# display-only: a picture of one stage's output; the stages' torch/MLX agreement is printed below
W.plot_image(st["salience"].T, "salience: sigmoid(Linear(512 -> 360)); bin b = 1997.38 + 20 b cents", "bin")

# %% [markdown]
# Decoding one frame by hand: the argmax bin, the 9 bins around it, their salience-weighted mean in cents (re 10 Hz), then Hz; below 0.03 the frame is unvoiced.

# %%
t = int(np.argmax(st["salience"].max(1)))
row = W.decode_frame(st["salience"], t)
print({k: round(row[k], 1 if k in ("weighted_cents", "hz") else 3) for k in ("frame", "argmax_bin", "peak", "weighted_cents", "hz")})  # 0.1-cent rounding: stable across BLAS runs
print("reference decoder:", round(float(st["f0"][t]), 1), "Hz")

# %% [markdown]
# Torch reference vs MLX port on the whole clip (same weights, same input):

# %%
sal_m = est_m.salience(audio)
f0_m = est_m.infer(audio)
print("salience max abs diff < 1e-4:", bool(np.abs(sal_m - st["salience"]).max() < 1e-4))
print("voicing agreement:", float(np.mean((f0_m > 0) == (st["f0"] > 0))))
W.plot_f0({"torch": st["f0"], "MLX": f0_m}, f"{path.stem}: RMVPE F0 (seeded weights)")

# %% [markdown]
# Pick another clip (runs both backends on it):

# %%
# NBVAL_IGNORE_OUTPUT
widgets.rmvpe_clip_picker(data_clips(), lambda p: W.f0_overlay(est_t, est_m, p), value=path)

# %% [markdown]
# ## What makes F0 18% low?
#
# Each row switches on one plausible porting bug on the first 1.5 s. `net_rel_err` is the median F0 error through the seeded network (random weights: it only shows *that* a bug changes the output, not by how much on the trained net); `apparent_rel_err` is network-independent: for mel bugs, where the clip's harmonics land on the wrong mel axis read back on the right one (what a trained RMVPE would report); for decoding bugs, the error on a salience built from the clip's reference pitch.

# %%
rows = W.bug_table(est_t, audio[:24000])
table = W.rounded(rows, 3)  # what the table shows, and what the answer below reads
widgets.f0_agreement_table(table)

# %%
best = W.closest_to_seed(rows)
print("closest to the seed's -18%:", best["bug"], "->", round(best["apparent_rel_err"], 2))

# %%
W.bug_answer(table)
