"""Reverse-mode backward pass over the graph of ``Function`` nodes.

The graph is the set of nodes reachable from the root's ``grad_fn`` through ``node._inputs``. Nodes run in
topological order (Kahn's algorithm on dependency counts), so every node's output gradient is complete
(summed over all its uses: diamonds, reuse) before its ``backward`` runs. Gradients reaching a leaf that
requires grad are accumulated into ``leaf.grad``.
"""
from __future__ import annotations

import time

from .._backend import xp_of
from .. import profiler as _profiler
from .function import check_saved_versions


def _owner(array):
    base = getattr(array, "base", None)
    return array if base is None else base


def _writable(array) -> bool:
    """False for views that must not be written (broadcasts). NumPy flags them read-only; CuPy has no such
    flag (its ``flags`` has no ``writeable``), so there a zero stride on a dim longer than 1 counts."""
    flag = getattr(array.flags, "writeable", None)
    if flag is not None:
        return bool(flag)
    return all(st != 0 or n <= 1 for st, n in zip(array.strides, array.shape))


def _accumulate_leaf(tensor, grad, stored: dict) -> None:
    """Add ``grad`` into ``tensor.grad``; never let two leaves' ``.grad`` share memory."""
    from .._tensor import Tensor

    for hook in tensor._hooks or ():
        out = hook(Tensor._wrap(grad))
        if out is not None:
            grad = out.array
    if grad.dtype != tensor.array.dtype:
        grad = grad.astype(tensor.array.dtype)
    if tensor.grad is None:
        owner = _owner(grad)
        if not _writable(grad) or id(owner) in stored:
            grad = grad.copy()
            owner = grad
        stored[id(owner)] = owner  # keep a reference so the id stays unique during this pass
        tensor.grad = Tensor._wrap(grad)
    else:
        old = tensor.grad.array
        if _writable(old) and old.shape == grad.shape and old.dtype == grad.dtype:
            # in place, as torch: no allocation, and views of .grad (a flat gradient buffer) stay valid
            xp_of(old).add(old, grad, out=old)
        else:
            tensor.grad.array = old + grad


def run_backward(root, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) from ``root`` through its graph."""
    # the seed may be the caller's array (backward(gradient=g)): a leaf must not keep it as its .grad
    stored: dict = {id(_owner(grad)): _owner(grad)}
    node = root.grad_fn
    if node is None:  # a leaf: its gradient is the seed itself
        _accumulate_leaf(root, grad, stored)
        return

    # count, for each node, how many edges from other reachable nodes point at it
    deps = {}
    stack = [node]
    seen = {node}
    while stack:
        n = stack.pop()
        for t in n._inputs:
            if t is None:
                continue
            parent = t.grad_fn
            if parent is None:
                continue
            deps[parent] = deps.get(parent, 0) + 1
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)

    from .._tensor import Tensor

    pending = {node: grad}
    ready = [node]
    while ready:
        n = ready.pop()
        g = pending.pop(n)
        if n._hooks:
            for hook in n._hooks:
                out = hook(Tensor._wrap(g))
                if out is not None:
                    g = out.array
        if n._retained is not None:
            kept = n._retained()
            if kept is not None:
                kept.grad = Tensor._wrap(g.copy()) if kept.grad is None else Tensor._wrap(kept.grad.array + g)
        if n._released:
            n.saved_tensors  # raises the "backward a second time" error
        check_saved_versions(n)
        prof = _profiler._active[0]
        if prof is None:
            grads = n.backward(n, g)
        else:
            t0 = time.perf_counter()
            grads = n.backward(n, g)
            prof.add(type(n).__name__, 2, time.perf_counter() - t0)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if not retain_graph:
            n._release()
        if len(grads) < len(n._inputs):
            raise RuntimeError(
                f"{type(n).__name__}.backward returned {len(grads)} gradients for {len(n._inputs)} inputs"
            )
        for t, gi in zip(n._inputs, grads):
            if t is None or gi is None:
                continue
            if gi.shape != t.array.shape:
                raise RuntimeError(
                    f"{type(n).__name__}.backward returned a gradient of shape {tuple(gi.shape)} for an input "
                    f"of shape {tuple(t.array.shape)}"
                )
            parent = t.grad_fn
            if parent is None:
                _accumulate_leaf(t, gi, stored)
                continue
            if parent in pending:
                pending[parent] = pending[parent] + gi
            else:
                pending[parent] = gi
            deps[parent] -= 1
            if deps[parent] == 0:
                ready.append(parent)
        if not retain_graph:
            # drop the references to the input tensors too: otherwise every activation of the graph stays
            # alive for as long as the caller holds the root (e.g. `loss` until the next step's forward)
            n._inputs = ()
