#!/usr/bin/env bash
# Vendored copy of the tested recipe shared/cuda/build-env.sh (see scripts/build-cuda.sh),
# kept in the repository so a checkout can build the CUDA binary on its own.
# Build environment for compiling candle (feature "cuda") against CUDA 13.0
# on a machine with no GPU and no system CUDA toolkit. Everything comes from
# PyPI wheels, installed into one directory.
#
# Usage:
#   eval "$(bash build-env.sh [DIR])"          # install if missing, export build vars
#   eval "$(bash build-env.sh [DIR] --nodriver)" # also put a stub libcuda.so.1 and the
#                                                # wheel libraries on LD_LIBRARY_PATH, so a
#                                                # cuda-enabled binary can start here and
#                                                # fail with a clean error instead of a
#                                                # loader error (never use on a GPU machine)
# DIR defaults to $CUDA_WHEELS_DIR or ~/.cache/cuda13-wheels; it is owned by this
# script (its nvidia/ tree is replaced when the pinned wheel list changes).
# CUDA_COMPUTE_CAP defaults to 90 (H100/H200 -> PTX and SASS for sm_90a).
set -euo pipefail

DIR="${CUDA_WHEELS_DIR:-$HOME/.cache/cuda13-wheels}"
NODRIVER=0
for a in "$@"; do
  case "$a" in
    --nodriver) NODRIVER=1 ;;
    -h|--help) sed -n '4,18p' "$0"; exit 0 ;;
    *) DIR="$a" ;;
  esac
done

# CUDA 13.0 (update 2) pieces. nvcc must stay 13.0: PTX from a newer nvcc
# carries a newer PTX ISA that an R580 driver (CUDA 13.0) cannot JIT.
WHEELS=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink
  nvidia-cuda-crt==13.0.88      # crt/ headers nvcc needs
  nvidia-nvvm==13.0.88          # cicc, libnvvm, libdevice
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda.h, libcudart.so.13
  nvidia-cuda-cccl==13.0.85     # libcu++/CUB/Thrust headers
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc.so.13 (link time)
  nvidia-curand==10.4.0.35      # libcurand.so.10
  nvidia-cublas==13.1.0.3       # libcublas.so.13, libcublasLt.so.13
)
WHEEL_SPECS=()
for w in "${WHEELS[@]}"; do WHEEL_SPECS+=("${w%%#*}"); done
WHEEL_SPECS=(${WHEEL_SPECS[@]})   # strip whitespace

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
ROOT="$DIR/nvidia/cu13"
MARKER="$DIR/.installed"
WANT="$(printf '%s\n' "${WHEEL_SPECS[@]}")"

log() { echo "build-env: $*" >&2; }

if [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$WANT" ] || [ ! -x "$ROOT/bin/nvcc" ]; then
  command -v gcc >/dev/null && command -v g++ >/dev/null \
    || { log "gcc and g++ are required (nvcc host compiler)"; exit 1; }
  PY="${PYTHON:-python3}"
  "$PY" -m pip --version >/dev/null 2>&1 \
    || { log "'$PY -m pip' is not available (set PYTHON=...)"; exit 1; }
  log "installing CUDA 13.0 wheels into $DIR (about 680 MB download, 1.2 GB installed)"
  # pip --target does not merge into an existing nvidia/ tree: install all at once.
  rm -rf "$DIR/nvidia" "$DIR"/nvidia_*.dist-info "$MARKER"
  mkdir -p "$DIR"
  PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-cache-dir \
    --target "$DIR" "${WHEEL_SPECS[@]}" >&2

  # Unversioned names for the linker (-lcublas etc.); the wheels ship only sonames.
  (
    cd "$ROOT/lib"
    for f in libcublas.so.13 libcublasLt.so.13 libcudart.so.13 libnvrtc.so.13 libcurand.so.10; do
      ln -sf "$f" "${f%.so.*}.so"
    done
  )

  # libcuda.so comes with the NVIDIA driver, not with any wheel. Build a link-time
  # stub with SONAME libcuda.so.1 exporting every entry point of the 13.0 cuda.h
  # (as the header maps them, e.g. cuMemAlloc -> cuMemAlloc_v2). Each returns
  # CUDA_ERROR_STUB_LIBRARY (34). At run time the driver's real libcuda.so.1 is used.
  mkdir -p "$ROOT/lib/stubs"
  gcc -E -P -x c -I"$ROOT/include" "$ROOT/include/cuda.h" \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed 's/[[:space:]]*($//' | sort -u \
    | sed 's/.*/int &(void) { return 34; }/' > "$ROOT/lib/stubs/libcuda_stub.c"
  [ "$(wc -l < "$ROOT/lib/stubs/libcuda_stub.c")" -gt 300 ] \
    || { log "could not extract entry points from cuda.h"; exit 1; }
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 \
    -o "$ROOT/lib/stubs/libcuda.so" "$ROOT/lib/stubs/libcuda_stub.c"
  mkdir -p "$ROOT/lib/nodriver"
  ln -sf ../stubs/libcuda.so "$ROOT/lib/nodriver/libcuda.so.1"

  "$ROOT/bin/nvcc" --version | grep -q 'release 13\.0' \
    || { log "unexpected nvcc version"; exit 1; }
  echo "$WANT" > "$MARKER"
  log "done"
fi

# cudarc's build script reads CUDA_HOME/CUDA_ROOT (link search: lib, lib/stubs) and
# runs `nvcc --version` from PATH to pick its CUDA 13.0 bindings; candle-kernels
# (cudaforge) uses NVCC and CUDA_COMPUTE_CAP (there is no nvidia-smi here).
echo "export CUDA_HOME='$ROOT'"
echo "export CUDA_ROOT='$ROOT'"
echo "export NVCC='$ROOT/bin/nvcc'"
echo "export PATH='$ROOT/bin':\"\$PATH\""
echo "export CUDA_COMPUTE_CAP=\"\${CUDA_COMPUTE_CAP:-90}\""
if [ "$NODRIVER" = 1 ]; then
  echo "export LD_LIBRARY_PATH='$ROOT/lib:$ROOT/lib/nodriver'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
fi
