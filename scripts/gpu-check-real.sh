#!/usr/bin/env bash
# GPU check at real scale (issue 16): architecture presets (seeded random weights, no
# download; docs/presets.md) on candle CUDA and PyTorch, bf16, on one GPU. Prepared on the
# CPU; run it whenever a GPU machine is lent and record the output, date and card in
# docs/cuda.md.
#
# Needs what scripts/gpu-check-backends.sh needs (target/gpu/ from scripts/pack-gpu-check.sh,
# python3 with a CUDA torch and transformers). Usage:  bash scripts/gpu-check-real.sh [OUT_DIR]
#
# Steps, each bounded by a timeout (SIGINT first, so effbench keeps completed runs), at most
# about 8 minutes in all (20 + 130 + 70 + 120 + 80 + 80 s):
#   0. facts: nvidia-smi, torch/transformers versions
#   1. PyTorch eager: suites/cuda-real.toml, llama-3.2-1b and llama-3.1-8b, batch 1 and 8,
#      prompt 128, 128 new tokens
#   2. PyTorch sdpa: the same suite with attn = "sdpa", llama-3.1-8b only
#   3. candle CUDA: the runs of step 1
#   4. training: suites/cuda-train-real.toml, llama-3.2-1b at 2048 tokens, PyTorch then candle
#   5. table: TTFT, TPOT, tokens/s, energy per token, peak memory, MFU, candle/torch ratios
# The whole suites (3 models x batch 1/8/32 x prompt 128/1024) take longer; run them with
# `effbench run suites/cuda-real.toml` when there is time.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${1:-$ROOT/gpu-check-real-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
T0=$(date +%s)
say() { echo "gpu-check-real [$(( $(date +%s) - T0 )) s]: $*" | tee -a "$SUMMARY" >&2; }

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

# --- 0. facts ---
say "effbench: $("$EFF" --version 2>&1); date: $(date -u +%Y-%m-%dT%H:%MZ)"
{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free,power.limit --format=csv; } \
  2>&1 | tee -a "$SUMMARY" >&2
timeout 20 python3 -c 'import torch, transformers, sys
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "transformers", transformers.__version__, "cuda available", torch.cuda.is_available())' \
  2>&1 | tail -n 1 | tee -a "$SUMMARY" >&2
CU13="$(timeout 60 python3 scripts/cuda13-libs.py 2>/dev/null)"

# step NAME SECONDS CMD...: runs with a timeout (SIGINT, then SIGKILL 15 s later)
step() {
  local name="$1" secs="$2"; shift 2
  say "$name: $*"
  local s=$(date +%s)
  timeout -s INT -k 15 "$secs" "$@" > "$OUT/$name.log" 2>&1
  say "$name: exit $? after $(( $(date +%s) - s )) s (log: $OUT/$name.log)"
  tail -n 15 "$OUT/$name.log" >&2
  return 0
}

# The goal runs: two presets, batch 1 and 8, prompt 128.
GOAL=(--filter model=preset:llama-3.2-1b --filter model=preset:llama-3.1-8b
      --filter batch=1 --filter batch=8 --filter prompt_len=128)

# --- 1. PyTorch eager ---
step torch-eager 130 "$EFF" run suites/cuda-real.toml --filter backend=process "${GOAL[@]}" \
  --out "$OUT/torch-eager"

# --- 2. PyTorch sdpa (the suite with attn = "sdpa") ---
sed 's/attn = "eager"/attn = "sdpa"/; s/^name = "cuda-real"/name = "cuda-real-sdpa"/' \
  suites/cuda-real.toml > "$OUT/cuda-real-sdpa.toml"
step torch-sdpa 70 "$EFF" run "$OUT/cuda-real-sdpa.toml" --filter backend=process \
  --filter model=preset:llama-3.1-8b --filter batch=1 --filter batch=8 --filter prompt_len=128 \
  --out "$OUT/torch-sdpa"

# --- 3. candle CUDA ---
if [ -z "$EFFC" ]; then
  say "candle CUDA: no target/gpu/effbench-cuda.gz; skipped"
elif [ -z "$CU13" ]; then
  say "candle CUDA: no CUDA 13 runtime libraries in python3's nvidia packages; skipped"
else
  LD_LIBRARY_PATH="$CU13" step candle 120 "$EFFC" run suites/cuda-real.toml \
    --filter backend=candle "${GOAL[@]}" --out "$OUT/candle"
