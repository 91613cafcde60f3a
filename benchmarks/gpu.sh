#!/usr/bin/env bash
# The one prepared GPU check of the training backend (sized for a few minutes on one
# H100; not yet run on a GPU):
# ResNet-18 on CIFAR-shaped synthetic batches at batch 1024, float32 and bfloat16 —
# throughput against a plain Flax + optax step, measurement overhead at the default
# cadence, a short training run whose loss curve and measurements come back, and the
# sharpness solve on ResNet-18 and ResNet-50 (products vs power iteration, cold vs
# warm along GD steps, compiled memory of the bounded-memory path).
#
#   OUT=gpu-results bash benchmarks/gpu.sh
#
# Uses the python3 it finds (with jax[cuda], flax, optax, diffrax, orbax, grain);
# the package is taken from src/ so nothing is installed. GPU_CHECK_SMALL=1 shrinks
# everything so the script itself can be checked on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

width=64 batch=1024 steps=300 measure_batch=256 repeats=""
sharpness_batch=128 sharpness_options="--measurements 6"
if [ "${GPU_CHECK_SMALL:-0}" = 1 ]; then  # ~8 min on 2 CPU cores, sharpness apart
    width=4 batch=32 steps=10 measure_batch=16 repeats="--quick"
    sharpness_batch=2 sharpness_options="--measurements 2 --every 2"
fi

python3 -c "import jax; print(jax.devices())" | tee "$out/devices.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
    >>"$out/devices.txt" 2>/dev/null || true
for precision in float32 bfloat16; do
    python3 benchmarks/train_throughput.py $repeats --model resnet18 --width "$width" \
        --batch "$batch" --image-size 32 --precision "$precision" \
        2>&1 | tee "$out/throughput_$precision.txt"
done
python3 benchmarks/measure_overhead.py $repeats --model resnet18 --width "$width" \
    --batch "$batch" --image-size 32 2>&1 | tee "$out/measure_overhead.txt"
for model in resnet18 resnet50; do
    python3 benchmarks/sharpness.py --model "$model" --width "$width" \
        --batch "$sharpness_batch" $sharpness_options \
        2>&1 | tee "$out/sharpness_$model.txt"
done
python3 -m corridors.cli train --model resnet18 --width "$width" --dataset synthetic \
    --synthetic-shape 32 32 3 --batch-size "$batch" --steps "$steps" --optimizer clr \
    --precision bfloat16 --measure-every $((steps / 10)) --measure-batch "$measure_batch" \
    --out "$out/run" --quiet \
    --json 2>&1 | tee "$out/train_run.json"
python3 -m corridors.cli plot "$out/run" --out "$out/figures" --quiet
# Only a few files come back from the device: keep the metrics and two figures.
cp "$out"/run/clr-seed0/metrics.jsonl "$out/metrics.jsonl" 2>/dev/null
cp "$out"/figures/loss.png "$out"/figures/drift.png "$out/" 2>/dev/null
rm -rf "$out/run" "$out/figures"
