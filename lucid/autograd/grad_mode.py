"""Global switch for graph recording: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

Usable as context managers and as decorators, like their PyTorch namesakes. The state is process-wide
(PyTorch keeps it per thread; lucid's trainer runs the model on one thread).
"""
from __future__ import annotations

import functools

_state = {"enabled": True}


def is_grad_enabled() -> bool:
    return _state["enabled"]


class set_grad_enabled:
    """Enable or disable gradient recording: a plain call switches at once (until switched back); as a
    context manager the previous mode is restored on exit; as a decorator (``@set_grad_enabled(False)``)
    the mode applies inside each call of the function only."""

    def __init__(self, mode: bool) -> None:
        self.prev = _state["enabled"]
        self.mode = bool(mode)
        _state["enabled"] = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        _state["enabled"] = self.prev

    def __call__(self, fn):
        # __init__ already switched the mode while the decorator was being applied: undo that, as torch does
        _state["enabled"] = self.prev
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class _GradModeContext:
    mode: bool

    def __enter__(self):
        self.prev = _state["enabled"]
        _state["enabled"] = self.mode
        return self

    def __exit__(self, *exc) -> None:
        _state["enabled"] = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Context manager / decorator: operations inside record no graph (inference, optimizer updates)."""

    mode = False


class enable_grad(_GradModeContext):
    """Context manager / decorator: re-enable recording inside a ``no_grad`` block."""

    mode = True
