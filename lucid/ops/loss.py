"""Loss functions with ``torch.nn.functional`` semantics: ``cross_entropy``, ``nll_loss``, ``mse_loss``,
``binary_cross_entropy_with_logits``.

``cross_entropy`` is ONE fused Function (log-softmax + NLL + label smoothing): the forward computes the
softmax once and keeps it, and the backward is a single expression per element. With class-index targets
and ``q[i, c] = (1 - eps) * w[t_i] * [c == t_i] + eps / C * w[c]`` (0 for ignored samples), the loss of
sample ``i`` is ``-sum_c q[i, c] * log p[i, c]``, and its gradient with respect to the logits is
``coef_i * (p[i, c] * sum_c' q[i, c'] - q[i, c])``; probability targets use
``q = (target * (1 - eps) + eps / C) * w``. ``coef`` is the upstream gradient, divided for ``"mean"``
by the summed weight of the non-ignored targets (class indices) or by the number of samples
(probabilities), exactly as PyTorch normalises; a batch whose targets are all ignored gives ``nan`` for
``"mean"``, as in PyTorch.

Shapes: ``input`` (N, C) or (N, C, d1, ...) or unbatched (C,); class-index ``target`` (N,) / (N, d1, ...) /
() with values in [0, C) or ``ignore_index``; probability ``target`` of ``input``'s shape. The class dim is
moved last internally (a copy for inputs of 3 or more dims), so every row is one contiguous softmax.
``weight`` (C,) is a constant (it gets no gradient).
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ._util import unbroadcast

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction; expected one of {_REDUCTIONS}")


def _class_last(x):
    """(N, C, d1, ...) -> (N*d1*..., C); (N, C) unchanged; (C,) -> (1, C)."""
    if x.ndim == 1:
        return x.reshape(1, -1)
    if x.ndim == 2:
        return x
    return xp_of(x).moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _class_first(m, shape):
    """Inverse of ``_class_last`` for an (R, C) array: a view of ``shape`` (class dim back at 1)."""
    if len(shape) <= 2:
        return m.reshape(shape)
    return xp_of(m).moveaxis(m.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)), -1, 1)


def _num_classes(x):
    return x.shape[0] if x.ndim == 1 else x.shape[1]


def _constant(value, x, name: str, fn: str):
    """The array of a constant argument (``weight``, ``pos_weight``) of a loss on ``x``: a Tensor must be on
    ``x``'s device (else torch's device error, naming both); lists and NumPy arrays are placed there."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.device != x.device:
            raise RuntimeError(f"{fn}: expected all tensors to be on the same device, but {name} is on "
                               f"{value.device} and input is on {x.device}")
        return value.array
    arr = _backend.as_array(value)
    if _backend.device_of(arr) != x.device:
        if _backend.device_of(arr) == "gpu":
            raise RuntimeError(f"{fn}: {name} is a GPU array but input is on {x.device}")
        arr = _backend.to_device(arr, x.device)
    return arr


def _check_weight(weight, C):
    if weight is not None and tuple(weight.shape) != (C,):
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no classes but got "
                           f"weight tensor of shape: {list(weight.shape)}")


def _class_targets(xp, target, ignore_index, C):
    """Flat int64 targets, the mask of non-ignored ones, targets with ignored ones replaced by 0, and (on the
    GPU) the mask of out-of-range ones.

    On the CPU an out-of-range target raises IndexError. On the GPU that check would read the targets back
    to the host every step, so it is not made there: out-of-range targets are gathered as class 0 and the
    caller makes the loss nan (``_poison``), the device-side counterpart of torch's CUDA assert."""
    t = target.reshape(-1).astype(xp.int64, copy=False)
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= C))
    if xp is np:
        if bad.any():
            first = int(t[bad][0])
            raise IndexError(f"Target {first} is out of bounds: class-index targets must be in [0, {C}) "
                             f"or equal ignore_index={ignore_index}")
        return t, valid, xp.where(valid, t, 0), None
    return t, valid, xp.where(valid & ~bad, t, 0), bad


def _poison(value, bad):
    """``value``, or nan where any target was out of range (GPU only; ``bad`` is None on the CPU)."""
    if bad is None:
        return value
    return xp_of(value).where(bad.any(), value.dtype.type(float("nan")), value).astype(value.dtype, copy=False)


def _is_host_number(denom) -> bool:
    return isinstance(denom, (int, float)) or isinstance(denom, np.ndarray) or isinstance(denom, np.generic)


