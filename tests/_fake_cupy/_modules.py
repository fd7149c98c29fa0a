"""Assemble the stand-in's modules (``cupy``, ``cupy.cuda``, ``cupy.random``, ``cupyx``, ``cupyx.scipy``,
``cupyx.scipy.special``) and check that every public name they expose exists in real CuPy 14
(``cupy14_names.json``, written by ``dump_names.py`` from the real wheel)."""
from __future__ import annotations

import json
import os
import types

import numpy as np

from . import _core, _cuda, _cupyx, _functions, _kernels, _random

NAMES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cupy14_names.json")
with open(NAMES_FILE) as _f:
    REAL_NAMES: dict = json.load(_f)

MODULES: dict[str, types.ModuleType] = {}


def _public(obj):
    return sorted(n for n in vars(obj) if not n.startswith("_"))


def check_names(mods: dict) -> None:
    """Raise if a stand-in module or class exposes a public name that real CuPy 14 does not have."""
    pairs = [(mods[k], k) for k in ("cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.random", "cupyx",
                                    "cupyx.scipy.special")]
    pairs += [(_core.ndarray, "cupy.ndarray"), (_core.ufunc, "cupy.ufunc"), (_random.Generator,
              "cupy.random.Generator"), (_random.RandomState, "cupy.random.RandomState"),
              (_cuda.Device, "cupy.cuda.Device"), (_cuda.Stream, "cupy.cuda.Stream"), (_cuda.Event,
              "cupy.cuda.Event"), (_kernels.ElementwiseKernel, "cupy.ElementwiseKernel"),
              (_kernels.ReductionKernel, "cupy.ReductionKernel"), (_kernels.RawKernel, "cupy.RawKernel")]
    extra = []
    for obj, key in pairs:
        real = set(REAL_NAMES[key])
        names = _public(obj)
        if isinstance(obj, type):  # class attributes and methods; instance attributes are checked by tests
            names = [n for n in dir(obj) if not n.startswith("_")]
        extra += [f"{key}.{n}" for n in names if n not in real and n != "scipy"]
    if extra:
        raise AssertionError(f"the CuPy stand-in exposes names real CuPy 14 lacks: {extra}")


def build() -> dict:
    """The stand-in's modules by import name (built once)."""
    if MODULES:
        return MODULES
    cupy = types.ModuleType("cupy")
    cupy.__doc__ = "CuPy stand-in of lucid's tests (tests/_fake_cupy): NumPy arrays behind CuPy 14's contract."
    cupy.__version__ = "14.2.0"
    cupy.__file__ = os.path.join(os.path.dirname(NAMES_FILE), "__init__.py")
    names = REAL_NAMES["cupy"]
    funcs = _functions.build(names)
    for name in names:
        if name in funcs:
            setattr(cupy, name, funcs[name])
            continue
        value = getattr(np, name, None)
        if isinstance(value, np.ufunc):
            setattr(cupy, name, _core._uf(name))
        elif value is not None and (isinstance(value, type) or not callable(value)) and \
                not isinstance(value, types.ModuleType):
            setattr(cupy, name, value)  # dtypes, scalar types, constants: CuPy re-exports NumPy's
    for alias, target in (("abs", "absolute"), ("round_", "around")):
        if alias in names and not hasattr(cupy, alias) and hasattr(cupy, target):
            setattr(cupy, alias, getattr(cupy, target))
    cupy.ndarray, cupy.ufunc = _core.ndarray, _core.ufunc
    cupy.fuse = _kernels.fuse
    cupy.ElementwiseKernel, cupy.ReductionKernel = _kernels.ElementwiseKernel, _kernels.ReductionKernel
    cupy.RawKernel, cupy.RawModule = _kernels.RawKernel, _kernels.RawModule
    cupy.get_default_memory_pool = _cuda.get_default_memory_pool
    cupy.get_default_pinned_memory_pool = _cuda.get_default_pinned_memory_pool
    cupy.is_available = lambda: True
    cuda, random = _cuda.module(), _random.module()
    cuda.MemoryPool = _cuda.MemoryPool
    cupy.cuda, cupy.random = cuda, random
    mods = {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": cuda.runtime, "cupy.random": random}
    mods.update(_cupyx.modules(REAL_NAMES))
    check_names(mods)
    MODULES.update(mods)
    return MODULES
