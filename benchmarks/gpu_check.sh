#!/usr/bin/env bash
# The trainer's GPU paths on one CUDA device, in under 5 minutes: bf16 and fp16 SEED steps (loss in fp32),
# torch.compile, a one-process nccl group, images/s at 224 px (MobileNetV3-Large from ResNet-50; three
# students from one teacher pass). `--dry-run`: the same script on CPU with tiny networks (the test suite).
#   benchmarks/gpu_check.sh [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
