"""A channel-split depthwise mixer: identity channels + several depthwise branches, with a fused kernel for
small maps (InceptionNeXt's token mixer is one: 3x3, 1xK and Kx1 branches).

The mixer splits the channels of an NHWC activation into an identity part and ``nb`` branches of ``gc``
channels each, every branch a stride-1 depthwise conv with "same" padding (3x3, 1xK, Kx1 in InceptionNeXt)::

    y[..., :c_id]              = x[..., :c_id]
    y[..., c0_b:c0_b + gc]     = bias_b + depthwise_b(x[..., c0_b:c0_b + gc])      for each branch b

Two ways to compute it, chosen by the map size (``fused_pays``):

* per branch: a contiguous copy of the branch's channels, ``depthwise.forward`` on it (numba, vectorised over
  whole image rows of W * gc floats), the result copied into the output. Best on large maps.
* fused (numba, maps of at most ``FUSED_MAX_PIXELS`` pixels): one launch per direction that reads the channel
  slices in place and writes every output row once (the input gradient is the same kernel with the taps
  flipped). On 4x4 to 1x1 maps (InceptionNeXt's stages 2-4 at 32x32 input) the per-branch way is mostly
  fixed cost: three copies in, three launches, three copies out. On 8x8 and larger maps the fused kernel's
  per-pixel loops over gc channels lose, so those keep the per-branch way (A/B figures: docs/benchmarks.md).

Layouts (C-contiguous): x, y, gy, gx (N, H, W, C); packed taps ``wpack`` (T, gc) where branch b's tap
(i, j) is row ``toff[b] + i * kw[b] + j``; ``bpack`` (nb, gc) the biases. Branch tables ``c0``, ``kh``,
``kw``, ``pt``, ``pl``, ``toff`` are int64 arrays of length nb (pt, pl: top/left padding).

Entry points ``forward`` and ``backward`` take the geometry as a ``Branches``
tuple. Arrays other than float32/float64 NumPy, or ``LUCID_NO_NUMBA=1``, take the reference: the per-branch
way on ``depthwise``'s NumPy/CuPy reference functions.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .._backend import xp_of
from ..backends import row_threads
from ..backends.cpu import MIXER_FUSED_MAX_PIXELS as FUSED_MAX_PIXELS
from ..backends.cpu import MIXER_SPLIT_MIN_ELEMENTS as SPLIT_MIN_ELEMENTS
from . import depthwise
from ._numba import HAVE_NUMBA, add_serial_twins, pick, pick_parts

if HAVE_NUMBA:
    import numba
    from numba import njit, prange


class Branches(NamedTuple):
    """The mixer's geometry: identity channels [0, c_id), then one (c0, (kh, kw), (pt, pl)) per branch, each
    over channels [c0, c0 + gc)."""
    c_id: int
    gc: int
    c0: tuple
    kernel: tuple  # ((kh, kw), ...)
    pad: tuple  # ((pt, pl), ...)


@lru_cache(maxsize=256)
def _tables(br: Branches):
    """The kernels' int64 branch tables (c0, kh, kw, pt, pl, toff) for ``br``; cached per geometry (read-only
    arrays shared by every call: building them was a fifth of a small mixer call)."""
    kh = np.array([k[0] for k in br.kernel], np.int64)
    kw = np.array([k[1] for k in br.kernel], np.int64)
    toff = np.concatenate([[0], np.cumsum(kh * kw)[:-1]]).astype(np.int64)
    tables = (np.array(br.c0, np.int64), kh, kw, np.array([p[0] for p in br.pad], np.int64),
              np.array([p[1] for p in br.pad], np.int64), toff)
    for t in tables:
        t.flags.writeable = False
    return tables


def pack_weights(weights, br: Branches):
    """Per-branch weights (gc, kh, kw) -> wpack (T, gc), taps in row-major order per branch."""
    xp = xp_of(weights[0])
    return xp.ascontiguousarray(xp.concatenate([w.reshape(br.gc, -1).T for w in weights], axis=0))


def unpack_weights(wpack, br: Branches):
    """wpack (T, gc) -> list of per-branch (gc, kh, kw) arrays (the inverse of ``pack_weights``)."""
    xp = xp_of(wpack)
    out, t = [], 0
    for kh, kw in br.kernel:
        out.append(xp.ascontiguousarray(wpack[t:t + kh * kw].T.reshape(br.gc, kh, kw)))
        t += kh * kw
    return out


def use_numba(array) -> bool:
    return depthwise.use_numba(array)


def fused_pays(x, br: Branches) -> bool:
    """Whether the fused kernels handle this NHWC array: numba usable, a map of <= FUSED_MAX_PIXELS, and
    "same" padding (k - 1) / 2 on each side, which the backward's flipped-kernel trick relies on."""
    same = all(2 * pt == kh - 1 and 2 * pl == kw - 1 for (kh, kw), (pt, pl) in zip(br.kernel, br.pad))
    return use_numba(x) and x.shape[1] * x.shape[2] <= FUSED_MAX_PIXELS and same


