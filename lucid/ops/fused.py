"""Fused ops for InceptionNeXt's block, each one Function instead of a chain of small ones.

``inception_dwconv2d``: the Inception depthwise token mixer (split channels -> identity / 3x3 / 1xK / Kx1
depthwise convs -> concatenate) in one op. The unfused chain (4 Slice + 3 Conv2d + Cat) copies every branch
in and out, builds four full-size zero gradients in backward, and np.concatenate returns an NCHW-contiguous
array, which the following BatchNorm must transpose back to channels-last. Here the output is written once,
channels-last, straight into one buffer.

``conv_mlp_gelu``: the block's MLP, ``fc2(gelu(fc1(x)))`` with 1x1 convs, as two GEMMs with the fc1 bias and
the GELU in one numba pass between them (and, backward, the GELU slope and the fc1 bias gradient in one pass):
one op instead of three, and two fewer passes over the 4x-wide hidden activation.

``scaled_residual``: ``shortcut + y * gamma (* per-sample drop-path scale)``, the end of every block, in one
pass forward and one backward instead of three elementwise ops with full-size temporaries.
"""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels import gelu as gelu_kernels
from ..kernels import inception_mixer as mixer
from .conv import _sum_rows

__all__ = ["conv_mlp_gelu", "inception_dwconv2d", "scaled_residual"]


def _nhwc(x):
    """The (N, H, W, C) C-contiguous view of an NCHW-shaped array (free when it is channels-last)."""
    return xp_of(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


class InceptionDWConv(Function):
    @staticmethod
    def forward(ctx, x, branches, *params):
        """x (N, C, H, W); branches: an ``inception_mixer.Branches``; params: weight (gc, 1, kh, kw) and bias
        (gc,) per branch. Channels [0, c_id) pass through."""
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


def is_fusable_branch(conv, gc: int) -> bool:
    """Whether ``conv`` is a branch the fused mixer computes: depthwise over ``gc`` channels, stride 1,
    dilation 1, with bias, zero padding (k - 1) / 2 on each side (odd kernels, output size = input size)."""
    pad = conv.padding
    if isinstance(pad, str) or conv.padding_mode != "zeros":
        return False
    return (conv.bias is not None and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.groups == conv.in_channels == conv.out_channels == gc
            and all(2 * p == k - 1 for p, k in zip(pad, conv.kernel_size)))


def inception_dwconv2d(x: Tensor, convs, split_indexes) -> Tensor:
    """Inception depthwise token mixer on (N, C, H, W): ``cat(x_id, conv_hw(x_hw), conv_w(x_w), conv_h(x_h))``.

    ``convs``: the depthwise ``nn.Conv2d`` branches (stride 1, dilation 1, "same" padding, with bias) in
    timm's order; ``split_indexes``: (c_id, gc, gc, ...). Output (N, C, H, W), channels-last.
    """
    c_id, gc = split_indexes[0], split_indexes[1]
    params, c0s, kernels, pads = [], [], [], []
    for k, conv in enumerate(convs):
        if not is_fusable_branch(conv, gc):
            raise ValueError(f"inception_dwconv2d: branch {k} ({conv!r}) is not a {gc}-channel stride-1, dilation-1 "
                             "depthwise conv with bias and symmetric zero 'same' padding")
        c0s.append(c_id + k * gc)
        kernels.append(tuple(conv.kernel_size))
        pads.append((conv.padding[0], conv.padding[1]))
        params += [conv.weight, conv.bias]
    branches = mixer.Branches(c_id, gc, tuple(c0s), tuple(kernels), tuple(pads))
    return InceptionDWConv.apply(x, branches, *params)


class ConvMlpGelu(Function):
    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, approximate):
        """x (N, C, H, W); w1 (D, C, 1, 1), b1 (D,); w2 (C2, D, 1, 1), b2 (C2,). Output (N, C2, H, W),
        channels-last."""
        n, c, h, w = x.shape
        d, c2 = w1.shape[0], w2.shape[0]
        x2 = _nhwc(x).reshape(-1, c)
        w1m, w2m = w1.reshape(d, c), w2.reshape(c2, d)
        training = any(ctx.needs_input_grad[:5])
        pre = x2 @ w1m.T  # (M, D); becomes fc1's output (with bias) in place when backward will need it
        hidden = gelu_kernels.bias_forward(pre, b1, approximate, keep_pre=training)
        y = hidden @ w2m.T
        y += b2
        if training:
            # Only fc1's output is kept: the GELU output (as large) is recomputed from it in backward, which
            # costs one GELU pass (~3% of a 32x32 step) and saves one 4x-wide activation per block (~12% of
            # atto's train-step memory). x is saved (unused) so the engine's version check sees in-place changes.
            ctx.save_for_backward(x2, pre, x)
            ctx.approximate = approximate
            ctx.mats = (w1m, w2m)
        return y.reshape(n, h, w, c2).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        x2, pre, _ = ctx.saved_tensors
        w1m, w2m = ctx.mats
        need_x, need_w1, need_b1, need_w2, need_b2, _ = ctx.needs_input_grad
        n, c2, h, w = g.shape
        g2 = _nhwc(g).reshape(-1, c2)
        gb2 = _sum_rows(g2) if need_b2 else None
        gw2 = None
        if need_w2:
            hidden = gelu_kernels.forward(pre, ctx.approximate)  # pre already holds fc1's bias
            gw2 = (g2.T @ hidden).reshape(c2, -1, 1, 1)
            del hidden
        gx = gw1 = gb1 = None
        if need_x or need_w1 or need_b1:
            # grad at fc1's output: (g @ W2) * gelu'(pre), computed in place, with its column sums (fc1's bias)
            gpre, gb1 = gelu_kernels.bias_backward(g2 @ w2m, pre, ctx.approximate)
            if need_w1:
                gw1 = (gpre.T @ x2).reshape(w1m.shape[0], -1, 1, 1)
            if need_x:
                gx = (gpre @ w1m).reshape(n, h, w, -1).transpose(0, 3, 1, 2)
        return gx, gw1, gb1 if need_b1 else None, gw2, gb2, None


def conv_mlp_gelu(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, approximate: str = "none") -> Tensor:
    """``conv2d(gelu(conv2d(x, w1, b1), approximate), w2, b2)`` for 1x1 convs, fused (see the module docstring).

    x (N, C, H, W) in any layout; w1 (D, C, 1, 1), b1 (D,), w2 (C2, D, 1, 1), b2 (C2,), all of x's dtype.
    Returns (N, C2, H, W), channels-last.
    """
    if x.ndim != 4 or w1.shape[2:] != (1, 1) or w2.shape[2:] != (1, 1) or w1.shape[1] != x.shape[1] \
            or w2.shape[1] != w1.shape[0] or b1.shape != (w1.shape[0],) or b2.shape != (w2.shape[0],):
        raise ValueError(f"conv_mlp_gelu: expected x (N, C, H, W), w1 (D, C, 1, 1), b1 (D,), w2 (C2, D, 1, 1), "
                         f"b2 (C2,); got x {tuple(x.shape)}, w1 {tuple(w1.shape)}, b1 {tuple(b1.shape)}, "
                         f"w2 {tuple(w2.shape)}, b2 {tuple(b2.shape)}")
    if len({t.dtype for t in (x, w1, b1, w2, b2)}) != 1:
        raise TypeError("conv_mlp_gelu: x, weights and biases must share one dtype")
    return ConvMlpGelu.apply(x, w1, b1, w2, b2, approximate)


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
    return ScaledResidual.apply(y, gamma, shortcut, keep_scale)
