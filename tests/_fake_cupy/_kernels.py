"""``cupy.fuse`` and the user-kernel classes of the stand-in.

``fuse`` runs the decorated Python function on the device arrays in a tracing scope where only what CuPy
can fuse is allowed (elementwise ufuncs and operators, ``astype``, ``where``/``clip``, and the sum/prod/
max/min/all/any reductions); indexing, shape functions, host reads and non-ufunc functions raise, so a
fused function that passes here has the shape of one CuPy can compile. What it cannot check: the CUDA code
CuPy generates, C-level type rules inside the kernel, or speed.

``ElementwiseKernel``, ``ReductionKernel``, ``RawKernel`` and ``RawModule`` hold CUDA source that only a real
GPU can compile: they construct (so modules defining them import) but refuse to run, and the refusal is
recorded in ``LOG.refused``.
"""
from __future__ import annotations

import functools

from ._core import fusion_scope, ndarray, wrap_result
from ._log import LOG


class Fusion:
    def __init__(self, func, name=None) -> None:
        self.func = func
        self.name = name or getattr(func, "__name__", "fused")
        functools.update_wrapper(self, func)

    def __call__(self, *args):
        if not any(type(a) is ndarray for a in args):
            return self.func(*args)  # CuPy runs the plain function when no argument is a device array
        with fusion_scope(self.name):
            out = self.func(*args)
        return out if type(out) is ndarray or isinstance(out, tuple) else wrap_result(out)

    def __repr__(self) -> str:
        return f"<Fusion '{self.name}'>"


def fuse(*args, **kwargs):
    """``@cupy.fuse``, ``@cupy.fuse()`` or ``@cupy.fuse(kernel_name=...)``."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return Fusion(args[0])
    name = kwargs.get("kernel_name")
    return lambda f: Fusion(f, name)


class _Refused:
    _kind = "kernel"

    def __call__(self, *args, **kwargs):
        LOG.refused.append(f"{self._kind} {self.name!r}")
        raise RuntimeError(f"{self._kind} {self.name!r} holds CUDA source, which the CuPy stand-in cannot run: "
                           "it needs a real GPU (keep such paths behind a switch that is off without one)")


def _count(params: str) -> int:
    return len([p for p in params.split(",") if p.strip()])


class ElementwiseKernel(_Refused):
    _kind = "ElementwiseKernel"

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", **kwargs) -> None:
        self.in_params, self.out_params, self.operation = in_params, out_params, operation
        self.name, self.reduce_dims, self.preamble = name, reduce_dims, preamble
        self.no_return, self.return_tuple, self.kwargs = no_return, return_tuple, kwargs
        self.nin, self.nout = _count(in_params), _count(out_params)
        self.nargs = self.nin + self.nout


class ReductionKernel(_Refused):
    _kind = "ReductionKernel"

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="", options=()) -> None:
        self.in_params, self.out_params = in_params, out_params
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.name, self.reduce_type = identity, name, reduce_type
        self.reduce_dims, self.preamble, self.options = reduce_dims, preamble, options
        self.nin, self.nout = _count(in_params), _count(out_params)
        self.nargs = self.nin + self.nout


class RawKernel(_Refused):
    _kind = "RawKernel"

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False) -> None:
        self.code, self.name, self.options, self.backend = code, name, options, backend
        self.enable_cooperative_groups = enable_cooperative_groups

    def compile(self, log_stream=None) -> None:
        LOG.refused.append(f"RawKernel.compile {self.name!r}")
        raise RuntimeError(f"RawKernel {self.name!r}: the CuPy stand-in cannot compile CUDA source")


class RawModule:
    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False) -> None:
        self.code, self.path, self.options = code, path, options

    def get_function(self, name):
        kernel = RawKernel(self.code or "", name, self.options)
        kernel._kind = "RawModule function"
        return kernel
