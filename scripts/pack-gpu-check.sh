#!/usr/bin/env bash
# Packs what scripts/gpu-check-backends.sh needs beside the repository tree into target/gpu/:
#   effbench.gz        the release binary (CPU build; runs the PyTorch worker suites)
#   effbench-cuda.gz   the CUDA build, when scripts/build-cuda.sh has made one
# Both stripped and gzipped (the GPU machine has no Rust). Carry target/gpu with the tree.
# Usage: scripts/pack-gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
mkdir -p target/gpu
pack() { # SRC NAME
  strip -o "target/gpu/$2" "$1"
  gzip -9 -f "target/gpu/$2"
  echo "pack-gpu-check: target/gpu/$2.gz $(du -h "target/gpu/$2.gz" | cut -f1) (from $1)" >&2
}
pack target/release/effbench effbench
if [ -x target/cuda/release/effbench ]; then
  pack target/cuda/release/effbench effbench-cuda
else
  rm -f target/gpu/effbench-cuda.gz
  echo "pack-gpu-check: no CUDA build (scripts/build-cuda.sh makes one); candle CUDA will be skipped" >&2
fi
ls -l target/gpu >&2
