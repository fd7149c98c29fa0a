"""The stand-in's ``cupy.ndarray``: a NumPy array held on a pretend device, with CuPy 14's contract.

A ``ndarray`` wraps a NumPy array (``_a``) and is *not* a NumPy subclass. Views share memory as on a GPU (a
slice, transpose or reshape of a device array writes through), strides are NumPy's (so channels-last views
look as they do on CuPy), and every way out to the host is explicit (``get``) or logged (see ``_log``).
"""
from __future__ import annotations

import warnings

import numpy as np

from ._core import (SCALARS, _COMPARISONS, _MSG_ARRAY, UFUNCS, _index, _should_use_rop, _uf, not_in_fusion,
                    operand, unwrap_args, wrap, wrap_result)
from ._log import LOG


# -- small helper classes ------------------------------------------------------------------------------------
class Flags:
    """CuPy's ``ndarray.flags``: c_contiguous, f_contiguous, owndata, and no ``writeable``."""

    def __init__(self, c: bool, f: bool, own: bool) -> None:
        self.c_contiguous, self.f_contiguous, self.owndata = c, f, own

    def __getitem__(self, name: str) -> bool:
        key = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous", "OWNDATA": "owndata"}.get(name)
        if key is None:
            raise KeyError(f"{name} is not defined for cupy.ndarray.flags")
        return getattr(self, key)

    def __repr__(self) -> str:
        return f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}\n  OWNDATA : {self.owndata}"


class MemoryPointer:
    """``ndarray.data``: the address of the first element (the host address of the wrapped buffer)."""

    def __init__(self, ptr: int) -> None:
        self.ptr = ptr
        self.device_id = 0

    def __int__(self) -> int:
        return self.ptr


def _reduction(name: str, np_name: str | None = None):
    np_name = np_name or name

    def method(self, axis=None, out=None, keepdims=False, **kwargs):
        if name not in ("sum", "prod", "max", "min", "all", "any", "mean"):
            not_in_fusion(f"ndarray.{name}")
        if "dtype" in kwargs and kwargs["dtype"] is None:
            del kwargs["dtype"]
        r = getattr(np, np_name)(self._a, axis=axis, keepdims=keepdims, **kwargs)
        if out is not None:
            out._a[...] = r
            return out
        return wrap_result(r)

    method.__name__ = name
    return method


def _inplace(name: str):
    def method(self, other):
        _uf(name)(self, other, out=self)
        return self

    return method


def _binary(name: str, reflected: bool = False):
    comparison = name in _COMPARISONS

    def method(self, other):
        if type(other) is not ndarray and not isinstance(other, SCALARS):
            if _should_use_rop(self, other):
                return NotImplemented
            if comparison and isinstance(other, np.ndarray) and other.ndim == 0:
                other = other.item()  # CuPy's workaround for numpy#12142: a 0-d host value compares as a scalar
        return _uf(name)(other, self) if reflected else _uf(name)(self, other)

    return method


