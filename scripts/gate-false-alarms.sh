#!/usr/bin/env bash
# An experiment, not a test: how often does `effbench gate` cry wolf on unchanged code, and how
# often does it catch a known slowdown? On this machine, with the real CLI and model.
#
# For each mode it runs N A/A trials (the same effbench on both sides) and N trials in which
# only the current side is slowed by SLOW_PCT % (`--inject-slowdown`: a busy wait inside every
# timed iteration), interleaved so drift of the machine hits both kinds alike, and prints the
# false-alarm rate (gate failed on A/A) and the power (gate failed on the slowdown) with 95 %
# Wilson intervals, plus the median minimum detectable regression the gate reported.
#
# Modes:
#   abba        `run --ab BIN BIN --ab-target-mde TARGET_MDE --ab-max-blocks MAX_BLOCKS` (3 ABBA
#               blocks, or BLOCKS, then more while the MDE of the throughput is above 7 %, up to
#               10 blocks; TARGET_MDE= for fixed blocks) then `gate --ab`
#   history     one run, then `gate --current RUN --history H`: judged against the last
#               baseline runs of the same spec and machine (HISTORY_RUNS >= 5 are run first;
#               every A/A run is appended afterwards, as CI on main would)
#   sequential  one run against the previous baseline run (`gate --baseline --current`): one
#               invocation per side, so only a change beyond the wide default band can regress
#
# Workload: suites/quickstart.toml --filter dtype=f32 --filter batch=1 --filter model=default
# --filter prompt_len=32 (one run of the default model) with a fixed measured window of
# WINDOW_S seconds (default 2). The window matters: on a 2-vCPU VM the iteration time drifts
# between regimes (7.5, 9.5, 12.6 ms) on a scale of 0.1-1 s, so a 0.3 s window leaves a
# between-invocation spread of 5-12 % and a 3 s one about 2.5 % (6 invocations each, idle AMD
# EPYC, 2026-12-06); no gate can find a 10 % change under a 12 % spread with a few
# invocations. About 60 minutes for all modes with N=20 on an idle 2-core VM (45 of them ABBA
# with adaptive blocks; 30 with TARGET_MDE= and 3 fixed blocks).
#
#   scripts/gate-false-alarms.sh                       # N=20, SLOW_PCT=10, all modes
#   N=5 MODES="abba" scripts/gate-false-alarms.sh      # a quick look
#   GATE_CONFIG=gate-calibrated.toml scripts/gate-false-alarms.sh   # with a calibrated file
#   TARGET_MDE= MODES=abba scripts/gate-false-alarms.sh   # fixed blocks (no --ab-target-mde)
#   REGATE_FROM=target/gate-false-alarms/<time> scripts/gate-false-alarms.sh
#       # judge the stored trials of an earlier experiment again (another build or gate
#       # config) without running anything: the history is rebuilt in the same order
#
# Environment: N, SLOW_PCT, MODES, BLOCKS (--ab-blocks), TARGET_MDE (--ab-target-mde, default 7;
# empty: fixed blocks), MAX_BLOCKS (--ab-max-blocks, default 10 or BLOCKS if more), HISTORY_RUNS, WINDOW_S,
# GATE_CONFIG,
# REGATE_FROM,
# EFFBENCH_BIN (default target/debug/effbench, built if missing), OUT (work directory).
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-20}"
SLOW_PCT="${SLOW_PCT:-10}"
MODES="${MODES:-abba history sequential}"
HISTORY_RUNS="${HISTORY_RUNS:-8}"
WINDOW_S="${WINDOW_S:-2}"
BLOCKS="${BLOCKS:-}"
TARGET_MDE="${TARGET_MDE-7}"
MAX_BLOCKS="${MAX_BLOCKS:-$(( ${BLOCKS:-3} > 10 ? ${BLOCKS:-3} : 10 ))}"
BIN="${EFFBENCH_BIN:-target/debug/effbench}"
OUT="${OUT:-target/gate-false-alarms/$(date -u +%Y%m%dT%H%M%SZ)}"
if [ ! -x "$BIN" ]; then
  cargo build --bin effbench
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
mkdir -p "$OUT"
LOG="$OUT/log.txt"
GATE_ARGS=()
[ -n "${GATE_CONFIG:-}" ] && GATE_ARGS=(--config "$GATE_CONFIG")
FILTERS=(--filter dtype=f32 --filter batch=1 --filter model=default --filter prompt_len=32)

