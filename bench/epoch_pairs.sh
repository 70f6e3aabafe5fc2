#!/usr/bin/env bash
# Measured epoch times of the cpu main job's rows, as the main job runs them: two rows side by
# side, one thread each, decoded images in memory, compiled as the profile chooses (one fresh
# inductor cache shared by the pair) or eager. Epoch 1 of a compiled row pays the cold compile;
# epoch 2 is the steady one (it includes the evaluation). Compare with `reproduce --plan`.
#   bench/epoch_pairs.sh [compiled|eager] [OUT=/tmp/epoch_pairs_<mode>]      (~7-8 min each)
set -u
cd "$(dirname "$0")/.."
mode=${1:-compiled}; out=${2:-/tmp/epoch_pairs_$mode}
flag=(); [ "$mode" = eager ] && flag=(--no-compile)
rm -rf "$out"; mkdir -p "$out"
export TORCHINDUCTOR_CACHE_DIR=$out/inductor OMP_NUM_THREADS=1
t() { .venv/bin/distilkit train --profile cpu --epochs 2 --no-progress "${flag[@]}" "$@" > "$out/$(basename "${@: -1}").log" 2>&1; }
t --model distilpose-s --losses reg --seed 0 --out "$out/distilpose-s_s0" & t --model distilpose-s --losses reg --seed 1 --out "$out/distilpose-s_s1" & wait
t --model teacher-hrw48 --losses heatmap --seed 0 --out "$out/teacher-hrw48" & t --model distilpose-l --losses reg --seed 0 --out "$out/distilpose-l" & wait
for d in "$out"/*/; do
  [ -f "$d/metrics.csv" ] && echo "$mode,$(basename "$d"),$(awk -F, 'NR>1{printf "%s%.1f", (NR>2?",":""), $8}' "$d/metrics.csv")"
done