# ---------------------------------------------------------------------------------------------------------
# per branch: depthwise's functions on contiguous branch copies (its numba kernels, or the NumPy/CuPy
# reference, which is the definition the fused kernels are tested against)
def _geometry(br: Branches, b: int) -> tuple:
    return (1, 1, br.pad[b][0], br.pad[b][1], 1, 1)


def forward_per_branch(x, weights, biases, br: Branches, conv=depthwise.forward_ref, keep=None):
    """Branch by branch; appends each branch's contiguous input copy to the list ``keep`` when given."""
    xp = xp_of(x)
    y = xp.empty_like(x)
    copies = None if keep is None else [xp.empty(x.shape[:3] + (br.gc,), dtype=x.dtype) for _ in br.c0]
    _per_branch_into(x, y, weights, biases, br, conv, copies)
    if keep is not None:
        keep.extend(copies)
    return y


def _per_branch_into(x, y, weights, biases, br: Branches, conv, copies=None):
    """The per-branch forward of ``x`` written into ``y``; each branch's contiguous input copy goes into
    ``copies[b]`` when given (arrays of shape (N, H, W, gc)), else into a temporary."""
    xp = xp_of(x)
    n, h, w, c = x.shape
    y[..., :br.c_id] = x[..., :br.c_id]
    for b, c0 in enumerate(br.c0):
        if copies is None:
            xb = xp.ascontiguousarray(x[..., c0:c0 + br.gc])
        else:
            xb = copies[b]
            xb[...] = x[..., c0:c0 + br.gc]
        y[..., c0:c0 + br.gc] = conv(xb, weights[b], (h, w), _geometry(br, b), biases[b])


def backward_per_branch(gy, x, weights, br: Branches, need_input: bool = True, use_kernels: bool = False,
                        branch_inputs=None):
    """(gx or None, weight grads, bias grads) branch by branch, with depthwise's numba kernels when
    ``use_kernels``, else its NumPy/CuPy reference functions; ``branch_inputs``: the copies that
    ``forward_per_branch`` kept, if any (saves copying them again)."""
    grad_input = depthwise.grad_input_numba if use_kernels else depthwise.grad_input_ref
    grad_weight = depthwise.grad_weight_numba if use_kernels else depthwise.grad_weight_ref
    xp = xp_of(gy)
    n, h, w, c = gy.shape
    gx = None
    if need_input:
        gx = xp.empty_like(gy)
        gx[..., :br.c_id] = gy[..., :br.c_id]
    gws, gbs = [], []
    for b, c0 in enumerate(br.c0):
        gb = xp.ascontiguousarray(gy[..., c0:c0 + br.gc])  # one copy serves all three gradients
        if need_input:
            gx[..., c0:c0 + br.gc] = grad_input(gb, weights[b], (h, w), _geometry(br, b))
        xb = xp.ascontiguousarray(x[..., c0:c0 + br.gc]) if branch_inputs is None else branch_inputs[b]
        gws.append(grad_weight(gb, xb, br.kernel[b], _geometry(br, b)))
        gbs.append(gb.reshape(-1, br.gc).sum(axis=0))
    return gx, gws, gbs


