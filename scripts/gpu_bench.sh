#!/usr/bin/env bash
# The GPU step breakdown and precision measurements (issue 20, items 1, 3 and 6) in one device call:
#   run(command="bash scripts/gpu_bench.sh", kind="nvidia-h200", timeout_s=600)
# MLX reads MLX_ENABLE_TF32 once when it loads, so each TF32 setting gets its own process.
# Writes under $OUT (or docs/bench when OUT is unset):
#   bench_steps_gpu.json            e2e at 5 s and 60 s, both backends, every step (numpy noise)
#   bench_steps_gpu_counter.json    the same with the counter noise drawn on the device
#   bench_precision_gpu_<mode>.json e2e at 60 s per precision mode (fp32, tf32, fp16, bf16)
#   parity_precision_gpu.json       each mode against fp32: synth spec corr / max abs, HuBERT cos
set -euo pipefail
OUT="${OUT:-docs/bench}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
export RVCLAB_TORCH_CUDA_GRAPH="${RVCLAB_TORCH_CUDA_GRAPH:-1}"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv | tee "$OUT/gpu_state.txt"
MLX_ENABLE_TF32=0 timeout 200 "$PY" scripts/step_breakdown.py --device gpu --seconds 5,60 --repeats 5,3 \
  --json "$OUT/bench_steps_gpu.json"
MLX_ENABLE_TF32=0 timeout 120 "$PY" scripts/step_breakdown.py --device gpu --seconds 60 --repeats 3 \
  --noise counter --json "$OUT/bench_steps_gpu_counter.json"
for mode in fp32 fp16 bf16 tf32; do
  tf=0; [ "$mode" = tf32 ] && tf=1
  MLX_ENABLE_TF32=$tf timeout 100 "$PY" -m rvclab.bench.run --stage e2e --seconds 60 --device gpu \
    --repeats 3 --warmup 1 --precision "$mode" --json "$OUT/bench_precision_gpu_$mode.json" || echo "mode $mode failed"
done
MLX_ENABLE_TF32=0 timeout 60 "$PY" scripts/precision_parity.py --device gpu --json "$OUT/parity_precision_gpu.json" \
  --modes fp16,bf16 || echo "parity fp16/bf16 failed"
MLX_ENABLE_TF32=1 timeout 60 "$PY" scripts/precision_parity.py --device gpu --json "$OUT/parity_precision_gpu_tf32.json" \
  --modes tf32 || echo "parity tf32 failed"
