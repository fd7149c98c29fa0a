"""Serial twins of the parallel numba kernels, for arrays too small to pay for a parallel launch.

A ``parallel=True`` numba kernel costs ~60-100 us per call before any work (handing the loop to the
threading layer's workers and waiting for them), and right after a GEMM the second core may still be busy.
The same loop compiled without ``parallel`` costs ~1 us to call. Measured for BatchNorm's scale-and-shift
(memory-bound, 2 cores, each call after a small GEMM): 41k elements 85.8 us parallel vs 11.2 us serial; 164k
113.6 vs 45.5 us; 786k 272 vs 188 us. The fused Inception mixer's per-pixel loops gained nothing from a second
thread at any size it runs on (786k elements: forward 1422 vs 678 us, backward 2005 vs 1022 us); the
row-vectorised depthwise kernel breaks even near 400k (393k: 717 vs 814 us). So each kernel family has its
own threshold (``SERIAL_BELOW``, in elements). GELU, compute-heavy, is twice as fast on two threads in
isolation, but the model runs it right after the fc1 GEMM, where the serial twin won at every size up to 1M
elements (bias + GELU forward: 100k 102 vs 180 us, 1M 1004 vs 1087 us; backward 1M 2296 vs 2456 us).

The twins must use NumPy's error model: under numba's default ("python") a division carries a zero check
that raises ZeroDivisionError, which also keeps LLVM from vectorising the loop (serial GELU: 615 us for
100k elements with the check, ~100 us without).

``add_serial_twins(*kernels)`` (at a kernel module's import) compiles each kernel's twin with ``serial_twin``;
``pick`` and ``pick_parts`` then choose per call. ``serial_twin(kernel)`` compiles the kernel's Python
function again without ``parallel`` (``prange`` then runs as ``range``) and with ``nogil`` (twins also run on
lucid's row-split threads, lucid/_row_threads.py), under its own name so that numba's on-disk cache keeps the
two apart. numba invalidates that cache when the kernel's source file changes, not when ``serial_twin``'s
options do: when changing them, change the twin's name suffix too (now ``_serial_nogil``).
"""
from __future__ import annotations

import types

# elements of work below which a family's serial twin runs (measured; see the module docstring)
SERIAL_BELOW = {"memory": 1_000_000, "mixer": 2_000_000, "stencil": 400_000, "gelu": 1_000_000}


def renamed_copy(fn, name: str):
    """A copy of Python function ``fn`` under another name. numba's on-disk cache is keyed by the function's
    qualified name and signature, not by compile options such as ``parallel``: two dispatchers of one Python
    function would load each other's machine code (seen in adamw.py: the serial entry point running the
    parallel loop, 30x slower, and a segfault)."""
    clone = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = name
    clone.__module__ = fn.__module__
    return clone


def serial_twin(kernel):
    """The non-parallel compilation of numba dispatcher ``kernel`` (same options otherwise, cached)."""
    from numba import njit  # only called where numba is installed

    # the suffix names the options, so that a cache compiled with other options is not loaded (see above)
    twin = renamed_copy(kernel.py_func, kernel.py_func.__qualname__ + "_serial_nogil")
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
    # parallel loops follow NumPy's error model (x / 0 -> inf or nan); without it a serial loop raises
    # ZeroDivisionError instead (e.g. on the inf/nan activations of a diverging run) and does not vectorise
    options.setdefault("error_model", "numpy")
    return njit(cache=True, nogil=True, **options)(twin)


_TWINS: dict = {}  # parallel dispatcher -> its serial twin


def add_serial_twins(*kernels) -> None:
    """Compile (or load from numba's cache) the serial twin of each parallel kernel, for ``pick``."""
    for kernel in kernels:
        _TWINS[kernel] = serial_twin(kernel)


def pick(kernel, work: int, family: str, serial: bool = False):
    """The kernel to launch for ``work`` elements: ``kernel``'s serial twin below the family's threshold, or
    always with ``serial`` (the caller is one of several threads already)."""
    return _TWINS[kernel] if serial or work < SERIAL_BELOW[family] else kernel


def pick_parts(kernel, work: int, family: str, parallel_parts: int, serial: bool = False) -> tuple:
    """(kernel, parts) for kernels that reduce over ``parts`` row chunks, one per thread: the serial twin
    with a single chunk below the family's threshold (or with ``serial``), else ``kernel`` with
    ``parallel_parts``."""
    if serial or work < SERIAL_BELOW[family]:
        return _TWINS[kernel], 1
    return kernel, parallel_parts
