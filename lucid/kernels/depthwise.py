"""Depthwise 2-D convolution on channels-last (NHWC) arrays: numba kernels and the pure-NumPy reference.

A depthwise conv (``groups == in_channels == out_channels``) convolves each channel with its own
``kh x kw`` filter. InceptionNeXt's token mixer runs three of them (3x3, 1x11, 11x1) on channel slices in
every block; in a first NumPy prototype they took 25-30% of the model's CPU time.

Layouts (all C-contiguous)::

    x    (N, H, W, C)      input, channels last
    w    (C, kh, kw)       one filter per channel (PyTorch's (C, 1, kh, kw) weight without the 1)
    y    (N, Ho, Wo, C)    output, channels last
    geometry = (sh, sw, pt, pl, dh, dw): strides, top/left zero padding, dilations; the bottom/right padding
               is implied by Ho, Wo.

An output pixel (oh, ow) reads input pixel (oh*sh - pt + i*dh, ow*sw - pl + j*dw) for tap (i, j); taps that
fall outside the image read zero padding and are skipped, never materialised (no padded copy, no im2col).

Two implementations with the same signatures:

* ``*_ref``: NumPy (or CuPy) shifted-slice accumulation, one vectorised slice update per tap. Used on the
  GPU, when numba is not installed, and when ``LUCID_NO_NUMBA=1`` is set.
* ``*_numba``: compiled kernels, parallel over output rows (n, oh). In one row the (ow, c) pairs are one
  contiguous run of ``Wo*C`` floats in both x and y, so with stride 1 a tap is a single vectorisable loop
  ``y[k] += x[k + shift] * wtile[k]``, where ``wtile`` is the channel weights tiled along the row (this
  avoids a ``k % C`` in the inner loop, which is what makes a per-pixel loop over a dozen channels slow).
  The loops run over slices from index 0 so that LLVM can drop numba's negative-index wrap-around checks
  and vectorise, which alone made an order of magnitude (docs/benchmarks.md, "Kernel design").

The dispatching entry points ``forward``, ``grad_input`` and ``grad_weight`` pick numba for NumPy arrays
when it is usable (checked at each call, so tests can flip ``LUCID_NO_NUMBA``).
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
    """True when the numba kernels should handle ``array``: a float32/float64 NumPy array, numba enabled
    (lucid/kernels/_numba.py)."""
    return _numba.use_numba(array, _numba.FLOATS)


def tap_range(size_in: int, size_out: int, offset: int, stride: int):
    """Output positions ``o`` in ``[lo, hi)`` whose input position ``o*stride + offset`` is in ``[0, size_in)``.

    Returns ``(lo, hi, first_input)``; ``hi <= lo`` when the tap never touches the image.
    """
    lo = (-offset + stride - 1) // stride if offset < 0 else 0  # ceil(-offset / stride)
    last = size_in - 1 - offset  # the largest o*stride that still lands inside
    hi = min(size_out, last // stride + 1) if last >= 0 else 0
    return lo, hi, lo * stride + offset


# ---------------------------------------------------------------------------------------------------------
# NumPy / CuPy reference: one strided-slice update per tap
def tap_slices(x_shape, y_shape, i, j, geometry):
    """(output slices, input slices) over (N, H, W) for tap (i, j), or None when the tap misses the image.

    ``out[o_sl] (op)= in[i_sl]`` then applies the tap to every output pixel it reaches; conv2d's im2col and
    the pooling ops use the same helper."""
    sh, sw, pt, pl, dh, dw = geometry
    H, W = x_shape[1], x_shape[2]
    Ho, Wo = y_shape[1], y_shape[2]
    hlo, hhi, ih0 = tap_range(H, Ho, i * dh - pt, sh)
    wlo, whi, iw0 = tap_range(W, Wo, j * dw - pl, sw)
    if hhi <= hlo or whi <= wlo:
        return None
    out_sl = (slice(None), slice(hlo, hhi), slice(wlo, whi))
    in_sl = (slice(None), slice(ih0, ih0 + (hhi - hlo - 1) * sh + 1, sh),
             slice(iw0, iw0 + (whi - wlo - 1) * sw + 1, sw))
    return out_sl, in_sl


def forward_ref(x, w, out_hw, geometry, bias=None):
    """y[n, oh, ow, c] = bias[c] + sum_ij w[c, i, j] * x[n, oh*sh - pt + i*dh, ow*sw - pl + j*dw, c]."""
    xp = xp_of(x)
    N, _, _, C = x.shape
    y = xp.zeros((N, out_hw[0], out_hw[1], C), dtype=x.dtype)
    if bias is not None:
        y += bias
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            sl = tap_slices(x.shape, y.shape, i, j, geometry)
            if sl is not None:
                y[sl[0]] += x[sl[1]] * w[:, i, j]
    return y


def grad_input_ref(gy, w, in_hw, geometry):
    """dx (N, H, W, C) for dy ``gy`` (N, Ho, Wo, C): the transpose of ``forward_ref`` (a scatter per tap)."""
    xp = xp_of(gy)
    N, _, _, C = gy.shape
    gx = xp.zeros((N, in_hw[0], in_hw[1], C), dtype=gy.dtype)
    for i in range(w.shape[1]):
        for j in range(w.shape[2]):
            sl = tap_slices(gx.shape, gy.shape, i, j, geometry)
            if sl is not None:
                gx[sl[1]] += gy[sl[0]] * w[:, i, j]
    return gx


def grad_weight_ref(gy, x, k_hw, geometry):
    """dw (C, kh, kw): dw[c, i, j] = sum over n, oh, ow of dy * (the input pixel tap (i, j) read)."""
    xp = xp_of(x)
    C = x.shape[3]
    gw = xp.zeros((C, k_hw[0], k_hw[1]), dtype=x.dtype)
    for i in range(k_hw[0]):
        for j in range(k_hw[1]):
            sl = tap_slices(x.shape, gy.shape, i, j, geometry)
            if sl is not None:
                gw[:, i, j] = xp.einsum("nhwc,nhwc->c", gy[sl[0]], x[sl[1]])
    return gw


# ---------------------------------------------------------------------------------------------------------
# numba kernels. Arrays arrive as 2-D row views: x2 (N*H, W*C), y2 (N*Ho, Wo*C); wt (kh, kw, Wo*C) holds
# w[c, i, j] at wt[i, j, ow*C + c].
if HAVE_NUMBA:

    @njit(inline="always")
    def _ow_range(W, Wo, off, sw):
        """Valid output columns [lo, hi) for input column ow*sw + off (same as tap_range, compiled)."""
        lo = 0
        if off < 0:
            lo = (-off + sw - 1) // sw
        last = W - 1 - off
        hi = 0
        if last >= 0:
            hi = min(Wo, last // sw + 1)
        return lo, hi

    @njit(parallel=True, fastmath=True, cache=True)
    def _forward_kernel(x2, wt, brow, y2, H, W, C, Ho, Wo, sh, sw, pt, pl, dh, dw):
        kh, kw = wt.shape[0], wt.shape[1]
        rows = y2.shape[0]
        for r in prange(rows):
            n = r // Ho
            oh = r - n * Ho
            yrow = y2[r]
            yrow[:] = brow
            for i in range(kh):
                ih = oh * sh - pt + i * dh
                if ih < 0 or ih >= H:
                    continue
                xrow = x2[n * H + ih]
                for j in range(kw):
                    off = j * dw - pl
                    lo, hi = _ow_range(W, Wo, off, sw)
                    if hi <= lo:
                        continue
                    wrow = wt[i, j]
                    if sw == 1:
                        # slices + a loop from 0 let LLVM drop the negative-index checks and vectorise
                        ys = yrow[lo * C:hi * C]
                        xs = xrow[(lo + off) * C:(hi + off) * C]
                        ws = wrow[lo * C:hi * C]
                        for k in range(ys.shape[0]):
                            ys[k] += xs[k] * ws[k]
                    else:
                        for ow in range(lo, hi):
                            xb = (ow * sw + off) * C
                            yb = ow * C
                            for c in range(C):
                                yrow[yb + c] += xrow[xb + c] * wrow[yb + c]

    @njit(parallel=True, fastmath=True, cache=True)
    def _grad_input_kernel(gy2, wt, gx2, H, W, C, Ho, Wo, sh, sw, pt, pl, dh, dw):
        # gather form: each input row (n, ih) collects from the output rows that read it, so threads never
        # write the same memory
        kh, kw = wt.shape[0], wt.shape[1]
        rows = gx2.shape[0]
        for r in prange(rows):
            n = r // H
            ih = r - n * H
            gxrow = gx2[r]
            gxrow[:] = 0.0
            for i in range(kh):
                t = ih + pt - i * dh
                if t < 0:
                    continue
                oh = t // sh
                if oh * sh != t or oh >= Ho:
                    continue
                gyrow = gy2[n * Ho + oh]
                for j in range(kw):
                    off = j * dw - pl
                    lo, hi = _ow_range(W, Wo, off, sw)
                    if hi <= lo:
                        continue
                    wrow = wt[i, j]
                    if sw == 1:
                        gxs = gxrow[(lo + off) * C:(hi + off) * C]
                        gys = gyrow[lo * C:hi * C]
                        ws = wrow[lo * C:hi * C]
                        for k in range(gxs.shape[0]):
                            gxs[k] += gys[k] * ws[k]
                    else:
                        for ow in range(lo, hi):
                            xb = (ow * sw + off) * C
                            yb = ow * C
                            for c in range(C):
                                gxrow[xb + c] += gyrow[yb + c] * wrow[yb + c]

    @njit(parallel=True, fastmath=True, cache=True)
    def _grad_weight_kernel(gy2, x2, part, H, W, C, Ho, Wo, sh, sw, pt, pl, dh, dw):
        # part (P, kh, kw, Wo*C): chunk p of the output rows accumulates into part[p]; the caller sums over
        # p and over ow. Accumulating per (ow, c) keeps the inner loop contiguous and vectorisable.
        P, kh, kw = part.shape[0], part.shape[1], part.shape[2]
        rows = gy2.shape[0]
        for p in prange(P):
            acc = part[p]
            acc[:] = 0.0
            for r in range(p * rows // P, (p + 1) * rows // P):
                n = r // Ho
                oh = r - n * Ho
                gyrow = gy2[r]
                for i in range(kh):
                    ih = oh * sh - pt + i * dh
                    if ih < 0 or ih >= H:
                        continue
                    xrow = x2[n * H + ih]
                    for j in range(kw):
                        off = j * dw - pl
                        lo, hi = _ow_range(W, Wo, off, sw)
                        if hi <= lo:
                            continue
                        arow = acc[i, j]
                        if sw == 1:
                            acs = arow[lo * C:hi * C]
                            gys = gyrow[lo * C:hi * C]
                            xs = xrow[(lo + off) * C:(hi + off) * C]
                            for k in range(acs.shape[0]):
                                acs[k] += gys[k] * xs[k]
                        else:
                            for ow in range(lo, hi):
                                xb = (ow * sw + off) * C
                                yb = ow * C
                                for c in range(C):
                                    arow[yb + c] += gyrow[yb + c] * xrow[xb + c]


if HAVE_NUMBA:  # serial twins for small arrays (lucid/kernels/_numba.py)
    add_serial_twins(_forward_kernel, _grad_input_kernel, _grad_weight_kernel)


def _weight_tile(w, Wo):
    """(kh, kw, Wo*C) with w[c, i, j] at [i, j, ow*C + c]: per-channel weights repeated along a row."""
    C, kh, kw = w.shape
    return np.ascontiguousarray(np.broadcast_to(w.transpose(1, 2, 0)[:, :, None, :], (kh, kw, Wo, C))).reshape(
        kh, kw, Wo * C)


def forward_numba(x, w, out_hw, geometry, bias=None):
    N, H, W, C = x.shape
    Ho, Wo = out_hw
    x = np.ascontiguousarray(x)
    y = np.empty((N, Ho, Wo, C), dtype=x.dtype)
    brow = np.zeros(Wo * C, dtype=x.dtype) if bias is None else np.tile(bias.astype(x.dtype, copy=False), Wo)
    if y.size:
        kernel = pick(_forward_kernel, y.size, "stencil")
        kernel(x.reshape(N * H, W * C), _weight_tile(w.astype(x.dtype, copy=False), Wo), brow,
               y.reshape(N * Ho, Wo * C), H, W, C, Ho, Wo, *geometry)
    return y


def grad_input_numba(gy, w, in_hw, geometry):
    N, Ho, Wo, C = gy.shape
    H, W = in_hw
    gy = np.ascontiguousarray(gy)
    gx = np.empty((N, H, W, C), dtype=gy.dtype)
    if gx.size:
        if gy.size:
            kernel = pick(_grad_input_kernel, gx.size, "stencil")
            kernel(gy.reshape(N * Ho, Wo * C), _weight_tile(w.astype(gy.dtype, copy=False), Wo),
                   gx.reshape(N * H, W * C), H, W, C, Ho, Wo, *geometry)
        else:
            gx[...] = 0
    return gx


def grad_weight_numba(gy, x, k_hw, geometry):
    N, H, W, C = x.shape
    _, Ho, Wo, _ = gy.shape
    kh, kw = k_hw
    gy = np.ascontiguousarray(gy)
    x = np.ascontiguousarray(x)
    if gy.size == 0:
        return np.zeros((C, kh, kw), dtype=x.dtype)
    kernel, P = pick_parts(_grad_weight_kernel, gy.size, "stencil", max(1, min(numba.get_num_threads(), N * Ho)))
    part = np.empty((P, kh, kw, Wo * C), dtype=x.dtype)
    kernel(gy.reshape(N * Ho, Wo * C), x.reshape(N * H, W * C), part, H, W, C, Ho, Wo, *geometry)
    return np.ascontiguousarray(part.sum(axis=0).reshape(kh, kw, Wo, C).sum(axis=2).transpose(2, 0, 1))


# ---------------------------------------------------------------------------------------------------------
# dispatch
def forward(x, w, out_hw, geometry, bias=None):
    """Depthwise conv forward on NHWC ``x`` with ``w`` (C, kh, kw); returns a C-contiguous (N, Ho, Wo, C)."""
    if use_numba(x):
        return forward_numba(x, w, out_hw, geometry, bias)
    return forward_ref(x, w, out_hw, geometry, bias)


def grad_input(gy, w, in_hw, geometry):
    """Gradient with respect to the NHWC input: (N, H, W, C)."""
    if use_numba(gy):
        return grad_input_numba(gy, w, in_hw, geometry)
    return grad_input_ref(gy, w, in_hw, geometry)


def grad_weight(gy, x, k_hw, geometry):
    """Gradient with respect to the weight: (C, kh, kw)."""
    if use_numba(gy):
        return grad_weight_numba(gy, x, k_hw, geometry)
    return grad_weight_ref(gy, x, k_hw, geometry)
