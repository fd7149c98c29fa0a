"""``DerivedValue``: a value a module computes from its structure and some tensors, kept until either changes.

Inference paths fold and pre-pack weights (BatchNorm folded into the next 1x1 conv, the mixer's branch
geometry) and decide which fused op applies (no hooks, plain convs, GELU, dropout off). Doing that on every
forward costs ~0.1-0.2 ms per block in Python, about 5% of a small model's eval forward. A ``DerivedValue``
does it once and stays valid while

* no module anywhere changed through Module's API (``Module.structure_epoch``: attribute assignment,
  registration, hooks, a training-mode change), and
* every source tensor still holds the same array (``.array``) at the same ``_version`` (bumped by every
  in-place change through lucid: optimizer steps, ``copy_``, ``load_state_dict``, BatchNorm's running
  statistics in training).

Writing into a source's ``.array`` directly bypasses the version check, as it bypasses autograd's.
"""
from __future__ import annotations

from .module import Module

__all__ = ["DerivedValue"]


class DerivedValue:
    """One cached value; ``get(build)`` returns it, calling ``build()`` again when it went stale.

    ``build()`` returns ``(value, sources)``: sources are the tensors the value was computed from (None
    entries are skipped); the module structure it depends on is covered by ``Module.structure_epoch``.
    """

    __slots__ = ("_epoch", "_sources", "_value")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the value (e.g. to free a folded weight copy while training makes it stale every step)."""
        self._epoch = -1
        self._sources = ()
        self._value = None

    @property
    def cached(self):
        """The value held now, stale or not (None after ``clear``); for inspection and tests."""
        return self._value

    def valid(self) -> bool:
        if self._epoch != Module.structure_epoch:
            return False
        for tensor, array, version in self._sources:
            if tensor.array is not array or tensor._version != version:
                return False
        return True

    def get(self, build):
        if self.valid():
            return self._value
        epoch = Module.structure_epoch  # read first: a build that changes a module leaves the value stale
        value, sources = build()
        self._sources = tuple((t, t.array, t._version) for t in sources if t is not None)
        self._epoch = epoch
        self._value = value
        return value
