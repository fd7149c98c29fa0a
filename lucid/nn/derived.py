"""``DerivedValue``: a value computed from some modules and tensors, kept until one of them changes.

Fused modules (lucid/nn/fused.py) decide once which fast path applies to their children (no hooks, plain
convs, GELU, dropout off) and, for inference, fold weights (BatchNorm into the next 1x1 conv, layer scale into
fc2). Doing that on every forward costs Python time on every call; a ``DerivedValue`` does it once and keeps
the result while

* every source module is unchanged through Module's API (its ``_structure_version``: attribute assignment,
  registration, hooks, training mode), and
* every source tensor still holds the same array (``.array``) at the same ``_version`` (bumped by every
  in-place change through lucid: optimizer steps, ``copy_``, ``.data.add_(...)``, ``load_state_dict``,
  BatchNorm's running statistics in training).

Only the named sources count: a change to any other module (even one that sets an attribute inside its own
forward) leaves the value valid. Writing into a source's ``.array`` directly bypasses the version check, as it
bypasses autograd's.
"""
from __future__ import annotations

from .module import Module

__all__ = ["DerivedValue"]


class DerivedValue:
    """One cached value; ``get(build)`` returns it, calling ``build()`` again when it went stale.

    ``build()`` returns ``(value, sources)``: the modules and tensors the value was computed from (None
    entries are skipped).
    """

    __slots__ = ("_stamps", "_value", "_built")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget the value (e.g. to free a folded weight copy while training makes it stale every step)."""
        self._stamps = ()
        self._value = None
        self._built = False

    def __deepcopy__(self, memo) -> "DerivedValue":
        # a copied module (an EMA copy, copy.deepcopy(model)) derives its own value from its own sources
        return DerivedValue()

    @property
    def cached(self):
        """The value held now, stale or not (None after ``clear``); for inspection and tests."""
        return self._value

    def valid(self) -> bool:
        if not self._built:
            return False
        for source, key, version in self._stamps:
            if key is None:  # a module
                if source._structure_version != version:
                    return False
            elif source.array is not key or source._version != version:
                return False
        return True

    def get(self, build):
        if self.valid():
            return self._value
        value, sources = build()
        stamps = []
        for s in sources:
            if s is None:
                continue
            if isinstance(s, Module):
                stamps.append((s, None, s._structure_version))
            else:
                stamps.append((s, s.array, s._version))
        self._stamps = tuple(stamps)
        self._value = value
        self._built = True
        return value