fi

# --- 4. training at 2048 tokens ---
step train-torch 80 "$EFF" run suites/cuda-train-real.toml --filter backend=process \
  --filter model=preset:llama-3.2-1b --out "$OUT/train-torch"
if [ -n "$EFFC" ] && [ -n "$CU13" ]; then
  LD_LIBRARY_PATH="$CU13" step train-candle 80 "$EFFC" run suites/cuda-train-real.toml \
    --filter backend=candle-train --filter model=preset:llama-3.2-1b --out "$OUT/train-candle"
fi

# --- 5. table ---
for d in torch-eager torch-sdpa candle train-torch train-candle; do
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
    def val(name, stat=None, scale=1.0, m=m):
        x = m.get(name)
        if x is None or x.get("value") is None:
            return None
        v = x["stats"][stat] if stat and x.get("stats") else x["value"]
        return v * scale
    rows.append((os.path.basename(os.path.dirname(f)), r, val))
def fmt(x, d=2):
    return "-" if x is None else ("%.*f" % (d, x))
def energy(m):
    e = [x for x in m if "energy" in x["name"] and "token" in x["name"]]
    return "; ".join("%s %.4g %s (%s)" % (x["name"], x["value"], x["unit"], x.get("source", "?"))
                     for x in e if x.get("value") is not None) or "-"
print("\n== inference, bf16, 128 new tokens: times in ms, memory in GiB ==")
print("%-12s %-22s %5s %5s %-6s %9s %8s %10s %8s %6s %6s  %s" % (
    "step", "model", "batch", "attn", "state", "ttft p50", "tpot", "out tok/s", "peak GiB",
    "MBU %", "MFU %", "energy"))
tput = {}
for step, r, val in rows:
    c = r["config"]; p = c["params"]
    if c["scenario"] != "inference":
        continue
    model = p.get("model", "?").replace("preset:", "")
    t = val("output_throughput")
    tput[(step, model, p.get("batch"))] = t
    mem = val("peak_device_memory_allocated", scale=2**-30) or val("gpu_memory_peak", scale=2**-30)
    print("%-12s %-22s %5s %5s %-6s %9s %8s %10s %8s %6s %6s  %s" % (
        step, model, p.get("batch"), p.get("attn", "-"), r["status"]["state"],
        fmt(val("ttft", "p50"), 2), fmt(val("tpot"), 3), fmt(t, 0), fmt(mem, 2),
        fmt(val("mbu"), 1), fmt(val("mfu"), 1), energy(r.get("metrics", []))))
    if r["status"].get("reason"):
        print("             reason: " + r["status"]["reason"][:300])
for (step, model, b), t in sorted(tput.items()):
    base = tput.get(("torch-eager", model, b))
    if step == "candle" and t and base:
        print("candle / PyTorch eager decode tokens/s, %s batch %s: %.2fx (goal >= 0.9)" % (model, b, t / base))
print("\n== training, bf16, 2048 tokens: times in ms, memory in GiB ==")
print("%-12s %-22s %-6s %5s %9s %12s %8s %6s  %s" % (
    "step", "model", "state", "steps", "step p50", "train tok/s", "peak GiB", "MFU %", "energy"))
tt = {}
for step, r, val in rows:
    c = r["config"]; p = c["params"]
    if c["scenario"] != "training":
        continue
    model = p.get("model", "?").replace("preset:", "")
    t = val("train_throughput")
    tt[step] = t
    mem = val("peak_device_memory_allocated", scale=2**-30) or val("gpu_memory_peak", scale=2**-30)
    print("%-12s %-22s %-6s %5s %9s %12s %8s %6s  %s" % (
        step, model, r["status"]["state"], r.get("iterations"), fmt(val("step_time", "p50"), 1),
        fmt(t, 0), fmt(mem, 2), fmt(val("mfu"), 1), energy(r.get("metrics", []))))
    if r["status"].get("reason"):
        print("             reason: " + r["status"]["reason"][:300])
if tt.get("train-candle") and tt.get("train-torch"):
    print("candle / PyTorch training tokens/s: %.2fx (goal >= 0.8)" % (tt["train-candle"] / tt["train-torch"]))
PY
say "done; numbers in $SUMMARY, tables in $OUT/show.txt"
