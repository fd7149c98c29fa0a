"""Per-channel BatchNorm passes over a channels-last ``(M, C)`` matrix: numba kernels and the NumPy reference.

A 4-D activation is stored channels-last, so its NHWC buffer is a C-contiguous ``(M, C)`` matrix with
``M = N*H*W`` rows; BatchNorm's work is four memory-bound passes over such matrices::

    stats:        sum_c (x - s), sum_c (x - s)^2            (training forward: batch mean and variance)
    scale_shift:  y = (x - mean[c]) * scale[c] + bias[c]    (both modes; scale = weight / std)
    grad_sums:    sum_c dy, sum_c dy * (x - mean)           (backward: dbias, dweight, dx coefficients)
    grad_input:   dx = k1[c] * dy + k2[c] * (x - mean) + k3[c]

Sums are accumulated in float64 (per-thread partial rows, then combined), around a per-channel shift ``s``
(a sample of each channel), so the variance does not suffer from cancellation when the mean is large
against the standard deviation. The elementwise passes subtract the mean before scaling, and the float32
mean is split in two float32 parts ``mean_hi + mean_lo`` subtracted one after the other (compiled without
fastmath reassociation, which would merge them), so ``x - mean`` is as exact as in float64: folding the
mean into a shift, ``y = x * scale + shift``, loses ``|mean| / std`` float32 ulps when the two large terms
cancel (torch's float32 CPU kernel shows that error).

The numba kernels make each pass one parallel sweep without temporaries; the NumPy reference (also the
CuPy path, and the one used when numba is missing or ``LUCID_NO_NUMBA=1``) computes the same quantities
with ufuncs and reductions. Measured at InceptionNeXt-tiny shapes (benchmarks/suite_nn_norm.py), the
kernels make batch_norm forward+backward several times faster than the NumPy form.
"""
from __future__ import annotations

import numpy as np

from .._backend import xp_of
from . import _numba
from ._numba import HAVE_NUMBA, add_serial_twins, pick, pick_parts

if HAVE_NUMBA:
    import numba
    from numba import njit, prange


def use_numba(array) -> bool:
    """True when the kernels should handle ``array`` (float32 NumPy, numba enabled: lucid/kernels/_numba.py)."""
    return _numba.use_numba(array, _numba.FLOAT32)


# ---------------------------------------------------------------------------------------------------------
# NumPy / CuPy reference
def stats_ref(x, shift):
    """(sum (x - shift), sum (x - shift)^2) per column of a 2-D array, accumulated in float64."""
    xp = xp_of(x)
    d = x - shift.astype(x.dtype)  # shift is a sample of each column: d is small, its rounding negligible
    return d.sum(axis=0, dtype=xp.float64), (d * d).sum(axis=0, dtype=xp.float64)


def _centered(x, mean_hi, mean_lo):
    return (x - mean_hi) - mean_lo


def scale_shift_ref(x, mean_hi, mean_lo, scale, bias, out):
    """out = (x - mean) * scale + bias (vectors of x's dtype, broadcast over rows)."""
    xp = xp_of(x)
    xp.multiply(_centered(x, mean_hi, mean_lo), scale, out=out)
    out += bias
    return out


def grad_sums_ref(dy, x, mean):
    """(sum dy, sum dy * (x - mean)) per column, accumulated in float64 (``mean`` float64 (C,))."""
    xp = xp_of(x)
    xc = _centered(x, *split_mean(mean, x.dtype))
    return dy.sum(axis=0, dtype=xp.float64), (dy * xc).sum(axis=0, dtype=xp.float64)


def grad_input_ref(dy, x, mean_hi, mean_lo, k1, k2, k3, out):
    """out = k1 * dy + k2 * (x - mean) + k3 (vectors of x's dtype, broadcast over rows)."""
    xp = xp_of(x)
    xp.multiply(_centered(x, mean_hi, mean_lo), k2, out=out)
    out += k3
    out += dy * k1
    return out


