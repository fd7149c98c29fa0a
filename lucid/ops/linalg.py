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


_TERM = re.compile(r"^[a-zA-Z]*$")


def _parse(equation: str, n: int):
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise NotImplementedError("einsum: '...' (ellipsis) is not supported yet; write the indices out")
    if "->" in eq:
        lhs, out = eq.split("->")
    else:
        lhs = eq
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != n or not all(_TERM.match(t) for t in ins + [out]):
        raise ValueError(f"einsum: equation {equation!r} does not match {n} operand(s)")
    return ins, out


class Einsum(Function):
    @staticmethod
    def forward(ctx, equation, *arrays):
        ins, out = _parse(equation, len(arrays))
        for term, arr in zip(ins, arrays):
            if len(term) != arr.ndim:
                raise ValueError(f"einsum: term {term!r} has {len(term)} indices but the operand has shape "
                                 f"{tuple(arr.shape)}")
            if len(set(term)) != len(term):
                raise NotImplementedError(f"einsum: repeated index in {term!r} (diagonals) is not supported")
        ctx.save_for_backward(*arrays)
        ctx.terms = (ins, out)
        return xp_of(arrays[0]).einsum(f"{','.join(ins)}->{out}", *arrays)

    @staticmethod
    def backward(ctx, g):
        arrays = ctx.saved_tensors
        ins, out = ctx.terms
        xp = xp_of(g)
        grads = [None]
        for i, term in enumerate(ins):
            if not ctx.needs_input_grad[i + 1]:
                grads.append(None)
                continue
            others = [(t, a) for j, (t, a) in enumerate(zip(ins, arrays)) if j != i]
            available = set(out).union(*[set(t) for t, _ in others]) if others else set(out)
            # indices of this operand that appear nowhere else were summed away: broadcast over them
            kept = "".join(c for c in term if c in available)
            spec = ",".join([out] + [t for t, _ in others]) + "->" + kept
            gi = xp.einsum(spec, g, *[a for _, a in others])
            if kept != term:
                shape = [arrays[i].shape[term.index(c)] if c in kept else 1 for c in term]
                order = [kept.index(c) for c in term if c in kept]
                gi = xp.broadcast_to(gi.transpose(order).reshape(shape), arrays[i].shape)
            grads.append(gi)
        return tuple(grads)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation over tensors (explicit '->' or implicit output; no ellipsis or diagonals)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return Einsum.apply(equation, *operands)
