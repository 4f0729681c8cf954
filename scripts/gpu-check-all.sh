#!/usr/bin/env bash
# Every GPU check in one go, for a lent GPU machine with little time: the backends check
# (issue 10: PyTorch worker, candle CUDA, training), candle training of the default config
# on the GPU (issue 4) and the meters check (issue 5: NVML counter vs trapezoid, short
# windows), then the real-scale check (issue 16: presets on candle CUDA and PyTorch,
# scripts/gpu-check-real.sh). Needs target/gpu/ from scripts/pack-gpu-check.sh.
#
# Usage: bash scripts/gpu-check-all.sh OUT_DIR      (about 5-6 minutes, at most ~10, plus up
#        to 8 for the real-scale check; REAL=0 leaves it out)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: gpu-check-all.sh OUT_DIR}"
mkdir -p "$OUT"
bash scripts/gpu-check-backends.sh "$OUT/backends" > "$OUT/backends.txt" 2>&1
echo "gpu-check-all: backends exit $?" | tee -a "$OUT/backends.txt"
bash scripts/gpu-check-train.sh "$OUT/train" > "$OUT/train.txt" 2>&1
echo "gpu-check-all: train exit $?" | tee -a "$OUT/train.txt"
BIN="$(mktemp -d)/effbench"
gunzip -c target/gpu/effbench.gz > "$BIN" && chmod +x "$BIN"
LOAD_S="${LOAD_S:-15}" timeout -s INT -k 10 150 bash scripts/gpu-check-meters.sh "$BIN" > "$OUT/meters.txt" 2>&1
echo "gpu-check-all: meters exit $?" | tee -a "$OUT/meters.txt"
if [ "${REAL:-1}" != 0 ]; then
  timeout -s INT -k 20 520 bash scripts/gpu-check-real.sh "$OUT/real" > "$OUT/real.txt" 2>&1
  echo "gpu-check-all: real exit $?" | tee -a "$OUT/real.txt"
fi