# ---------------------------------------------------------------------------------------------------------
# fused numba kernels; x2, y2, gy2, gx2 are (N*H, W*C) row views; one prange iteration per image row. The
# channel loops run over slices from index 0 so that LLVM drops numba's negative-index checks (see
# depthwise.py); indexing the rows directly did not vectorise.
if HAVE_NUMBA:

    @njit(parallel=True, fastmath=True, cache=True)
    def _forward_kernel(x2, wpack, bpack, y2, c_id, c0s, khs, kws, pts, pls, toffs, H, W, C, gc):
        nb = c0s.shape[0]
        for r in prange(y2.shape[0]):
            n = r // H
            oh = r - n * H
            yrow = y2[r]
            xrow0 = x2[r]
            for ow in range(W):  # identity channels and the biases
                ys = yrow[ow * C:ow * C + C]
                xs = xrow0[ow * C:ow * C + C]
                for c in range(c_id):
                    ys[c] = xs[c]
                for b in range(nb):
                    yb = ys[c0s[b]:c0s[b] + gc]
                    bb = bpack[b]
                    for c in range(gc):
                        yb[c] = bb[c]
            for b in range(nb):
                c0, kh, kw, pt, pl, toff = c0s[b], khs[b], kws[b], pts[b], pls[b], toffs[b]
                for i in range(kh):
                    ih = oh - pt + i
                    if ih < 0 or ih >= H:
                        continue
                    xrow = x2[n * H + ih]
                    for j in range(kw):
                        off = j - pl
                        lo = max(0, -off)
                        hi = min(W, W - off)
                        wv = wpack[toff + i * kw + j]
                        for ow in range(lo, hi):
                            ys = yrow[ow * C + c0:ow * C + c0 + gc]
                            xs = xrow[(ow + off) * C + c0:(ow + off) * C + c0 + gc]
                            for c in range(gc):
                                ys[c] += xs[c] * wv[c]

    @njit(parallel=True, fastmath=True, cache=True)
    def _backward_params_kernel(gy2, x2, wpart, bpart, c0s, khs, kws, pts, pls, toffs, H, W, C, gc):
        # chunk p of the image rows accumulates into wpart[p] (T, gc) and bpart[p] (nb, gc); the caller
        # sums over p
        P = wpart.shape[0]
        nb = c0s.shape[0]
        rows = gy2.shape[0]
        for p in prange(P):
            wacc = wpart[p]
            bacc = bpart[p]
            wacc[:] = 0.0
            bacc[:] = 0.0
            for r in range(p * rows // P, (p + 1) * rows // P):
                n = r // H
                oh = r - n * H
                gyrow = gy2[r]
                for b in range(nb):
                    c0, kh, kw, pt, pl, toff = c0s[b], khs[b], kws[b], pts[b], pls[b], toffs[b]
                    ba = bacc[b]
                    for ow in range(W):
                        ys = gyrow[ow * C + c0:ow * C + c0 + gc]
                        for c in range(gc):
                            ba[c] += ys[c]
                    for i in range(kh):
                        ih = oh - pt + i
                        if ih < 0 or ih >= H:
                            continue
                        xrow = x2[n * H + ih]
                        for j in range(kw):
                            off = j - pl
                            lo = max(0, -off)
                            hi = min(W, W - off)
                            wa = wacc[toff + i * kw + j]
                            for ow in range(lo, hi):
                                ys = gyrow[ow * C + c0:ow * C + c0 + gc]
                                xs = xrow[(ow + off) * C + c0:(ow + off) * C + c0 + gc]
                                for c in range(gc):
                                    wa[c] += ys[c] * xs[c]


if HAVE_NUMBA:  # serial twins for small arrays (lucid/kernels/_numba.py)
    add_serial_twins(_forward_kernel, _backward_params_kernel)


def _rows(a):
    n, h, w, c = a.shape
    return a.reshape(n * h, w * c)


# ---------------------------------------------------------------------------------------------------------
# entry points
def forward(x, weights, biases, br: Branches, keep=None):
    """Mixer output (N, H, W, C) for a C-contiguous NHWC ``x``; ``weights[b]`` (gc, kh, kw), ``biases[b]`` (gc,).

    ``keep``: a list that receives the branches' contiguous input copies when the per-branch way made them;
    passing them to ``backward`` saves making them again (the fused way makes none).

    Large enough inputs run as one part per thread over the images (lucid/backends/row_threads.py), each part
    with the serial kernels; below ``SPLIT_MIN_ELEMENTS`` per thread the hand-off costs more than it saves.
    """
    if not use_numba(x) or x.size == 0:
        return forward_per_branch(x, weights, biases, br, keep=keep)
    n, h, w, c = x.shape
    parts = row_threads.parts(n, -(-SPLIT_MIN_ELEMENTS // (h * w * c)))
    y = np.empty_like(x)
    if fused_pays(x, br):
        wpack = pack_weights([wb.astype(x.dtype, copy=False) for wb in weights], br)
        bpack = np.ascontiguousarray(np.stack(biases).astype(x.dtype, copy=False))
        kernel = pick(_forward_kernel, x.size, "mixer")
        tables = _tables(br)

        def images(n0, n1):
            kernel(_rows(x[n0:n1]), wpack, bpack, _rows(y[n0:n1]), br.c_id, *tables, h, w, c, br.gc)
    else:
        conv = depthwise.forward_numba
        copies = None if keep is None else [np.empty((n, h, w, br.gc), dtype=x.dtype) for _ in br.c0]
        if copies is not None:
            keep.extend(copies)

        def images(n0, n1):
            _per_branch_into(x[n0:n1], y[n0:n1], weights, biases, br, conv,
                             None if copies is None else [cb[n0:n1] for cb in copies])
    row_threads.run(images, n, parts)
    return y


def backward(gy, x, weights, br: Branches, need_input: bool = True, branch_inputs=None):
    """Gradients for the C-contiguous NHWC output gradient ``gy`` and input ``x``: (gx (N, H, W, C) or None
    when ``need_input`` is False, [weight grad (gc, kh, kw)] per branch, [bias grad (gc,)] per branch).
    ``branch_inputs``: what ``forward`` put in ``keep``, or None; with them ``x`` may be None."""
    branch_inputs = branch_inputs or None
    inputs_dtype = branch_inputs[0].dtype if branch_inputs else x.dtype
    if not use_numba(gy) or gy.size == 0 or gy.dtype != inputs_dtype:
        return backward_per_branch(gy, x, weights, br, need_input, branch_inputs=branch_inputs)
    if branch_inputs is not None or not fused_pays(gy, br):
        return backward_per_branch(gy, x, weights, br, need_input, use_kernels=True, branch_inputs=branch_inputs)
    n, h, w, c = gy.shape
    tables = _tables(br)
    gx = None
    if need_input:
        # with padding (k - 1) / 2 on both sides the transpose of a stride-1 depthwise conv is the same conv
        # with the kernel flipped, so the forward kernel computes it (identity channels pass gy through)
        gx = np.empty_like(gy)
        flipped = [wb[:, ::-1, ::-1].astype(gy.dtype) for wb in weights]
        zeros = np.zeros((len(br.c0), br.gc), dtype=gy.dtype)
        kernel = pick(_forward_kernel, gy.size, "mixer")
        kernel(_rows(gy), pack_weights(flipped, br), zeros, _rows(gx), br.c_id, *tables, h, w, c, br.gc)
    kernel, P = pick_parts(_backward_params_kernel, gy.size, "mixer", max(1, min(numba.get_num_threads(), n * h)))
    wpart = np.empty((P, int((tables[1] * tables[2]).sum()), br.gc), dtype=gy.dtype)
    bpart = np.empty((P, len(br.c0), br.gc), dtype=gy.dtype)
    kernel(_rows(gy), _rows(x), wpart, bpart, *tables, h, w, c, br.gc)
    gws = unpack_weights(wpart.sum(axis=0), br)
    bsum = bpart.sum(axis=0)
    return gx, gws, [bsum[b] for b in range(len(br.c0))]

