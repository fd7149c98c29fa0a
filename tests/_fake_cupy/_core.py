"""The stand-in's rules for operands, indices and results, its ``ufunc`` and the ``cupy.fuse`` tracing scope;
the ``ndarray`` class itself is in ``_ndarray`` (imported at the end: the two refer to each other).

What CuPy refuses, this refuses with CuPy's exception type and message; what CuPy lets pass but moves data
implicitly is logged (see ``_log``).
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from ._log import LOG

SCALARS = (bool, int, float, complex, np.generic)  # what CuPy's CScalar accepts (not 0-d NumPy arrays)
_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
_MSG_ARRAY = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy "
              "array explicitly.")

# -- cupy.fuse tracing state: inside a fused function only elementwise ufuncs and a few reductions may run ----
_fusion = threading.local()


def fusing() -> str | None:
    return getattr(_fusion, "name", None)


@contextlib.contextmanager
def fusion_scope(name: str):
    prev = fusing()
    _fusion.name = name
    try:
        yield
    finally:
        _fusion.name = prev


def not_in_fusion(what: str) -> None:
    name = fusing()
    if name is not None:
        raise TypeError(f"{what} is not supported inside cupy.fuse (fused function {name!r}); only elementwise "
                        "ufuncs, astype, where/clip and sum/prod/max/min/all/any reductions can be fused")


# -- wrapping -----------------------------------------------------------------------------------------------
def wrap(a: np.ndarray) -> "ndarray":
    out = ndarray.__new__(ndarray)
    out._a = a
    return out


def wrap_result(r):
    """NumPy results -> device results: arrays wrapped, NumPy scalars as 0-d arrays (CuPy never returns
    host scalars from array functions), tuples/lists element-wise, everything else unchanged."""
    if isinstance(r, np.ndarray):
        return wrap(r)
    if isinstance(r, np.generic):
        return wrap(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(wrap_result(x) for x in r)
    if isinstance(r, list):
        return [wrap_result(x) for x in r]
    return r


def operand(x, context: str):
    """The NumPy value behind one ufunc/operator operand, with CuPy's rules: device arrays and scalars only."""
    if type(x) is ndarray:
        return x._a
    if isinstance(x, SCALARS):
        return x
    if isinstance(x, np.ndarray):
        LOG.crossing("host-operand", f"{context}: a NumPy array of shape {x.shape} given as a device operand")
    raise TypeError(f"Unsupported type {type(x)}")


def unwrap_args(x, context: str):
    """Device arrays inside (nested) lists/tuples -> NumPy; NumPy arrays are refused (logged)."""
    if type(x) is ndarray:
        return x._a
    if isinstance(x, np.ndarray):
        LOG.crossing("host-operand", f"{context}: a NumPy array of shape {x.shape} given to a device function")
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)(unwrap_args(v, context) for v in x)
    return x


def to_device_index(s, context: str):
    """One index item of a device array. Host arrays and lists are copied over implicitly by CuPy: logged."""
    if type(s) is ndarray:
        if s._a.dtype == np.bool_:
            LOG.sync(f"{context}: boolean-mask indexing (the result size is read back to the host)")
        return s._a
    if isinstance(s, (np.ndarray, list)):
        LOG.crossing("host-index", f"{context}: a host {type(s).__name__} used as an index of a device array "
                                   "(CuPy copies it to the device on every call)")
        return np.asarray(s)
    return s


def _index(self_a: np.ndarray, index, context: str):
    """Convert an index for ``self_a`` and wrap integer-array indices around as CuPy does (it never raises
    for out-of-range array indices: ``x[[5]]`` on 3 elements reads ``x[2]``)."""
    items = list(index) if isinstance(index, tuple) else [index]
    items = [to_device_index(s, context) for s in items]
    consumed = sum(1 if not isinstance(s, np.ndarray) or s.dtype != np.bool_ else s.ndim
                   for s in items if s is not None and s is not Ellipsis)
    axis = 0
    for k, s in enumerate(items):
        if s is None:
            continue
        if s is Ellipsis:
            axis += self_a.ndim - consumed
            continue
        if isinstance(s, np.ndarray) and s.dtype.kind in "iu" and axis < self_a.ndim and self_a.shape[axis]:
            items[k] = s % self_a.shape[axis]
        axis += s.ndim if isinstance(s, np.ndarray) and s.dtype == np.bool_ else 1
    basic = all(not isinstance(s, np.ndarray) for s in items)
    if basic and not any(s is Ellipsis for s in items):
        items.append(Ellipsis)  # basic indexing keeps returning a (0-d) view, as CuPy, not a NumPy scalar
    return tuple(items), basic


