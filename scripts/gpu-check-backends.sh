#!/usr/bin/env bash
# GPU check of the CUDA reference backends (issue 10), run once on a GPU machine.
#
# Needs there: an NVIDIA driver (R580 / CUDA 13), python3 with a CUDA build of torch and
# transformers (tested with torch 2.11+cu130, transformers 5.17); no Rust, no network.
# Needs beside this repository tree (made here by scripts/pack-gpu-check.sh):
#   target/gpu/effbench.gz        release binary (required)
#   target/gpu/effbench-cuda.gz   CUDA build from scripts/build-cuda.sh (optional: without
#                                 it the candle CUDA steps are skipped)
#   target/gpu/cuda-tests.gz      backends/tests/cuda.rs compiled (optional)
# The default model is created by effbench itself under OUT/models.
#
# Usage (from anywhere):  bash scripts/gpu-check-backends.sh [OUT_DIR]
#   OUT_DIR defaults to ./gpu-check-out (inside the tree). Everything lands there:
#   summary.txt (the numbers to report), one results directory per step, logs.
#
# Steps, each bounded by a timeout (SIGINT first, so effbench saves completed runs), about
# 3 minutes in all and at most 5 (15 + 110 + 45 + 50 + 60 s of timeouts):
#   0. facts: nvidia-smi, torch/transformers versions, CUDA libraries found
#   1. `effbench meters`, when this build has the command
#   2. PyTorch worker, suites/cuda-inference.toml --filter backend=process
#      (default model, cuda:0, f16/bf16 x batch 1/8: TTFT, TPOT, tokens/s, torch peak
#      memory, NVML energy when the meters record it)
#   3. candle CUDA: backends/tests/cuda.rs (cuda:0 logits vs CPU in f32/f16/bf16 and GGUF,
#      cached decode, a session), then the same suite --filter backend=candle
#   4. PyTorch training, suites/cuda-training.toml (3 warm-up + 20 measured AdamW steps,
#      f32 and bf16)
#   5. summary table from the result files (+ `effbench show` of each)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${1:-$ROOT/gpu-check-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
T0=$(date +%s)
say() { echo "gpu-check [$(( $(date +%s) - T0 )) s]: $*" | tee -a "$SUMMARY" >&2; }
export EFFBENCH_MODELS_DIR="$OUT/models"

BIN="$(mktemp -d)"
trap 'rm -rf "$BIN"' EXIT
if [ -f target/gpu/effbench.gz ]; then
  gunzip -c target/gpu/effbench.gz > "$BIN/effbench" && chmod +x "$BIN/effbench"
elif [ -x target/release/effbench ]; then
  cp target/release/effbench "$BIN/effbench"
else
  say "FATAL: no target/gpu/effbench.gz (run scripts/pack-gpu-check.sh where Rust is)"; exit 2
fi
EFF="$BIN/effbench"
EFFC=""
if [ -f target/gpu/effbench-cuda.gz ]; then
  gunzip -c target/gpu/effbench-cuda.gz > "$BIN/effbench-cuda" && chmod +x "$BIN/effbench-cuda"
  EFFC="$BIN/effbench-cuda"
fi
CTESTS=""
if [ -f target/gpu/cuda-tests.gz ]; then
  gunzip -c target/gpu/cuda-tests.gz > "$BIN/cuda-tests" && chmod +x "$BIN/cuda-tests"
  CTESTS="$BIN/cuda-tests"
fi

# --- 0. facts ---
say "effbench: $("$EFF" --version 2>&1)"
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv; } \
  2>&1 | tee -a "$SUMMARY" >&2
timeout 120 python3 -c 'import torch, transformers, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "transformers", transformers.__version__, "cuda available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1 | tail -n 1 | tee -a "$SUMMARY" >&2
# CUDA 13 runtime libraries for the candle CUDA build: the python env's nvidia wheels.
CU13="$(timeout 60 python3 scripts/cuda13-libs.py 2>/dev/null)"

# step NAME SECONDS CMD...: runs with a timeout (SIGINT, then SIGKILL 15 s later)
step() {
  local name="$1" secs="$2"; shift 2
  say "$name: $*"
  local s=$(date +%s)
  timeout -s INT -k 15 "$secs" "$@" > "$OUT/$name.log" 2>&1
  local code=$?
  say "$name: exit $code after $(( $(date +%s) - s )) s (log: $OUT/$name.log)"
  tail -n 25 "$OUT/$name.log" >&2
  return 0
}

# --- 1. meters ---
if "$EFF" meters --help > /dev/null 2>&1; then
  step meters 15 "$EFF" meters
  cat "$OUT/meters.log" >> "$SUMMARY"
else
  say "meters: this build has no \`effbench meters\` command; skipped"
fi

# --- 2. PyTorch inference ---
step inference-torch 110 "$EFF" run suites/cuda-inference.toml --filter backend=process --out "$OUT/inference-torch"

# --- 3. candle CUDA inference ---
if [ -z "$EFFC" ]; then
  say "candle CUDA: no target/gpu/effbench-cuda.gz; skipped"
elif [ -z "$CU13" ]; then
  say "candle CUDA: no directory with libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10 in python3's nvidia packages; skipped"
