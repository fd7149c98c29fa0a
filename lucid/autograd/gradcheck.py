"""Finite-difference gradient check, in float64, for any function of lucid tensors."""
from __future__ import annotations

import numpy as np

from .._backend import xp_of


def _as_output_tensor(out):
    if isinstance(out, (tuple, list)):
        raise TypeError("gradcheck: fn must return a single Tensor (combine several outputs into one)")
    return out


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, raise_exception=True):
    """Compare the analytic gradients of ``fn(*inputs)`` with central finite differences.

    ``inputs`` is a tensor or a tuple of tensors; those with ``requires_grad=True`` are checked and must be
    float64 (float32 differences are too coarse for the tolerances). The output may have any shape: the check
    projects it on a fixed random direction ``v`` and compares d<v, fn(x)>/dx both ways.
    Returns True, or raises AssertionError naming the input and the worst element (``raise_exception``).
    """
    from .._tensor import Tensor

    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64 inputs")

    out = _as_output_tensor(fn(*inputs))
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(out.shape).astype(np.float64)

    def projected() -> float:
        from .grad_mode import no_grad

        with no_grad():
            o = fn(*inputs)
        # detach: fn may return an input itself (an identity reshape), which requires grad
        return float(np.sum(np.asarray(o.detach().numpy(), dtype=np.float64) * direction))

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    out.backward(Tensor(direction.astype(out.dtype), device=out.device))
    for i in checked:
        t = inputs[i]
        analytic = np.zeros(t.shape) if t.grad is None else np.asarray(t.grad.numpy(), dtype=np.float64)
        numeric = np.zeros(t.shape)
        flat = t.array.reshape(-1) if t.array.flags.c_contiguous else None
        if flat is None:  # make the storage contiguous so elements can be nudged through a flat view
            t.array = xp_of(t.array).ascontiguousarray(t.array)
            flat = t.array.reshape(-1)
        num_flat = numeric.reshape(-1)
        for k in range(flat.size):
            orig = flat[k].copy()  # a copy: on CuPy flat[k] is a view that the nudges below would change
            flat[k] = orig + eps
            plus = projected()
            flat[k] = orig - eps
            minus = projected()
            flat[k] = orig
            num_flat[k] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            k = int(np.argmax(err - (atol + rtol * np.abs(numeric))))
            idx = np.unravel_index(k, t.shape) if t.ndim else ()
            msg = (
                f"gradcheck failed for input {i} (shape {tuple(t.shape)}): at index {tuple(int(j) for j in idx)} "
                f"analytic {analytic.reshape(-1)[k]:.8g} vs numeric {numeric.reshape(-1)[k]:.8g}; "
                f"{int(bad.sum())} of {bad.size} elements outside atol={atol}, rtol={rtol}"
            )
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True
