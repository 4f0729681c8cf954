"""Prints the directory holding the CUDA 13 runtime libraries that the candle CUDA build of
effbench needs (cudart, cublas, cublasLt, curand), taken from python3's nvidia packages (a CUDA
13 PyTorch install has them); prints nothing when there is none. Used by the GPU check scripts:
LD_LIBRARY_PATH="$(python3 scripts/cuda13-libs.py)"."""
import glob
import os
import site

NEED = ["libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"]
roots = []
try:
    import nvidia

    roots += list(nvidia.__path__)
except Exception:
    pass
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    roots.append(os.path.join(sp, "nvidia"))
for r in roots:
    for lib in [os.path.join(r, "cu13", "lib")] + glob.glob(os.path.join(r, "*", "lib")):
        if all(os.path.exists(os.path.join(lib, n)) for n in NEED):
            print(lib)
            raise SystemExit
