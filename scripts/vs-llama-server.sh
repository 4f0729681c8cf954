#!/usr/bin/env bash
# effbench serve against llama.cpp's llama-server: the same GGUF, the same compute threads,
# the same number of batch slots, and the same `effbench loadgen` settings for both, run
# side by side and interleaved (the order alternates every round: ABBA), so that the
# machine's background load falls on both alike. Three measurements:
#
#   closed   closed loop: N requests, IN words in / OUT tokens out, at most CONC in flight
#            (the setting of issue 17's first comparison)
#   sweep    Poisson arrivals at each rate of RATES, goodput against the SLO
#   search   MLPerf-style server search: the highest Poisson rate in [LOW, HIGH] whose p99
#            TTFT and TPOT meet the SLO with no failed request (bisection over full runs)
#
# Ends with markdown tables (per round and the ratio effbench / llama-server) on stdout and
# keeps every result under OUT_DIR.
#
#   scripts/vs-llama-server.sh                      # everything, ROUNDS=2
#   PHASES=closed ROUNDS=3 scripts/vs-llama-server.sh
#
# Environment (defaults in brackets):
#   EFFBENCH_SMOLLM2_GGUF  the GGUF (required; .ci/run and the tests use the same variable)
#   EFFBENCH_LLAMA_SERVER  llama-server binary [the first of the variants listed by
#                          scripts/build-llamacpp.sh --print (EFFBENCH_LLAMACPP_VARIANTS picks
#                          them) that has one, in the order avx512, avx2, native; a native
#                          build may crash where the VM forbids AMX]
#   EFFBENCH_BIN           effbench binary [target/release/effbench, built if missing]
#   THREADS [2]  SLOTS [4]  N [40]  IN [64]  OUT [64]  CONC [4]  ROUNDS [2]
#   RATES [1,2,3]  SLO [ttft=1s,tpot=100ms]  LOW [0.5]  HIGH [4]  STEPS [6]
#   PHASES ["closed sweep search"]  OUT_DIR [target/vs-llama-server/<UTC time>]
set -euo pipefail
cd "$(dirname "$0")/.."

GGUF="${EFFBENCH_SMOLLM2_GGUF:?set EFFBENCH_SMOLLM2_GGUF to the SmolLM2 GGUF}"
THREADS="${THREADS:-2}" SLOTS="${SLOTS:-4}" N="${N:-40}" IN="${IN:-64}" OUT="${OUT:-64}"
CONC="${CONC:-4}" ROUNDS="${ROUNDS:-2}" RATES="${RATES:-1,2,3}" SLO="${SLO:-ttft=1s,tpot=100ms}"
LOW="${LOW:-0.5}" HIGH="${HIGH:-4}" STEPS="${STEPS:-6}" PHASES="${PHASES:-closed sweep search}"
OUT_DIR="${OUT_DIR:-target/vs-llama-server/$(date -u +%Y%m%dT%H%M%SZ)}"
log() { echo "vs-llama-server: $*" >&2; }

LLAMA="${EFFBENCH_LLAMA_SERVER:-}"
if [ -z "$LLAMA" ]; then
  built="$(scripts/build-llamacpp.sh --print 2>/dev/null || true)"
  for v in avx512 avx2 native; do
    d="$(echo "$built" | awk -v v="$v" '$1 == v {print $2}')"
    if [ -n "$d" ] && [ -x "$d/llama-server" ]; then LLAMA="$d/llama-server"; break; fi
  done
fi
[ -x "$LLAMA" ] || { log "no llama-server: run scripts/build-llamacpp.sh or set EFFBENCH_LLAMA_SERVER"; exit 2; }
EFFBENCH="${EFFBENCH_BIN:-target/release/effbench}"
if [ ! -x "$EFFBENCH" ]; then
  log "building $EFFBENCH"
  cargo build --release --quiet
