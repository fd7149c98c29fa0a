"""Module-level functions of the stand-in ``cupy``: NumPy's functions behind CuPy's rules.

``FUNCTIONS`` maps a name to its device version. Most are generated: the NumPy function of the same name
with device arrays unwrapped, NumPy arrays refused (``TypeError: Unsupported type``, logged), and NumPy
results wrapped (scalars become 0-d device arrays, as CuPy returns them). The few that differ from that
rule in CuPy are written out below: the explicit transfers (``asarray``, ``array``, ``asnumpy``), ``copyto``,
the index functions that wrap around (``take``, ``take_along_axis``, ``put_along_axis``), the functions
whose result size needs a host read (``nonzero``, ``unique``...), and predicates that CuPy answers with 0-d
arrays (``array_equal``, ``allclose``, ``count_nonzero``...). Only names that real CuPy 14 has are exposed
(``_modules`` checks them against ``cupy14_names.json``).
"""
from __future__ import annotations

import functools

import numpy as np

from ._core import (SCALARS, LOG, fusing, ndarray, not_in_fusion, operand, unwrap_args, wrap, wrap_result)

FUNCTIONS: dict = {}

# reductions that cupy.fuse can fuse (everything else that is not a ufunc is refused inside a fused function)
FUSABLE = {"sum", "prod", "amax", "amin", "max", "min", "all", "any", "where", "clip", "astype"}
# functions whose output size depends on the data: CuPy reads a count back to the host (a sync)
SYNCING = {"nonzero", "argwhere", "flatnonzero", "unique", "unique_values", "unique_counts", "unique_inverse",
           "unique_all", "extract", "compress", "in1d", "intersect1d", "setdiff1d", "union1d", "setxor1d",
           "trim_zeros", "histogram", "bincount"}
# NumPy answers these with a Python bool/int, CuPy with a 0-d device array
ZERO_D = {"array_equal", "array_equiv", "allclose", "count_nonzero"}
# these take shapes, dtypes or Python values only: no array argument to check, no array to wrap twice
PLAIN = {"shape", "ndim", "size", "isscalar", "result_type", "can_cast", "promote_types", "min_scalar_type",
         "common_type", "iscomplexobj", "isrealobj", "isfortran", "issubdtype", "isdtype", "broadcast_shapes",
         "may_share_memory", "shares_memory", "typename", "mintypecode", "get_printoptions", "set_printoptions",
         "printoptions", "binary_repr", "base_repr", "format_float_positional", "format_float_scientific",
         "iterable", "issctype", "obj2sctype", "sctype2char", "find_common_type", "issubclass_", "issubsctype"}


def _generic(name: str, np_fn):
    """The device version of ``np_fn`` (see the module docstring)."""
    context = f"cupy.{name}"

    @functools.wraps(np_fn)
    def fn(*args, **kwargs):
        if fusing() and name not in FUSABLE:
            not_in_fusion(context)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = operand(out, context)
        r = np_fn(*unwrap_args(args, context), **{k: unwrap_args(v, context) for k, v in kwargs.items()})
        if name in SYNCING:
            LOG.sync(f"{context} (result size)")
        if out is not None:
            return out
        if name in ZERO_D:
            return wrap(np.asarray(r))
        return wrap_result(r)

    fn.__module__ = "cupy"
    return fn


def _plain(name: str, np_fn):
    @functools.wraps(np_fn)
    def fn(*args, **kwargs):
        return np_fn(*[a._a if type(a) is ndarray else a for a in args], **kwargs)

    return fn


# -- explicit transfers --------------------------------------------------------------------------------------
def _host_to_device(obj, dtype, order, copy_always: bool, what: str):
    if type(obj) is ndarray:
        a = np.array(obj._a, dtype=dtype, order=order, copy=True) if copy_always else \
            np.asarray(obj._a, dtype=dtype, order=order)
        return obj if a is obj._a else wrap(a)
    if isinstance(obj, (list, tuple)) and any(type(v) is ndarray for v in obj):
        # CuPy builds an array from a sequence of device arrays on the device
        return wrap(np.array([v._a if type(v) is ndarray else v for v in obj], dtype=dtype, order=order))
    a = np.array(obj, dtype=dtype, order=order or "K", copy=True)  # device memory is separate from the host's
    if a.dtype == object or a.dtype.kind in "SUV":
        raise ValueError(f"Unsupported dtype {a.dtype}")
    LOG.upload(what)
    return wrap(a)


def asarray(a, dtype=None, order=None, *, blocking=False):
    not_in_fusion("cupy.asarray")
    return _host_to_device(a, dtype, order, False, "cupy.asarray")