# ---------------------------------------------------------------------------------------------------------
# numba kernels: (M, C) C-contiguous float32 matrices; rows split in blocks, one per thread
if HAVE_NUMBA:
    # reductions may be reassociated (vectorised float64 sums); the elementwise passes must not be, or
    # (x - mean_hi) - mean_lo would be folded into x - (mean_hi + mean_lo) == x - mean_hi
    _NO_REASSOC = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}

    @njit(parallel=True, fastmath=True, cache=True)
    def _stats_kernel(x, shift, nblocks):
        m, c = x.shape
        part = np.zeros((nblocks, 2, c), dtype=np.float64)
        step = (m + nblocks - 1) // nblocks
        for b in prange(nblocks):
            acc = part[b, 0]
            acc2 = part[b, 1]
            for i in range(b * step, min(m, (b + 1) * step)):
                row = x[i]
                for j in range(c):
                    v = np.float64(row[j]) - shift[j]
                    acc[j] += v
                    acc2[j] += v * v
        return part  # summed over blocks by the caller (in NumPy: keeps the kernel quick to compile)

    @njit(parallel=True, fastmath=True, cache=True)
    def _grad_sums_kernel(dy, x, mean, nblocks):
        m, c = x.shape
        part = np.zeros((nblocks, 2, c), dtype=np.float64)
        step = (m + nblocks - 1) // nblocks
        for b in prange(nblocks):
            acc = part[b, 0]
            accx = part[b, 1]
            for i in range(b * step, min(m, (b + 1) * step)):
                grow = dy[i]
                xrow = x[i]
                for j in range(c):
                    g = np.float64(grow[j])
                    acc[j] += g
                    accx[j] += g * (np.float64(xrow[j]) - mean[j])
        return part  # summed over blocks by the caller (in NumPy: keeps the kernel quick to compile)

    @njit(parallel=True, fastmath=_NO_REASSOC, cache=True)
    def _scale_shift_kernel(x, mean_hi, mean_lo, scale, bias, out):
        m, c = x.shape
        for i in prange(m):
            xrow = x[i]
            orow = out[i]
            for j in range(c):
                orow[j] = ((xrow[j] - mean_hi[j]) - mean_lo[j]) * scale[j] + bias[j]

    @njit(parallel=True, fastmath=_NO_REASSOC, cache=True)
    def _grad_input_kernel(dy, x, mean_hi, mean_lo, k1, k2, k3, out):
        m, c = x.shape
        for i in prange(m):
            grow = dy[i]
            xrow = x[i]
            orow = out[i]
            for j in range(c):
                orow[j] = k1[j] * grow[j] + k2[j] * ((xrow[j] - mean_hi[j]) - mean_lo[j]) + k3[j]


if HAVE_NUMBA:  # serial twins for small arrays (lucid/kernels/_numba.py)
    add_serial_twins(_stats_kernel, _grad_sums_kernel, _scale_shift_kernel, _grad_input_kernel)


def _nblocks(m: int) -> int:
    # a few blocks per thread balance uneven threads; each block's partial sums cost 2*C float64
    return max(1, min(m, 4 * numba.get_num_threads()))


def split_mean(mean, dtype):
    """A float64 per-channel mean as two vectors of ``dtype`` whose sum is the mean to ~2x the precision."""
    hi = mean.astype(dtype)
    lo = (mean - hi.astype(mean.dtype)).astype(dtype)
    return hi, lo


# ---------------------------------------------------------------------------------------------------------
# dispatch: x, dy, out are (M, C) C-contiguous; per-channel vectors are 1-D of length C. float64 vectors
# (shift, mean) stay float64; the others have x's dtype.
def stats(x, shift):
    """(sum (x - shift), sum (x - shift)^2) over rows, float64 arrays of length C."""
    if use_numba(x) and x.shape[0] > 0:
        kernel, blocks = pick_parts(_stats_kernel, x.size, "memory", _nblocks(x.shape[0]))
        r = kernel(x, shift, blocks).sum(axis=0)
        return r[0], r[1]
    return stats_ref(x, shift)


def scale_shift(x, mean_hi, mean_lo, scale, bias, out):
    if use_numba(x):
        pick(_scale_shift_kernel, x.size, "memory")(x, mean_hi, mean_lo, scale, bias, out)
        return out
    return scale_shift_ref(x, mean_hi, mean_lo, scale, bias, out)


def grad_sums(dy, x, mean):
    """(sum dy, sum dy * (x - mean)) over rows, float64 arrays of length C."""
    if use_numba(x) and dy.dtype == x.dtype and x.shape[0] > 0:
        kernel, blocks = pick_parts(_grad_sums_kernel, x.size, "memory", _nblocks(x.shape[0]))
        r = kernel(dy, x, mean, blocks).sum(axis=0)
        return r[0], r[1]
    return grad_sums_ref(dy, x, mean)


def grad_input(dy, x, mean_hi, mean_lo, k1, k2, k3, out):
    if use_numba(x) and dy.dtype == x.dtype:
        pick(_grad_input_kernel, x.size, "memory")(dy, x, mean_hi, mean_lo, k1, k2, k3, out)
        return out
    return grad_input_ref(dy, x, mean_hi, mean_lo, k1, k2, k3, out)


# =========================================================================================================
# LayerNorm rows. LayerNorm lives here too because it is the same kind of memory-bound normalisation pass,
# over rows instead of columns: x is an (R, D) C-contiguous matrix whose rows are normalised. The forward
# returns y and the per-row mean and 1/std (float32, (R,)); the backward recomputes xhat from x on the fly
# instead of keeping a full-size xhat array alive between the passes. A row (D floats) stays in L1 cache
# while it is reduced and written, so each pass reads x (and dy) from memory once.
def layer_norm_forward_ref(x, weight, bias, eps):
    """(y, mean, invstd) for rows of x; weight/bias (D,) or None."""
    xp = xp_of(x)
    mean = x.mean(axis=1, keepdims=True)  # pairwise summation along the contiguous axis
    xc = x - mean
    var = (xc * xc).mean(axis=1, keepdims=True)
    invstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
    xc *= invstd
    if weight is not None:
        xc *= weight
    if bias is not None:
        xc += bias
    return xc, mean[:, 0], invstd[:, 0]


