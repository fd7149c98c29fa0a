"""Forward/backward parity with torch and float64 gradchecks for matmul and einsum (lucid/ops/linalg.py)."""
import re

import numpy as np
import pytest
import torch

import lucid

from ._parity import arr, check, gradcheck, rng_for

MATMUL_SHAPES = [
    ((5,), (5,)),  # 1-D x 1-D -> 0-d
    ((5,), (5, 3)),  # 1-D x 2-D
    ((4, 5), (5,)),  # 2-D x 1-D
    ((4, 5), (5, 3)),
    ((2, 4, 5), (5, 3)),  # batched x matrix (one GEMM over all rows)
    ((2, 3, 4, 5), (5, 2)),
    ((2, 0, 5), (5, 3)),
    ((5,), (2, 5, 3)),  # vector x batched
    ((2, 4, 5), (5,)),  # batched x vector
    ((2, 1, 4, 5), (3, 5, 2)),  # batch dims broadcast
    ((1, 4, 5), (3, 5, 2)),
    ((0, 5), (5, 3)),  # empty rows
    ((4, 0), (0, 3)),  # empty inner dim -> zeros
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("layout", ["c", "t", "n"])
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, layout):
    rng = rng_for(f"mm{shapes}{layout}")
    a = arr(shapes[0], layout, rng)
    b = arr(shapes[1], "t", rng)
    check("matmul", lambda x, y: x @ y, lambda x, y: x @ y, a, b)
    check("matmul_fn", lucid.matmul, torch.matmul, a, b)
    check("matmul_method", lambda x, y: x.matmul(y), lambda x, y: x.matmul(y), a, b, grad_args=[1])


@pytest.mark.parametrize("shapes", [s for s in MATMUL_SHAPES if 0 not in s[0] + s[1]], ids=str)
def test_matmul_gradcheck(shapes):
    rng = rng_for(f"mmg{shapes}")
    gradcheck(lambda x, y: x @ y, arr(shapes[0], "t", rng), arr(shapes[1], "c", rng))


def test_matmul_with_ndarray_operand():
    rng = rng_for("mm_nd")
    a, b = arr((3, 4), "c", rng), arr((4, 2), "c", rng)
    out = lucid.Tensor(a) @ b
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-6)
    out = a @ lucid.Tensor(b)  # ndarray @ Tensor defers to Tensor.__rmatmul__
    assert isinstance(out, lucid.Tensor)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-6)


@pytest.mark.parametrize("a,b", [((3, 4), (5, 2)), ((4,), (3,)), ((2, 3, 4), (2, 5, 6))], ids=str)
def test_matmul_shape_error_names_both_shapes(a, b):
    with pytest.raises(RuntimeError, match=r"\(" + str(a[0])) as exc:
        lucid.zeros(*a) @ lucid.zeros(*b)
    assert str(tuple(a)) in str(exc.value) and str(tuple(b)) in str(exc.value)


@pytest.mark.parametrize("da,db", [("int64", "float32"), ("float32", "int64"), ("float64", "float32"),
                                   ("int32", "int64"), ("float16", "float32")])
def test_matmul_mixed_dtypes_are_refused_as_in_torch(da, db):
    """torch never promotes in matmul ("expected m1 and m2 to have the same dtype"); lucid used to give a float
    result for int64 @ float32."""
    a, b = np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)
    with pytest.raises(RuntimeError):
        torch.from_numpy(a.astype(da)) @ torch.from_numpy(b.astype(db))
    with pytest.raises(RuntimeError, match=rf"same dtype, got {da} \(shape \(2, 3\)\) and {db} \(shape \(3, 2\)\)"):
        lucid.tensor(a.astype(da)) @ lucid.tensor(b.astype(db))
    with pytest.raises(RuntimeError, match="same dtype"):
        lucid.matmul(lucid.tensor(a[0].astype(da)), lucid.tensor(b.astype(db)))


def test_matmul_integer_operands_like_torch():
    a, b = np.arange(6).reshape(2, 3), np.arange(6).reshape(3, 2)
    for dt in ("int64", "int32"):
        check("matmul_int", lambda x, y: x @ y, lambda x, y: x @ y, a.astype(dt), b.astype(dt), grad=False)


@pytest.mark.parametrize("a,b,batches", [((2, 3, 4), (3, 4, 5), r"\(2,\) and \(3,\)"),
                                         ((4, 2, 3, 4), (3, 1, 4, 5), r"\(4, 2\) and \(3, 1\)"),
                                         ((5, 2, 4), (7, 3, 4, 2), r"\(5,\) and \(7, 3\)")], ids=str)
