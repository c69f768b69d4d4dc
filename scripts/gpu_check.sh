#!/usr/bin/env bash
# All GPU checks in one go (< 8 minutes on one H100): the CUDA test tier and the quantizer benchmark on CUDA.
# Runs with .venv/bin/python when present, else the machine's python3 (which must have torch with CUDA, pytest and
# hypothesis); the package is used from src/ without installing. Results go to OUT_DIR (default $OUT or ./gpu_check).
# Usage: bash scripts/gpu_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check}}"
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
  | tee "$out/device.txt" || exit 1
status=0
timeout 300 $py -m pytest -q -p no:cacheprovider -m gpu tests/gpu 2>&1 | tee "$out/pytest_gpu.txt" || status=1
timeout 150 $py benchmarks/quantizers.py --device cuda --quick --out "$out/quantizers_cuda.json" 2>&1 \
  | tee "$out/bench_cuda.txt" || status=1
exit $status