def layer_norm_backward_ref(dy, x, mean, invstd, weight, need_w, need_b):
    """(dx, dweight, dbias) for ``layer_norm_forward_ref``; dweight/dbias None unless asked for."""
    xhat = (x - mean[:, None]) * invstd[:, None]
    dw = (dy * xhat).sum(axis=0) if need_w else None
    db = dy.sum(axis=0) if need_b else None
    gh = dy * weight if weight is not None else dy.copy()
    D = x.shape[1]
    mean_gh = gh.mean(axis=1, keepdims=True)
    mean_ghx = (gh * xhat).sum(axis=1, keepdims=True) / D
    # dx = invstd * (gh - mean(gh) - xhat * mean(gh * xhat)), in place in gh
    gh -= mean_gh
    xhat *= mean_ghx
    gh -= xhat
    gh *= invstd[:, None]
    return gh, dw, db


if HAVE_NUMBA:

    @njit(parallel=True, fastmath=True, cache=True)
    def _ln_forward_kernel(x, w, b, eps, y, mean, invstd):
        r, d = x.shape
        for i in prange(r):
            row = x[i]
            s = 0.0
            for j in range(d):
                s += np.float64(row[j])
            mu = s / d
            ss = 0.0
            for j in range(d):
                c = np.float64(row[j]) - mu
                ss += c * c
            inv = 1.0 / np.sqrt(ss / d + eps)
            m32 = np.float32(mu)
            i32 = np.float32(inv)
            mean[i] = m32
            invstd[i] = i32
            out = y[i]
            for j in range(d):
                out[j] = (row[j] - m32) * i32 * w[j] + b[j]

    @njit(parallel=True, fastmath=True, cache=True)
    def _ln_backward_kernel(dy, x, mean, invstd, w, nblocks, dx):
        r, d = x.shape
        part = np.zeros((nblocks, 2, d), dtype=np.float64)  # per-block sums of dy * xhat and dy
        step = (r + nblocks - 1) // nblocks
        for blk in prange(nblocks):
            pw = part[blk, 0]
            pb = part[blk, 1]
            for i in range(blk * step, min(r, (blk + 1) * step)):
                g = dy[i]
                row = x[i]
                mu = mean[i]
                inv = invstd[i]
                a = np.float32(0.0)
                c = np.float32(0.0)
                for j in range(d):
                    xh = (row[j] - mu) * inv
                    gh = g[j] * w[j]
                    a += gh
                    c += gh * xh
                    pw[j] += np.float64(g[j] * xh)
                    pb[j] += np.float64(g[j])
                a /= d
                c /= d
                out = dx[i]
                for j in range(d):
                    xh = (row[j] - mu) * inv
                    out[j] = inv * (g[j] * w[j] - a - xh * c)
        return part  # summed over blocks by the caller (in NumPy: keeps the kernel quick to compile)


if HAVE_NUMBA:
    add_serial_twins(_ln_forward_kernel, _ln_backward_kernel)


def layer_norm_forward(x, weight, bias, eps):
    """(y, mean, invstd) over the rows of an (R, D) C-contiguous matrix (numba for float32 NumPy)."""
    if not use_numba(x) or x.size == 0:
        return layer_norm_forward_ref(x, weight, bias, eps)
    R, D = x.shape
    w = np.ones(D, np.float32) if weight is None else weight.astype(np.float32, copy=False)
    b = np.zeros(D, np.float32) if bias is None else bias.astype(np.float32, copy=False)
    y = np.empty_like(x)
    mean = np.empty(R, np.float32)
    invstd = np.empty(R, np.float32)
    pick(_ln_forward_kernel, x.size, "memory")(x, w, b, float(eps), y, mean, invstd)
    return y, mean, invstd


def layer_norm_backward(dy, x, mean, invstd, weight, need_w, need_b):
    """(dx, dweight, dbias) for ``layer_norm_forward``; dy, x (R, D) C-contiguous."""
    if not use_numba(x) or x.size == 0 or dy.dtype != x.dtype:
        return layer_norm_backward_ref(dy, x, mean, invstd, weight, need_w, need_b)
    D = x.shape[1]
    w = np.ones(D, np.float32) if weight is None else weight.astype(np.float32, copy=False)
    dx = np.empty_like(x)
    kernel, blocks = pick_parts(_ln_backward_kernel, x.size, "memory", _nblocks(x.shape[0]))
    sums = kernel(dy, x, mean, invstd, w, blocks, dx).sum(axis=0)
    dw = sums[0].astype(np.float32) if need_w else None
    db = sums[1].astype(np.float32) if need_b else None
    return dx, dw, db
