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
single-threaded); the numba loop reads p, g, m, v once and writes p, m, v once, on all cores
(PERF-NOTES: 13 ms vs 56-77 ms for 26 M parameters). fastmath stays off: reassociating or fusing
(``a*b + c`` into FMA) would change roundings relative to torch.

``LUCID_NO_NUMBA=1`` (or numba missing) disables the compiled path; ``numba_available()`` says which.
"""
from __future__ import annotations

import os

import numpy as np

from .._backend import xp_of

_NUMBA_DISABLED = os.environ.get("LUCID_NO_NUMBA", "0") not in ("", "0")

try:  # numba is optional: the NumPy path below is the reference and the fallback
    if _NUMBA_DISABLED:
        raise ImportError("LUCID_NO_NUMBA is set")
    import numba
    from numba import prange
except ImportError:  # pragma: no cover - exercised with LUCID_NO_NUMBA=1
    numba = None

# Below this many elements waking the worker threads costs more than it saves (measured on 2 cores: a
# parallel launch ~4-10 us, the serial loop ~2.5 ns per element), so small tensors use the serial twin.
PARALLEL_MIN_ELEMENTS = 4096


def numba_available() -> bool:
    """True when the compiled kernel can be used (numba importable and LUCID_NO_NUMBA unset)."""
    return numba is not None


def _scalars(dtype, *, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """Python-float scalars of one update, rounded to the array dtype (what torch's CPU kernels do)."""
    t = np.dtype(dtype).type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    w1 = 1 - beta1  # lerp weight of exp_avg towards the gradient
    return dict(
        decay=t(1 - lr * weight_decay) if decoupled and weight_decay != 0 else t(1),
        wd=t(weight_decay) if not decoupled else t(0),
        w1=t(w1),
        one_minus_w1=t(1) - t(w1),  # torch computes (1 - weight) in the opmath type
        lerp_hi=bool(abs(w1) >= 0.5),
        beta2=t(beta2),
        one_minus_beta2=t(1 - beta2),
        bc2_sqrt=t(bias_correction2_sqrt),
        eps=t(eps),
        neg_step_size=t(-step_size),
    )


# ---------------------------------------------------------------------------------------------------------
# reference: in-place ufuncs on numpy or cupy arrays
def adam_step_reference(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps,
                        weight_decay, decoupled, amsgrad, maximize, step) -> None:
    """One Adam/AdamW update of ``param`` in place, in array ufuncs (NumPy or CuPy); see the module doc.

    ``param``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq`` when ``amsgrad``) are updated in place;
    ``grad`` is only read. ``step`` is the step count after incrementing (1 on the first update).
    """
    xp = xp_of(param)
    s = _scalars(param.dtype, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                 decoupled=decoupled, step=step)
    g = xp.negative(grad) if maximize else grad
    if weight_decay != 0:
        if decoupled:
            param *= s["decay"]
        else:
            g = g + s["wd"] * param
    tmp = xp.subtract(g, exp_avg)  # exp_avg.lerp_(g, w1)
    if s["lerp_hi"]:
        tmp *= s["one_minus_w1"]
        xp.subtract(g, tmp, out=exp_avg)
    else:
        tmp *= s["w1"]
        exp_avg += tmp
    exp_avg_sq *= s["beta2"]  # exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    xp.multiply(g, s["one_minus_beta2"], out=tmp)
    tmp *= g
    exp_avg_sq += tmp
    if amsgrad:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        xp.sqrt(max_exp_avg_sq, out=tmp)
    else:
        xp.sqrt(exp_avg_sq, out=tmp)
    tmp /= s["bc2_sqrt"]  # denom = sqrt(v) / sqrt(bc2) + eps
    tmp += s["eps"]
    num = xp.multiply(exp_avg, s["neg_step_size"])  # param.addcdiv_(exp_avg, denom, value=-step_size)
    num /= tmp
    param += num


# ---------------------------------------------------------------------------------------------------------
# compiled: one pass over flat arrays
if numba is not None:

    def _adam_body(p, g, m, v, vmax, gsign, decay, wd, w1, one_minus_w1, lerp_hi, beta2, one_minus_beta2,
                   bc2_sqrt, eps, neg_step_size, amsgrad):  # pragma: no cover (compiled)
        # maximize and the two weight-decay forms are folded into exact arithmetic (g*(+-1), p*1, g + 0*p)
        # instead of branches: loop-invariant branches kept LLVM from vectorizing the loop (1.6x slower).
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

    _adam_parallel = numba.njit(parallel=True, cache=True, fastmath=False)(_adam_body)
    _adam_serial = numba.njit(parallel=False, cache=True, fastmath=False)(_adam_body)


def _flat_views(param, others):
    """1-D views of ``param`` and ``others`` sharing one element order, or None if that needs a copy of
    an array that is written. Read-only arrays (the grad) may be copied into ``param``'s order."""
    if param.flags.c_contiguous:
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


def adam_step_fused(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps,
                    weight_decay, decoupled, amsgrad, maximize, step) -> bool:
    """The same update as ``adam_step_reference`` in one compiled pass; returns False (and does nothing)
    when it cannot run here (numba missing, CuPy arrays, dtype other than float32/float64, or a parameter
    layout that has no flat view), so the caller falls back to the reference."""
    if numba is None or not isinstance(param, np.ndarray) or param.dtype not in (np.float32, np.float64):
        return False
    if grad.dtype != param.dtype or param.size == 0:
        return param.size == 0  # an empty parameter needs no work; a dtype mismatch goes to NumPy
    arrays = (grad, exp_avg, exp_avg_sq) + ((max_exp_avg_sq,) if amsgrad else ())
    views = _flat_views(param, arrays)
    if views is None:
        return False
    p, g, m, v = views[:4]
    vmax = views[4] if amsgrad else v
    s = _scalars(param.dtype, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                 decoupled=decoupled, step=step)
    kernel = _adam_parallel if p.shape[0] >= PARALLEL_MIN_ELEMENTS else _adam_serial
    t = p.dtype.type
    kernel(p, g, m, v, vmax, t(-1) if maximize else t(1), s["decay"], s["wd"],
           s["w1"], s["one_minus_w1"], s["lerp_hi"], s["beta2"], s["one_minus_beta2"], s["bc2_sqrt"], s["eps"],
           s["neg_step_size"], bool(amsgrad))
    return True
