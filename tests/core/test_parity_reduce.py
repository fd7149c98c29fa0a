"""Forward/backward parity with torch and float64 gradchecks for the reductions (lucid/ops/reduce.py)."""
import numpy as np
import pytest
import torch

import lucid

from ._parity import arr, check, gradcheck, rng_for

DIMS = [None, 0, -1, 1, (0, 2), (-1, 0), (0, 1, 2)]
LAYOUTS = ["c", "t", "n"]


def _kw(dim, keepdim):
    """No keywords for a full reduction without keepdim, so the plain x.sum() form is tested too."""
    return {} if dim is None and not keepdim else {"dim": dim, "keepdim": keepdim}


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_sum_mean(op, dim, keepdim, layout):
    x = arr((3, 4, 5), layout, rng_for(f"{op}{dim}{keepdim}{layout}"))
    kw = _kw(dim, keepdim)
    check(op, lambda t: getattr(t, op)(**kw), lambda t: getattr(t, op)(**kw), x)
    check(op + "_fn", lambda t: getattr(lucid, op)(t, **kw), lambda t: getattr(torch, op)(t, **kw), x)


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("op", ["sum", "mean", "var"])
def test_single_short_axis_of_activation_sized_tensor(op, dim):
    """Covers the BLAS path of sum_array (one short axis of a C-contiguous tensor) at a realistic size."""
    x = arr((16, 48, 8, 8), "c", rng_for(f"short{op}{dim}"))
    check(op, lambda t: getattr(t, op)(dim), lambda t: getattr(t, op)(dim), x)
    check(op, lambda t: getattr(t, op)(dim, keepdim=True), lambda t: getattr(t, op)(dim, keepdim=True), x)


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_sum_mean_gradcheck(op):
    x = arr((2, 3, 2), "t", rng_for(op))
    for kw in [{}, {"dim": 1}, {"dim": (0, -1), "keepdim": True}]:
        gradcheck(lambda t: getattr(t, op)(**kw), x)


@pytest.mark.parametrize("shape,dim", [((0, 3), 0), ((0, 3), 1), ((2, 0), None), ((1, 1), -1), ((), None),
                                       ((), 0), ((4, 1), 1)], ids=str)
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_sum_mean_edge_shapes(op, shape, dim):
    x = arr(shape, "c", rng_for(f"{op}{shape}{dim}"))
    kw = _kw(dim, False)
    check(op, lambda t: getattr(t, op)(**kw), lambda t: getattr(t, op)(**kw), x)


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "var", "std", "norm"])
def test_empty_dim_list_reduces_everything(op):
    x = arr((2, 3), "t", rng_for("emptydim" + op))
    grad = op not in ("var", "std")  # torch 2.14's var backward with dim=[] returns inf (a torch bug)
    check(op, lambda t: getattr(t, op)(dim=()), lambda t: getattr(t, op)(dim=()), x, grad=grad)
    check(op, lambda t: getattr(t, op)(dim=[], keepdim=True), lambda t: getattr(t, op)(dim=[], keepdim=True), x,
          grad=grad)
    gradcheck(lambda t: getattr(t, op)(dim=()), x)


def test_sum_of_ints_and_bools_is_int64():
    x = np.array([[1, 2], [3, 4]], np.int32)
    check("sum", lambda t: t.sum(), lambda t: t.sum(), x, grad=False)
    check("sum", lambda t: (t > 2).sum(dim=0), lambda t: (t > 2).sum(dim=0), x, grad=False)
    check("sum", lambda t: t.sum(dtype=lucid.float32), lambda t: t.sum(dtype=torch.float32), x, grad=False)


