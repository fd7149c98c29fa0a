"""Adam / AdamW update of one parameter: a compiled single pass (numba) and the NumPy/CuPy reference.

Both functions apply torch's ``_single_tensor_adam`` update (``torch/optim/adam.py``) to one parameter,
operation by operation in the parameter's dtype, so trajectories match PyTorch to float32 rounding::

    g  = -grad if maximize else grad
    p  = p * (1 - lr*wd)                  (decoupled weight decay, AdamW)   | g = g + wd*p   (Adam)
    m  = m.lerp(g, 1 - beta1)             (torch's lerp: m + w*(g-m) for w < 0.5, else g - (g-m)*(1-w))
    v  = v*beta2 + (1-beta2)*g*g
    vm = max(vm, v); v_used = vm          (amsgrad only)
    p  = p + (-step_size) * m / (sqrt(v_used)/sqrt(bc2) + eps)

Scalars (``1 - lr*wd``, ``step_size = lr/bc1`` ...) are computed in Python floats, as torch does, and
rounded to the array dtype once, as torch's CPU kernels do.

Why a kernel: the NumPy form makes ~11 full passes over memory (every ufunc reads and writes whole arrays,
single-threaded); the numba loop reads p, g, m, v once and writes p, m, v once, on all cores (PERF-NOTES
has the figures). fastmath stays off: reassociating or fusing
(``a*b + c`` into FMA) would change roundings relative to torch.

``LUCID_NO_NUMBA=1`` (or numba missing) disables the compiled path; ``numba_available()`` says which
(lucid/kernels/_numba.py).
"""
from __future__ import annotations

import numpy as np

from .._backend import xp_of
from ..backends.cpu import ADAMW_PARALLEL_MIN_ELEMENTS as PARALLEL_MIN_ELEMENTS
from . import _numba
from ._numba import HAVE_NUMBA, renamed_copy

if HAVE_NUMBA:  # optional: the NumPy path below is the reference and the fallback
    import numba
    from numba import prange


def numba_available() -> bool:
    """True when the compiled kernel can be used (numba installed, ``LUCID_NO_NUMBA`` unset)."""
    return _numba.enabled()


def adam_scalars(dtype, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step) -> np.ndarray:
    """The scalars of one update as an array of ``dtype`` (torch computes them in Python floats and its CPU
    kernels round them to the tensor's type once; so do we). Shared by all parameters of a group with the
    same dtype and step, and passed to the kernel as one argument (numba's dispatch cost grows with the
    argument count)::

        [g_sign, decay, wd, w1, 1 - w1, beta2, 1 - beta2, sqrt(bias_correction2), eps, -step_size]

    ``decay`` is ``1 - lr*wd`` for decoupled decay (else 1), ``wd`` the L2 factor for coupled decay (else 0),
    ``w1 = 1 - beta1`` the lerp weight of ``exp_avg`` towards the gradient.
    """
    t = np.dtype(dtype).type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    w1 = t(1 - beta1)
    return np.array([
        -1.0 if maximize else 1.0,
        t(1 - lr * weight_decay) if decoupled else t(1),
        t(0) if decoupled else t(weight_decay),
        w1,
        t(1) - w1,  # torch computes (1 - weight) in the opmath type
        t(beta2),
        t(1 - beta2),
        t(bias_correction2 ** 0.5),
        t(eps),
        t(-step_size),
    ], dtype=dtype)


# ---------------------------------------------------------------------------------------------------------
# reference: in-place ufuncs on numpy or cupy arrays
def adam_step_reference(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, scalars) -> None:
    """One Adam/AdamW update of ``param`` in place, in array ufuncs (NumPy or CuPy); see the module doc.

    ``param``, ``exp_avg``, ``exp_avg_sq`` and ``max_exp_avg_sq`` (None unless amsgrad) are updated in
    place; ``grad`` is only read; ``scalars`` comes from ``adam_scalars``.
    """
    xp = xp_of(param)
    gsign, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size = scalars.tolist()
    t = param.dtype.type
    g = xp.negative(grad) if gsign < 0 else grad
    if decay != 1:
        param *= t(decay)
    if wd != 0:
        g = g + param * t(wd)  # the device array on the left: a NumPy scalar there would be NumPy's call
    tmp = xp.subtract(g, exp_avg)  # exp_avg.lerp_(g, w1)
    if abs(w1) >= 0.5:
        tmp *= t(one_minus_w1)
        xp.subtract(g, tmp, out=exp_avg)
    else:
        tmp *= t(w1)
        exp_avg += tmp
    exp_avg_sq *= t(beta2)  # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    xp.multiply(g, t(one_minus_beta2), out=tmp)
    tmp *= g
    exp_avg_sq += tmp
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        xp.sqrt(max_exp_avg_sq, out=tmp)
    else:
        xp.sqrt(exp_avg_sq, out=tmp)
    tmp /= t(bc2_sqrt)  # denom = sqrt(v) / sqrt(bc2) + eps
    tmp += t(eps)
    num = xp.multiply(exp_avg, t(neg_step_size))  # param.addcdiv_(exp_avg, denom, value=-step_size)
    num /= tmp
    param += num


