#!/usr/bin/env bash
# GPU check of effbench's meters (issue 5). Runs on a GPU machine with an NVIDIA driver,
# python3 and PyTorch with CUDA; no Rust and no network needed.
#
#   1. `effbench meters`: which meters work there and why others do not.
#   2. A short CUDA load (a PyTorch bf16 matmul loop, LOAD_S seconds, default 20) started by
#      effbench as an external command (`effbench meters --probe-cmd`), metered around it:
#      prints GPU energy from NVML's total-energy counter and from the trapezoid of the
#      power samples over the same window (they should agree within about 5 %), plus peak
#      power, GPU memory, utilisation, SM clock and temperature.
#   3. Windows of 0.05, 0.2 and 1 s inside a steady background load: near or below the
#      energy counter's update period effbench must not read 0 J (it falls back to sampled
#      power x time and flags short_meter_window).
#
# Usage:   scripts/gpu-check-meters.sh [path/to/effbench]
#          (default: ./effbench, then target/release/effbench, then effbench on PATH)
# Env:     LOAD_S=20 (seconds of load), PERIOD_MS=100 (sampling period), GPU=0 (which GPU).
# Without a GPU (or without PyTorch/CUDA) the script prints why after step 1 and exits 0,
# so it can be tried anywhere. Whole script: about 45 s (two PyTorch start-ups, 20 s + 12 s
# of load); well under 3 minutes.
set -uo pipefail

BIN="${1:-}"
if [ -z "$BIN" ]; then
  for c in ./effbench target/release/effbench "$(command -v effbench || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then BIN="$c"; break; fi
  done
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "gpu-check: no effbench binary found (pass its path as the first argument)" >&2
  exit 2
fi
LOAD_S="${LOAD_S:-20}"
PERIOD_MS="${PERIOD_MS:-100}"
GPU="${GPU:-0}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "== 1. effbench meters ($BIN) =="
"$BIN" meters --meter-period-ms "$PERIOD_MS"
echo

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: nvidia-smi not found: no NVIDIA driver here, so no GPU load to meter (step 1 says why NVML is unavailable)"
  exit 0
fi
nvidia-smi --query-gpu=index,name,driver_version,power.limit,clocks.max.sm --format=csv

cat > "$TMP/load.py" <<'PY'
# A steady CUDA load: bf16 matmuls for LOAD_S seconds on one GPU, synchronised at the end.
import os, sys, time
try:
    import torch
except Exception as e:
    print(f"load: PyTorch not importable: {e}", file=sys.stderr); sys.exit(3)
if not torch.cuda.is_available():
    print("load: torch.cuda.is_available() is False", file=sys.stderr); sys.exit(3)
secs = float(os.environ.get("LOAD_S", "20"))
dev = torch.device("cuda", int(os.environ.get("GPU", "0")))
n = 8192
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
c = a @ b
torch.cuda.synchronize(dev)
if os.environ.get("READY_FILE"):
    open(os.environ["READY_FILE"], "w").close()
t0, k = time.time(), 0
while time.time() - t0 < secs:
    for _ in range(20):
        c = a @ b
    torch.cuda.synchronize(dev)
    k += 20
dt = time.time() - t0
print(f"load: {k} matmuls of {n}x{n} bf16 in {dt:.2f} s = {2 * n**3 * k / dt / 1e12:.0f} TFLOP/s")
PY

# PyTorch start-up and CUDA context creation happen inside the metered window; they are
# part of the command's energy like any other work. Both energies below cover the same window.
echo
echo "== 2. ${LOAD_S} s matmul load on GPU $GPU, metered by effbench =="
LOAD_S="$LOAD_S" GPU="$GPU" "$BIN" meters --gpus "$GPU" --meter-period-ms "$PERIOD_MS" \
  --probe-cmd "python3 $TMP/load.py" --json > "$TMP/long.json"
rc=$?
if [ $rc -ne 0 ]; then
  echo "gpu-check: the load failed (exit $rc); see above (no PyTorch/CUDA?)"
  exit 0
fi
python3 - "$TMP/long.json" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in d["metrics"]}
print(f"window {d['window_s']:.2f} s")
for k in ["energy_gpu", "gpu_power_peak", "power_avg", "gpu_memory_peak", "gpu_process_memory_peak",
          "gpu_utilization", "gpu_sm_clock", "gpu_temperature", "energy_cpu", "energy"]:
    if k in m:
        x = m[k]
        extra = f" (max {x['stats']['max']:g})" if x.get("stats") else ""
        print(f"  {k:<24} {x['value']:>14.3f} {x['unit']:<6}{extra}  [{x['source']}]")
for n in d["notes"]:
    if "energy counter" in n or "trapezoid" in n:
        print("  " + n)
        r = re.search(r"energy counter ([0-9.]+) J, power trapezoid ([0-9.]+) J \(([-+0-9.]+) %\)", n)
        if r:
            verdict = "OK (within 5 %)" if abs(float(r.group(3))) <= 5 else "DIFFER by more than 5 %"
            print(f"  counter vs trapezoid: {r.group(1)} J vs {r.group(2)} J -> {r.group(3)} % {verdict}")
for w in d["warnings"]:
    print(f"  warning [{w['kind']}]: {w['message']}")
PY

echo
echo "== 3. short windows during a steady load (energy counter granularity) =="
# A background load (started by this script) keeps the GPU busy; effbench meters idle
# windows of 0.05, 0.2 and 1 s inside it. Windows shorter than the counter's update period
# must not read 0 J: effbench then uses sampled power x time and flags short_meter_window.
LOAD_S=12 GPU="$GPU" READY_FILE="$TMP/ready" python3 "$TMP/load.py" > "$TMP/bg.log" 2>&1 &
BG=$!
for _ in $(seq 1 120); do [ -e "$TMP/ready" ] && break; sleep 0.5; done
if [ ! -e "$TMP/ready" ]; then
  echo "gpu-check: the background load did not start:"; cat "$TMP/bg.log"; kill "$BG" 2>/dev/null
  exit 0
fi
sleep 1
for w in 0.05 0.2 1; do
  "$BIN" meters --gpus "$GPU" --meter-period-ms "$PERIOD_MS" --probe-s "$w" --json \
    > "$TMP/short.json" 2>/dev/null
  python3 - "$TMP/short.json" "$w" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in d["metrics"]}
e = m.get("energy_gpu")
line = f"  {float(sys.argv[2]):>4} s window ({d['window_s']:.3f} s): "
line += f"energy_gpu {e['value']:.3f} J [{e['source']}], {e['value'] / d['window_s']:.0f} W" if e else "no GPU energy"
print(line)
for n in d["notes"]:
    if n.startswith("gpu") and ("counter" in n or "trapezoid" in n):
        print("     " + n)
for w in d["warnings"]:
    if w["kind"] == "short_meter_window":
        print(f"     warning [{w['kind']}]: {w['message']}")
PY
done
wait "$BG"
cat "$TMP/bg.log"
echo
echo "gpu-check: done"
