#!/usr/bin/env bash
# The load generator's streaming throughput against a minimal server in its own process
# (backends/examples/sse_server.rs): requests/s, the generator's CPU per request, the server's
# CPU per request and the load average, per round. Release builds of both.
#
#   scripts/bench-loadgen.sh                      # 5 rounds of 20,000 requests
#   LOADGEN_ROUNDS=9 LOADGEN_REQUESTS=50000 scripts/bench-loadgen.sh
#
# On a shared machine the load average column says how much else was running: compare
# rounds side by side and rerun on a quiet machine before quoting a number.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p effbench-backends --example sse_server
EFFBENCH_SSE_SERVER="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/sse_server" \
  cargo bench -q -p effbench-backends --bench loadgen_process
