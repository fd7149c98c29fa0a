"""2-D convolution: ``conv2d`` as one Function with a hand-written backward, computed on channels-last data.

Layout. The input is read through its NHWC view (``x.transpose(0, 2, 3, 1)``, free when the input is already
channels-last, one copy otherwise) and the output is an ``(N, Ho, Wo, Cout)`` C-contiguous buffer returned as
its NCHW-shaped view, PyTorch's ``channels_last`` memory format. Then a 1x1 convolution is a single
``(N*H*W, Cin) @ (Cin, Cout)`` GEMM with no copies, and the next layer gets the same deal.

Four paths, chosen from the geometry (all give the same numbers up to float rounding):

============  =====================================================  ==========================================
path          when                                                   how
============  =====================================================  ==========================================
``1x1``       kernel 1x1, stride 1, no padding, groups 1             one GEMM; dW = dY.T @ X, dX = dY @ W
``patchify``  kernel == stride, no padding, dilation 1, groups 1     (N*Ho*Wo, kh*kw*Cin) patches by reshape/
              (InceptionNeXt's 4x4/s4 stem, 2x2/s2 downsample)       transpose, one GEMM; reverse for backward
``depthwise`` groups == in_channels == out_channels                  per-tap accumulation, no im2col: numba
                                                                     kernels (lucid/kernels/depthwise.py) or
                                                                     NumPy/CuPy shifted slices
``general``   anything else (groups, stride, padding, dilation)      im2col in batch chunks of bounded memory,
                                                                     one (grouped) GEMM per chunk
============  =====================================================  ==========================================
"""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels import depthwise as _dw
from ..kernels import patchify as _patchify

__all__ = ["conv2d"]

# im2col works on batch chunks whose column matrix stays under this many bytes (bounds peak memory for big
# kernels; a 3x3 conv on 64 channels at 56x56 needs ~7 MB per image)
_IM2COL_BYTES = 64 * 2 ** 20


# ---------------------------------------------------------------------------------------------------------
# argument parsing shared with pool.py
def _pair(value, name: str, fn: str, minimum: int = 1) -> tuple:
    """An int or a 1-/2-sequence of ints -> (h, w); errors name the argument, the value and the bound."""
    if isinstance(value, (list, tuple)):
        vals = tuple(value)
        if len(vals) == 1:
            vals = vals * 2
    else:
        vals = (value, value)
    if len(vals) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in vals):
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value!r}")
    return vals


