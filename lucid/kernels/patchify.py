"""Patch matrix of a convolution whose kernel equals its stride (InceptionNeXt's 4x4/s4 stem), for input
stored NCHW: one numba pass instead of NumPy's six-axis transpose copy.

The patchify conv (lucid/ops/conv.py) multiplies ``patches (N*Ho*Wo, kh*kw*C)`` by the weight. For
channels-last input NumPy builds that matrix quickly (contiguous runs of kw*C floats). For NCHW input, the
layout images arrive in from a data loader, every output float is a gather across channel planes, and NumPy's
strided copy is slow (about 2.5x this kernel; docs/benchmarks.md). The kernel reads the input in memory order
and writes each patch's floats in place.

``patches(x, kh, kw, Ho, Wo)`` returns the (N, Ho, Wo, kh, kw, C) C-contiguous array; ``use_kernel(x)`` says
whether the kernel handles ``x`` (float32/float64 NumPy, W the fastest axis, numba usable); everything else
takes the NumPy reference, ``patches_ref``.
"""
from __future__ import annotations

import numpy as np

from ..backends import row_threads
from ..backends.cpu import PATCHIFY_SPLIT_MIN_ELEMENTS as SPLIT_MIN_ELEMENTS
from . import depthwise
from ._numba import HAVE_NUMBA

if HAVE_NUMBA:
    from numba import njit


def patches_ref(x, kh: int, kw: int, Ho: int, Wo: int):
    """(N, Ho, Wo, kh, kw, C) copy of the non-overlapping kh x kw patches of (N, C, H, W) ``x`` (any layout);
    rows/columns past Ho*kh, Wo*kw are dropped."""
    N, C = x.shape[:2]
    xc = x[:, :, :Ho * kh, :Wo * kw]
    return xc.reshape(N, C, Ho, kh, Wo, kw).transpose(0, 2, 4, 3, 5, 1).copy()


def use_kernel(x) -> bool:
    """The kernel pays for NCHW-ordered input (W's stride the smallest); channels-last input keeps NumPy's
    copy, which is fast there (and faster than this loop)."""
    return HAVE_NUMBA and depthwise.use_numba(x) and x.ndim == 4 and abs(x.strides[3]) < abs(x.strides[1])


if HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _patches_kernel(x, kh, kw, out):
        # x (N, C, H, W), any strides, read along W; out (N, Ho, Wo, kh, kw, C) C-contiguous
        N, C = x.shape[0], x.shape[1]
        Ho, Wo = out.shape[1], out.shape[2]
        for n in range(N):
            for c in range(C):
                for ho in range(Ho):
                    for i in range(kh):
                        xrow = x[n, c, ho * kh + i]
                        for wo in range(Wo):
                            o = out[n, ho, wo, i]
                            for j in range(kw):
                                o[j, c] = xrow[wo * kw + j]


def patches(x, kh: int, kw: int, Ho: int, Wo: int):
    """``patches_ref(x, kh, kw, Ho, Wo)``, with the numba kernel where ``use_kernel(x)``; large batches are
    split over the images, one part per thread (lucid/backends/row_threads.py)."""
    if not use_kernel(x):
        return patches_ref(x, kh, kw, Ho, Wo)
    N, C = x.shape[:2]
    out = np.empty((N, Ho, Wo, kh, kw, C), dtype=x.dtype)
    if out.size:
        per_image = out[0].size
        parts = row_threads.parts(N, -(-SPLIT_MIN_ELEMENTS // per_image))
        row_threads.run(lambda n0, n1: _patches_kernel(x[n0:n1], kh, kw, out[n0:n1]), N, parts)
    return out
