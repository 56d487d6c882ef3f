#!/usr/bin/env bash
# GPU test suite (`pytest -m gpu`, tests/test_gpu.py) on the lent GPU machine: the GPU-only branches
# and torch-CUDA vs MLX-CUDA parity, both in fp32 (TF32 off: MLX_ENABLE_TF32=0 is exported here,
# before Python starts; the tests turn torch's flags off and measure both). CI has no GPU: there
# conftest skips these tests with the reason (`pytest -rs` shows it).
#
# The payload is the benchmark's: this script sources scripts/gpu_bench.sh and uses its prepare,
# stage and install, so the staging is written once. The payload holds MLX + mlx-cuda-13 (the
# version pyproject.toml pins) and librosa with the small dependencies the machine lacks
# (soundfile, soxr, audioread, pooch...): the suite's imports need librosa (rvclab.audio). The
# machine's own python3 has torch (CUDA), numpy, scipy, numba and pytest.
#
# Here, once (the parts are the same as the benchmark's; skip if .gpuwheels/p0..p2 exist):
#
#   bash scripts/gpu_test.sh prepare     # download, pack, split into .gpuwheels/p0 p1 p2
#   bash scripts/gpu_test.sh check       # dry run: bash -n, parts, checksum, size of each call
#
# Then three device calls in a row (the machine stays warm about 30 s between them), each carrying
# one part; the last one installs into /tmp/site and runs the suite (give it timeout_s 600):
#
#   carry [".gpuwheels/p0"]   command: bash scripts/gpu_test.sh stage
#   carry [".gpuwheels/p1"]   command: bash scripts/gpu_test.sh stage
#   carry [".gpuwheels/p2"]   command: bash scripts/gpu_test.sh run
#
# On a machine still warm from an earlier `run` (this script's or gpu_bench.sh's), /tmp/site is
# there: one call, `bash scripts/gpu_test.sh run` with no carry. `run` writes to $OUT:
# gpu_tests.xml (JUnit), gpu_tests.log (pytest's output, -rs), gpu_report.json (every test's
# figures and the precision mode) and nvidia_smi.txt; its exit status is pytest's.
#
# Debugging here, never in CI: `bash scripts/gpu_test.sh cpu` runs the same suite on this CPU with
# RVCLAB_GPU_TEST_ON_CPU=1 (torch on "cpu", MLX on its CPU; output in out/gpu-test-cpu/). It
# catches mistakes before a device run and proves nothing about the GPU (tests/test_gpu.py).
set -euo pipefail
# shellcheck source=scripts/gpu_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/gpu_bench.sh"  # prepare, stage, install; $STAGE_DIR, $SITE; cd to the root
CARRY_LIMIT=$((64 * 1024 * 1024))  # bytes a device call may carry, the working tree included
PARTS=".gpuwheels/p0 .gpuwheels/p1 .gpuwheels/p2"

suite() {  # $1: output folder, $2: python
  "$2" -m pytest -p no:cacheprovider --strict-markers -m gpu tests/test_gpu.py tests/test_gru_fused.py -rs \
    --junitxml "$1/gpu_tests.xml" 2>&1 | tee "$1/gpu_tests.log"
}

run_suite() {
  [ -d "$SITE/mlx" ] || install
  local out=${OUT:-out/gpu-test} rc=0
  mkdir -p "$out"
  unset RVCLAB_MLX_DEVICE RVCLAB_MLX_CACHE_GB RVCLAB_GPU_TEST_ON_CPU
  export PYTHONPATH="$SITE:$PWD" RVCLAB_WEIGHTS=${RVCLAB_WEIGHTS:-/tmp/weights} PYTHONUNBUFFERED=1 \
    MLX_ENABLE_TF32=0 RVCLAB_GPU_REPORT="$out/gpu_report.json"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/nvidia_smi.txt" 2>&1 || true
  suite "$out" python3 || rc=$?
  echo "gpu suite: pytest exit $rc; JUnit, log and report in $out"
  return "$rc"
}

cpu_suite() {
  local out=${OUT:-out/gpu-test-cpu}
  mkdir -p "$out"
  export RVCLAB_GPU_TEST_ON_CPU=1 MLX_ENABLE_TF32=0 RVCLAB_GPU_REPORT="$out/gpu_report.json"
  suite "$out" "${PYTHON:-.venv/bin/python}"
}

check() {
  bash -n scripts/gpu_bench.sh
  bash -n scripts/gpu_test.sh
  local tree part p sums
  tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  echo "working tree that travels: $((tree / 1024 / 1024)) MiB"
  for p in $PARTS; do
    [ -d "$p" ] || { echo "missing $p: run 'bash scripts/gpu_test.sh prepare'" >&2; exit 1; }
    part=$(du -cb "$p" | tail -1 | cut -f1)
    echo "call carrying $p: $(((tree + part) / 1024 / 1024)) MiB of 64"
    [ $((tree + part)) -le "$CARRY_LIMIT" ] || { echo "over the limit of one call" >&2; exit 1; }
  done
  sums=$(cat .gpuwheels/p*/payload.sha256 | sort -u | wc -l)
  [ "$sums" -eq 1 ] || { echo "the parts come from different prepare runs" >&2; exit 1; }
  echo "$(cat .gpuwheels/p0/payload.sha256)  -" > /tmp/gpu_test_payload.sha256
  cat .gpuwheels/p*/payload.tar.part* | sha256sum -c /tmp/gpu_test_payload.sha256
  echo "ready: three device calls in a row (header of scripts/gpu_test.sh)"
}

case "${1:-}" in
  prepare) prepare ;;
  stage) stage ;;
  run) run_suite ;;
  check) check ;;
  cpu) cpu_suite ;;
  *) echo "usage: scripts/gpu_test.sh prepare|check|stage|run|cpu (see the header)" >&2; exit 2 ;;
esac