# -- ndarray ------------------------------------------------------------------------------------------------
class ndarray:  # noqa: N801 (CuPy's name)
    """A device array of the stand-in (``cupy.ndarray``); see the module docstring."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100
    __hash__ = None  # unhashable, as cupy.ndarray

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C") -> None:
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy stand-in does not model memptr/strides construction")
        self._a = np.empty(shape, dtype=dtype, order=order)

    # -- attributes ------------------------------------------------------------------------------------------
    @property
    def shape(self):
        return self._a.shape

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    strides = property(lambda self: self._a.strides)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    dtype = property(lambda self: self._a.dtype)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: self if self._a.ndim < 2 else wrap(self._a.T))
    mT = property(lambda self: wrap(self._a.mT))
    real = property(lambda self: wrap(self._a.real))
    imag = property(lambda self: wrap(self._a.imag))

    @property
    def base(self):
        return None if self._a.base is None else wrap(self._a.base)

    @property
    def flags(self):
        f = self._a.flags
        return Flags(f.c_contiguous, f.f_contiguous, self._a.base is None)

    @property
    def data(self):
        return MemoryPointer(self._a.__array_interface__["data"][0])

    @property
    def device(self):
        from ._cuda import Device

        return Device(0)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self._a.shape, "typestr": self._a.dtype.str, "descr": self._a.dtype.descr,
                "version": 3, "stream": 1, "data": (self.data.ptr if self._a.size else 0, False),
                "strides": None if self._a.flags.c_contiguous else self._a.strides}

    # -- the ways to the host --------------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        LOG.crossing("implicit-conversion", f"__array__ of a device array of shape {self._a.shape} (NumPy tried "
                                            "to convert it: np.asarray/np.xxx on device data?)")
        raise TypeError(_MSG_ARRAY)

    def get(self, stream=None, order="C", out=None, blocking=True):
        not_in_fusion("ndarray.get")
        LOG.sync("ndarray.get")
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self._a.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self._a.dtype} array")
        if arr.shape != self._a.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self._a.shape}, new shape: {arr.shape}")
        LOG.upload("ndarray.set")
        self._a[...] = arr

    def item(self):
        not_in_fusion("ndarray.item")
        if self._a.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        LOG.sync("ndarray.item")
        return self._a.item()

    def tolist(self):
        not_in_fusion("ndarray.tolist")
        LOG.sync("ndarray.tolist")
        return self._a.tolist()

    def tobytes(self, order="C"):
        LOG.sync("ndarray.tobytes")
        return self._a.tobytes(order)

    def _implicit(self, what: str):
        not_in_fusion(f"{what}() of a device value")
        LOG.crossing("implicit-sync", f"{what}() of a device array reads it back to the host")
        LOG.sync(what)
        return self._a

    def __bool__(self):
        if self._a.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False, but in future this "
                          "will result in an error.", DeprecationWarning, stacklevel=2)
            return False
        if self._a.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. Use a.any() "
                             "or a.all()")
        return bool(self._implicit("bool"))

    def __float__(self):
        return float(self._implicit("float"))

    def __int__(self):
        return int(self._implicit("int"))

    def __complex__(self):
        return complex(self._implicit("complex"))

    def __repr__(self):
        LOG.sync("repr")
        return repr(self._a)

    def __str__(self):
        LOG.sync("str")
        return str(self._a)

    def __format__(self, spec):
        LOG.sync("format")
        return format(self._a, spec)

    def __reduce__(self):
        LOG.sync("pickle")
        from ._functions import array

        return array, (self._a.copy(),)

    # -- NumPy's hand-off protocols --------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc_, method, *inputs, **kwargs):
        LOG.crossing("numpy-dispatch", f"numpy.{ufunc_.__name__} applied to a device array (use the device "
                                       "module's function; a NumPy scalar on the left is a NumPy call too)")
        if method != "__call__":
            return NotImplemented
        u = UFUNCS.get(ufunc_.__name__) or (_uf(ufunc_.__name__) if hasattr(np, ufunc_.__name__) else None)
        if u is None:
            return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            kwargs["out"] = out[0] if len(out) == 1 else out
        for x in inputs + tuple(kwargs.get("out", ()) if isinstance(kwargs.get("out"), tuple) else ()):
            if not (type(x) is ndarray or isinstance(x, SCALARS) or isinstance(x, np.ndarray)):
                return NotImplemented
        if u.name in _COMPARISONS:
            inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in inputs)
        return u(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        LOG.crossing("numpy-dispatch", f"numpy.{func.__name__} called with a device array")
        from . import _functions

        impl = _functions.FUNCTIONS.get(func.__name__)
        if impl is None or any(t not in (ndarray, np.ndarray) for t in types):
            return NotImplemented
        return impl(*args, **kwargs)

    # -- conversion and copies -------------------------------------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        r = self._a.astype(dtype, order=order, casting=casting or "unsafe", copy=copy)
        return self if r is self._a else wrap(r)

    def copy(self, order="C"):
        not_in_fusion("ndarray.copy")
        return wrap(self._a.copy(order=order))

    __copy__ = copy

    def __deepcopy__(self, memo):
        return wrap(self._a.copy())

    def view(self, dtype=None):
        return wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        not_in_fusion("ndarray.fill")
        if type(value) is ndarray:
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            value = value._a
        elif isinstance(value, np.ndarray):
            if value.shape != ():
                LOG.crossing("host-value", f"fill with a NumPy array of shape {value.shape}")
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        elif not isinstance(value, SCALARS):
            raise TypeError(f"Unsupported type {type(value)}")
        self._a[...] = value

    # -- shape -----------------------------------------------------------------------------------------------
    def _shape_op(self, name, *args, **kwargs):
        not_in_fusion(f"ndarray.{name}")
        return wrap(getattr(self._a, name)(*args, **kwargs))

    def reshape(self, *shape, order="C"):
        return self._shape_op("reshape", *shape, order=order)

    def transpose(self, *axes):
        return self._shape_op("transpose", *axes)

    def swapaxes(self, axis1, axis2):
        return self._shape_op("swapaxes", axis1, axis2)

    def flatten(self, order="C"):
        return self._shape_op("flatten", order)

    def ravel(self, order="C"):
        return self._shape_op("ravel", order)

    def squeeze(self, axis=None):
        return self._shape_op("squeeze", axis)

    def repeat(self, repeats, axis=None):
        return self._shape_op("repeat", unwrap_args(repeats, "ndarray.repeat"), axis)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return self._shape_op("diagonal", offset, axis1, axis2)

    def reduced_view(self, dtype=None):
        return self.ravel() if self._a.flags.c_contiguous else self

    # -- indexing --------------------------------------------------------------------------------------------
    def __getitem__(self, index):
        not_in_fusion("indexing")
        idx, _ = _index(self._a, index, "getitem")
        return wrap_result(self._a[idx])

    def __setitem__(self, index, value):
        not_in_fusion("index assignment")
        idx, basic = _index(self._a, index, "setitem")
        if type(value) is ndarray:
            v = value._a
        elif isinstance(value, SCALARS):
            v = value
        elif isinstance(value, (np.ndarray, list, tuple)):
            if basic and not (isinstance(value, np.ndarray) and value.ndim == 0):
                LOG.crossing("host-value", f"a host {type(value).__name__} assigned into a device array "
                                           "(CuPy's fill refuses it)")
                if isinstance(value, np.ndarray):
                    raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
                raise TypeError(f"Unsupported type {type(value)}")
            if not basic:
                LOG.crossing("host-value", f"a host {type(value).__name__} assigned through an array index "
                                           "(CuPy copies it to the device)")
            v = np.asarray(value)
        else:
            raise TypeError(f"Unsupported type {type(value)}")
        self._a[idx] = v

    def take(self, indices, axis=None, out=None):
        not_in_fusion("ndarray.take")
        if type(indices) is not ndarray and not isinstance(indices, (int, np.integer)):
            LOG.crossing("host-index", f"take with host indices of type {type(indices).__name__}")
            indices = np.asarray(indices)
        ind = indices._a if type(indices) is ndarray else indices
        size = self._a.size if axis is None else self._a.shape[axis]
        r = np.take(self._a, ind % size if size else ind, axis=axis)  # CuPy wraps out-of-range indices
        if out is not None:
            out._a[...] = r
            return out
        return wrap_result(r)

    def put(self, indices, values, mode="wrap"):
        not_in_fusion("ndarray.put")
        np.put(self._a, unwrap_args(indices, "ndarray.put"), unwrap_args(values, "ndarray.put"), mode=mode)

    def _scatter(self, ufunc_name, slices, value):
        not_in_fusion(f"ndarray.scatter_{ufunc_name}")
        idx, _ = _index(self._a, slices, f"scatter_{ufunc_name}")
        if idx and idx[-1] is Ellipsis:
            idx = idx[:-1]
        v = value._a if type(value) is ndarray else operand(value, f"scatter_{ufunc_name}")
        getattr(np, ufunc_name).at(self._a, idx if len(idx) != 1 else idx[0], v)

    def scatter_add(self, slices, value):
        self._scatter("add", slices, value)

    def scatter_max(self, slices, value):
        self._scatter("maximum", slices, value)

    def scatter_min(self, slices, value):
        self._scatter("minimum", slices, value)

    def nonzero(self):
        not_in_fusion("ndarray.nonzero")
        LOG.sync("ndarray.nonzero (result size)")
        return wrap_result(self._a.nonzero())

    def sort(self, axis=-1, kind=None):
        not_in_fusion("ndarray.sort")
        self._a.sort(axis=axis, kind=kind)

    def argsort(self, axis=-1, kind=None):
        return self._shape_op("argsort", axis=axis, kind=kind)

    def partition(self, kth, axis=-1):
        not_in_fusion("ndarray.partition")
        self._a.partition(kth, axis=axis)

    def argpartition(self, kth, axis=-1):
        return self._shape_op("argpartition", kth, axis=axis)

    def searchsorted(self, v, side="left", sorter=None):
        not_in_fusion("ndarray.searchsorted")
        return wrap_result(self._a.searchsorted(operand(v, "searchsorted"), side, sorter))

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    # -- math ------------------------------------------------------------------------------------------------
    sum = _reduction("sum")
    prod = _reduction("prod")
    max = _reduction("max", "amax")
    min = _reduction("min", "amin")
    all = _reduction("all")
    any = _reduction("any")
    mean = _reduction("mean")
    var = _reduction("var")
    std = _reduction("std")
    ptp = _reduction("ptp")

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        not_in_fusion("ndarray.argmax")
        r = wrap_result(np.argmax(self._a, axis=axis, keepdims=keepdims))
        return r if dtype is None else r.astype(dtype)

    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        not_in_fusion("ndarray.argmin")
        r = wrap_result(np.argmin(self._a, axis=axis, keepdims=keepdims))
        return r if dtype is None else r.astype(dtype)

    def cumsum(self, axis=None, dtype=None, out=None):
        return self._shape_op("cumsum", axis=axis, dtype=dtype)

    def cumprod(self, axis=None, dtype=None, out=None):
        return self._shape_op("cumprod", axis=axis, dtype=dtype)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return wrap_result(self._a.trace(offset, axis1, axis2, dtype))

    def clip(self, min=None, max=None, out=None):  # noqa: A002 (NumPy's names)
        from ._functions import FUNCTIONS

        return FUNCTIONS["clip"](self, min, max, out=out)

    def round(self, decimals=0, out=None):
        return self._shape_op("round", decimals)

    def conj(self):
        return wrap(self._a.conj())

    conjugate = conj

    def dot(self, b, out=None):
        not_in_fusion("ndarray.dot")
        return wrap_result(np.dot(self._a, operand(b, "ndarray.dot")))

    # -- operators -------------------------------------------------------------------------------------------
    __add__, __radd__ = _binary("add"), _binary("add", True)
    __sub__, __rsub__ = _binary("subtract"), _binary("subtract", True)
    __mul__, __rmul__ = _binary("multiply"), _binary("multiply", True)
    __truediv__, __rtruediv__ = _binary("true_divide"), _binary("true_divide", True)
    __floordiv__, __rfloordiv__ = _binary("floor_divide"), _binary("floor_divide", True)
    __mod__, __rmod__ = _binary("remainder"), _binary("remainder", True)
    __pow__, __rpow__ = _binary("power"), _binary("power", True)
    __and__, __rand__ = _binary("bitwise_and"), _binary("bitwise_and", True)
    __or__, __ror__ = _binary("bitwise_or"), _binary("bitwise_or", True)
    __xor__, __rxor__ = _binary("bitwise_xor"), _binary("bitwise_xor", True)
    __lshift__, __rlshift__ = _binary("left_shift"), _binary("left_shift", True)
    __rshift__, __rrshift__ = _binary("right_shift"), _binary("right_shift", True)
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")
    __iadd__, __isub__, __imul__ = _inplace("add"), _inplace("subtract"), _inplace("multiply")
    __itruediv__, __ifloordiv__ = _inplace("true_divide"), _inplace("floor_divide")
    __imod__, __ipow__ = _inplace("remainder"), _inplace("power")
    __iand__, __ior__, __ixor__ = _inplace("bitwise_and"), _inplace("bitwise_or"), _inplace("bitwise_xor")

    def __matmul__(self, other):
        if type(other) is not ndarray and _should_use_rop(self, other):
            return NotImplemented
        return _uf("matmul")(self, other)

    def __rmatmul__(self, other):
        return _uf("matmul")(other, self)

    def __neg__(self):
        return _uf("negative")(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _uf("absolute")(self)

    def __invert__(self):
        return _uf("invert")(self)

    def __divmod__(self, other):
        return _uf("divmod")(self, other)


ndarray.__module__ = "cupy"  # as the real class reports (lucid's device_of also recognises it by module)
