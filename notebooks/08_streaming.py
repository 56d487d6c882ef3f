# %% [markdown]
# # 08 · Realtime streaming
#
# `StreamConverter` converts block by block with RVC WebUI's realtime semantics, on torch or MLX
# (docs/streaming.md). This notebook shows the buffers, the latency budget, the block times and the
# quality measured by `scripts/stream_bench.py` (rows in `docs/bench/stream_cpu.json`), then streams
# a shipped clip and plays it against offline conversion. The voice is seeded, not trained.

# %%
# %matplotlib inline
import json
from rvclab.audio import clip, load_audio
from rvclab.paths import ROOT
from rvclab.stream import StreamConfig
from rvclab.views import stream as sv
rows = json.loads((ROOT / "docs" / "bench" / "stream_cpu.json").read_text())["rows"]
print(len(rows), "benchmark rows:", sorted({r["part"] for r in rows}))

# %% [markdown]
# ## The buffers
#
# The input buffer holds `extra` of context, the crossfade, the SOLA search span and the newest
# block; HuBERT and F0 read it all (F0 only its newest end), the synthesizer decodes only from
# `skip_head` = extra on, and one block is played.

# %%
# display-only: a drawing of the buffer sizes; the latency they add is printed by the streaming cell below
sv.buffer_diagram(StreamConfig(block=0.25, crossfade=0.05, extra=2.5))

# %% [markdown]
# ## The latency budget
#
# block + crossfade + SOLA search + resampler (0: linear-phase FIRs with compensated delay).

# %%
# display-only: the budget's total is printed by the streaming cell below
sv.latency_bars()

# %% [markdown]
# ## Block times on this CPU
#
# Compute time per block, per backend, against the block's own length (the deadline).

# %%
# display-only: compute times differ on every machine; the rows are in docs/bench/stream_cpu.json
sv.block_time_hist(rows, "voice_v2_40k.pth", "fcpe")

# %%
# display-only: compute times differ on every machine; the rows are in docs/bench/stream_cpu.json
sv.block_time_hist(rows, "voice_v1_32k.pth", "rmvpe")

# %% [markdown]
# ## Streamed vs offline
#
# Log-mel correlation of the streamed output with offline conversion per block size and extra
# (dotted: offline against offline with another noise seed), and where in the block the
# differences sit.

# %%
# display-only: drawn from docs/bench/stream_cpu.json, which docs/streaming.md tabulates
sv.quality_curve(rows)

# %% [markdown]
# ## Listen: offline vs streaming
#
# Two seconds of a shipped clip, MLX, fcpe, block 0.25 s, extra 1 s.

# %%
from rvclab.pipeline.networks import VoiceModel
from rvclab.pipeline.conversion import convert_voice
from rvclab.stream.compare import stream_audio
from rvclab.voices import default_voice
voice = VoiceModel(default_voice("voice_v1_32k.pth"))
audio = load_audio(clip("librivox_male_0880"), 16000)[:32000]
offline = convert_voice(audio, voice, sr=16000, f0_method="fcpe", rms_mix_rate=1.0, protect=0.5, backend="mlx")
conv, streamed = stream_audio(voice, audio, "mlx", StreamConfig(block=0.25, extra=1.0, f0_method="fcpe"))
print(f"{len(streamed.blocks)} blocks, latency {conv.latency['total'] * 1000:.0f} ms (algorithmic)")

# %%
# NBVAL_IGNORE_OUTPUT
# (the players carry audio bytes)
from rvclab.views.players import ab_player
ab_player(offline.audio, streamed.audio, voice.sr, labels=("offline", "streaming"))

# %% [markdown]
# ## Try other settings
#
# Move the sliders and press run: the clip is streamed again and played against offline.

# %%
# NBVAL_IGNORE_OUTPUT
sv.stream_explorer(voice, audio, offline.audio)