fi
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { # URL PID NAME
  for _ in $(seq 1 600); do
    if curl -sf "$1/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$2" 2>/dev/null || { log "$3 exited; see $OUT_DIR/$3.log"; exit 1; }
    sleep 0.2
  done
  log "$3 did not become ready"; exit 1
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

LPORT="$(free_port)"
"$LLAMA" -m "$GGUF" -t "$THREADS" -tb "$THREADS" -np "$SLOTS" -c $((SLOTS * 2048)) -a smollm2 \
  --host 127.0.0.1 --port "$LPORT" --no-webui >"$OUT_DIR/llama-server.log" 2>&1 &
PIDS+=($!); LPID=$!
EPORT="$(free_port)"
"$EFFBENCH" serve --model "$GGUF" --served-model-name smollm2 --threads "$THREADS" \
  --max-batch "$SLOTS" --port "$EPORT" >"$OUT_DIR/effbench-serve.log" 2>&1 &
PIDS+=($!); EPID=$!
wait_ready "http://127.0.0.1:$LPORT" "$LPID" llama-server
wait_ready "http://127.0.0.1:$EPORT" "$EPID" effbench-serve
url() { if [ "$1" = llama ]; then echo "http://127.0.0.1:$LPORT"; else echo "http://127.0.0.1:$EPORT"; fi; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "effbench: $("$EFFBENCH" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
  echo "llama-server: $LLAMA ($("$LLAMA" --version 2>&1 | grep -m1 version || true))"
  echo "gguf: $GGUF"
  echo "settings: threads $THREADS, slots $SLOTS, $N requests, $IN words in, $OUT tokens out, rounds $ROUNDS"
} | tee "$OUT_DIR/machine.txt" >&2

loadgen() { # SIDE DIR ARGS...
  local side="$1" dir="$2"; shift 2
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" >"$dir.load"
  "$EFFBENCH" loadgen --base-url "$(url "$side")" --model smollm2 --num-prompts "$N" \
    --input-len "$IN" --output-len "$OUT" --warmup-requests 2 --timeout-s 300 --out "$dir" --json "$@" \
    >"$dir.json" 2>"$dir.log" || log "$side: loadgen exited $? (see $dir.log)"
}

search() { # SIDE DIR
  local side="$1" dir="$2"
  mkdir -p "$dir"
  local ttft tpot
  ttft="$(echo "$SLO" | tr ',' '\n' | sed -n 's/^ttft=//p')" tpot="$(echo "$SLO" | tr ',' '\n' | sed -n 's/^tpot=//p')"
  ms() { python3 -c 'import sys; v = sys.argv[1]; print(float(v[:-2]) if v.endswith("ms") else float(v[:-1]) * 1000)' "$1"; }
  cat >"$dir/suite.toml" <<EOF
name = "vs-llama-server-search"
description = "server search: highest Poisson rate meeting the SLO"
scenario = "serving"
backend = "openai-http"
model = "smollm2"
seed = 42

[matrix]
max_concurrency = 0
prompt_len = $IN
gen_len = $OUT

[serving]
base_url = "$(url "$side")"
endpoint = "completions"
stream = true
ignore_eos = true
num_prompts = $N
warmup_requests = 2
arrival = "poisson"
timeout_s = 300.0

[serving.slo]
ttft_ms = $(ms "$ttft")
tpot_ms = $(ms "$tpot")

[serving.search]
low = $LOW
high = $HIGH
max_steps = $STEPS
tolerance = 0.05
EOF
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" >"$dir.load"
  "$EFFBENCH" run "$dir/suite.toml" --out "$dir/results" --no-site --json >"$dir.json" 2>"$dir.log" \
    || log "$side: search exited $? (see $dir.log)"
}

for phase in $PHASES; do
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="llama effbench"; else order="effbench llama"; fi
    for side in $order; do
      d="$OUT_DIR/$phase/$side-r$r"
      mkdir -p "$OUT_DIR/$phase"
      log "$phase round $r: $side"
      case "$phase" in
        closed) loadgen "$side" "$d" --request-rate inf --max-concurrency "$CONC" --slo "$SLO" ;;
        sweep) loadgen "$side" "$d" --request-rate "$RATES" --max-concurrency 0 --slo "$SLO" ;;
        search) search "$side" "$d" ;;
        *) log "unknown phase '$phase'"; exit 2 ;;
      esac
    done
  done
done

python3 - "$OUT_DIR" $PHASES <<'EOF'
import json, statistics, sys
from pathlib import Path

out, phases = Path(sys.argv[1]), sys.argv[2:]
print((out / "machine.txt").read_text())

def metric(r, name, stat=None):
    for m in r.get("metrics", []):
        if m["name"] == name:
            return (m.get("stats") or {}).get(stat) if stat else m.get("value")
    return None

def runs(phase, side):
    for f in sorted((out / phase).glob(f"{side}-r*.json")):
        rnd = f.stem.split("-r")[-1]
        load = (out / phase / f"{side}-r{rnd}.load").read_text().split(":", 1)[1].strip()
        try:
            results = json.loads(f.read_text() or "[]")
        except json.JSONDecodeError:
            results = []
        for r in results:
            yield rnd, load, r

def fmt(v, d=2):
    return "—" if v is None else f"{v:.{d}f}"

for phase in phases:
    print(f"\n### {phase}\n")
    if phase == "search":
        print("| side | round | load (1/5/15 min) | highest rate meeting the SLO (req/s) | steps |")
        print("|---|---|---|---|---|")
        best = {}
        for side in ("llama", "effbench"):
            for rnd, load, r in runs(phase, side):
                v = metric(r, "slo_max_request_rate")
                steps = [n for n in r.get("notes", []) if n.startswith("search step")] if isinstance(r.get("notes"), list) else []
                best.setdefault(side, []).append(v or 0.0)
                print(f"| {side} | {rnd} | {load} | {fmt(v)} | {len(steps) or '—'} |")
        if best.get("llama") and best.get("effbench"):
            l, e = statistics.median(best["llama"]), statistics.median(best["effbench"])
            print(f"\nmedian highest rate: effbench {e:.2f} / llama-server {l:.2f} req/s = **{e / l if l else float('nan'):.2f}x**")
        continue
    print("| side | round | load (1/5/15 min) | rate | req/s | output tok/s | TTFT p50 / p99 (ms) | TPOT p50 / p99 (ms) | goodput (req/s) | failed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    by = {}
    for side in ("llama", "effbench"):
        for rnd, load, r in runs(phase, side):
            rate = r.get("config", {}).get("params", {}).get("request_rate", "?")
            rps = metric(r, "request_throughput")
            by.setdefault((side, str(rate)), []).append(rps or 0.0)
            print(f"| {side} | {rnd} | {load} | {rate} | {fmt(rps)} | {fmt(metric(r, 'output_throughput'), 1)} | "
                  f"{fmt(metric(r, 'ttft', 'p50'), 0)} / {fmt(metric(r, 'ttft', 'p99'), 0)} | "
                  f"{fmt(metric(r, 'tpot', 'p50'), 1)} / {fmt(metric(r, 'tpot', 'p99'), 1)} | "
                  f"{fmt(metric(r, 'goodput'))} | {fmt(metric(r, 'requests_failed'), 0)} |")
    print()
    for (side, rate), v in sorted(by.items()):
        if side != "effbench" or ("llama", rate) not in by:
            continue
        l, e = statistics.median(by[("llama", rate)]), statistics.median(v)
        print(f"rate {rate}: median req/s effbench {e:.2f} / llama-server {l:.2f} = **{e / l if l else float('nan'):.2f}x**  ")
EOF
log "results in $OUT_DIR"