def _should_use_rop(x, y) -> bool:
    """CuPy's rule for a binary operator with a foreign right operand (NEP 13 plus __array_priority__)."""
    try:
        y_ufunc = type(y).__array_ufunc__
    except AttributeError:
        return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)
    return y_ufunc is None


# -- ufunc --------------------------------------------------------------------------------------------------
class ufunc:  # noqa: N801 (CuPy's name)
    """An elementwise function on device arrays (``cupy.ufunc``), computed by the NumPy ufunc of that name."""

    def __init__(self, np_ufunc, name: str | None = None) -> None:
        self._np = np_ufunc
        self.name = name or np_ufunc.__name__
        self.__name__ = self.name
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nin + np_ufunc.nout
        self.types = list(np_ufunc.types)

    def __repr__(self) -> str:
        return f"<ufunc '{self.name}'>"

    def _outs(self, args, kwargs):
        out = kwargs.pop("out", None)
        if len(args) > self.nin:
            args, out = args[:self.nin], args[self.nin:]
        if isinstance(out, tuple):
            out = out[0] if len(out) == 1 else out
        if out is not None and not (type(out) is ndarray or isinstance(out, tuple)):
            if isinstance(out, np.ndarray):
                LOG.crossing("host-operand", f"cupy.{self.name}: a NumPy array given as out=")
            raise TypeError(f"Output arguments must be cupy.ndarray, got {type(out)}")
        return args, out

    def __call__(self, *args, **kwargs):
        if getattr(self._np, "signature", None) is not None:
            not_in_fusion(f"cupy.{self.name}")  # a generalized ufunc (matmul...) is not elementwise
        args, out = self._outs(args, dict(kwargs))
        kwargs.pop("out", None)
        if len(args) != self.nin:
            raise TypeError(f"Wrong number of arguments for {self.name}: expected {self.nin}, got {len(args)}")
        vals = [operand(a, f"cupy.{self.name}") for a in args]
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            kwargs["out"] = tuple(o._a for o in outs)
        r = self._np(*vals, **kwargs)
        if out is not None:
            return out
        return wrap_result(r)

    def _method(self, method: str, array, *args, **kwargs):
        not_in_fusion(f"cupy.{self.name}.{method}")
        a = operand(array, f"cupy.{self.name}.{method}")
        out = kwargs.pop("out", None)
        if out is not None:
            kwargs["out"] = operand(out, f"cupy.{self.name}.{method}")
        r = getattr(self._np, method)(a, *unwrap_args(args, f"cupy.{self.name}.{method}"), **kwargs)
        return out if out is not None else wrap_result(r)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return self._method("reduce", array, axis=axis, dtype=dtype, out=out, keepdims=keepdims)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        return self._method("accumulate", array, axis=axis, dtype=dtype, out=out)

    def reduceat(self, array, indices, axis=0, dtype=None, out=None):
        return self._method("reduceat", array, operand(indices, "reduceat"), axis=axis, dtype=dtype, out=out)

    def outer(self, A, B, **kwargs):
        not_in_fusion(f"cupy.{self.name}.outer")
        return wrap_result(self._np.outer(operand(A, "outer"), operand(B, "outer"), **kwargs))

    def at(self, a, indices, b=None):
        not_in_fusion(f"cupy.{self.name}.at")
        idx, _ = _index(a._a, indices, f"cupy.{self.name}.at")
        args = () if b is None else (operand(b, f"cupy.{self.name}.at"),)
        self._np.at(a._a, idx[:-1] if idx and idx[-1] is Ellipsis else idx, *args)


UFUNCS: dict[str, ufunc] = {}


def _uf(name: str) -> ufunc:
    u = UFUNCS.get(name)
    if u is None:
        u = UFUNCS[name] = ufunc(getattr(np, name))
    return u


ufunc.__module__ = "cupy._core._kernel"

from ._ndarray import ndarray  # noqa: E402  (the class wraps results with the helpers above)
