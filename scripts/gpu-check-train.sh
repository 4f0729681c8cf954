#!/usr/bin/env bash
# candle training on a GPU: the default training config (suites/train-tiny.toml) on cuda:0 in
# f32 and bf16 with `data_parallel = "auto"` (no split on a GPU), plus f32 in 2 micro-batches
# (gradient accumulation, one after the other), so the loss, tokens/s and MFU can be compared
# with the CPU numbers in docs/training.md (Measured). Needs target/gpu/effbench-cuda.gz
# from scripts/pack-gpu-check.sh and the CUDA 13 runtime libraries of python3's nvidia
# packages (scripts/cuda13-libs.py finds them).
#
# Usage: bash scripts/gpu-check-train.sh OUT_DIR      (about a minute on an H100)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: gpu-check-train.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export EFFBENCH_MODELS_DIR="$OUT/models"
BIN="$(mktemp -d)"
trap 'rm -rf "$BIN"' EXIT
[ -f target/gpu/effbench-cuda.gz ] || { echo "gpu-check-train: no target/gpu/effbench-cuda.gz" >&2; exit 2; }
gunzip -c target/gpu/effbench-cuda.gz > "$BIN/effbench" && chmod +x "$BIN/effbench"
CU13="$(timeout 60 python3 scripts/cuda13-libs.py 2>/dev/null)"
[ -n "$CU13" ] || { echo "gpu-check-train: no CUDA 13 runtime libraries in python3's nvidia packages" >&2; exit 2; }
export LD_LIBRARY_PATH="$CU13"

sed -e 's/^name = "train-tiny"/name = "train-tiny-cuda"/' \
    -e 's/^dtype = "f32".*/device = "cuda:0"\ndtype = ["f32", "bf16"]/' \
    suites/train-tiny.toml > "$OUT/train-tiny-cuda.toml"
sed -e 's/^name = "train-tiny-cuda"/name = "train-tiny-cuda-dp2"/' \
    -e 's/^dtype = \["f32", "bf16"\]/dtype = "f32"/' \
    -e 's/^checkpoint_every = 50/checkpoint_every = 50\ndata_parallel = 2/' \
    "$OUT/train-tiny-cuda.toml" > "$OUT/train-tiny-cuda-dp2.toml"
for s in train-tiny-cuda train-tiny-cuda-dp2; do
  echo "gpu-check-train: $s" >&2
  timeout -s INT -k 15 150 "$BIN/effbench" run "$OUT/$s.toml" --out "$OUT/$s" --no-site \
    > "$OUT/$s.log" 2>&1
  echo "gpu-check-train: $s exit $?" >&2
  tail -n 8 "$OUT/$s.log" >&2
done
python3 - "$OUT" <<'PY'
import glob, json, os, sys
print("\n== candle training on the GPU (train-tiny config) ==")
print("suite | dtype | state | train tok/s | step p50 ms | MFU % | probe TFLOP/s | held-out loss | time to target s | peak GPU MiB | split")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "train-tiny-cuda*", "*.json"))):
    if f.endswith(("manifest.json", "analysis.json")):
        continue
    r = json.load(open(f))
    m = {x["name"]: x for x in r.get("metrics", [])}
    v = lambda k: m[k]["value"] if k in m else None
    st = (m.get("step_time") or {}).get("stats") or {}
    peak = (r.get("env") or {}).get("peak_flops") or {}
    split = [l for l in r.get("log", []) if "data parallel" in l or "gradient accumulation" in l]
    fmt = lambda x, d=1: "-" if x is None else f"{x:.{d}f}"
    gpu = v("gpu_process_memory_peak") or v("gpu_memory_peak")
    print(" | ".join([r["suite"]["name"], r["config"]["params"]["dtype"], r["status"]["state"],
                      fmt(v("train_throughput"), 0), fmt(st.get("p50")), fmt(v("mfu")),
                      fmt((peak.get("flops_per_s") or 0) / 1e12, 1), fmt(v("heldout_loss"), 4),
                      fmt(v("time_to_target_loss")), fmt(gpu / 2**20 if gpu else None, 0),
                      (split[0][:70] if split else "-")]))
    if r["status"]["state"] != "ok":
        print("   reason:", r["status"].get("reason"))
PY