else
  say "candle CUDA: LD_LIBRARY_PATH=$CU13"
  if LD_LIBRARY_PATH="$CU13" "$EFFC" --version > "$OUT/cuda-start.log" 2>&1; then
    if [ -n "$CTESTS" ]; then
      mkdir -p "$OUT/cuda-tests-cwd"
      (cd "$OUT/cuda-tests-cwd" && LD_LIBRARY_PATH="$CU13" step candle-cuda-tests 45 "$CTESTS" --test-threads=1 --nocapture)
      grep -E "^test |test result|relative diff|ms per request|panicked" "$OUT/candle-cuda-tests.log" | tee -a "$SUMMARY" >&2
    fi
    LD_LIBRARY_PATH="$CU13" step inference-candle 50 "$EFFC" run suites/cuda-inference.toml --filter backend=candle --out "$OUT/inference-candle"
  else
    say "candle CUDA: the binary does not start: $(head -c 400 "$OUT/cuda-start.log")"
    LD_LIBRARY_PATH="$CU13" ldd "$EFFC" 2>&1 | grep -i 'not found' | tee -a "$SUMMARY" >&2
  fi
fi

# --- 4. PyTorch training ---
step training-torch 60 "$EFF" run suites/cuda-training.toml --out "$OUT/training-torch"

# --- 5. summary ---
for d in inference-torch inference-candle training-torch; do
  [ -f "$OUT/$d/manifest.json" ] && "$EFF" show "$OUT/$d" >> "$OUT/show.txt" 2>&1
done
python3 - "$OUT" <<'PY' 2>&1 | tee -a "$SUMMARY" >&2
import glob, json, os, sys
out = sys.argv[1]
rows = []
for f in sorted(glob.glob(os.path.join(out, "*", "*.json"))):
    if f.endswith("manifest.json"):
        continue
    try:
        r = json.load(open(f))
    except Exception:
        continue
    m = {x["name"]: x for x in r.get("metrics", [])}
    p = r["config"]["params"]
    def val(name, stat=None, scale=1.0, m=m):
        x = m.get(name)
        if x is None:
            return None
        v = x["stats"][stat] if stat and x.get("stats") else x["value"]
        return v * scale
    energy = {k: (v["value"], v["unit"], v["source"]) for k, v in m.items() if "energy" in k or "power" in k}
    rows.append((r["config"]["scenario"], r["config"]["backend"], p.get("dtype"), p.get("batch"),
                 r["status"]["state"], r["status"].get("reason") or "", r["iterations"], val, energy,
                 (r.get("model") or {}).get("details", {}), r))
rows.sort(key=lambda r: (r[0], r[1], str(r[2]), r[3] or 0))
def fmt(x, d=2):
    return "-" if x is None else ("%.*f" % (d, x))
print("\n== inference: greedy, times in ms (torch: worker clock), memory in MiB ==")
print("%-8s %-5s %5s %-6s %4s %9s %9s %9s %10s %10s %10s  %s" % (
    "backend", "dtype", "batch", "state", "it", "ttft p50", "tpot", "itl p50", "out tok/s",
    "alloc MiB", "resv MiB", "energy"))
tput = {}
for sc, be, dt, b, st, reason, it, val, energy, det, r in rows:
    if sc != "inference":
        continue
    tput[(be, dt, b)] = val("output_throughput")
    en = "; ".join("%s %.4g %s (%s)" % (k, v, u, s) for k, (v, u, s) in sorted(energy.items())) or "-"
    print("%-8s %-5s %5s %-6s %4s %9s %9s %9s %10s %10s %10s  %s" % (
        be, dt, b, st, it, fmt(val("ttft", "p50"), 3), fmt(val("tpot"), 3), fmt(val("itl", "p50"), 3),
        fmt(val("output_throughput"), 0), fmt(val("peak_device_memory_allocated", scale=2**-20), 1),
        fmt(val("peak_device_memory_reserved", scale=2**-20), 1), en))
    if reason:
        print("         reason: " + reason)
for (be, dt, b), t in sorted(tput.items()):
    o = tput.get(("process", dt, b))
    if be == "candle" and t and o:
        print("candle/torch output tokens/s, %s batch %s: %.2fx" % (dt, b, t / o))
print("\n== training: AdamW steps, times in ms (worker clock), memory in MiB ==")
print("%-8s %-5s %-6s %5s %10s %10s %12s %10s %10s %10s  %s" % (
    "backend", "dtype", "state", "steps", "step p50", "step mean", "train tok/s", "loss 1st",
    "loss last", "alloc MiB", "energy"))
for sc, be, dt, b, st, reason, it, val, energy, det, r in rows:
    if sc != "training":
        continue
    loss = (r.get("metrics") and [x for x in r["metrics"] if x["name"] == "train_loss"]) or []
    samples = loss[0]["samples"] if loss else []
    en = "; ".join("%s %.4g %s (%s)" % (k, v, u, s) for k, (v, u, s) in sorted(energy.items())) or "-"
    print("%-8s %-5s %-6s %5s %10s %10s %12s %10s %10s %10s  %s" % (
        be, dt, st, it, fmt(val("step_time", "p50"), 2), fmt(val("step_time"), 2),
        fmt(val("train_throughput"), 0), fmt(samples[0] if samples else None, 3),
        fmt(samples[-1] if samples else None, 3),
        fmt(val("peak_device_memory_allocated", scale=2**-20), 1), en))
    if reason:
        print("         reason: " + reason)
PY
say "done; numbers in $SUMMARY, tables in $OUT/show.txt"
