"""Fused ops: chains of small ops that a MetaFormer-style block (InceptionNeXt's) runs as one Function each.
They take tensors and plain parameters; lucid/nn/fused.py holds the modules that call them, and
``lucid.nn.fuse`` swaps those modules in.

``depthwise_branches``: identity channels plus depthwise branches on channel groups, concatenated
(InceptionNeXt's token mixer: split channels -> identity / 3x3 / 1xK / Kx1 depthwise convs -> concatenate).
The unfused chain (4 Slice + 3 Conv2d + Cat) copies every branch in and out, builds four full-size zero
gradients in backward, and np.concatenate returns an NCHW-contiguous array, which the following BatchNorm
must transpose back to channels-last. Here the output is written once, channels-last, into one buffer.

``conv_mlp_gelu``: the block's MLP, ``fc2(gelu(fc1(x))) (+ residual)`` with 1x1 convs, as two GEMMs with the
fc1 bias and the GELU in one numba pass between them (and, backward, the GELU slope and the fc1 bias gradient
in one pass): one op instead of three, and two fewer passes over the 4x-wide hidden activation. Large inputs
run split by rows over threads, each running the whole chain on its rows (lucid/backends/row_threads.py); inference
with few rows and large weights splits over the hidden units instead. The optional residual is added as the
output is written (the inference block's shortcut).

``scaled_residual``: ``shortcut + y * gamma (* per-sample drop-path scale)``, the end of every block, in one
pass forward and one backward instead of three elementwise ops with full-size temporaries.
"""
from __future__ import annotations

from .._backend import as_array, to_device, xp_of
from ..backends import row_threads
from ..backends.cpu import (MLP_CHUNK_BYTES, MLP_HIDDEN_SPLIT_MAX_ROWS_PER_CHANNEL as HIDDEN_SPLIT_MAX_ROWS_PER_CHANNEL,
                            MLP_MIN_CHUNK_ROWS, MLP_MIN_ROWS_PER_THREAD)
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels import gelu as gelu_kernels
from ..kernels import mixer
from .conv import _sum_rows

__all__ = ["branches_geometry", "conv_mlp_gelu", "depthwise_branches", "scaled_residual"]