def _reduce(loss, reduction, denom, out_shape):
    """Apply the reduction; ``denom`` is the "mean" divisor (a number or a 0-d array of loss's device). A zero
    divisor (all targets ignored, or weighted 0) gives nan, as torch's 0/0, whatever the smoothing; on the
    GPU this is decided on the device (no read-back of the divisor)."""
    xp = xp_of(loss)
    if reduction == "none":
        return loss.reshape(out_shape)
    total = loss.sum()
    if reduction == "sum":
        return xp.asarray(total, dtype=loss.dtype)
    if _is_host_number(denom):
        if float(denom) == 0:
            return xp.asarray(float("nan"), dtype=loss.dtype)
        return xp.asarray(total / denom, dtype=loss.dtype)
    zero = denom == 0
    return xp.where(zero, float("nan"), total / xp.where(zero, 1, denom)).astype(loss.dtype)


def _coef(g, reduction, denom, R, dtype):
    """The upstream gradient per row: a (R, 1) column for "none", a scalar for "sum"/"mean"."""
    if reduction == "none":
        return g.reshape(R, 1).astype(dtype, copy=False)
    if reduction == "mean":
        # a zero divisor makes every non-ignored element's gradient nan in torch (0 * inf); ignored rows are
        # zeroed by the callers
        if _is_host_number(denom):
            return (g / denom if float(denom) != 0 else g * float("nan")).astype(dtype)
        xp = xp_of(g)
        zero = denom == 0
        return xp.where(zero, float("nan"), g / xp.where(zero, 1, denom)).astype(dtype)
    return g.astype(dtype)


