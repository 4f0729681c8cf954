#!/usr/bin/env bash
# Builds effbench with the candle `cuda` feature on a machine without a GPU or a CUDA
# toolkit, with the tested recipe (scripts/cuda-build-env.sh = shared/cuda/build-env.sh:
# CUDA 13.0 wheels from PyPI, nvcc 13.0, a link-time stub for the driver library).
#
#   scripts/build-cuda.sh            build target/cuda/release/effbench (separate target dir,
#                                    so normal builds stay warm); cold: 11-15 min on 2 cores
#   scripts/build-cuda.sh --check    then start it here with the stub driver (--nodriver):
#                                    `list backends` must show cuda, and a cuda:0 run must
#                                    fail with a clean one-line reason
#
# Environment: CUDA_WHEELS_DIR (default ~/.cache/cuda13-wheels, about 1.2 GB),
# CUDA_COMPUTE_CAP (default 90: H100/H200, sm_90a only; other GPUs need their own value).
# The binary needs the driver's libcuda.so.1 and the CUDA 13 runtime libraries (cudart,
# cublas, cublasLt, curand) at run time; scripts/gpu-check-backends.sh finds them in the
# python env of the GPU machine (torch's nvidia/cu13/lib). Pack it with scripts/pack-gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECK=0
for a in "$@"; do
  case "$a" in
    --check) CHECK=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-cuda: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
WHEELS="${CUDA_WHEELS_DIR:-$HOME/.cache/cuda13-wheels}"
eval "$(bash scripts/cuda-build-env.sh "$WHEELS")"
echo "build-cuda: nvcc $("$NVCC" --version | grep -o 'release [0-9.]*'), CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP" >&2
start=$(date +%s)
cargo build --release --features cuda --target-dir target/cuda
echo "build-cuda: built target/cuda/release/effbench in $(( $(date +%s) - start )) s ($(du -h target/cuda/release/effbench | cut -f1))" >&2

if [ "$CHECK" = 1 ]; then
  eval "$(bash scripts/cuda-build-env.sh "$WHEELS" --nodriver)"
  BIN="$PWD/target/cuda/release/effbench"
  "$BIN" --version
  "$BIN" list backends | tee /dev/stderr | grep -A1 '^  candle ' | grep -q 'devices: cpu, cuda' \
    || { echo "build-cuda: the candle backend of this build does not list cuda" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cat > "$tmp/cuda.toml" <<'TOML'
name = "cuda-check"
scenario = "inference"
backend = "candle"
model = "default"
[matrix]
device = "cuda:0"
gen_len = 2
[measure]
min_iters = 1
min_duration_s = 0.0
TOML
  set +e
  (cd "$tmp" && "$BIN" run cuda.toml --out out) > "$tmp/log" 2>&1
  code=$?
  set -e
  cat "$tmp/log" >&2
  reason="$(python3 -c 'import json,glob,sys; [print(json.load(open(f))["status"]["reason"]) for f in glob.glob(sys.argv[1]+"/out/*.json") if not f.endswith("manifest.json")]' "$tmp")"
  echo "build-cuda: cuda:0 without a GPU -> exit $code, reason: $reason" >&2
  [ "$code" = 1 ] && [ -n "$reason" ] && ! grep -q panicked "$tmp/log" \
    || { echo "build-cuda: expected a failed run with a clean reason" >&2; exit 1; }
fi
