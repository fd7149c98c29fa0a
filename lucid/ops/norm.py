"""Normalization ops: ``batch_norm``, ``layer_norm``, ``group_norm`` (``torch.nn.functional`` semantics).

Each op is ONE ``Function`` with a hand-written backward (a graph of small elementwise nodes would cost a
full-size temporary per node).

BatchNorm works on the channels-last buffer: a ``(N, C, *spatial)`` input is viewed as the ``(M, C)``
matrix of its ``(N, *spatial, C)`` layout (free for the channels-last activations lucid's conv ops produce,
one copy otherwise), with ``M = N * prod(spatial)``. Then

* forward (training): per-channel ``sum x`` and ``sum x^2`` (around a per-channel sample, so they do
  not cancel) in one float64-accumulating pass, and one pass ``y = (x - mean) * scale + bias`` with
  ``scale = weight / sqrt(var + eps)``;
* backward: per-channel ``sum dy`` and ``sum dy * (x - mean)`` in one pass, and one pass
  ``dx = k1 * dy + k2 * (x - mean) + k3`` with per-channel ``k1 = weight * invstd``,
  ``k2 = -k1 * invstd * dweight / M``, ``k3 = -k1 * sum(dy) / M``
  (the usual ``invstd * weight * (dy - mean(dy) - xhat * mean(dy * xhat))`` regrouped per channel).

The output is allocated channels-last and returned as its NCHW-shaped view. The passes are numba kernels for
float32 NumPy arrays (lucid/kernels/batchnorm.py) and ufuncs otherwise (float64, CuPy, ``LUCID_NO_NUMBA=1``).
Per-channel arithmetic (C values) is done in float64 and the results cast back to the input's dtype.
"""
from __future__ import annotations

import numbers

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ..kernels import batchnorm as _bnk

__all__ = ["batch_norm", "layer_norm", "group_norm"]


def _data(t):
    return None if t is None else (t.array if isinstance(t, Tensor) else t)


def _channels_last_matrix(x):
    """``x`` of shape (N, C, *spatial) as a C-contiguous (N * prod(spatial), C) matrix (a view if possible)."""
    xp = xp_of(x)
    if x.ndim == 2:
        return x if x.flags.c_contiguous else xp.ascontiguousarray(x)
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return xp.ascontiguousarray(x.transpose(perm)).reshape(-1, x.shape[1])


def _from_channels_last(buf, shape):
    """Inverse of ``_channels_last_matrix``: the (M, C) buffer seen with the NCHW-style ``shape`` (a view)."""
    if len(shape) == 2:
        return buf
    nd = len(shape)
    return buf.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)).transpose((0, nd - 1) + tuple(range(1, nd - 1)))


def _vec(xp, v, n, fill):
    """A per-channel parameter as a float64 vector (``fill`` when the parameter is None)."""
    if v is None:
        return xp.full(n, fill, dtype=xp.float64)
    return v.reshape(-1).astype(xp.float64)


