"""matmul (with PyTorch's 1-D and batch-broadcast rules) and einsum, each with its backward."""
from __future__ import annotations

import re

from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ._util import unbroadcast


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        if b.ndim == 2 and a.ndim > 2:
            # activations @ weight: one (rows, K) @ (K, N) GEMM instead of a loop over the batch
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[1],))
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        xp = xp_of(g)
        ga = gb = None
        if b.ndim == 2 and a.ndim > 2:
            # dW = A^T G as a single GEMM over all rows (no per-batch products summed afterwards)
            g2 = g.reshape(-1, b.shape[1])
            if na:
                ga = (g2 @ b.T).reshape(a.shape)
            if nb:
                gb = a.reshape(-1, a.shape[-1]).T @ g2
            return ga, gb
        # promote 1-D operands the way matmul does, then undo it on the gradients
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1 and b.ndim == 1:  # g is 0-d: expand_dims(g, -2) would be out of range
            g2 = g.reshape(1, 1)
        else:
            g2 = g
            if a.ndim == 1:
                g2 = xp.expand_dims(g2, -2)
            if b.ndim == 1:
                g2 = xp.expand_dims(g2, -1)
        if na:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if nb:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b) -> Tensor:
    """Matrix product with PyTorch's rules: 1-D operands are promoted and the added dim removed, leading
    (batch) dims broadcast. Both operands must have the same dtype, as in torch (no promotion: ``int64 @
    float32`` is an error, not a float result)."""
    device = a.device if isinstance(a, Tensor) else b.device if isinstance(b, Tensor) else None
    a, b = (x if isinstance(x, Tensor) else Tensor(x, device=device) for x in (a, b))  # arrays: on the other's
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError("matmul: both arguments need at least 1 dimension, got a 0-d tensor")
    if a.dtype != b.dtype:
        raise RuntimeError(f"matmul: expected both operands to have the same dtype, got {a.dtype} (shape "
                           f"{tuple(a.shape)}) and {b.dtype} (shape {tuple(b.shape)}); convert one, e.g. with "
                           ".float()")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise RuntimeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
                           f"({ka} != {kb})")
    batch_a, batch_b = tuple(a.shape[:-2]), tuple(b.shape[:-2])
    for i in range(1, min(len(batch_a), len(batch_b)) + 1):
        if batch_a[-i] != batch_b[-i] and 1 not in (batch_a[-i], batch_b[-i]):
            raise RuntimeError(f"matmul: the batch dimensions {batch_a} and {batch_b} of shapes {tuple(a.shape)} "
                               f"and {tuple(b.shape)} cannot be broadcast ({batch_a[-i]} vs {batch_b[-i]})")
    return MatMul.apply(a, b)


_TERM = re.compile(r"^[a-zA-Z]*(\.\.\.)?[a-zA-Z]*$")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # torch's (and ASCII) order


def _parse(equation: str, shapes: list) -> tuple[list, str, dict]:
    """Resolve an einsum equation against the operands' shapes.

    Returns the input terms and the output term with every ``...`` replaced by letters of its own (the
    ellipsis dims are right-aligned and broadcast across operands, as in torch), and the size of each letter
    after broadcasting. Errors follow torch's, one line each.
    """
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ValueError(f"einsum: equation {equation!r} has more than one '->'")
    lhs, arrow, out = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: equation {equation!r} has {len(ins)} input term(s) but {len(shapes)} "
                         f"operand(s) were given")
    for term in ins + ([out] if arrow else []):
        if not _TERM.match(term):
            bad = "more than one '...'" if term.count(".") > 3 else "characters other than letters and one '...'"
            raise ValueError(f"einsum: term {term!r} of {equation!r} has {bad}")
    used = set(eq) - set(".,->")
    n_ell = 0
    for term, shape in zip(ins, shapes):
        n_letters = len(term.replace("...", ""))
        if n_letters > len(shape) or ("..." not in term and n_letters != len(shape)):
            raise ValueError(f"einsum: term {term!r} has {n_letters} indices but the operand has shape "
                             f"{tuple(shape)}")
        if "..." in term:
            n_ell = max(n_ell, len(shape) - n_letters)
    spare = [c for c in _LETTERS if c not in used]
    if n_ell > len(spare):
        raise ValueError(f"einsum: {equation!r} needs more than {len(_LETTERS)} distinct indices")
    ell = "".join(spare[:n_ell])
    resolved = []
    for term, shape in zip(ins, shapes):
        k = len(shape) - len(term.replace("...", ""))
        resolved.append(term.replace("...", ell[n_ell - k:]))
    if arrow:
        out = out.replace("...", ell)
    else:  # implicit output: the ellipsis dims, then the indices used exactly once, in alphabetical order
        letters = "".join(t.replace("...", "") for t in ins)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    for c in out:
        if out.count(c) > 1:
            raise ValueError(f"einsum: output index {c!r} appears more than once in {equation!r}")
        if not any(c in t for t in resolved):
            raise ValueError(f"einsum: output index {c!r} does not appear in any input term of {equation!r}")
    sizes: dict = {}
    for j, (term, shape) in enumerate(zip(resolved, shapes)):
        own: dict = {}
        for c, n in zip(term, shape):
            if own.setdefault(c, n) != n:
                raise ValueError(f"einsum: index {c!r} is repeated in term {ins[j]!r} of operand {j} (shape "
                                 f"{tuple(shape)}) with different sizes, {own[c]} != {n}")
            if sizes.get(c, 1) == 1:
                sizes[c] = n
            elif n not in (1, sizes[c]):
                what = "an ellipsis dim" if c in ell else f"index {c!r}"
                raise ValueError(f"einsum: {what} has size {n} in operand {j} (shape {tuple(shape)}) but "
                                 f"{sizes[c]} in an earlier one; sizes must match or be 1")
    return resolved, out, sizes