# ---------------------------------------------------------------------------------------------------------
# compiled: one pass over flat arrays
if HAVE_NUMBA:

    def _adam_loop(p, g, m, v, vmax, gsign, decay, wd, w1, one_minus_w1, beta2, one_minus_beta2, bc2_sqrt,
                   eps, neg_step_size, amsgrad):  # pragma: no cover (compiled)
        # maximize and the two weight-decay forms are folded into exact arithmetic (g*(+-1), p*1, g + 0*p)
        # instead of branches: loop-invariant branches kept LLVM from vectorizing the loop.
        lerp_hi = abs(w1) >= 0.5  # torch's lerp switches formula at weight 0.5
        for i in prange(p.shape[0]):
            gi = g[i] * gsign
            pi = p[i] * decay
            gi = gi + wd * pi
            mi = m[i]
            if lerp_hi:
                mi = gi - (gi - mi) * one_minus_w1
            else:
                mi = mi + w1 * (gi - mi)
            m[i] = mi
            vi = v[i] * beta2 + one_minus_beta2 * gi * gi
            v[i] = vi
            if amsgrad:
                vm = vmax[i]
                if vi > vm or vi != vi:  # torch.maximum propagates NaN
                    vm = vi
                vmax[i] = vm
                vi = vm
            denom = np.sqrt(vi) / bc2_sqrt + eps
            p[i] = pi + neg_step_size * mi / denom

    # two compilations of one loop need two names, or numba's cache mixes them up (see renamed_copy)
    _loop_parallel = numba.njit(parallel=True, cache=True, fastmath=False)(
        renamed_copy(_adam_loop, "_adam_loop_parallel"))
    _loop_serial = numba.njit(parallel=False, cache=True, fastmath=False)(
        renamed_copy(_adam_loop, "_adam_loop_serial"))

    # Entry points take the scalars as one array (computed once per group; 7 arguments to type-check per
    # call instead of 16, for ~250 calls per step), but reading the array inside the parallel loop kept it
    # from vectorising, so a serial wrapper unpacks it and calls the loop natively.
    @numba.njit(cache=True)
    def _adam_parallel(p, g, m, v, vmax, sc, amsgrad):  # pragma: no cover (compiled)
        _loop_parallel(p, g, m, v, vmax, sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7], sc[8], sc[9],
                       amsgrad)

    @numba.njit(cache=True)
    def _adam_serial(p, g, m, v, vmax, sc, amsgrad):  # pragma: no cover (compiled)
        _loop_serial(p, g, m, v, vmax, sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7], sc[8], sc[9],
                     amsgrad)


def _flat_views(param, others):
    """1-D views of ``param`` and ``others`` sharing one element order, or None if that needs a copy of
    an array that is written. Read-only arrays (the grad, ``others[0]``) may be copied into ``param``'s
    order."""
    if param.flags.c_contiguous:
        if all(a.flags.c_contiguous for a in others):  # the common case, kept cheap
            return [param.reshape(-1)] + [a.reshape(-1) for a in others]
        order = None
    else:
        # dense in another order (a transposed / channels-last parameter): walk it in memory order
        order = tuple(int(i) for i in np.argsort([-s for s in param.strides], kind="stable"))
        if not param.transpose(order).flags.c_contiguous:
            return None
    views = []
    for k, a in enumerate((param,) + tuple(others)):
        if order is not None:
            a = a.transpose(order)
        if not a.flags.c_contiguous:
            if k == 1:  # the grad: read-only, a copy in param's order is fine
                a = np.ascontiguousarray(a)
            else:
                return None
        views.append(a.reshape(-1))
    return views


def adam_step_fused(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, scalars) -> bool:
    """The same update as ``adam_step_reference`` in one compiled pass; returns False (and does nothing)
    when it cannot run here (numba missing, CuPy arrays, dtype other than float32/float64, grad of another
    dtype, or a parameter layout without a flat view), so the caller falls back to the reference."""
    if not _numba.use_numba(param, _numba.FLOATS):
        return False
    if grad.dtype != param.dtype or scalars.dtype != param.dtype:
        return False
    if param.size == 0:
        return True
    amsgrad = max_exp_avg_sq is not None
    views = _flat_views(param, (grad, exp_avg, exp_avg_sq, max_exp_avg_sq) if amsgrad else
                        (grad, exp_avg, exp_avg_sq))
    if views is None:
        return False
    p = views[0]
    kernel = _adam_parallel if p.shape[0] >= PARALLEL_MIN_ELEMENTS else _adam_serial
    kernel(p, views[1], views[2], views[3], views[4] if amsgrad else views[3], scalars, amsgrad)
    return True


