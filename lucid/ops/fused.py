"""Fused ops for InceptionNeXt's block, each one Function instead of a chain of small ones.

``inception_dwconv2d``: the Inception depthwise token mixer (split channels -> identity / 3x3 / 1xK / Kx1
depthwise convs -> concatenate) in one op. The unfused chain (4 Slice + 3 Conv2d + Cat) copies every branch
in and out, builds four full-size zero gradients in backward, and np.concatenate returns an NCHW-contiguous
array, which the following BatchNorm must transpose back to channels-last. Here the output is written once,
channels-last, straight into one buffer.

``scaled_residual``: ``shortcut + y * gamma (* per-sample drop-path scale)``, the end of every block, in one
pass forward and one backward instead of three elementwise ops with full-size temporaries.
"""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels import depthwise

__all__ = ["inception_dwconv2d", "scaled_residual"]


def _nhwc(x):
    """The (N, H, W, C) C-contiguous view of an NCHW-shaped array (free when it is channels-last)."""
    return xp_of(x).ascontiguousarray(x.transpose(0, 2, 3, 1))


class InceptionDWConv(Function):
    @staticmethod
    def forward(ctx, x, branches, *params):
        """x (N, C, H, W); branches: ((c0, gc, (kh, kw), (pt, pl)), ...) for the three depthwise convs;
        params: weight (gc, 1, kh, kw) and bias (gc,) per branch. Channels [0, c_id) pass through."""
        xp = xp_of(x)
        xh = _nhwc(x)
        n, h, w, c = xh.shape
        out = xp.empty_like(xh)
        c_id = branches[0][0]
        out[..., :c_id] = xh[..., :c_id]
        saved = []
        for k, (c0, gc, khw, pad) in enumerate(branches):
            weight, bias = params[2 * k], params[2 * k + 1]
            xb = xp.ascontiguousarray(xh[..., c0:c0 + gc])
            geometry = (1, 1, pad[0], pad[1], 1, 1)
            out[..., c0:c0 + gc] = depthwise.forward(xb, weight.reshape(gc, *khw), (h, w), geometry, bias)
            saved.append(xb)
        ctx.save_for_backward(*saved)
        ctx.branches = branches
        ctx.weights = [params[2 * k] for k in range(len(branches))]
        return out.transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        xp = xp_of(g)
        gh = _nhwc(g)
        n, h, w, c = gh.shape
        saved = ctx.saved_tensors
        gx = xp.empty_like(gh) if ctx.needs_input_grad[0] else None
        c_id = ctx.branches[0][0]
        if gx is not None:
            gx[..., :c_id] = gh[..., :c_id]
        param_grads = []
        for k, (c0, gc, khw, pad) in enumerate(ctx.branches):
            gb = xp.ascontiguousarray(gh[..., c0:c0 + gc])
            geometry = (1, 1, pad[0], pad[1], 1, 1)
            weight = ctx.weights[k]
            if gx is not None:
                gx[..., c0:c0 + gc] = depthwise.grad_input(gb, weight.reshape(gc, *khw), (h, w), geometry)
            gw = depthwise.grad_weight(gb, saved[k], khw, geometry).reshape(weight.shape)
            gbias = gb.reshape(-1, gc).sum(axis=0)
            param_grads += [gw.astype(weight.dtype, copy=False), gbias.astype(weight.dtype, copy=False)]
        return (None if gx is None else gx.transpose(0, 3, 1, 2)), None, *param_grads


def inception_dwconv2d(x: Tensor, convs, split_indexes) -> Tensor:
    """Inception depthwise token mixer on (N, C, H, W): ``cat(x_id, conv_hw(x_hw), conv_w(x_w), conv_h(x_h))``.

    ``convs``: the three depthwise ``nn.Conv2d`` (stride 1, dilation 1, "same" padding, with bias) in timm's
    order; ``split_indexes``: (c_id, gc, gc, gc). Output (N, C, H, W), channels-last.
    """
    c_id, gc = split_indexes[0], split_indexes[1]
    branches, params = [], []
    c0 = c_id
    for conv in convs:
        kh, kw = conv.kernel_size
        branches.append((c0, gc, (kh, kw), conv.padding))
        params += [conv.weight, conv.bias]
        c0 += gc
    return InceptionDWConv.apply(x, tuple(branches), *params)


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