def asanyarray(a, dtype=None, order=None):
    return asarray(a, dtype, order)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    not_in_fusion("cupy.array")
    out = _host_to_device(obj, dtype, order, bool(copy), "cupy.array")
    while out.ndim < ndmin:
        out = out[None]
    return out


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """Device -> host copy (explicit: a sync); host values pass through, as in CuPy."""
    not_in_fusion("cupy.asnumpy")
    if type(a) is ndarray:
        return a.get(stream=stream, order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    from ._modules import MODULES

    return MODULES["cupy"] if any(type(a) is ndarray for a in args) else np


def copyto(dst, src, casting="same_kind", where=None):
    not_in_fusion("cupy.copyto")
    if type(dst) is not ndarray:
        raise TypeError(f"Unsupported type {type(dst)}")
    if isinstance(src, np.ndarray):
        if src.ndim != 0:
            LOG.crossing("host-operand", f"cupy.copyto from a NumPy array of shape {src.shape}")
            raise ValueError("non-scalar numpy.ndarray cannot be used for copyto")
        src = src.item()
    s = src._a if type(src) is ndarray else src
    w = None if where is None else operand(where, "cupy.copyto where=")
    np.copyto(dst._a, s, casting=casting, where=True if w is None else w)


# -- index functions that wrap around, as CuPy's kernels do -------------------------------------------------
def take(a, indices, axis=None, out=None):
    return a.take(indices, axis=axis, out=out)


def take_along_axis(a, indices, axis):
    not_in_fusion("cupy.take_along_axis")
    ind = operand(indices, "cupy.take_along_axis")
    n = a._a.size if axis is None else a._a.shape[axis]
    return wrap(np.take_along_axis(a._a, ind % n if n else ind, axis))


def put_along_axis(arr, indices, values, axis):
    not_in_fusion("cupy.put_along_axis")
    ind = operand(indices, "cupy.put_along_axis")
    n = arr._a.shape[axis]
    np.put_along_axis(arr._a, ind % n if n else ind, operand(values, "cupy.put_along_axis"), axis)


def clip(a, a_min=None, a_max=None, out=None, **kwargs):
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    vals = [operand(v, "cupy.clip") if v is not None else None for v in (a, a_min, a_max)]
    if out is not None:
        np.clip(*vals, out=operand(out, "cupy.clip out="))
        return out
    return wrap_result(np.clip(*vals))


def where(condition, x=None, y=None):
    if x is None and y is None:
        not_in_fusion("cupy.where(condition)")
        LOG.sync("cupy.where(condition) (result size)")
        return wrap_result(np.nonzero(operand(condition, "cupy.where")))
    return wrap_result(np.where(*(operand(v, "cupy.where") for v in (condition, x, y))))


def _splitter(name):
    """split and friends: the split points are host metadata (CuPy iterates over them), a NumPy array of them
    included; the array to split must be on the device."""
    np_fn = getattr(np, name)

    @functools.wraps(np_fn)
    def fn(ary, indices_or_sections, *args, **kwargs):
        not_in_fusion(f"cupy.{name}")
        if isinstance(indices_or_sections, np.ndarray):
            indices_or_sections = indices_or_sections.tolist()
        return wrap_result(np_fn(operand(ary, f"cupy.{name}"), indices_or_sections, *args, **kwargs))

    return fn


def _special(name):
    """Functions written out above, by name."""
    return {
        "asarray": asarray, "asanyarray": asanyarray, "array": array, "asnumpy": asnumpy,
        "get_array_module": get_array_module, "copyto": copyto, "take": take, "take_along_axis": take_along_axis,
        "put_along_axis": put_along_axis, "clip": clip, "where": where,
        **{n: _splitter(n) for n in ("split", "array_split", "hsplit", "vsplit", "dsplit") if n == name},
    }.get(name)


def build(names) -> dict:
    """FUNCTIONS for the CuPy names ``names`` that NumPy also has as plain functions (ufuncs and types are
    handled by ``_modules``)."""
    for name in names:
        special = _special(name)
        if special is not None:
            FUNCTIONS[name] = special
            continue
        np_fn = getattr(np, name, None)
        if np_fn is None or isinstance(np_fn, (type, np.ufunc)) or not callable(np_fn):
            continue
        FUNCTIONS[name] = _plain(name, np_fn) if name in PLAIN else _generic(name, np_fn)
    return FUNCTIONS


__all__ = ["FUNCTIONS", "build", "SCALARS"]