def _nhwc(x):
    """The (N, H, W, C) C-contiguous view of an NCHW-shaped array (free when it is channels-last)."""
    return xp_of(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


class DepthwiseBranches(Function):
    @staticmethod
    def forward(ctx, x, branches, *params):
        """x (N, C, H, W); branches: a ``mixer.Branches``; params: weight (gc, 1, kh, kw) and bias (gc,) per
        branch. Channels [0, c_id) pass through."""
        xh = _nhwc(x)
        gc = branches.gc
        weights = [params[2 * k].reshape(gc, *khw) for k, khw in enumerate(branches.kernel)]
        biases = [params[2 * k + 1] for k in range(len(branches.kernel))]
        branch_inputs = []
        out = mixer.forward(xh, weights, biases, branches, keep=branch_inputs)
        # backward reads the branches' input channels: the contiguous copies the per-branch way made (copying
        # them again cost ~10% at 56x56), else the NHWC input itself (x's own buffer when x is channels-last).
        # Keeping both would hold the block's whole input alive until backward for nothing.
        ctx.save_for_backward(None if branch_inputs else xh, x, *branch_inputs)
        ctx.branches = branches
        ctx.weights = weights
        ctx.param_dtypes = [p.dtype for p in params]
        return out.transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        gh = _nhwc(g)
        xh, _, *branch_inputs = ctx.saved_tensors
        br = ctx.branches
        gx, gws, gbs = mixer.backward(gh, xh, ctx.weights, br, need_input=ctx.needs_input_grad[0],
                                      branch_inputs=branch_inputs)
        if gx is not None:
            gx = gx.transpose(0, 3, 1, 2)
        param_grads = []
        for k, (gw, gb) in enumerate(zip(gws, gbs)):
            wdt, bdt = ctx.param_dtypes[2 * k], ctx.param_dtypes[2 * k + 1]
            param_grads += [gw.reshape(br.gc, 1, *br.kernel[k]).astype(wdt, copy=False), gb.astype(bdt, copy=False)]
        return gx, None, *param_grads


def branches_geometry(weight_shapes, bias_shapes, identity_channels: int, channels: int) -> "mixer.Branches":
    """The ``depthwise_branches`` geometry for branches with these weight (gc, 1, kh, kw) and bias (gc,) shapes
    (bias None: absent) over ``channels`` input channels; ValueError naming the shapes when they do not fit.
    Fused modules compute it once and pass it to ``DepthwiseBranches.apply`` on every call."""
    weight_shapes = [tuple(s) for s in weight_shapes]
    gc = weight_shapes[0][0] if weight_shapes else 0
    kernels = tuple(s[2:] for s in weight_shapes)
    if not weight_shapes or len(bias_shapes) != len(weight_shapes) \
            or channels != identity_channels + len(weight_shapes) * gc \
            or any(len(s) != 4 or s[:2] != (gc, 1) or s[2] % 2 == 0 or s[3] % 2 == 0 for s in weight_shapes) \
            or any(b is None or tuple(b) != (gc,) for b in bias_shapes):
        raise ValueError(
            f"depthwise_branches: expected x with c_id + n*gc channels (c_id={identity_channels}), weights "
            f"(gc, 1, kh, kw) with odd kh, kw and biases (gc,) for each of n branches; got {channels} channels, "
            f"weights {weight_shapes}, biases {[None if b is None else tuple(b) for b in bias_shapes]}")
    return mixer.Branches(identity_channels, gc, tuple(identity_channels + k * gc for k in range(len(kernels))),
                          kernels, tuple(((kh - 1) // 2, (kw - 1) // 2) for kh, kw in kernels))


def depthwise_branches(x: Tensor, weights, biases, identity_channels: int) -> Tensor:
    """Identity channels, then depthwise branches on consecutive channel groups, concatenated, in one op::

        out = cat(x[:, :c_id], conv_0(x[:, c_id:c_id + gc]), conv_1(x[:, c_id + gc:c_id + 2 gc]), ...)

    where ``conv_k`` is a depthwise conv (groups = gc) with ``weights[k]`` (gc, 1, kh, kw) and ``biases[k]``
    (gc,), stride 1, dilation 1 and zero "same" padding ((kh - 1) / 2, (kw - 1) / 2; odd kernels).
    InceptionNeXt's token mixer is this with branches 3x3, 1xK, Kx1. x (N, C, H, W) with
    C = c_id + len(weights) * gc; output (N, C, H, W), channels-last.
    """
    weights, biases = list(weights), list(biases)
    if x.ndim != 4:
        raise ValueError(f"depthwise_branches: expected x (N, C, H, W), got shape {tuple(x.shape)}")
    branches = branches_geometry([w.shape for w in weights], [None if b is None else b.shape for b in biases],
                                 identity_channels, x.shape[1])
    return DepthwiseBranches.apply(x, branches, *(t for wb in zip(weights, biases) for t in wb))


# Row-split threading for the block MLP (lucid/backends/row_threads.py): split only when every thread gets at
# least MLP_MIN_ROWS_PER_THREAD rows (below that the single-threaded GEMMs lose). Each thread walks its rows in
# equal chunks of about MLP_CHUNK_BYTES of hidden activation, which then stays in cache between fc1, GELU and
# fc2, but of at least max(MLP_MIN_CHUNK_ROWS, 4 x in-channels) rows, because every chunk repacks the weights.
# Inference with fewer rows than HIDDEN_SPLIT_MAX_ROWS_PER_CHANNEL x in-channels (the weights outweigh the
# activation: InceptionNeXt's last stages at 32x32) splits over the hidden units instead: each thread multiplies
# all rows by its share of fc1's columns and fc2's rows, so each reads (and BLAS packs) half the weights, and
# the partial outputs are summed. Training keeps the row split (backward's weight gradients sum over rows).
# The thresholds are measured; lucid/backends/cpu.py holds them, docs/benchmarks.md the figures.


def _hidden_parts(x2, hidden: int) -> int:
    """Threads for an inference MLP split over its ``hidden`` units (1: no hidden split)."""
    rows, c = x2.shape
    if not gelu_kernels.use_numba(x2) or rows >= HIDDEN_SPLIT_MAX_ROWS_PER_CHANNEL * c:
        return 1
    return row_threads.parts(hidden, MLP_MIN_ROWS_PER_THREAD)


def _mlp_parts(x2) -> int:
    """Threads for the fused MLP over the rows of ``x2`` (1: no split). Only the numba kernels release the GIL."""
    if not gelu_kernels.use_numba(x2):
        return 1
    return row_threads.parts(x2.shape[0], MLP_MIN_ROWS_PER_THREAD)


def _mlp_chunk_rows(rows: int, parts: int, in_channels: int, hidden_row_bytes: int) -> int:
    """Rows per chunk: each part's rows in equal chunks of about MLP_CHUNK_BYTES of hidden activation, not
    below MLP_MIN_CHUNK_ROWS (each chunk repacks the weights); all rows in one chunk without a split."""
    if parts <= 1:
        return max(rows, 1)
    part_rows = -(-rows // parts)
    min_rows = max(MLP_MIN_CHUNK_ROWS, 4 * in_channels)
    n_chunks = max(1, min(part_rows * hidden_row_bytes // MLP_CHUNK_BYTES, part_rows // min_rows))
    return -(-part_rows // n_chunks)


class ConvMlpGelu(Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, residual, approximate):
        """x (N, C, H, W); w1 (D, C, 1, 1), b1 (D,); w2 (C2, D, 1, 1), b2 (C2,); residual (N, C2, H, W) added
        to the output, or None. Output (N, C2, H, W), channels-last."""
        xp = xp_of(x)
        n, c, h, w = x.shape
        d, c2 = w1.shape[0], w2.shape[0]
        x2 = _nhwc(x).reshape(-1, c)
        w1t, w2t = w1.reshape(d, c).T, w2.reshape(c2, d).T
        training = any(ctx.needs_input_grad[:5])
        res2 = None if residual is None else _nhwc(residual).reshape(-1, c2)
        rows = x2.shape[0]
        y = xp.empty((rows, c2), dtype=x.dtype)
        # fc1's output (with bias) is kept when backward will need it; the GELU output (as large) is recomputed
        # from it in backward, which costs one GELU pass (~3% of a 32x32 step) and saves one 4x-wide activation
        # per block (~12% of atto's train-step memory)
        pre = xp.empty((rows, d), dtype=x.dtype) if training else None
        hidden_parts = 1 if training else _hidden_parts(x2, d)
        if hidden_parts > 1:
            return _mlp_hidden_split(x2, w1t, b1, w2t, b2, res2, approximate, hidden_parts).reshape(
                n, h, w, c2).transpose(0, 3, 1, 2)
        parts = _mlp_parts(x2)
        chunk = _mlp_chunk_rows(rows, parts, c, d * x.dtype.itemsize)

        def mlp_rows(r0, r1):  # fc1 -> bias + GELU -> fc2 (+ bias) on rows [r0, r1), chunk by chunk
            for s in range(r0, r1, chunk):
                e = min(s + chunk, r1)
                p = xp.matmul(x2[s:e], w1t, out=pre[s:e]) if training else x2[s:e] @ w1t
                hidden = gelu_kernels.bias_forward(p, b1, approximate, keep_pre=training)
                ys = y[s:e]
                xp.matmul(hidden, w2t, out=ys)
                ys += b2
                if res2 is not None:
                    ys += res2[s:e]

        row_threads.run(mlp_rows, rows, parts)
        if training:
            # x is saved (unused) so that the engine's version check sees in-place changes to it
            ctx.save_for_backward(x2, pre, x)
            ctx.approximate = approximate
            ctx.mats = (w1t.T, w2t.T)
        return y.reshape(n, h, w, c2).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        need_x, need_w1, need_b1, need_w2, need_b2, need_res, _ = ctx.needs_input_grad
        if not any(ctx.needs_input_grad[:5]):  # only the residual wants a gradient (forward saved nothing)
            return None, None, None, None, None, g, None
        x2, pre, _ = ctx.saved_tensors
        w1m, w2m = ctx.mats
        xp = xp_of(g)
        n, c2, h, w = g.shape
        g2 = _nhwc(g).reshape(-1, c2)
        rows = g2.shape[0]
        need_pre = need_x or need_w1 or need_b1
        gx = xp.empty((rows, w1m.shape[1]), dtype=g.dtype) if need_x else None
        parts = _mlp_parts(g2)
        partials = {}  # first row of a part -> its (gb2, gw2, gb1, gw1) sums over its rows

        def mlp_grad_rows(r0, r1):
            g2p, pre_p = g2[r0:r1], pre[r0:r1]
            gb2 = _sum_rows(g2p) if need_b2 else None
            gw2 = gb1 = gw1 = None
            if need_w2:
                hidden = gelu_kernels.forward(pre_p, ctx.approximate)  # pre holds fc1's bias
                gw2 = g2p.T @ hidden
                del hidden
            if need_pre:
                # grad at fc1's output: (g @ W2) * gelu'(pre), computed in place, with its column sums (fc1's bias)
                gpre, gb1 = gelu_kernels.bias_backward(g2p @ w2m, pre_p, ctx.approximate)
                if need_w1:
                    gw1 = gpre.T @ x2[r0:r1]
                if need_x:
                    xp.matmul(gpre, w1m, out=gx[r0:r1])
            partials[r0] = (gb2, gw2, gb1, gw1)

        row_threads.run(mlp_grad_rows, rows, parts)
        sums = [None if parts_k[0] is None else sum(parts_k[1:], parts_k[0])
                for parts_k in zip(*(partials[r0] for r0 in sorted(partials)))]
        gb2, gw2, gb1, gw1 = sums
        if gw2 is not None:
            gw2 = gw2.reshape(c2, -1, 1, 1)
        if gw1 is not None:
            gw1 = gw1.reshape(w1m.shape[0], -1, 1, 1)
        if gx is not None:
            gx = gx.reshape(n, h, w, -1).transpose(0, 3, 1, 2)
        return gx, gw1, gb1 if need_b1 else None, gw2, gb2, (g if need_res else None), None


def _mlp_hidden_split(x2, w1t, b1, w2t, b2, res2, approximate, parts):
    """Inference MLP ``gelu(x2 @ w1t + b1) @ w2t + b2 (+ res2)`` with the hidden units split over ``parts``
    threads; returns the (rows, C2) output."""
    partial = {}  # first hidden unit of a part -> its (rows, C2) share of the output

    def hidden_units(h0, h1):
        hidden = gelu_kernels.bias_forward(x2 @ w1t[:, h0:h1], b1[h0:h1], approximate, keep_pre=False)
        partial[h0] = hidden @ w2t[h0:h1]

    row_threads.run(hidden_units, w1t.shape[1], parts)
    firsts = sorted(partial)
    y = partial[firsts[0]]
    for h0 in firsts[1:]:
        y += partial[h0]
    y += b2
    if res2 is not None:
        y += res2
    return y


def conv_mlp_gelu(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, approximate: str = "none",
                  residual: Tensor = None) -> Tensor:
    """``conv2d(gelu(conv2d(x, w1, b1), approximate), w2, b2) (+ residual)`` for 1x1 convs, fused (see the
    module docstring).

    x (N, C, H, W) in any layout; w1 (D, C, 1, 1), b1 (D,), w2 (C2, D, 1, 1), b2 (C2,), all of x's dtype;
    residual: None or (N, C2, H, W), added to the result while its rows are still in cache.
    Returns (N, C2, H, W), channels-last.
    """
    if x.ndim != 4 or w1.shape[2:] != (1, 1) or w2.shape[2:] != (1, 1) or w1.shape[1] != x.shape[1] \
            or w2.shape[1] != w1.shape[0] or b1.shape != (w1.shape[0],) or b2.shape != (w2.shape[0],):
        raise ValueError(f"conv_mlp_gelu: expected x (N, C, H, W), w1 (D, C, 1, 1), b1 (D,), w2 (C2, D, 1, 1), "
                         f"b2 (C2,); got x {tuple(x.shape)}, w1 {tuple(w1.shape)}, b1 {tuple(b1.shape)}, "
                         f"w2 {tuple(w2.shape)}, b2 {tuple(b2.shape)}")
    if residual is not None and tuple(residual.shape) != (x.shape[0], w2.shape[0], *x.shape[2:]):
        raise ValueError(f"conv_mlp_gelu: residual must have the output's shape "
                         f"{(x.shape[0], w2.shape[0], *x.shape[2:])}, got {tuple(residual.shape)}")
    if len({t.dtype for t in (x, w1, b1, w2, b2) + (() if residual is None else (residual,))}) != 1:
        raise TypeError("conv_mlp_gelu: x, weights, biases and residual must share one dtype")
    return ConvMlpGelu.apply(x, w1, b1, w2, b2, residual, approximate)


class ScaledResidual(Function):
    @staticmethod
    def forward(ctx, y, gamma, shortcut, keep_scale):
        """shortcut + y * gamma[c] * keep_scale[n]; y, shortcut (N, C, H, W); gamma (C,); keep_scale (N,) or
        None (no drop-path)."""
        xp = xp_of(y)
        yh = _nhwc(y)
        factor = gamma if keep_scale is None else gamma[None, :] * keep_scale[:, None]
        out = yh * (factor if keep_scale is None else factor[:, None, None, :])
        out += _nhwc(shortcut)
        ctx.save_for_backward(yh)
        ctx.gamma, ctx.keep_scale = gamma, keep_scale
        return out.transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        (yh,) = ctx.saved_tensors
        gamma, keep = ctx.gamma, ctx.keep_scale
        need_y, need_gamma, need_short, _ = ctx.needs_input_grad
        gh = _nhwc(g)
        n, c = gh.shape[0], gh.shape[3]
        gy = ggamma = None
        if need_y:
            factor = gamma if keep is None else (gamma[None, :] * keep[:, None])[:, None, None, :]
            gy = (gh * factor).transpose(0, 3, 1, 2)
        if need_gamma:
            # sum over n, h, w of g * y (* keep[n]): one product pass, then per-sample channel sums
            per_sample = (gh * yh).reshape(n, -1, c).sum(axis=1)
            ggamma = (per_sample if keep is None else per_sample * keep[:, None]).sum(axis=0).astype(gamma.dtype)
        return gy, ggamma, (g if need_short else None), None


def scaled_residual(y: Tensor, gamma: Tensor, shortcut: Tensor, keep_scale=None) -> Tensor:
    """``shortcut + y * gamma.reshape(1, -1, 1, 1) * keep_scale.reshape(-1, 1, 1, 1)``, fused.

    ``keep_scale``: per-sample drop-path factors (0 or 1/keep_prob) as an array of shape (N,), or None.
    """
    if y.shape != shortcut.shape:
        raise ValueError(f"scaled_residual: y {tuple(y.shape)} and shortcut {tuple(shortcut.shape)} differ")
    if keep_scale is not None:  # a raw array: it goes where the activations are (drawing it there is cheaper)
        keep_scale = to_device(as_array(keep_scale), y.device)
    return ScaledResidual.apply(y, gamma, shortcut, keep_scale)
