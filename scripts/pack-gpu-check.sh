#!/usr/bin/env bash
# Packs what scripts/gpu-check-backends.sh needs beside the repository tree into target/gpu/:
#   effbench.gz        the release binary (CPU build; runs the PyTorch worker suites)
#   effbench-cuda.gz   the CUDA build, when scripts/build-cuda.sh has made one
#   cuda-tests.gz      with it, backends/tests/cuda.rs compiled (candle on cuda:0 vs CPU)
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
  eval "$(bash scripts/cuda-build-env.sh "${CUDA_WHEELS_DIR:-$HOME/.cache/cuda13-wheels}")"
  cargo build --release --features cuda --target-dir target/cuda
  pack target/cuda/release/effbench effbench-cuda
  # The GPU tests of the candle backend, release profile so the CUDA kernels are reused.
  tests="$(cargo test --release --features cuda --no-run -p effbench-backends --test cuda \
    --target-dir target/cuda --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])')"
  if [ -n "$tests" ]; then pack "$tests" cuda-tests; else rm -f target/gpu/cuda-tests.gz; fi
else
  rm -f target/gpu/effbench-cuda.gz target/gpu/cuda-tests.gz
  echo "pack-gpu-check: no CUDA build (scripts/build-cuda.sh makes one); candle CUDA will be skipped" >&2
fi
ls -l target/gpu >&2