class CrossEntropy(Function):
    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction, eps, soft):
        xp = xp_of(x)
        C = _num_classes(x)
        z = _class_last(x)
        R = z.shape[0]
        dt = x.dtype
        out_shape = x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
        w = None if weight is None else weight.astype(dt, copy=False)
        ctx.args = (x.shape, reduction, eps, soft, C)
        if soft:
            y = _class_last(target)
            q = y * (1 - eps) + eps / C if eps > 0 else y
            if w is not None:
                q = q * w
            Q = q.sum(axis=1)
            denom = R
        else:
            _, valid, ts, bad = _class_targets(xp, target, ignore_index, C)
            wt = valid.astype(dt) if w is None else w[ts] * valid
            denom = wt.sum()
        ctx.bad = None if soft else bad
        if R == 0 or C == 0:
            ctx.save_for_backward()
            ctx.empty = True
            return _reduce(xp.zeros(R, dtype=dt), reduction, xp.asarray(denom, dtype=dt), out_shape)
        ctx.empty = False
        m = z.max(axis=1, keepdims=True)
        sh = z - m  # shifted logits (R, C), becomes the softmax in place below
        rows = xp.arange(R)
        if soft:
            qsh = xp.einsum("ij,ij->i", q, sh) if xp is np else (q * sh).sum(1)
        else:
            picked = sh[rows, ts]
            if eps > 0:
                shsum = sh @ w if w is not None else sh.sum(axis=1)
        xp.exp(sh, out=sh)
        se = sh.sum(axis=1)
        lse = xp.log(se)
        sh /= se[:, None]
        p = sh
        if soft:
            loss = Q * lse - qsh  # -sum_c q (sh - lse)
            ctx.save_for_backward(p)
            ctx.q = (q, Q)
            if ctx.needs_input_grad[1]:  # gradient for soft targets needs log p
                ctx.logz = (z, m[:, 0] + lse, w)
        else:
            loss = (lse - picked) * (wt * (1 - eps))
            if eps > 0:
                wsum = C if w is None else w.sum()
                loss += (wsum * lse - shsum) * (valid * (eps / C)).astype(dt)
            ctx.save_for_backward(p)
            ctx.q = (ts, valid, wt, w)
            loss = _poison(loss, bad)
        ctx.denom = denom
        return _reduce(loss.astype(dt, copy=False), reduction, denom, out_shape)

    @staticmethod
    def backward(ctx, g):
        shape, reduction, eps, soft, C = ctx.args
        need_x, need_t = ctx.needs_input_grad[:2]
        xp = xp_of(g)
        if ctx.empty:
            gx = xp.zeros(shape, dtype=g.dtype) if need_x else None
            gt = xp.zeros(shape, dtype=g.dtype) if need_t else None
            return gx, gt, None, None, None, None, None
        (p,) = ctx.saved_tensors
        R = p.shape[0]
        coef = _coef(g, reduction, ctx.denom, R, p.dtype)  # (R, 1) or scalar
        gx = gt = None
        if soft:
            q, Q = ctx.q
            if need_x:
                dz = p * (coef * Q.reshape(R, 1))
                dz -= coef * q
                gx = _class_first(dz, shape)
            if need_t:
                z, shift, w = ctx.logz
                logp = z - shift[:, None]
                d = logp * (-(1 - eps)) * coef
                if w is not None:
                    d *= w
                gt = _class_first(d, shape)
        elif need_x:
            ts, valid, wt, w = ctx.q
            # ignored rows get exactly 0 even when the "mean" divisor is 0 (all ignored: torch's 0, not nan)
            cvec = xp.where(valid, coef.reshape(-1) if reduction == "none" else coef, 0).astype(p.dtype)
            wsum = C if w is None else w.sum()
            Qi = wt * (1 - eps) + valid * (eps / C * wsum)
            with np.errstate(invalid="ignore"):  # nan * 0 where weights sum to 0: nan, as in torch
                dz = p * (cvec * Qi).reshape(R, 1).astype(p.dtype, copy=False)
                if eps > 0:
                    s = (cvec * valid * (eps / C)).reshape(R, 1).astype(p.dtype, copy=False)
                    dz -= s * w if w is not None else s
                dz[xp.arange(R), ts] -= (cvec * wt * (1 - eps)).astype(p.dtype, copy=False)
            gx = _class_first(_poison(dz, ctx.bad), shape)
        return gx, gt, None, None, None, None, None


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """Cross entropy between logits ``input`` and class indices or class probabilities ``target``
    (torch.nn.functional.cross_entropy, one fused op; see the module docstring for shapes and the formula).

    ``weight`` (C,) rescales each class; ``ignore_index`` marks class-index targets that contribute neither
    loss nor gradient (and are left out of the "mean" divisor); ``label_smoothing`` in [0, 1] mixes the
    target with the uniform distribution. ``reduction`` is "none" (per-sample losses of the target's
    shape), "sum" or "mean".

    Where lucid differs from torch: class-index targets may have any integer dtype (int64, int32, int8,
    uint8); torch takes only int64 and uint8 and raises "expected target dtype to be Long or Byte" for int32.
    The values mean the same in every width, and NumPy label arrays are often int32 (the default integer on
    Windows), so lucid accepts them. Bool targets are an error, as in torch; float targets are probabilities
    and must have ``input``'s shape.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    x = input
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dimension (C,) or (N, C, ...), got a scalar")
    if x.array.dtype.kind != "f":
        raise TypeError(f"cross_entropy: input must be floating point logits, got dtype {x.dtype}")
    if not isinstance(target, Tensor):
        target = Tensor(target, device=x.device)
    C = _num_classes(x)
    _check_weight(weight, C)
    soft = target.array.dtype.kind == "f"  # class probabilities, not indices
    if soft:
        if tuple(target.shape) != tuple(x.shape):
            raise ValueError(f"cross_entropy: probability targets must have the input's shape {tuple(x.shape)}, "
                             f"got {tuple(target.shape)}")
        if target.dtype != x.dtype:
            target = target.to(x.dtype)
    else:
        expect = tuple(x.shape[:1] + x.shape[2:]) if x.ndim >= 2 else ()
        if target.array.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy: class-index targets must be integers, got dtype {target.dtype}")
        if tuple(target.shape) != expect:
            raise ValueError(f"cross_entropy: for input of shape {tuple(x.shape)} class-index targets must have "
                             f"shape {expect}, got {tuple(target.shape)}")
    wdata = _constant(weight, x, "weight", "cross_entropy")
    return CrossEntropy.apply(x, target, wdata, int(ignore_index), reduction, float(label_smoothing), soft)


# ---------------------------------------------------------------------------------------------------------
class NLLLoss(Function):
    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, reduction):
        xp = xp_of(x)
        C = _num_classes(x)
        z = _class_last(x)
        R = z.shape[0]
        dt = x.dtype
        _, valid, ts, bad = _class_targets(xp, target, ignore_index, C)
        wt = valid.astype(dt) if weight is None else weight.astype(dt, copy=False)[ts] * valid
        denom = wt.sum()
        loss = _poison(-z[xp.arange(R), ts] * wt, bad) if R else xp.zeros(0, dtype=dt)
        ctx.args = (x.shape, reduction, ts, valid, wt, denom, R, C, bad)
        return _reduce(loss, reduction, denom, x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ())

    @staticmethod
    def backward(ctx, g):
        shape, reduction, ts, valid, wt, denom, R, C, bad = ctx.args
        xp = xp_of(g)
        dz = xp.zeros((R, C), dtype=g.dtype)
        if R:
            coef = _coef(g, reduction, denom, R, g.dtype)
            cvec = xp.where(valid, coef.reshape(-1) if reduction == "none" else coef, 0).astype(g.dtype)
            with np.errstate(invalid="ignore"):  # nan * 0 for zero-weight targets when weights sum to 0
                dz[xp.arange(R), ts] = -(cvec * wt)
            dz = _poison(dz, bad)
        return _class_first(dz, shape), None, None, None, None


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at class indices ``target``
    (N, ...): ``-weight[t] * input[i, t]``, "mean" divided by the summed weights of non-ignored targets
    (torch.nn.functional.nll_loss). Targets of any integer dtype are accepted (torch: int64 and uint8 only;
    see ``cross_entropy``)."""
    _check_reduction(reduction)
    x = input
    if x.ndim == 0:
        raise ValueError("nll_loss: input must have at least 1 dimension")
    if not isinstance(target, Tensor):
        target = Tensor(target, device=x.device)
    expect = tuple(x.shape[:1] + x.shape[2:]) if x.ndim >= 2 else ()
    if target.array.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: targets must be integer class indices, got dtype {target.dtype}")
    if tuple(target.shape) != expect:
        raise ValueError(f"nll_loss: for input of shape {tuple(x.shape)} targets must have shape {expect}, "
                         f"got {tuple(target.shape)}")
    C = _num_classes(x)
    _check_weight(weight, C)
    wdata = _constant(weight, x, "weight", "nll_loss")
    return NLLLoss.apply(x, target, wdata, int(ignore_index), reduction)


