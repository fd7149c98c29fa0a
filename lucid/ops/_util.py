"""Helpers shared by the op families: broadcasting reduction, dim normalisation, dtype promotion."""
from __future__ import annotations

import numpy as np

from .._backend import xp_of


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it gets ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    """Turn a possibly negative ``dim`` into an index in [0, ndim); errors name the allowed range."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}={dim} is out of range for a tensor with {ndim} dimensions "
                         f"(expected {-n} <= {name} < {n})")
    return dim % n


def normalize_dims(dim, ndim: int):
    """None or () -> all axes; int or sequence -> sorted tuple of non-negative axes.

    A 0-d tensor accepts dim 0 or -1 (as in PyTorch) and has no axis to reduce, hence ().
    """
    if ndim == 0:
        if dim is not None:
            for d in dim if isinstance(dim, (list, tuple)) else (dim,):
                normalize_dim(d, 0)
        return ()
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):  # dim=() reduces all, as in torch
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        return tuple(sorted(normalize_dim(d, ndim) for d in dim))
    return (normalize_dim(dim, ndim),)


_FLOAT_RANK = {np.dtype(np.float16): 0, np.dtype(np.float32): 1, np.dtype(np.float64): 2}


def promote_types(da, db):
    """PyTorch's promotion for two tensor dtypes: a float beats an int, otherwise the wider one wins."""
    if da == db:
        return da
    fa, fb = da.kind == "f", db.kind == "f"
    if fa and not fb:
        return da
    if fb and not fa:
        return db
    if fa and fb:
        return da if _FLOAT_RANK[da] >= _FLOAT_RANK[db] else db
    if da.kind == "b":
        return db
    if db.kind == "b":
        return da
    return np.promote_types(da, db)


def _category(d) -> int:
    return 0 if d.kind == "b" else 1 if d.kind in "iu" else 2


def result_type(da, db, a_is_0d: bool, b_is_0d: bool):
    """PyTorch's result dtype of a binary op on two tensors: a 0-d tensor only decides the dtype when it is
    of a higher category (bool < int < float) than a tensor with dims, so ``float32 + 0-d float64`` stays
    float32 while ``int64 + 0-d float64`` is float64."""
    if da == db:
        return da
    if a_is_0d != b_is_0d:
        dim_d, zero_d = (db, da) if a_is_0d else (da, db)
        return dim_d if _category(zero_d) <= _category(dim_d) else zero_d
    return promote_types(da, db)


def zeros_like_shape(ref, shape, dtype=None):
    return xp_of(ref).zeros(shape, dtype=dtype or ref.dtype)