# The quickstart suite with a fixed measurement window (same model, matrix and settings else).
SUITE="$OUT/quickstart-window.toml"
sed -e 's/^warmup_iters = .*/warmup_iters = 3/' \
    -e "s/^min_duration_s = .*/min_duration_s = $WINDOW_S/" \
    -e "s/^max_duration_s = .*/max_duration_s = $WINDOW_S/" \
    suites/quickstart.toml > "$SUITE"

# With REGATE_FROM the runs are those stored there (nothing runs); else in OUT.
RUNS="${REGATE_FROM:-$OUT}"
if [ -n "${REGATE_FROM:-}" ]; then
  [ -d "$REGATE_FROM/abba" ] || [ -d "$REGATE_FROM/history" ] || [ -d "$REGATE_FROM/sequential" ] \
    || { echo "REGATE_FROM=$REGATE_FROM holds no trials" >&2; exit 2; }
else
  # The default model is trained on first use: do it now, outside the timed trials.
  "$BIN" run "$SUITE" "${FILTERS[@]}" --out "$OUT/warmup" --no-site >>"$LOG" 2>&1
fi

echo "# gate-false-alarms: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) CPUs)"
echo "# effbench: $("$BIN" --version) at $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "# N=$N trials per kind, slowdown $SLOW_PCT %, window ${WINDOW_S} s, blocks ${BLOCKS:-default}, target MDE ${TARGET_MDE:-none} (max blocks ${MAX_BLOCKS:-default}), gate config ${GATE_CONFIG:-default}"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# gate exit code (0 passed, 1 failed) of one trial; anything else stops the experiment.
gate() {
  local code=0
  "$BIN" gate "$@" "${GATE_ARGS[@]}" --format json >/dev/null 2>>"$LOG" || code=$?
  if [ "$code" -gt 1 ]; then
    echo "gate error (exit $code): $*; see $LOG" >&2
    exit 2
  fi
  echo "$code"
}

record() { # mode kind trial exit gate-json
  echo "$1 $2 $3 $4 $5" >>"$OUT/trials.txt"
}

run_one() { # dir [extra run args...]
  local dir="$1"; shift
  [ -n "${REGATE_FROM:-}" ] && return 0
  "$BIN" run "$SUITE" "${FILTERS[@]}" --out "$dir" --no-site "$@" >>"$LOG" 2>&1
}

: >"$OUT/trials.txt"
for mode in $MODES; do
  case "$mode" in
    abba)
      for i in $(seq 1 "$N"); do
        for kind in aa slow; do
          d="$RUNS/abba/$kind-$i"
          g="$OUT/abba/$kind-$i.gate.json"
          mkdir -p "$OUT/abba"
          extra=()
          [ "$kind" = slow ] && extra=(--ab-inject-slowdown "$SLOW_PCT")
          [ -n "$BLOCKS" ] && extra+=(--ab-blocks "$BLOCKS")
          [ -n "$TARGET_MDE" ] && extra+=(--ab-target-mde "$TARGET_MDE")
          [ -n "$TARGET_MDE" ] && [ -n "$MAX_BLOCKS" ] && extra+=(--ab-max-blocks "$MAX_BLOCKS")
          [ -n "$TARGET_MDE" ] && [ -n "${GATE_CONFIG:-}" ] && extra+=(--ab-gate-config "$GATE_CONFIG")
          if [ -z "${REGATE_FROM:-}" ]; then
            "$BIN" run --ab "$BIN" "$BIN" "$SUITE" "${FILTERS[@]}" --out "$d" "${extra[@]}" \
              >>"$LOG" 2>&1
          fi
          code=$(gate --ab "$d" --json-out "$g")
          record abba "$kind" "$i" "$code" "$g"
          cp "$d/ab.json" "$OUT/abba/$kind-$i.ab.json" 2>/dev/null || true
          echo "abba $kind $i: $([ "$code" = 0 ] && echo passed || echo FAILED)" >&2
        done
      done
      ;;
    history)
      H="$OUT/history/history.jsonl"
      mkdir -p "$OUT/history"
      for k in $(seq 1 "$HISTORY_RUNS"); do
        run_one "$RUNS/history/base-$k"
        "$BIN" history append "$RUNS/history/base-$k" --file "$H" >>"$LOG" 2>&1
      done
      for i in $(seq 1 "$N"); do
        for kind in aa slow; do
          d="$RUNS/history/$kind-$i"
          g="$OUT/history/$kind-$i.gate.json"
          if [ "$kind" = slow ]; then run_one "$d" --inject-slowdown "$SLOW_PCT"; else run_one "$d"; fi
          code=$(gate --current "$d" --history "$H" --json-out "$g")
          record history "$kind" "$i" "$code" "$g"
          echo "history $kind $i: $([ "$code" = 0 ] && echo passed || echo FAILED)" >&2
          # CI on main appends every unchanged build; slowed runs are refused anyway.
          [ "$kind" = aa ] && "$BIN" history append "$d" --file "$H" >>"$LOG" 2>&1
        done
      done
      ;;
    sequential)
      prev="$RUNS/sequential/base-0"
      run_one "$prev"
      mkdir -p "$OUT/sequential"
      for i in $(seq 1 "$N"); do
        for kind in aa slow; do
          d="$RUNS/sequential/$kind-$i"
          g="$OUT/sequential/$kind-$i.gate.json"
          if [ "$kind" = slow ]; then run_one "$d" --inject-slowdown "$SLOW_PCT"; else run_one "$d"; fi
          code=$(gate --baseline "$prev" --current "$d" --json-out "$g")
          record sequential "$kind" "$i" "$code" "$g"
          echo "sequential $kind $i: $([ "$code" = 0 ] && echo passed || echo FAILED)" >&2
          [ "$kind" = aa ] && prev="$d"
        done
      done
      ;;
    *) echo "unknown mode '$mode' (abba, history, sequential)" >&2; exit 2 ;;
  esac
