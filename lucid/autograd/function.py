"""``Function``: one differentiable operation, forward and backward side by side (Chainer's FunctionNode).

Every lucid op is a subclass with two static methods::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):            # x: numpy/cupy array
            y = xp_of(x).exp(x)
            ctx.save_for_backward(y)
            return y                    # one array

        @staticmethod
        def backward(ctx, grad):        # grad: array shaped like the output
            (y,) = ctx.saved_tensors
            return grad * y             # one gradient (or None) per forward argument

    y = Exp.apply(x_tensor)

Where lucid differs from ``torch.autograd.Function``: ``forward`` and ``backward`` receive and return the
raw arrays (``Tensor.array``), not tensors, because ops are written in array code; ``apply`` wraps the result
in a Tensor and records the graph. A Function has exactly one output. Non-tensor arguments (ints, tuples,
None) reach ``forward`` unchanged and get ``None`` as their gradient.

The instance created by ``apply`` is both the ``ctx`` and the output's ``grad_fn`` node of the graph.
"""
from __future__ import annotations

import weakref

import time

from .. import profiler as _profiler
from .grad_mode import _state


class Function:
    """Base class of differentiable operations; see the module docstring."""

    # graph bookkeeping, filled in by apply (class-level defaults keep untracked calls cheap)
    _inputs: tuple = ()
    _saved: tuple = ()
    _saved_versions: tuple = ()
    _released = False
    _hooks = None
    _retained = None
    needs_input_grad: tuple = ()

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    # -- ctx API --------------------------------------------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        """Keep arrays for backward; lucid checks they were not modified in place before backward runs."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"{type(self).__name__}: trying to backward through the graph a second time (its saved "
                "values were freed after the first backward); pass retain_graph=True to the first backward"
            )
        return self._saved

    def _release(self) -> None:
        self._saved = ()
        self._saved_versions = ()
        self._released = True

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"

    # -- recording ------------------------------------------------------------------------------------------
    @classmethod
    def apply(cls, *args):
        """Run ``forward`` on the arrays of the arguments and return the output as a Tensor.

        The graph is recorded when gradients are enabled and any tensor argument requires grad.
        """
        arrays = []
        needs = []
        device = None
        any_grad = False
        for a in args:
            if isinstance(a, Tensor):
                dev = a.device
                if device is None:
                    device = dev
                elif dev != device:
                    raise RuntimeError(
                        f"{cls.__name__}: expected all tensors on the same device, got {device} and {dev}"
                    )
                arrays.append(a.array)
                needs.append(a.requires_grad)
                any_grad = any_grad or a.requires_grad
            else:
                arrays.append(a)
                needs.append(False)
        ctx = cls()
        track = any_grad and _state["enabled"]
        ctx.needs_input_grad = tuple(needs) if track else (False,) * len(args)
        prof = _profiler._active[0]
        if prof is None:
            out = cls.forward(ctx, *arrays)
        else:
            t0 = time.perf_counter()
            out = cls.forward(ctx, *arrays)
            prof.add(cls.__name__, 0, time.perf_counter() - t0)
        result = Tensor._wrap(out)
        if track:
            result.requires_grad = True
            result.grad_fn = ctx
            ctx._inputs = tuple(a if n else None for a, n in zip(args, needs))
            if ctx._saved:
                ctx._saved_versions = _saved_versions(ctx._saved, args, result)
        else:
            ctx._saved = ()
        return result


def _saved_versions(saved, args, result) -> tuple:
    """(tensor, version) for every saved array that is the storage of an input or of the output.

    The output is held through a weak reference: a strong one would make a cycle (output -> grad_fn ->
    output) that only the cyclic garbage collector frees, keeping activations alive much longer.
    """
    pairs = []
    for s in saved:
        if s is result.array:
            pairs.append((weakref.ref(result), result._version))
            continue
        for a in args:
            if isinstance(a, Tensor) and s is a.array:
                pairs.append((a, a._version))
                break
    return tuple(pairs)


def check_saved_versions(node: Function) -> None:
    """Raise if a tensor whose array ``node`` saved was modified in place after the forward pass."""
    for tensor, version in node._saved_versions:
        if isinstance(tensor, weakref.ref):
            tensor = tensor()
            if tensor is None:  # the output is gone, so nobody can have modified it through it
                continue
        if tensor._version != version:
            raise RuntimeError(
                f"one of the tensors needed for gradient computation by {type(node).__name__} has been "
                f"modified by an in-place operation (shape {tuple(tensor.shape)}, version {tensor._version}, "
                f"expected version {version}); clone it before modifying it"
            )


# lucid._tensor sets this when it is imported (Tensor methods call Functions, so the two modules are
# circular; injecting the class avoids an import cycle at load time).
Tensor = None