# ---------------------------------------------------------------------------------------------------------
class BatchNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xp = xp_of(x)
        C = x.shape[1]
        xm = _channels_last_matrix(x)
        M = xm.shape[0]
        w = _vec(xp, weight, C, 1.0)
        b = _vec(xp, bias, C, 0.0)
        if training:
            if M > 0:
                shift = xm[0].astype(xp.float64)  # a sample per channel: sums around it do not cancel
                s, ss = _bnk.stats(xm, shift)
                d = s / M
                mean = shift + d
                var = xp.maximum(ss / M - d * d, 0.0)  # biased: what normalises the batch
            else:  # empty batch: nothing to normalise, running statistics stay as they are (as torch)
                mean = xp.zeros(C, dtype=xp.float64)
                var = xp.ones(C, dtype=xp.float64)
            if running_mean is not None and M > 0:
                # in place, as torch: the running estimate uses the unbiased variance
                running_mean[...] = ((1 - momentum) * running_mean.astype(xp.float64)
                                     + momentum * mean).astype(running_mean.dtype)
                running_var[...] = ((1 - momentum) * running_var.astype(xp.float64)
                                    + momentum * var * (M / (M - 1))).astype(running_var.dtype)
        else:
            mean = running_mean.astype(xp.float64)
            var = running_var.astype(xp.float64)
        invstd = 1.0 / xp.sqrt(var + eps)
        scale = w * invstd
        out = xp.empty_like(xm)
        if M > 0:
            # y = (x - mean) * scale + bias; see lucid/kernels/batchnorm.py for why not x * scale + shift
            _bnk.scale_shift(xm, *_bnk.split_mean(mean, x.dtype), scale.astype(x.dtype), b.astype(x.dtype), out)
        ctx.save_for_backward(xm)
        ctx.stats = (mean, invstd, w, scale, bool(training))
        ctx.shape = x.shape
        return _from_channels_last(out, x.shape)

    @staticmethod
    def backward(ctx, g):
        (xm,) = ctx.saved_tensors
        mean, invstd, w, scale, training = ctx.stats
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        xp = xp_of(xm)
        M = xm.shape[0]
        gm = _channels_last_matrix(g)
        dx = dw = db = None
        if need_w or need_b or (need_x and training):
            if M > 0:
                sdy, sdyc = _bnk.grad_sums(gm, xm, mean)
            else:
                sdy = sdyc = xp.zeros(xm.shape[1], dtype=xp.float64)
            gw = invstd * sdyc  # sum dy * xhat
            dw = gw.astype(xm.dtype) if need_w else None
            db = sdy.astype(xm.dtype) if need_b else None
        if need_x:
            out = xp.empty_like(xm)
            if training:
                k1 = scale
                k2 = -k1 * invstd * gw / max(M, 1)
                k3 = -k1 * sdy / max(M, 1)
                if M > 0:
                    dt = xm.dtype
                    _bnk.grad_input(gm, xm, *_bnk.split_mean(mean, dt), k1.astype(dt), k2.astype(dt),
                                    k3.astype(dt), out)
            else:  # running statistics are constants: y is affine in x
                xp.multiply(gm, scale.astype(xm.dtype), out=out)
            dx = _from_channels_last(out, ctx.shape)
        return dx, dw, db, None, None, None, None, None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Batch normalization over the channel dim 1 of ``input`` (N, C, *) (torch.nn.functional.batch_norm).

    Training mode normalises with the batch's mean and biased variance over every dim but 1 and, when
    ``running_mean``/``running_var`` (shape (C,)) are given, updates them in place:
    ``running = (1 - momentum) * running + momentum * batch_stat``, the variance unbiased (``M / (M - 1)``).
    Evaluation mode normalises with the running statistics. ``weight``/``bias`` (C,) are the affine
    scale and shift (None = 1 and 0). Returns a tensor of ``input``'s shape; 3-D and larger results are
    stored channels-last.
    """
    x = input
    if not isinstance(x, Tensor):
        raise TypeError(f"batch_norm: input must be a Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, *), got shape {tuple(x.shape)}")
    if x.array.dtype.kind != "f":
        raise TypeError(f"batch_norm: input must be floating point, got dtype {x.dtype}")
    C = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) for input of shape {tuple(x.shape)}, "
                             f"got {tuple(t.shape)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both be None")
    if not training and running_mean is None:
        raise RuntimeError("batch_norm: running_mean must be defined in evaluation mode (training=False)")
    if training:
        size = x.array.size // C if C else 0
        if size == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{tuple(x.shape)}")
    if momentum is None:
        raise ValueError("batch_norm: momentum=None is the module's cumulative average; pass the factor "
                         "1 / num_batches_tracked as momentum (BatchNorm2d does this)")
    out = BatchNorm.apply(x, weight, bias, _data(running_mean), _data(running_var), bool(training),
                          float(momentum), float(eps))
    if training and x.array.size:
        # the running statistics changed in place: say so, as any in-place change does (caches of folded
        # weights, e.g. InceptionNeXt's inference path, check these versions)
        for t in (running_mean, running_var):
            if isinstance(t, Tensor):
                t._version += 1
    return out


# ---------------------------------------------------------------------------------------------------------
class LayerNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, nshape, eps):
        xp = xp_of(x)
        D = 1
        for s in nshape:
            D *= s
        ctx.args = (x.shape, nshape)
        ctx.empty = x.size == 0
        if ctx.empty:
            return xp.zeros(x.shape, dtype=x.dtype)
        x2 = xp.ascontiguousarray(x.reshape(-1, D))  # a view for C-contiguous x
        w = None if weight is None else weight.reshape(-1)
        b = None if bias is None else bias.reshape(-1)
        y, mean, invstd = _bnk.layer_norm_forward(x2, w, b, eps)
        ctx.save_for_backward(x2, mean, invstd)
        ctx.weight = w
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        shape, nshape = ctx.args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        xp = xp_of(g)
        if ctx.empty:
            return (xp.zeros(shape, dtype=g.dtype) if need_x else None), (
                xp.zeros(nshape, dtype=g.dtype) if need_w else None), (
                xp.zeros(nshape, dtype=g.dtype) if need_b else None), None, None
        x2, mean, invstd = ctx.saved_tensors
        g2 = xp.ascontiguousarray(g.reshape(x2.shape))
        dx, dw, db = _bnk.layer_norm_backward(g2, x2, mean, invstd, ctx.weight, need_w, need_b)
        return (dx.reshape(shape) if need_x else None), (None if dw is None else dw.reshape(nshape)), (
            None if db is None else db.reshape(nshape)), None, None


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization over the trailing dims ``normalized_shape`` (torch.nn.functional.layer_norm).

    ``input`` (*, *normalized_shape); ``weight``/``bias`` of shape ``normalized_shape`` or None. Each
    slice over the trailing dims is normalised with its mean and biased variance.
    """
    x = input
    nshape = (int(normalized_shape),) if isinstance(normalized_shape, numbers.Integral) else tuple(
        int(s) for s in normalized_shape)
    k = len(nshape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != nshape:
        raise RuntimeError(f"Given normalized_shape={list(nshape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in nshape)}], but got input of size{list(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != nshape:
            raise RuntimeError(f"layer_norm: {name} must have shape {nshape} (normalized_shape), "
                               f"got {tuple(t.shape)}")
    if x.array.dtype.kind != "f":
        raise TypeError(f"layer_norm: input must be floating point, got dtype {x.dtype}")
    return LayerNorm.apply(x, weight, bias, nshape, float(eps))


# ---------------------------------------------------------------------------------------------------------
class GroupNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, G, eps):
        xp = xp_of(x)
        N, C = x.shape[0], x.shape[1]
        xm = _channels_last_matrix(x)  # (N*S, C), a view for channels-last activations
        S = xm.shape[0] // N if N else 0
        x4 = xm.reshape(N, S, G, C // G)
        count = S * (C // G)
        if x.size == 0 or count == 0:
            ctx.empty = True
            ctx.shape = x.shape
            return xp.zeros(x.shape, dtype=x.dtype)
        ctx.empty = False
        mean = (x4.sum(axis=(1, 3), dtype=xp.float64) / count).astype(x.dtype)[:, None, :, None]
        xhat = x4 - mean
        var = (xhat * xhat).sum(axis=(1, 3), dtype=xp.float64) / count
        invstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)[:, None, :, None]
        xhat *= invstd
        w4 = None if weight is None else weight.reshape(1, 1, G, C // G)
        if w4 is not None:
            y = xhat * w4
            if bias is not None:
                y += bias.reshape(1, 1, G, C // G)
        elif bias is not None:
            y = xhat + bias.reshape(1, 1, G, C // G)
        else:
            y = xhat.copy()
        ctx.save_for_backward(xhat, invstd)
        ctx.w4 = w4
        ctx.shape = x.shape
        return _from_channels_last(y.reshape(N * S, C), x.shape)

    @staticmethod
    def backward(ctx, g):
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        xp = xp_of(g)
        shape = ctx.shape
        C = shape[1]
        if ctx.empty:
            z = xp.zeros(C, dtype=g.dtype)
            return (xp.zeros(shape, dtype=g.dtype) if need_x else None), (z if need_w else None), (
                z.copy() if need_b else None), None, None
        xhat, invstd = ctx.saved_tensors
        N, S, G, Cg = xhat.shape
        g4 = _channels_last_matrix(g).reshape(N, S, G, Cg)
        dx = dw = db = None
        if need_w:
            dw = (g4 * xhat).sum(axis=(0, 1)).reshape(C)
        if need_b:
            db = g4.sum(axis=(0, 1)).reshape(C)
        if need_x:
            count = S * Cg
            gh = g4 * ctx.w4 if ctx.w4 is not None else g4.copy()
            mean_gh = (gh.sum(axis=(1, 3), dtype=xp.float64) / count).astype(g.dtype)[:, None, :, None]
            mean_ghx = ((gh * xhat).sum(axis=(1, 3), dtype=xp.float64) / count).astype(g.dtype)[:, None, :, None]
            gh -= mean_gh
            gh -= xhat * mean_ghx
            gh *= invstd
            dx = _from_channels_last(gh.reshape(N * S, C), shape)
        return dx, dw, db, None, None


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization (torch.nn.functional.group_norm): ``input`` (N, C, *) split into ``num_groups``
    groups of C / num_groups channels, each (sample, group) normalised over its channels and spatial dims;
    ``weight``/``bias`` (C,) are per-channel. 3-D and larger results are stored channels-last."""
    x = input
    if x.ndim < 2:
        raise RuntimeError(f"group_norm: expected input of shape (N, C, *), got shape {tuple(x.shape)}")
    C = x.shape[1]
    G = int(num_groups)
    if G <= 0 or C % G:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(x.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise RuntimeError(f"group_norm: {name} must have shape ({C},), got {tuple(t.shape)}")
    if x.array.dtype.kind != "f":
        raise TypeError(f"group_norm: input must be floating point, got dtype {x.dtype}")
    return GroupNorm.apply(x, weight, bias, G, float(eps))
