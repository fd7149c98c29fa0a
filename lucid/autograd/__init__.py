"""Autograd: graph recording switches, the ``Function`` base class, the backward engine and gradcheck."""
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck

__all__ = ["Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "gradcheck", "grad"]


def grad(outputs, inputs, grad_outputs=None, retain_graph=False):
    """Gradients of a scalar ``outputs`` w.r.t. ``inputs`` without touching their ``.grad`` (returned as tuple).

    Like ``torch.autograd.grad`` for one output; inputs must be leaves that require grad.
    """
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    saved = [t.grad for t in inputs]
    for t in inputs:
        t.grad = None
    try:
        outputs.backward(grad_outputs, retain_graph=retain_graph)
        return tuple(t.grad for t in inputs)
    finally:
        for t, g in zip(inputs, saved):
            t.grad = g
