#!/usr/bin/env bash
# The paper-path checks for a machine with a GPU (bench/gpu_check.py says what each measures):
# paper-size training throughput with AMP and in fp32, inference FPS side by side (Table 3's ratios),
# and a one-process torchrun (NCCL) smoke run. Results: results/gpu_check.csv.
#   bash bench/gpu_check.sh            # on the GPU machine, from the repository
#   bash bench/gpu_check.sh --tiny     # anywhere: smoke sizes, checks that every path runs
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: CPU"
"$PY" bench/gpu_check.py "$@"
