"""2-D pooling: ``avg_pool2d``, ``max_pool2d``, ``adaptive_avg_pool2d``, each one Function on channels-last data.

Like conv2d, every op reads its input through the NHWC view and returns an ``(N, Ho, Wo, C)`` buffer under
the NCHW shape. The windowed pools accumulate one strided slice per kernel tap (no im2col), skipping the part
of a tap that falls in the padding; a window with kernel == stride and no padding is a reshape + mean.
Adaptive average pooling is two small matrix products with separable averaging matrices, which handles
output sizes that do not divide the input (overlapping windows) with no Python loop over windows.

Output size (PyTorch's rule): ``Ho = (H + 2*p - d*(k-1) - 1 [+ s-1 with ceil_mode]) // s + 1``, and with
ceil_mode the last window is dropped if it would start in the right padding.
"""
from __future__ import annotations

import numpy as np

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels.depthwise import tap_slices
from .conv import _nchw, _nhwc, _pair

__all__ = ["avg_pool2d", "max_pool2d", "adaptive_avg_pool2d"]


def _pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    eff = d * (k - 1) + 1
    out = (size + 2 * p - eff + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window would start in the right padding
        out -= 1
    return out


def _check_4d(x, fn: str):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")


def _window_args(fn, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Parse and check kernel/stride/padding/dilation; returns them and the output size."""
    _check_4d(input, fn)
    k = _pair(kernel_size, "kernel_size", fn)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _pair(stride, "stride", fn)
    p = _pair(padding, "padding", fn, minimum=0)
    d = _pair(dilation, "dilation", fn)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{fn}: padding should be at most half of the kernel size, got padding={padding} for "
                         f"kernel_size={kernel_size}")
    H, W = input.shape[-2:]
    out = (_pool_out_size(H, k[0], s[0], p[0], d[0], ceil_mode), _pool_out_size(W, k[1], s[1], p[1], d[1], ceil_mode))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{fn}: input spatial size ({H}, {W}) is too small for kernel_size={k}, stride={s}, "
                         f"padding={p}, dilation={d}: the output would be {out}")
    return k, s, p, d, out


def _counts(size: int, out: int, k: int, s: int, p: int, include_pad: bool, xp, dtype):
    """Per output position, how many elements the averaging window counts (PyTorch's rule)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)  # a ceil_mode window is clipped to the padded extent
    if include_pad:
        cnt = end - start
    else:
        cnt = np.minimum(end, size) - np.maximum(start, 0)
    return xp.asarray(cnt.astype(dtype))


# ---------------------------------------------------------------------------------------------------------
class AvgPool2dFunction(Function):
    """forward(x, kernel (kh, kw), stride, padding, out_hw, count_include_pad, divisor_override)"""

    @staticmethod
    def forward(ctx, x, k, s, p, out_hw, count_include_pad, divisor_override):
        xp = xp_of(x)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        xh = _nhwc(x)
        N, H, W, C = xh.shape
        Ho, Wo = out_hw
        geom = (s[0], s[1], p[0], p[1], 1, 1)
        if k == s and p == (0, 0) and Ho * k[0] <= H and Wo * k[1] <= W:
            # non-overlapping windows without padding: a reshape, one reduction
            y = xh[:, :Ho * k[0], :Wo * k[1]].reshape(N, Ho, k[0], Wo, k[1], C).sum(axis=(2, 4))
        else:
            y = xp.zeros((N, Ho, Wo, C), dtype=x.dtype)
            for i in range(k[0]):
                for j in range(k[1]):
                    sl = tap_slices(xh.shape, y.shape, i, j, geom)
                    if sl is not None:
                        y[sl[0]] += xh[sl[1]]
        if divisor_override:
            scale = xp.full((Ho, Wo, 1), 1.0 / divisor_override, dtype=x.dtype)
        else:
            ch = _counts(H, Ho, k[0], s[0], p[0], count_include_pad, xp, x.dtype)
            cw = _counts(W, Wo, k[1], s[1], p[1], count_include_pad, xp, x.dtype)
            scale = (1 / (ch[:, None] * cw[None, :]))[:, :, None]
        y *= scale
        ctx.meta = (unbatched, (N, H, W, C), k, geom, scale)
        y = _nchw(y)
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, g):
        unbatched, in_shape, k, geom, scale = ctx.meta
        xp = xp_of(g)
        if unbatched:
            g = g[None]
        gs = _nhwc(g) * scale
        N, H, W, C = in_shape
        _, Ho, Wo, _ = gs.shape
        if k == geom[:2] and geom[2:4] == (0, 0) and Ho * k[0] == H and Wo * k[1] == W:
            gx = xp.ascontiguousarray(xp.broadcast_to(gs[:, :, None, :, None, :], (N, Ho, k[0], Wo, k[1], C)))
            gx = gx.reshape(in_shape)
        else:
            gx = xp.zeros(in_shape, dtype=g.dtype)
            for i in range(k[0]):
                for j in range(k[1]):
                    sl = tap_slices(in_shape, gs.shape, i, j, geom)
                    if sl is not None:
                        gx[sl[1]] += gs[sl[0]]
        gx = _nchw(gx)
        return (gx[0] if unbatched else gx), None, None, None, None, None, None


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:  # noqa: A002
    """Average over kh x kw windows of an (N, C, H, W) or (C, H, W) input.

    Args:
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw); default ``kernel_size``.
        padding: int or (ph, pw) zeros added on both sides, at most half the kernel.
        ceil_mode: round the output size up instead of down (the extra window may hang over the edge).
        count_include_pad: divide by the window size including padding (default), or by the number of
            input elements in the window.
        divisor_override: divide every window sum by this number instead.

    Returns: (N, C, Ho, Wo), channels-last; see the module docstring for Ho, Wo.
    """
    k, s, p, _, out = _window_args("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, (int, float)) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero number or None, got {divisor_override!r}")
    return AvgPool2dFunction.apply(input, k, s, p, out, bool(count_include_pad), divisor_override)


# ---------------------------------------------------------------------------------------------------------
class MaxPool2dFunction(Function):
    """forward(x, kernel, stride, padding, dilation, out_hw, holder); keeps the winning tap per output for
    backward, and appends it to ``holder`` (a list, or None) when the caller wants the indices."""

    @staticmethod
    def forward(ctx, x, k, s, p, d, out_hw, holder):
        xp = xp_of(x)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        xh = _nhwc(x)
        N, H, W, C = xh.shape
        Ho, Wo = out_hw
        geom = (s[0], s[1], p[0], p[1], d[0], d[1])
        y = xp.full((N, Ho, Wo, C), -xp.inf, dtype=x.dtype)
        taps = k[0] * k[1]
        # which tap won; -1 until the first tap inside the image is seen (so an all -inf window still
        # routes its gradient to its first element, as PyTorch's kernel does)
        arg = xp.full((N, Ho, Wo, C), -1, dtype=xp.int8 if taps < 128 else xp.int32)
        for i in range(k[0]):
            for j in range(k[1]):
                sl = tap_slices(xh.shape, y.shape, i, j, geom)
                if sl is None:
                    continue
                v = xh[sl[1]]
                ys = y[sl[0]]
                a = arg[sl[0]]
                # strict '>' keeps the first maximum on ties; NaN wins like in PyTorch (the last NaN)
                take = (v > ys) | xp.isnan(v) | (a < 0)
                xp.copyto(ys, v, where=take)
                xp.copyto(a, i * k[1] + j, where=take)
        ctx.meta = (unbatched, (N, H, W, C), k, geom)
        ctx.save_for_backward(arg)
        if holder is not None:
            holder.append(arg)
        y = _nchw(y)
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, g):
        unbatched, in_shape, k, geom = ctx.meta
        (arg,) = ctx.saved_tensors
        xp = xp_of(g)
        if unbatched:
            g = g[None]
        gh = _nhwc(g)
        gx = xp.zeros(in_shape, dtype=g.dtype)
        zero = xp.zeros((), dtype=g.dtype)
        for i in range(k[0]):
            for j in range(k[1]):
                sl = tap_slices(in_shape, gh.shape, i, j, geom)
                if sl is not None:
                    # within one tap the output -> input map is one-to-one, so += on the strided slice is safe
                    gx[sl[1]] += xp.where(arg[sl[0]] == i * k[1] + j, gh[sl[0]], zero)
        gx = _nchw(gx)
        return (gx[0] if unbatched else gx), None, None, None, None, None, None


def _flat_indices(arg, k, geom, W):
    """PyTorch's return_indices: the argmax as ih * W + iw in the input plane, int64, NHWC -> NCHW view."""
    xp = xp_of(arg)
    sh, sw, pt, pl, dh, dw = geom
    _, Ho, Wo, _ = arg.shape
    a = arg.astype(xp.int64)
    ih = xp.arange(Ho, dtype=xp.int64)[:, None, None] * sh - pt + (a // k[1]) * dh
    iw = xp.arange(Wo, dtype=xp.int64)[None, :, None] * sw - pl + (a % k[1]) * dw
    return _nchw(ih * W + iw)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):  # noqa: A002
    """Maximum over kh x kw windows of an (N, C, H, W) or (C, H, W) input.

    Args:
        kernel_size: int or (kh, kw).
        stride: int or (sh, sw); default ``kernel_size``.
        padding: int or (ph, pw) of implicit -inf padding, at most half the kernel.
        dilation: int or (dh, dw), spacing between window elements.
        ceil_mode: round the output size up instead of down.
        return_indices: also return the argmax positions (flat ``h * W + w`` indices into each input plane,
            int64, no gradient), as PyTorch does.

    Returns: (N, C, Ho, Wo), channels-last (and the indices when asked). The gradient goes to the first
    maximum of each window in row-major order (ties), or to a NaN if the window has one, as in PyTorch.
    """
    k, s, p, d, out = _window_args("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    holder = [] if return_indices else None
    y = MaxPool2dFunction.apply(input, k, s, p, d, out, holder)
    if not return_indices:
        return y
    idx = _flat_indices(holder[0], k, (s[0], s[1], p[0], p[1], d[0], d[1]), input.shape[-1])
    if input.ndim == 3:
        idx = idx[0]
    return y, Tensor._wrap(idx)


# ---------------------------------------------------------------------------------------------------------
def _adaptive_matrix(size: int, out: int, xp, dtype):
    """(out, size) averaging matrix of PyTorch's adaptive windows [floor(o*size/out), ceil((o+1)*size/out))."""
    o = np.arange(out)
    start = (o * size) // out
    end = -((-(o + 1) * size) // out)
    cols = np.arange(size)
    m = ((cols[None, :] >= start[:, None]) & (cols[None, :] < end[:, None])).astype(np.float64)
    m /= (end - start)[:, None]
    return xp.asarray(m.astype(dtype))


class AdaptiveAvgPool2dFunction(Function):
    """forward(x, out_hw). Global pooling is a mean, divisible sizes a reshape + mean, the rest two GEMMs:
    Y[n] = Ph @ X[n] @ Pw.T per channel, with Ph (Ho, H) and Pw (Wo, W) averaging matrices."""

    @staticmethod
    def forward(ctx, x, out_hw):
        xp = xp_of(x)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        xh = _nhwc(x)
        N, H, W, C = xh.shape
        Ho, Wo = out_hw
        if H % Ho == 0 and W % Wo == 0:
            kh, kw = H // Ho, W // Wo
            y = xh.reshape(N, Ho, kh, Wo, kw, C).mean(axis=(2, 4), dtype=x.dtype)
            mats = None
        else:
            ph = _adaptive_matrix(H, Ho, xp, x.dtype)
            pw = _adaptive_matrix(W, Wo, xp, x.dtype)
            t = xp.matmul(ph, xh.reshape(N, H, W * C))  # (N, Ho, W*C)
            y = xp.matmul(pw, t.reshape(N * Ho, W, C)).reshape(N, Ho, Wo, C)
            mats = (ph, pw)
        ctx.meta = (unbatched, (N, H, W, C), mats)
        y = _nchw(y)
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, g):
        unbatched, (N, H, W, C), mats = ctx.meta
        xp = xp_of(g)
        if unbatched:
            g = g[None]
        gh = _nhwc(g)
        _, Ho, Wo, _ = gh.shape
        if mats is None:
            kh, kw = H // Ho, W // Wo
            gx = xp.empty((N, Ho, kh, Wo, kw, C), dtype=g.dtype)
            gx[...] = (gh * (1.0 / (kh * kw)))[:, :, None, :, None, :]
            gx = gx.reshape(N, H, W, C)
        else:
            ph, pw = mats
            gt = xp.matmul(pw.T, gh.reshape(N * Ho, Wo, C))  # (N*Ho, W, C)
            gx = xp.matmul(ph.T, gt.reshape(N, Ho, W * C)).reshape(N, H, W, C)
        gx = _nchw(gx)
        return (gx[0] if unbatched else gx), None


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:  # noqa: A002
    """Average pooling to a fixed output size, whatever the input size.

    Args:
        output_size: int or (Ho, Wo); ``None`` in either place keeps that input size. Output row ``o`` averages
            input rows ``[floor(o*H/Ho), ceil((o+1)*H/Ho))`` (windows overlap when Ho does not divide H).

    Returns: (N, C, Ho, Wo) (or (C, Ho, Wo)), channels-last.
    """
    _check_4d(input, "adaptive_avg_pool2d")
    H, W = input.shape[-2:]
    if isinstance(output_size, (list, tuple)):
        if len(output_size) != 2:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = output_size
    oh = H if oh is None else oh
    ow = W if ow is None else ow
    for v in (oh, ow):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"adaptive_avg_pool2d: output_size must hold positive ints (or None), got "
                             f"{output_size!r}")
    if H < 1 or W < 1:
        raise ValueError(f"adaptive_avg_pool2d: input spatial size ({H}, {W}) must be non-empty")
    return AdaptiveAvgPool2dFunction.apply(input, (oh, ow))