# ---------------------------------------------------------------------------------------------------------
class MSELoss(Function):
    @staticmethod
    def forward(ctx, a, b, reduction):
        d = a - b
        ctx.save_for_backward(d)
        ctx.args = (a.shape, b.shape, reduction, d.size)
        return _reduce(d * d, reduction, d.size, d.shape)

    @staticmethod
    def backward(ctx, g):
        (d,) = ctx.saved_tensors
        sa, sb, reduction, n = ctx.args
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = g * 2 if reduction != "mean" else g * (2.0 / n if n else float("nan"))
        gd = d * scale
        na, nb = ctx.needs_input_grad[:2]
        return (unbroadcast(gd, sa) if na else None), (unbroadcast(-gd, sb) if nb else None), None


def mse_loss(input, target, reduction: str = "mean"):
    """Mean squared error ``(input - target)^2`` with broadcasting (torch.nn.functional.mse_loss);
    "mean" averages over all (broadcast) elements. Both arguments get gradients."""
    _check_reduction(reduction)
    if not isinstance(target, Tensor):
        target = Tensor(target, dtype=input.dtype, device=input.device)
    if target.dtype != input.dtype:
        target = target.to(input.dtype)
    return MSELoss.apply(input, target, reduction)


# ---------------------------------------------------------------------------------------------------------
class BCEWithLogits(Function):
    @staticmethod
    def forward(ctx, x, t, weight, pos_weight, reduction):
        xp = xp_of(x)
        sp = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))  # softplus(-x) = -log sigmoid(x), stable
        if pos_weight is not None:
            lw = (pos_weight - 1) * t + 1
            loss = (1 - t) * x + lw * sp
        else:
            lw = None
            loss = (1 - t) * x + sp
        if weight is not None:
            loss = loss * weight
        ctx.save_for_backward(x, t, sp)
        ctx.args = (lw, weight, pos_weight, reduction, loss.size, x.shape, loss.shape)
        return _reduce(loss.astype(x.dtype, copy=False), reduction, loss.size, loss.shape)

    @staticmethod
    def backward(ctx, g):
        x, t, sp = ctx.saved_tensors
        lw, weight, pos_weight, reduction, n, xshape, lshape = ctx.args
        xp = xp_of(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            coef = g if reduction == "none" else (g / n if reduction == "mean" else g)
        if weight is not None:
            coef = coef * weight
        from .elementwise import sigmoid_array

        gx = gt = None
        if ctx.needs_input_grad[0]:
            s_neg = sigmoid_array(-x)  # d softplus(-x) / dx = -sigmoid(-x)
            d = (1 - t) - (lw * s_neg if lw is not None else s_neg)
            gx = unbroadcast((d * coef).astype(x.dtype, copy=False), xshape)
        if ctx.needs_input_grad[1]:
            d = -x + (pos_weight - 1) * sp if pos_weight is not None else -x
            gt = unbroadcast(xp.asarray(d * coef).astype(x.dtype, copy=False), xshape)
        return gx, gt, None, None, None


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one numerically stable op
    (torch.nn.functional.binary_cross_entropy_with_logits):
    ``loss = -w * [pos_weight * t * log s(x) + (1 - t) * log(1 - s(x))]``. ``target`` has ``input``'s
    shape; ``weight`` broadcasts against it, ``pos_weight`` along the last (class) dim. Both input and
    target get gradients."""
    _check_reduction(reduction)
    if not isinstance(target, Tensor):
        target = Tensor(target, dtype=input.dtype, device=input.device)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    if input.array.dtype.kind != "f":
        raise TypeError(f"binary_cross_entropy_with_logits: input must be floating point, got {input.dtype}")
    if target.dtype != input.dtype:
        target = target.to(input.dtype)

    def arr(v, name):
        a = _constant(v, input, name, "binary_cross_entropy_with_logits")
        return None if a is None else a.astype(input.dtype, copy=False)

    return BCEWithLogits.apply(input, target, arr(weight, "weight"), arr(pos_weight, "pos_weight"), reduction)