def _onto_diagonal(xp, gu, term: str, unique: str, sizes: dict):
    """The array of ``term``'s shape that holds ``gu`` (indexed by ``unique``, the distinct letters of
    ``term``) on its diagonal over repeated letters and zeros elsewhere: ``gu[i, j] * eye[i, k]`` for
    ``"iji"``, one einsum with an identity matrix per repeated occurrence (no strided views, so it runs the
    same on CuPy)."""
    spare = iter(c for c in _LETTERS if c not in unique)
    out, eyes, seen = [], [], set()
    for c in term:
        if c in seen:
            k = next(spare)
            out.append(k)
            eyes.append(c + k)
        else:
            seen.add(c)
            out.append(c)
    identities = [xp.eye(sizes[e[0]], dtype=gu.dtype) for e in eyes]
    return xp.einsum(",".join([unique] + eyes) + "->" + "".join(out), gu, *identities)


class Einsum(Function):
    """Forward: one ``xp.einsum`` over operands broadcast to the letters' sizes. Backward for operand i:
    the einsum of the upstream gradient with the other operands onto operand i's distinct letters, broadcast
    over letters summed away, written onto the diagonal for repeated letters (``ii``), and summed over the
    dims operand i was broadcast along."""

    @staticmethod
    def forward(ctx, spec, *arrays):
        ins, out, sizes = spec
        xp = xp_of(arrays[0])
        full = [xp.broadcast_to(a, tuple(sizes[c] for c in t)) if a.shape != tuple(sizes[c] for c in t) else a
                for t, a in zip(ins, arrays)]
        ctx.save_for_backward(*arrays)
        ctx.spec = spec
        return xp.einsum(f"{','.join(ins)}->{out}", *full)

    @staticmethod
    def backward(ctx, g):
        arrays = ctx.saved_tensors
        ins, out, sizes = ctx.spec
        xp = xp_of(g)
        full = [xp.broadcast_to(a, tuple(sizes[c] for c in t)) for t, a in zip(ins, arrays)]
        grads = [None]
        for i, term in enumerate(ins):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [(t, a) for j, (t, a) in enumerate(zip(ins, full)) if j != i]
            unique = "".join(dict.fromkeys(term))
            available = set(out).union(*[set(t) for t, _ in others])
            kept = "".join(c for c in unique if c in available)
            gi = xp.einsum(",".join([out] + [t for t, _ in others]) + "->" + kept, g, *[a for _, a in others])
            if kept != unique:  # letters summed away in the forward: the gradient is constant along them
                order = [kept.index(c) for c in unique if c in kept]
                gi = gi.transpose(order).reshape([sizes[c] if c in kept else 1 for c in unique])
                gi = xp.broadcast_to(gi, tuple(sizes[c] for c in unique))
            if unique != term:  # repeated letters: the gradient lives on the diagonal, zeros elsewhere
                gi = _onto_diagonal(xp, gi, term, unique, sizes)
            shape = arrays[i].shape
            summed = tuple(k for k, n in enumerate(shape) if n == 1 and gi.shape[k] != 1)
            if summed:  # the operand was broadcast along these dims
                gi = gi.sum(axis=summed, keepdims=True)
            grads.append(gi.astype(g.dtype, copy=False))
        return tuple(grads)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation as ``torch.einsum``: explicit (``"ij,jk->ik"``) or implicit output, ``...`` for
    broadcast leading/middle dims (``"...ij,...jk->...ik"``), repeated indices within a term for diagonals
    and traces (``"ii->i"``, ``"ii"``, ``"bii->b"``), and dims of size 1 broadcast against the same index in
    other operands. All operands must have the same dtype, as in torch."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: expected at least one operand")
    device = next((t.device for t in operands if isinstance(t, Tensor)), None)
    operands = tuple(t if isinstance(t, Tensor) else Tensor(t, device=device) for t in operands)
    dtypes = {str(t.dtype) for t in operands}
    if len(dtypes) > 1:
        raise RuntimeError(f"einsum: expected operands of one dtype, got {', '.join(str(t.dtype) for t in operands)}"
                           "; convert them first, e.g. with .float()")
    ins, out, sizes = _parse(equation, [tuple(t.shape) for t in operands])
    return Einsum.apply((tuple(ins), out, sizes), *operands)