# ---------------------------------------------------------------------------------------------------------
VAR_KWS = [
    {},
    {"dim": 1},
    {"dim": -1, "keepdim": True},
    {"dim": (0, 2), "correction": 0},
    {"dim": 0, "correction": 2},
    {"correction": 0},
    {"dim": 1, "unbiased": False},
    {"dim": (0, 1), "unbiased": True, "keepdim": True},
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kw", VAR_KWS, ids=str)
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std(op, kw, layout):
    x = arr((3, 4, 5), layout, rng_for(f"{op}{kw}{layout}"))
    check(op, lambda t: getattr(t, op)(**kw), lambda t: getattr(t, op)(**kw), x)
    check(op + "_fn", lambda t: getattr(lucid, op)(t, **kw), lambda t: getattr(torch, op)(t, **kw), x)


@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_positional_unbiased(op):
    """torch's positional form is var(dim, unbiased, keepdim): the second argument is *not* keepdim."""
    x = arr((3, 4), "c", rng_for(op + "pos"))
    for args in [(0, False), (1, True), (0, False, True), (-1, True, False)]:
        check(op, lambda t: getattr(t, op)(*args), lambda t: getattr(t, op)(*args), x)
    check(op, lambda t: getattr(t, op)(False), lambda t: getattr(t, op)(False), x)


@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_gradcheck(op):
    x = arr((3, 4), "t", rng_for(op))
    for kw in [{}, {"dim": 0}, {"dim": 1, "correction": 0, "keepdim": True}, {"correction": 2}]:
        gradcheck(lambda t: getattr(t, op)(**kw), x)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is")
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_too_few_elements_gives_nan_or_inf(op):
    """One element with correction 1: torch divides by max(0, N - 1) = 0."""
    x = arr((1, 3), "c", rng_for(op + "1"))
    check(op, lambda t: getattr(t, op)(dim=0), lambda t: getattr(t, op)(dim=0), x, grad=False)


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("shape,kw", [((3, 1, 4), {"dim": 1}), ((1,), {}), ((3, 1), {"dim": -1, "keepdim": True}),
                                      ((2, 0, 3), {"dim": 1}), ((0,), {}),
                                      ((2,), {"correction": 2}), ((3, 2), {"dim": 1, "correction": 2})], ids=str)
def test_var_std_without_degrees_of_freedom_match_torch(op, shape, kw):
    """N - correction <= 0: torch divides by 0 (nan for a single element or none, inf otherwise) and warns;
    lucid gave nan without a warning. Gradients are compared where torch's are consistent (dims of size 1)."""
    import warnings

    x = arr(shape, "c", rng_for(op + str(shape) + str(kw)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own copy of the warning
        check(op, lambda t: getattr(t, op)(**kw), lambda t: getattr(t, op)(**kw), x,
              grad=kw.get("correction") is None)
    with pytest.warns(UserWarning, match=rf"^{op}\(\): degrees of freedom is <= 0") as record:
        getattr(lucid.tensor(x), op)(**kw)
    assert record[0].filename == __file__  # reported at the caller's line, not inside lucid


def test_std_gradient_is_zero_where_std_is_zero():
    """std of a constant slice is 0 and torch's gradient there is 0; d sqrt(v) at v = 0 gave nan."""
    x = np.array([[2.0, 2.0, 2.0], [1.0, -1.0, 3.0]], np.float32)
    check("std", lambda t: t.std(dim=1), lambda t: t.std(dim=1), x)
    check("std", lambda t: t[:1].std(), lambda t: t[:1].std(), x)
    check("std", lambda t: t[:1, :1].std(correction=0), lambda t: t[:1, :1].std(correction=0), x)


def test_var_of_int_tensor_errors():
    with pytest.raises(RuntimeError, match="floating point"):
        lucid.arange(5).var()


# ---------------------------------------------------------------------------------------------------------
# max / min / amax / amin / argmax / argmin
@pytest.mark.parametrize("kind", ["normal", "int"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_no_dim(op, layout, kind):
    """Full reduction: ties share the gradient evenly (torch's evenly_distribute_backward)."""
    x = arr((3, 4), layout, rng_for(f"{op}{layout}{kind}"), kind=kind)
    check(op if kind == "normal" else op + "_ties", lambda t: getattr(t, op)(), lambda t: getattr(t, op)(), x)
    check(op + "_fn", lambda t: getattr(lucid, op)(t), lambda t: getattr(torch, op)(t), x)


@pytest.mark.parametrize("kind", ["normal", "int"])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim(op, dim, keepdim, kind):
    """max(dim) -> (values, indices); the gradient goes to the returned index only; ties pick the first."""
    x = arr((3, 4, 5), "t", rng_for(f"{op}{dim}{keepdim}{kind}"), kind=kind)
    out = check(op + "_dim", lambda t: getattr(t, op)(dim, keepdim), lambda t: getattr(t, op)(dim, keepdim), x)
    values, indices = out
    assert indices.dtype == np.int64
    v2, i2 = getattr(lucid.Tensor(x), op)(dim=dim, keepdim=keepdim)
    assert v2.shape == values.shape and i2.shape == indices.shape
    check(op + "_dim", lambda t: getattr(t, op)(dim=dim, keepdim=keepdim).values,
          lambda t: getattr(t, op)(dim=dim, keepdim=keepdim).values, x)
    check(op + "_dim", lambda t: getattr(t, op)(dim=dim).indices, lambda t: getattr(t, op)(dim=dim).indices, x,
          grad=False)


def test_max_min_dim_edge_shapes():
    check("max_dim", lambda t: t.max(0), lambda t: t.max(0), arr((1, 3), "c"))
    check("max_dim", lambda t: t.max(1), lambda t: t.max(1), arr((0, 3), "c"))
    check("min_dim", lambda t: t.min(0), lambda t: t.min(0), np.asarray(np.float32(2.5)))
    check("max", lambda t: t.max(), lambda t: t.max(), np.asarray(np.float32(-1.5)))


def test_max_min_of_empty_error():
    with pytest.raises((IndexError, RuntimeError), match=r"\(0, 3\)"):
        lucid.zeros(0, 3).max()
    with pytest.raises((IndexError, RuntimeError), match="non-empty"):
        lucid.zeros(0, 3).min(dim=0)


def test_max_min_with_tensor_is_maximum():
    rng = rng_for("max2")
    a, b = arr((3, 4), "c", rng), arr((4,), "c", rng)
    check("maximum", lambda x, y: lucid.max(x, y), lambda x, y: torch.max(x, y), a, b)
    check("minimum", lambda x, y: lucid.min(x, y), lambda x, y: torch.min(x, y), a, b)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_gradcheck(op):
    x = arr((3, 4), "t", rng_for(op))
    gradcheck(lambda t: getattr(t, op)(), x)
    gradcheck(lambda t: getattr(t, op)(1)[0], x)
    gradcheck(lambda t: getattr(t, op)(0, True).values, x)


@pytest.mark.parametrize("kind", ["normal", "int"])
@pytest.mark.parametrize("kw", [{}, {"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)},
                                {"dim": (1, -1), "keepdim": True}], ids=str)
@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_amin(op, kw, kind):
    x = arr((3, 4, 5), "n", rng_for(f"{op}{kw}{kind}"), kind=kind)
    check(op if kind == "normal" else op + "_ties", lambda t: getattr(t, op)(**kw),
          lambda t: getattr(t, op)(**kw), x)
    check(op + "_fn", lambda t: getattr(lucid, op)(t, **kw), lambda t: getattr(torch, op)(t, **kw), x)


@pytest.mark.parametrize("op", ["amax", "amin"])
def test_amax_amin_gradcheck(op):
    x = arr((3, 4), "t", rng_for(op))
    gradcheck(lambda t: getattr(t, op)(dim=0), x)
    gradcheck(lambda t: getattr(t, op)(), x)


@pytest.mark.parametrize("kind", ["normal", "int"])
@pytest.mark.parametrize("kw", [{}, {"dim": 0}, {"dim": -1}, {"dim": 1, "keepdim": True}, {"keepdim": True}],
                         ids=str)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(op, kw, kind):
    x = arr((3, 4, 5), "t", rng_for(f"{op}{kw}{kind}"), kind=kind)
    check(op, lambda t: getattr(t, op)(**kw), lambda t: getattr(t, op)(**kw), x, grad=False)
    check(op, lambda t: getattr(lucid, op)(t, **kw), lambda t: getattr(torch, op)(t, **kw), x, grad=False)


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kw", [{"dim": 0}, {"dim": -1, "keepdim": True}, {"dim": (0, 2)}, {"dim": 1}], ids=str)
def test_logsumexp(kw, layout):
    x = arr((3, 4, 5), layout, rng_for(f"lse{kw}{layout}")) * np.float32(10)
    check("logsumexp", lambda t: t.logsumexp(**kw), lambda t: t.logsumexp(**kw), x)
    check("logsumexp", lambda t: lucid.logsumexp(t, **kw), lambda t: torch.logsumexp(t, **kw), x)


def test_logsumexp_extremes_and_gradcheck():
    x = np.array([[1000.0, 1000.0, -5.0], [-1000.0, -1e4, -1000.0]], np.float32)
    check("logsumexp", lambda t: t.logsumexp(1), lambda t: t.logsumexp(1), x)
    x = np.array([[-np.inf, 0.0], [-np.inf, -np.inf]], np.float32)
    check("logsumexp", lambda t: t.logsumexp(1), lambda t: t.logsumexp(1), x, grad=False)
    gradcheck(lambda t: t.logsumexp(dim=(0, 1)), arr((3, 4), "t", rng_for("lse")))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(op, dim, layout):
    x = arr((3, 4, 5), layout, rng_for(f"{op}{dim}{layout}")) * np.float32(5)
    check(op, lambda t: getattr(t, op)(dim), lambda t: getattr(t, op)(dim), x)
    check(op + "_fn", lambda t: getattr(lucid, op)(t, dim=dim), lambda t: getattr(torch, op)(t, dim=dim), x)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_edge_cases(op):
    big = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]], np.float32)
    check(op, lambda t: getattr(t, op)(1), lambda t: getattr(t, op)(1), big)
    check(op, lambda t: getattr(t, op)(0), lambda t: getattr(t, op)(0), arr((0, 3), "c"))
    check(op, lambda t: getattr(t, op)(1), lambda t: getattr(t, op)(1), arr((0, 3), "c"))
    check(op, lambda t: getattr(t, op)(1), lambda t: getattr(t, op)(1), arr((2, 0), "c"))
    check(op, lambda t: getattr(t, op)(-1), lambda t: getattr(t, op)(-1), arr((4, 1), "c"))
    check(op, lambda t: getattr(t, op)(0), lambda t: getattr(t, op)(0), np.asarray(np.float32(3.0)))
    check(op, lambda t: getattr(lucid, op)(t, 1, dtype=lucid.float64), lambda t: getattr(torch, op)(
        t, 1, dtype=torch.float64), arr((2, 3), "c"))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_gradcheck(op):
    x = arr((3, 4), "t", rng_for(op))
    gradcheck(lambda t: getattr(t, op)(0), x)
    gradcheck(lambda t: getattr(t, op)(-1), x)


# ---------------------------------------------------------------------------------------------------------
NORMS = [
    {},
    {"p": 2, "dim": 1},
    {"p": 1},
    {"p": 1, "dim": 0, "keepdim": True},
    {"p": float("inf"), "dim": -1},
    {"p": 3, "dim": (0, 1)},
    {"p": 0.5, "dim": 1},
    {"p": "fro"},
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kw", NORMS, ids=str)
def test_norm(kw, layout):
    x = arr((3, 4), layout, rng_for(f"norm{kw}{layout}"), low=0.05 if kw.get("p") == 0.5 else None)
    check("norm", lambda t: t.norm(**kw), lambda t: t.norm(**kw), x)
    check("norm", lambda t: lucid.norm(t, **kw), lambda t: torch.norm(t, **kw), x)


def test_norm_gradcheck():
    x = arr((3, 4), "t", rng_for("norm"))
    for kw in [{}, {"p": 1, "dim": 0}, {"p": 3, "dim": 1, "keepdim": True}, {"p": float("inf"), "dim": 1}]:
        gradcheck(lambda t: t.norm(**kw), x)


def test_norm_of_zero_vector_has_zero_gradient():
    """torch's norm backward is 0 (not NaN) where the norm is 0: matters for weight-norm style code."""
    x = np.zeros((2, 3), np.float32)
    x[1] = [3.0, 0.0, -4.0]
    check("norm_at_zero", lambda t: t.norm(dim=1), lambda t: t.norm(dim=1), x)
    check("norm_at_zero", lambda t: t.norm(), lambda t: t.norm(), np.zeros(4, np.float32))
    check("norm_at_zero", lambda t: t.norm(p=3, dim=1), lambda t: t.norm(p=3, dim=1), x)
