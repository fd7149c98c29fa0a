"""Dump the public names of a real CuPy install (run with a venv that has cupy-cuda12x; no GPU needed)."""
import json, sys
import cupy, cupyx, cupyx.scipy.special, cupy.cuda.runtime, cupy.random

def names(obj):
    return sorted(n for n in dir(obj) if not n.startswith("_") or n in ("__array__", "__array_ufunc__", "__array_function__", "__cuda_array_interface__", "__bool__", "__float__", "__int__", "__index__", "__complex__", "__dlpack__"))

snap = {
    "version": cupy.__version__,
    "cupy": names(cupy),
    "cupy.ndarray": names(cupy.ndarray),
    "cupy.ufunc": names(cupy.ufunc),
    "cupy.random": names(cupy.random),
    "cupy.random.Generator": names(cupy.random.Generator),
    "cupy.random.RandomState": names(cupy.random.RandomState),
    "cupy.cuda": names(cupy.cuda),
    "cupy.cuda.runtime": names(cupy.cuda.runtime),
    "cupy.cuda.Device": names(cupy.cuda.Device),
    "cupy.cuda.Stream": names(cupy.cuda.Stream),
    "cupy.cuda.Event": names(cupy.cuda.Event),
    "cupy.ElementwiseKernel": names(cupy.ElementwiseKernel),
    "cupy.ReductionKernel": names(cupy.ReductionKernel),
    "cupy.RawKernel": names(cupy.RawKernel),
    "cupyx": names(cupyx),
    "cupyx.scipy.special": names(cupyx.scipy.special),
}
json.dump(snap, sys.stdout, indent=0, sort_keys=True)
