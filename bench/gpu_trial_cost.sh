#!/usr/bin/env bash
# GPU trial throughput (bench/gpu_trial_cost.py) in under 5 minutes on a machine with no network.
# Needs python3 with torch, transformers, safetensors, numpy, pandas, pyarrow and scikit-learn
# (the project's own code is imported from this checkout; Ray and `datasets` are not needed).
#     bash bench/gpu_trial_cost.sh [--rows 2048] [--procs 1,2,4,8]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec timeout 290 "$PYTHON" bench/gpu_trial_cost.py "$@"