def test_matmul_batch_broadcast_error_names_both_shapes(a, b, batches):
    with pytest.raises(RuntimeError):
        torch.zeros(a) @ torch.zeros(b)
    with pytest.raises(RuntimeError, match=rf"batch dimensions {batches} of shapes "
                                           rf"{re.escape(str(a))} and {re.escape(str(b))} cannot be broadcast"):
        lucid.zeros(*a) @ lucid.zeros(*b)


def test_matmul_0d_errors():
    with pytest.raises(RuntimeError, match="0-d"):
        lucid.tensor(2.0) @ lucid.ones(3)


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk", [(3, 4), (4, 2)]),  # implicit output
    ("ij,kj->ik", [(3, 4), (2, 4)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("ik,jk->i", [(3, 4), (2, 4)]),  # index j only in the second operand: summed away
    # ellipsis: broadcast batch dims, implicit outputs, dims in the middle, summed away, 0-d operands
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 6)]),
    ("...ij,...jk", [(2, 3, 4), (2, 4, 5)]),
    ("i...->...i", [(2, 3, 4)]),
    ("i...j->ji...", [(2, 3, 4, 5)]),
    ("...ij->ij", [(2, 3, 4)]),
    ("...,...->...", [(), (3,)]),
    ("...i,i,...i->...", [(2, 3), (3,), (2, 3)]),
    ("...i,...i->...", [(3,), (3,)]),
    # repeated indices: diagonals and traces, also non-adjacent and with other dims
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ii->", [(3, 3)]),
    ("bii->bi", [(2, 3, 3)]),
    ("iij->j", [(3, 3, 4)]),
    ("iji->ij", [(3, 4, 3)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ii,jj->ij", [(3, 3), (2, 2)]),
    ("ij,jj->i", [(2, 3), (3, 3)]),
    # size-1 dims broadcast against the same index elsewhere; upper-case indices sort first
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,ij->i", [(3, 3), (3, 1)]),
    ("ii,i->i", [(3, 3), (1,)]),
    ("bA,Ac", [(2, 3), (3, 4)]),
    ("aB", [(2, 3)]),
    ("ij,jk->ik", [(0, 3), (3, 4)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum(eq, shapes):
    rng = rng_for("einsum" + eq)
    arrays = [arr(s, "t" if i == 0 else "c", rng) for i, s in enumerate(shapes)]
    check("einsum", lambda *xs: lucid.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), *arrays)
    check("einsum", lambda *xs: lucid.einsum(eq, list(xs)), lambda *xs: torch.einsum(eq, list(xs)), *arrays)
    gradcheck(lambda *xs: lucid.einsum(eq, *xs), *arrays)


def test_einsum_partial_requires_grad():
    rng = rng_for("einsum_partial")
    a, b = arr((3, 4), "c", rng), arr((4, 2), "c", rng)
    check("einsum", lambda x, y: lucid.einsum("ij,jk->ik", x, y), lambda x, y: torch.einsum("ij,jk->ik", x, y),
          a, b, grad_args=[1])


@pytest.mark.parametrize("eq,shapes,match", [
    ("ii->i", [(3, 2)], r"'i' is repeated in term 'ii' of operand 0 \(shape \(3, 2\)\) with different sizes"),
    ("i->ii", [(3,)], r"output index 'i' appears more than once"),
    ("i->j", [(3,)], r"output index 'j' does not appear in any input"),
    ("......i", [(3,)], r"more than one '...'"),
    ("ijk...", [(2, 3)], r"term 'ijk...' has 3 indices but the operand has shape \(2, 3\)"),
    ("...i,...i->...", [(2, 3), (4, 3)], r"ellipsis dim has size 4 in operand 1 \(shape \(4, 3\)\) but 2"),
    ("ij,ij->ij", [(2, 3), (3, 3)], r"index 'i' has size 3 in operand 1"),
    ("i-j", [(3,)], r"characters other than letters"),
])
def test_einsum_errors_where_torch_errs(eq, shapes, match):
    with pytest.raises(RuntimeError):
        torch.einsum(eq, *[torch.zeros(s) for s in shapes])
    with pytest.raises(ValueError, match=match):
        lucid.einsum(eq, *[lucid.zeros(*s) for s in shapes])


def test_einsum_mixed_dtypes_are_refused_as_in_torch():
    with pytest.raises(RuntimeError):
        torch.einsum("i,i", torch.arange(3), torch.zeros(3))
    with pytest.raises(RuntimeError, match="expected operands of one dtype, got int64, float32"):
        lucid.einsum("i,i", lucid.arange(3), lucid.zeros(3))


def test_einsum_bad_equation_errors():
    with pytest.raises(ValueError, match="operand"):
        lucid.einsum("ij,jk->ik", lucid.ones(2, 2))
    with pytest.raises(ValueError, match="shape"):
        lucid.einsum("ijk->i", lucid.ones(2, 2))
