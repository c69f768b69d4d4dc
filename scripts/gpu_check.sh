#!/usr/bin/env bash
# All GPU checks in one go (< 8 minutes on one H100, enforced: each step's timeout is capped by what is left): the
# CUDA test tier (quantizers incl. the fused Triton kernels, Stage I, MaskGIT, UViM), the quantizer benchmark on CUDA,
# the fused-kernel GPU table (--gpu-table --quick), and the UViM study's depth and panoptic rows at the CPU configs'
# sizes (timed).
# Runs with .venv/bin/python when present, else the machine's python3 (which must have torch with CUDA, pytest and
# hypothesis); the package is used from src/ without installing. Results go to OUT_DIR (default $OUT or ./gpu_check).
# Wheels in .whl/ (vector-quantize-pytorch and its deps, fetched with `pip download`) are installed to /tmp/site first.
# Usage: bash scripts/gpu_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check}}"
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
site=""
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then  # peers for the benchmark, carried as wheels (no index there)
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && site=/tmp/site
fi
export PYTHONPATH="$PWD/src${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
  | tee "$out/device.txt" || exit 1
status=0
start=$SECONDS
left() {  # the smaller of $1 and the seconds left of the 470 s budget (at least 1)
  local l=$((470 - (SECONDS - start)))
  if [ "$l" -lt "$1" ]; then echo $((l > 1 ? l : 1)); else echo "$1"; fi
}
# every test marked gpu, wherever it lives (the kernel tests are in tests/gpu/test_cuda.py)
timeout "$(left 150)" $py -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$out/pytest_gpu.txt" || status=1
timeout "$(left 60)" $py benchmarks/quantizers.py --device cuda --quick --out "$out/quantizers_cuda.json" 2>&1 \
  | tee "$out/bench_cuda.txt" || status=1
# fused Triton kernels vs eager vs vector-quantize-pytorch (eager, compiled) vs the bandwidth floor, fwd+bwd
timeout "$(left 100)" $py benchmarks/quantizers.py --gpu-table --quick --out "$out/fsq_gpu.json" 2>&1 \
  | tee "$out/bench_gpu_table.txt" || status=1
# UViM FSQ vs VQ on the synthetic scenes (generated: no data needed), the CPU configs run on the GPU
timeout "$(left 290)" $py -m fsq study uvim --tasks depth panoptic --out "$out/uvim_study" train.device=cuda train.progress=false \
  2>&1 | tail -40 | tee "$out/uvim_study.txt" || status=1
cp "$out/uvim_study/report.md" "$out/uvim_report.md" 2>/dev/null || status=1  # files deeper than $out/a/b stay there
cp "$out/uvim_study/results.json" "$out/uvim_results.json" 2>/dev/null || status=1
exit $status