def _nhwc(x):
    """The C-contiguous (N, H, W, C) array behind an (N, C, H, W) array: free for channels-last input."""
    return xp_of(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


def _nchw(buf):
    """An NCHW-shaped view of an NHWC buffer (what every 4-D op here returns)."""
    return buf.transpose(0, 3, 1, 2)


def _out_size(size: int, k: int, stride: int, pad_total: int, dilation: int) -> int:
    return (size + pad_total - dilation * (k - 1) - 1) // stride + 1


def _same_padding(k: int, dilation: int) -> tuple:
    """PyTorch's 'same': total dilation*(k-1), the odd one extra at the end (bottom/right)."""
    total = dilation * (k - 1)
    return total // 2, total - total // 2


# ---------------------------------------------------------------------------------------------------------
# im2col / col2im for the general path: cols[n, oh, ow, g, i, j, ci] = x[n, ih, iw, g*Cin_g + ci]
def _im2col(xh, kh, kw, out_hw, geom, groups, padded):
    xp = xp_of(xh)
    n, H, W, C = xh.shape
    Ho, Wo = out_hw
    cg = C // groups
    alloc = xp.zeros if padded else xp.empty  # without padding every tap covers every output
    cols = alloc((n, Ho, Wo, groups, kh, kw, cg), dtype=xh.dtype)
    x5 = xh.reshape(n, H, W, groups, cg)
    for i in range(kh):
        for j in range(kw):
            sl = _dw.tap_slices(xh.shape, (n, Ho, Wo), i, j, geom)
            if sl is not None:
                cols[:, sl[0][1], sl[0][2], :, i, j, :] = x5[sl[1]]
    return cols


def _col2im(dcols, in_shape, out_hw, geom):
    xp = xp_of(dcols)
    n, H, W, C = in_shape
    _, Ho, Wo, groups, kh, kw, cg = dcols.shape
    gx = xp.zeros(in_shape, dtype=dcols.dtype)
    g5 = gx.reshape(n, H, W, groups, cg)
    for i in range(kh):
        for j in range(kw):
            sl = _dw.tap_slices(in_shape, (n, Ho, Wo), i, j, geom)
            if sl is not None:
                g5[sl[1]] += dcols[:, sl[0][1], sl[0][2], :, i, j, :]
    return gx


def _sum_rows(a):
    """Column sums of a C-contiguous (rows, C) array (the bias gradient).

    With few channels NumPy's axis-0 sum walks short rows one at a time; viewing blocks of k rows as one row
    of ~1024 floats first makes the same sum vectorise, without the BLAS-threading cost a ones-vector GEMV has
    on a busy machine, and with less rounding error (figures: docs/benchmarks.md, "Kernel design").
    """
    rows, c = a.shape
    k = max(1, 1024 // max(c, 1))
    m = (rows // k) * k
    s = a[:m].reshape(rows // k, k * c).sum(axis=0).reshape(k, c).sum(axis=0)
    if m < rows:
        s += a[m:].sum(axis=0)
    return s


def _batch_chunk(n: int, per_image_bytes: int) -> int:
    return max(1, min(n, _IM2COL_BYTES // max(per_image_bytes, 1)))


# ---------------------------------------------------------------------------------------------------------
class Conv2dFunction(Function):
    """conv2d forward and backward (see the module docstring for the paths).

    forward(x (N, Cin, H, W) or (Cin, H, W), w (Cout, Cin/groups, kh, kw), b (Cout,) or None,
            stride (sh, sw), pads (top, bottom, left, right), dilation (dh, dw), groups)
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, pads, dilation, groups):
        xp = xp_of(x)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        N, Cin, H, W = x.shape
        Cout, cg, kh, kw = w.shape
        sh, sw = stride
        pt, pb, pl, pr = pads
        dh, dw = dilation
        Ho = _out_size(H, kh, sh, pt + pb, dh)
        Wo = _out_size(W, kw, sw, pl + pr, dw)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        no_pad = pt == pb == pl == pr == 0
        if kh == kw == 1 and sh == sw == 1 and no_pad and groups == 1:
            path = "1x1"
        elif (kh, kw) == (sh, sw) and no_pad and dh == dw == 1 and groups == 1:
            path = "patchify"
        elif groups == Cin == Cout and cg == 1:
            path = "depthwise"
        else:
            path = "general"
        geom = (sh, sw, pt, pl, dh, dw)
        ctx.meta = (path, unbatched, (N, Cin, H, W), (Ho, Wo), (kh, kw), geom, groups, not no_pad)
        if path == "1x1":
            x2 = _nhwc(x).reshape(-1, Cin)
            w2 = w.reshape(Cout, Cin)
            y2 = x2 @ w2.T
            # x itself is saved too (unused) so that the engine's version check sees in-place changes to it
            ctx.save_for_backward(x2 if need_w else None, w2 if need_x else None, x if need_w else None)
        elif path == "patchify":
            # (N, C, Ho*kh, Wo*kw) -> (N, C, Ho, kh, Wo, kw) -> (N, Ho, Wo, kh, kw, C): one row per patch, in one
            # copy from whatever layout x has (going through the NHWC view first would copy NCHW input twice;
            # NCHW input takes a numba kernel, lucid/kernels/patchify.py)
            patches = _patchify.patches(x, kh, kw, Ho, Wo).reshape(-1, kh * kw * Cin)
            wm = w.transpose(0, 2, 3, 1).reshape(Cout, kh * kw * Cin)  # same (kh, kw, C) order
            y2 = patches @ wm.T
            # the patch matrix is a copy, so it is immune to later in-place changes of x
            ctx.save_for_backward(patches if need_w else None, wm if need_x else None, None)
        elif path == "depthwise":
            wd = w.reshape(Cout, kh, kw)
            xh = _nhwc(x)
            y = _dw.forward(xh, wd, (Ho, Wo), geom, b)
            ctx.save_for_backward(xh if need_w else None, wd if need_x else None, x if need_w else None)
            y = _nchw(y)
            return y[0] if unbatched else y
        else:
            G = groups
            cog = Cout // G
            K = kh * kw * cg
            # wg[g, (i, j, ci), co] = w[g*cog + co, ci, i, j], matching the im2col column order
            wg = w.reshape(G, cog, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(G, K, cog)
            xh = _nhwc(x)
            y2 = xp.empty((N * Ho * Wo, Cout), dtype=x.dtype)
            step = _batch_chunk(N, Ho * Wo * K * G * x.dtype.itemsize)
            for n0 in range(0, N, step):
                cols = _im2col(xh[n0:n0 + step], kh, kw, (Ho, Wo), geom, G, padded=not no_pad)
                rows = cols.shape[0] * Ho * Wo
                r0 = n0 * Ho * Wo
                if G == 1:
                    xp.matmul(cols.reshape(rows, K), wg[0], out=y2[r0:r0 + rows])
                else:
                    yg = xp.matmul(cols.reshape(rows, G, K).transpose(1, 0, 2), wg)  # (G, rows, cog)
                    y2[r0:r0 + rows].reshape(rows, G, cog)[...] = yg.transpose(1, 0, 2)
            ctx.save_for_backward(xh if need_w else None, wg if need_x else None, x if need_w else None)
        if b is not None:
            y2 += b
        y = _nchw(y2.reshape(N, Ho, Wo, Cout))
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, g):
        path, unbatched, (N, Cin, H, W), (Ho, Wo), (kh, kw), geom, groups, padded = ctx.meta
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        saved_x, saved_w, _ = ctx.saved_tensors
        xp = xp_of(g)
        if unbatched:
            g = g[None]
        gh = _nhwc(g)  # (N, Ho, Wo, Cout)
        Cout = gh.shape[3]
        g2 = gh.reshape(-1, Cout)
        gx = gw = gb = None
        if need_b:
            gb = _sum_rows(g2)

        if path == "1x1":
            if need_x:
                gx = (g2 @ saved_w).reshape(N, H, W, Cin)
            if need_w:
                gw = (g2.T @ saved_x).reshape(Cout, Cin, 1, 1)
        elif path == "patchify":
            if need_w:
                gw = xp.ascontiguousarray((g2.T @ saved_x).reshape(Cout, kh, kw, Cin).transpose(0, 3, 1, 2))
            if need_x:
                dp = (g2 @ saved_w).reshape(N, Ho, Wo, kh, kw, Cin).transpose(0, 1, 3, 2, 4, 5)
                if Ho * kh == H and Wo * kw == W:
                    gx = xp.ascontiguousarray(dp).reshape(N, H, W, Cin)
                else:  # the rows/columns that the floor division dropped get zero gradient
                    gx = xp.zeros((N, H, W, Cin), dtype=g.dtype)
                    gx[:, :Ho * kh, :Wo * kw].reshape(N, Ho, kh, Wo, kw, Cin)[...] = dp
        elif path == "depthwise":
            if need_x:
                gx = _dw.grad_input(gh, saved_w, (H, W), geom)
            if need_w:
                gw = _dw.grad_weight(gh, saved_x, (kh, kw), geom).reshape(Cout, 1, kh, kw)
        else:
            gx, gw = _general_backward(gh, saved_x, saved_w, (N, H, W, Cin), (Ho, Wo), (kh, kw), geom, groups,
                                       padded, need_x, need_w)
        if gx is not None:
            gx = _nchw(gx)
            if unbatched:
                gx = gx[0]
        return gx, gw, gb, None, None, None, None


def _general_backward(gh, xh, wg, in_shape, out_hw, k_hw, geom, groups, padded, need_x, need_w):
    """dX (NHWC) and dW (Cout, Cin/G, kh, kw) of the im2col path, recomputing the columns chunk by chunk."""
    xp = xp_of(gh)
    N, H, W, Cin = in_shape
    Ho, Wo = out_hw
    kh, kw = k_hw
    G = groups
    cg = Cin // G
    Cout = gh.shape[3]
    cog = Cout // G
    K = kh * kw * cg
    gx = xp.empty(in_shape, dtype=gh.dtype) if need_x else None
    gwg = xp.zeros((G, K, cog), dtype=gh.dtype) if need_w else None
    step = _batch_chunk(N, Ho * Wo * K * G * gh.dtype.itemsize)
    for n0 in range(0, N, step):
        n1 = min(N, n0 + step)
        rows = (n1 - n0) * Ho * Wo
        g2 = gh[n0:n1].reshape(rows, Cout)
        if need_w:
            cols = _im2col(xh[n0:n1], kh, kw, out_hw, geom, G, padded).reshape(rows, G, K)
            if G == 1:
                gwg[0] += cols[:, 0].T @ g2
            else:
                gwg += xp.matmul(cols.transpose(1, 2, 0), g2.reshape(rows, G, cog).transpose(1, 0, 2))
        if need_x:
            if G == 1:
                dcols = g2 @ wg[0].T
            else:  # (G, rows, cog) @ (G, cog, K) -> (G, rows, K) -> (rows, G, K)
                dcols = xp.matmul(g2.reshape(rows, G, cog).transpose(1, 0, 2), wg.transpose(0, 2, 1))
                dcols = xp.ascontiguousarray(dcols.transpose(1, 0, 2))
            gx[n0:n1] = _col2im(dcols.reshape(n1 - n0, Ho, Wo, G, kh, kw, cg), (n1 - n0, H, W, Cin), out_hw, geom)
    gw = None
    if need_w:
        gw = xp.ascontiguousarray(gwg.reshape(G, kh, kw, cg, cog).transpose(0, 4, 3, 1, 2).reshape(Cout, cg, kh, kw))
    return gx, gw


def _parse_padding(padding, k_hw, stride, dilation, fn="conv2d") -> tuple:
    """padding int / pair / 'same' / 'valid' -> (top, bottom, left, right)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{fn}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride}); use an explicit padding")
            return _same_padding(k_hw[0], dilation[0]) + _same_padding(k_hw[1], dilation[1])
        raise ValueError(f"{fn}: padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    ph, pw = _pair(padding, "padding", fn, minimum=0)
    return (ph, ph, pw, pw)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:  # noqa: A002 (PyTorch's argument name)
    """2-D convolution (cross-correlation, as in PyTorch) over an (N, C_in, H, W) or unbatched (C_in, H, W) input.

    Args:
        input: (N, C_in, H, W) or (C_in, H, W), any memory layout.
        weight: (C_out, C_in / groups, kh, kw).
        bias: (C_out,) or None.
        stride: int or (sh, sw).
        padding: int, (ph, pw), ``'valid'`` (no padding) or ``'same'`` (output size = input size; stride must
            be 1; an odd total padding puts the extra row/column at the bottom/right, as PyTorch does).
        dilation: int or (dh, dw), spacing between kernel taps.
        groups: input and output channels are split into this many groups convolved separately
            (``groups == C_in == C_out`` is a depthwise convolution).

    Returns:
        (N, C_out, Ho, Wo) with ``Ho = (H + pad_top + pad_bottom - dh*(kh-1) - 1) // sh + 1`` (same for W),
        stored channels-last (an NHWC buffer under the NCHW shape). Unbatched input gives (C_out, Ho, Wo).
    """
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"conv2d: input and weight must be Tensors, got {type(input).__name__} and "
                        f"{type(weight).__name__}")
    if input.ndim not in (3, 4):
        raise ValueError(f"conv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {tuple(input.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected a 4-D weight (C_out, C_in/groups, kh, kw), got shape "
                         f"{tuple(weight.shape)}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    stride = _pair(stride, "stride", "conv2d")
    dilation = _pair(dilation, "dilation", "conv2d")
    Cout, cg, kh, kw = weight.shape
    pads = _parse_padding(padding, (kh, kw), stride, dilation)
    cin = input.shape[-3]
    if Cout % groups:
        raise ValueError(f"conv2d: out_channels ({Cout}, weight shape {tuple(weight.shape)}) must be divisible by "
                         f"groups={groups}")
    if cg * groups != cin:
        raise ValueError(f"conv2d: input shape {tuple(input.shape)} has {cin} channels but weight shape "
                         f"{tuple(weight.shape)} with groups={groups} expects {cg * groups}")
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"conv2d: bias must be a Tensor or None, got {type(bias).__name__}")
        if tuple(bias.shape) != (Cout,):
            raise ValueError(f"conv2d: bias shape {tuple(bias.shape)} does not match out_channels: expected ({Cout},)")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"conv2d: input dtype {input.dtype} and {name} dtype {t.dtype} differ; convert one "
                            "of them (e.g. input.to(weight.dtype))")
    if input.dtype.kind != "f":
        raise TypeError(f"conv2d: expected a floating point input, got dtype {input.dtype}")
    H, W = input.shape[-2:]
    Ho = _out_size(H, kh, stride[0], pads[0] + pads[1], dilation[0])
    Wo = _out_size(W, kw, stride[1], pads[2] + pads[3], dilation[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv2d: input spatial size ({H}, {W}) padded by {pads} (top, bottom, left, right) is "
                         f"smaller than the dilated kernel ({dilation[0] * (kh - 1) + 1}, {dilation[1] * (kw - 1) + 1})"
                         f"; the output would be ({Ho}, {Wo})")
    return Conv2dFunction.apply(input, weight, bias, stride, pads, dilation, groups)