done

echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT/trials.txt" "$SLOW_PCT" <<'EOF'
import json, math, statistics, sys
from collections import defaultdict

rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
slow = sys.argv[2]

def wilson(k, n, z=1.959963984540054):
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))

by = defaultdict(list)
for mode, kind, trial, code, path in rows:
    by[(mode, kind)].append((int(code), path))

print(f"{'mode':<11} {'A/A false alarms':<28} {'caught ' + slow + ' % slowdown':<28} median MDE (gated metrics, % worse, 80 % power)")
for mode in dict.fromkeys(m for m, _ in by):
    aa, sl = by.get((mode, "aa"), []), by.get((mode, "slow"), [])
    fa, ca = sum(c for c, _ in aa), sum(c for c, _ in sl)
    lo, hi = wilson(fa, len(aa))
    plo, phi = wilson(ca, len(sl))
    mde = defaultdict(list)
    for _, path in aa:
        try:
            c = json.load(open(path))
        except Exception:
            continue
        for r in c["runs"]:
            for m in r["metrics"]:
                if m.get("gated") and m.get("mde_pct") is not None:
                    mde[f"{r['label'] or '-'} {m['metric']}"].append(m["mde_pct"])
    keys = [k for k in mde if any(x in k for x in ("output_throughput", "cpu_time", "instructions", "ttft", "tpot", "e2e_latency"))]
    mtext = ", ".join(f"{k} {statistics.median(mde[k]):.1f}" for k in keys) or "unknown (one invocation per side)"
    print(f"{mode:<11} {fa}/{len(aa)} = {fa/len(aa) if aa else float('nan'):.2f} [{lo:.2f}, {hi:.2f}]".ljust(40)
          + f" {ca}/{len(sl)} = {ca/len(sl) if sl else float('nan'):.2f} [{plo:.2f}, {phi:.2f}]".ljust(30) + f" {mtext}")
    blocks = defaultdict(list)
    for kind, items in (("A/A", aa), ("slow", sl)):
        for _, path in items:
            try:
                rec = json.load(open(path.replace(".gate.json", ".ab.json")))
            except Exception:
                continue
            n = max((s.get("block", 0) for s in rec["slots"]), default=-1) + 1
            blocks[kind].append(n)
    if blocks:
        print("    ABBA blocks per trial: " + "; ".join(
            f"{k} median {statistics.median(v):g} (range {min(v)}-{max(v)})" for k, v in blocks.items()))
    for kind, items in (("A/A", aa), ("slow", sl)):
        failed = defaultdict(int)
        for code, path in items:
            if code != 1:
                continue
            try:
                for f in json.load(open(path))["gate"]["failures"]:
                    failed[" ".join(f.split(":")[0].split()[-2:])] += 1
            except Exception:
                pass
        if failed:
            print(f"    {kind} failures by run/metric: " + ", ".join(f"{k} x{v}" for k, v in sorted(failed.items())))
print("(rates with 95 % Wilson intervals; results and gate reports under the work directory)")
EOF
echo "# work directory: $OUT"
