"""Forward/backward parity with torch and float64 gradchecks for the elementwise ops (lucid/ops/elementwise.py).

Each case runs on float32 random data in several memory layouts (contiguous, transposed, strided, negative
strides), with broadcasting, 0-d, size-1 and empty dims.
"""
import numpy as np
import pytest
import torch

import lucid

from ._parity import arr, check, gradcheck, rng_for

LAYOUTS = ["c", "t", "s", "n"]

# ---------------------------------------------------------------------------------------------------------
# binary arithmetic with broadcasting
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (lucid.maximum, torch.maximum),
    "minimum": (lucid.minimum, torch.minimum),
    "add_fn_alpha": (lambda a, b: lucid.add(a, b, alpha=2.5), lambda a, b: torch.add(a, b, alpha=2.5)),
    "sub_fn_alpha": (lambda a, b: lucid.sub(a, b, alpha=-3), lambda a, b: torch.sub(a, b, alpha=-3)),
    "mul_fn": (lucid.mul, torch.mul),
    "div_fn": (lucid.div, torch.div),
    "add_method": (lambda a, b: a.add(b, alpha=-2), lambda a, b: a.add(b, alpha=-2)),
    "sub_method": (lambda a, b: a.sub(b), lambda a, b: a.sub(b)),
    "mul_method": (lambda a, b: a.mul(b), lambda a, b: a.mul(b)),
    "div_method": (lambda a, b: a.div(b), lambda a, b: a.div(b)),
    "maximum_method": (lambda a, b: a.maximum(b), lambda a, b: a.maximum(b)),
    "minimum_method": (lambda a, b: a.minimum(b), lambda a, b: a.minimum(b)),
}
SHAPE_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((2, 1, 4), (3, 1)),  # both sides broadcast
    ((), (2, 3)),  # 0-d with matrix
    ((3, 1), (1, 1)),
    ((0, 3), (3,)),  # empty
    ((2, 0, 3), (1, 3)),
]


@pytest.mark.parametrize("layout", ["c", "t", "n"])
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary(op, shapes, layout):
    name = f"{op}[{shapes}-{layout}]"
    rng = rng_for(name)
    low = 0.5 if op.startswith("div") else None  # keep divisors away from 0
    a = arr(shapes[0], layout, rng)
    b = arr(shapes[1], "c", rng, low=low)
    check(op, *BINARY[op], a, b)


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_gradcheck(op):
    rng = rng_for(op)
    a = arr((2, 3), "t", rng)
    b = arr((3,), "c", rng, low=0.5)
    gradcheck(BINARY[op][0], a, b)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_ties(op):
    """Ties split the gradient evenly between both inputs, as in PyTorch."""
    rng = rng_for(op + "ties")
    a = arr((4, 5), "c", rng, kind="int")
    b = arr((4, 5), "c", rng, kind="int")
    assert (a == b).any()
    check(op + "_ties", *BINARY[op], a, b)
    check(op + "_ties", *BINARY[op], a, a[:1])


def test_maximum_with_scalar():
    check("maximum", lambda x: lucid.maximum(x, 0.25), lambda x: torch.maximum(x, torch.tensor(0.25)),
          arr((3, 4), "t"))


# ---------------------------------------------------------------------------------------------------------
# tensor with python scalars (and reflected operators)
SCALAR_OPS = {
    "add_scalar": (lambda x: x + 2.5, lambda x: x + 2.5),
    "radd_scalar": (lambda x: 2 + x, lambda x: 2 + x),
    "sub_scalar": (lambda x: x - 1, lambda x: x - 1),
    "rsub_scalar": (lambda x: 1.5 - x, lambda x: 1.5 - x),
    "mul_scalar": (lambda x: x * -3, lambda x: x * -3),
    "rmul_scalar": (lambda x: 0.5 * x, lambda x: 0.5 * x),
    "div_scalar": (lambda x: x / 4, lambda x: x / 4),
    "rdiv_scalar": (lambda x: 3 / x, lambda x: 3 / x),
    "neg": (lambda x: -x, lambda x: -x),
    "neg_fn": (lucid.neg, torch.neg),
    "neg_method": (lambda x: x.neg(), lambda x: x.neg()),
    "add_method_scalar": (lambda x: x.add(2, alpha=0.5), lambda x: x.add(2, alpha=0.5)),
    "mul_method_scalar": (lambda x: x.mul(-1.5), lambda x: x.mul(-1.5)),
    "pow_scalar2": (lambda x: x ** 2, lambda x: x ** 2),
    "pow_scalar3": (lambda x: x ** 3, lambda x: x ** 3),
    "pow_scalar_half": (lambda x: x ** 0.5, lambda x: x ** 0.5),
    "pow_scalar_neg": (lambda x: x ** -1.5, lambda x: x ** -1.5),
    "pow_scalar0": (lambda x: x ** 0, lambda x: x ** 0),
    "pow_method": (lambda x: x.pow(2.5), lambda x: x.pow(2.5)),
    "pow_fn": (lambda x: lucid.pow(x, 3), lambda x: torch.pow(x, 3)),
    "rpow_scalar": (lambda x: 2 ** x, lambda x: 2 ** x),
    "rpow_float": (lambda x: 0.7 ** x, lambda x: 0.7 ** x),
    "rpow_fn": (lambda x: lucid.pow(1.5, x), lambda x: torch.pow(1.5, x)),
}
POSITIVE = {"rdiv_scalar", "pow_scalar_half", "pow_scalar_neg", "pow_method"}


@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2), (4, 1, 3)], ids=str)
@pytest.mark.parametrize("layout", ["c", "n"])
@pytest.mark.parametrize("op", sorted(SCALAR_OPS))
def test_scalar_ops(op, shape, layout):
    name = f"{op}[{shape}-{layout}]"
    x = arr(shape, layout, rng_for(name), low=0.5 if op in POSITIVE else None)
    check(op, *SCALAR_OPS[op], x)


@pytest.mark.parametrize("op", sorted(SCALAR_OPS))
def test_scalar_ops_gradcheck(op):
    x = arr((2, 3), "t", rng_for(op), low=0.5 if op in POSITIVE else None)
    gradcheck(SCALAR_OPS[op][0], x)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3), (3,)), ((3,), (2, 1))], ids=str)
def test_pow_tensor_tensor(shapes):
    rng = rng_for(f"powtt{shapes}")
    base = arr(shapes[0], "t", rng, low=0.5)
    expo = arr(shapes[1], "c", rng)
    check("pow_tensor_tensor", lambda a, b: a ** b, lambda a, b: a ** b, base, expo)
    gradcheck(lambda a, b: a ** b, base, expo)


def test_pow_tensor_tensor_zero_base_and_exponent():
    """PyTorch's conventions at 0: d/da a^0 = 0, and d/db 0^b = 0 for b >= 0."""
    base = np.array([0.0, 0.0, 2.0, 1.5], np.float32)
    expo = np.array([0.0, 2.0, 0.0, 1.0], np.float32)
    check("pow_tensor_tensor", lambda a, b: a ** b, lambda a, b: a ** b, base, expo)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # 0 ** -1 = inf in the forward
def test_pow_with_zero_scalar_base():
    """d/dx 0**x: torch gives 0 where x >= 0 (and -inf * 0**x elsewhere)."""
    x = np.array([0.0, 0.5, 2.0, -1.0], np.float32)
    check("rpow_zero_base", lambda t: 0.0 ** t, lambda t: 0.0 ** t, x)


def test_pow_scalar_at_zero():
    x = np.array([0.0, 1.0, -2.0], np.float32)
    check("pow_scalar2", lambda t: t ** 2, lambda t: t ** 2, x)
    check("pow_scalar0", lambda t: t ** 0, lambda t: t ** 0, x)


# ---------------------------------------------------------------------------------------------------------
# unary math
UNARY = {
    "exp": (lambda x: x.exp(), torch.exp, None),
    "log": (lambda x: x.log(), torch.log, 0.1),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, 0.1),
    "rsqrt": (lambda x: x.rsqrt(), torch.rsqrt, 0.1),
    "abs": (lambda x: x.abs(), torch.abs, None),
    "abs_builtin": (lambda x: abs(x), lambda x: abs(x), None),
    "tanh": (lambda x: x.tanh(), torch.tanh, None),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, None),
    "relu": (lambda x: x.relu(), torch.relu, None),
    "erf": (lambda x: x.erf(), torch.erf, None),
    "exp_fn": (lucid.exp, torch.exp, None),
    "log_fn": (lucid.log, torch.log, 0.1),
    "sqrt_fn": (lucid.sqrt, torch.sqrt, 0.1),
    "rsqrt_fn": (lucid.rsqrt, torch.rsqrt, 0.1),
    "tanh_fn": (lucid.tanh, torch.tanh, None),
    "sigmoid_fn": (lucid.sigmoid, torch.sigmoid, None),
    "relu_fn": (lucid.relu, torch.relu, None),
    "erf_fn": (lucid.erf, torch.erf, None),
    "abs_fn": (lucid.abs, torch.abs, None),
}


@pytest.mark.parametrize("shape", [(3, 4), (), (0, 3), (5, 1), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary(op, shape, layout):
    name = f"{op}[{shape}-{layout}]"
    lf, tf, low = UNARY[op]
    check(op, lf, tf, arr(shape, layout, rng_for(name), low=low))


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_gradcheck(op):
    lf, _, low = UNARY[op]
    gradcheck(lf, arr((3, 4), "t", rng_for(op), low=low))


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "exp", "erf", "relu", "abs"])
def test_unary_extreme_values(op):
    """Large magnitudes must not overflow into NaN (e.g. sigmoid's exp(-x))."""
    x = np.array([-100.0, -30.0, -5.0, 0.0, 5.0, 30.0, 80.0], np.float32)
    lf, tf, _ = UNARY[op]
    check(op, lf, tf, x)


def test_abs_relu_at_zero():
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    check("abs", UNARY["abs"][0], UNARY["abs"][1], x)
    check("relu", UNARY["relu"][0], UNARY["relu"][1], x)


def test_unary_int_input_gives_float32():
    for name in ["exp", "log", "sqrt", "tanh", "sigmoid", "erf", "rsqrt"]:
        lf, tf, _ = UNARY[name]
        x = np.array([1, 2, 3], np.int64)
        check(name, lf, tf, x, grad=False)


# ---------------------------------------------------------------------------------------------------------
# clamp
CLAMPS = {
    "clamp_both": (lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7)),
    "clamp_min": (lambda x: x.clamp(min=-0.2), lambda x: x.clamp(min=-0.2)),
    "clamp_max": (lambda x: x.clamp(max=0.3), lambda x: x.clamp(max=0.3)),
    "clamp_int_bounds": (lambda x: lucid.clamp(x, -1, 1), lambda x: torch.clamp(x, -1, 1)),
    "clip": (lambda x: x.clip(-0.5, 0.5), lambda x: x.clip(-0.5, 0.5)),
    "lucid_clip": (lambda x: lucid.clip(x, max=0.1), lambda x: torch.clip(x, max=0.1)),
}


@pytest.mark.parametrize("shape", [(4, 5), (), (0, 2)], ids=str)
@pytest.mark.parametrize("layout", ["c", "t", "n"])
@pytest.mark.parametrize("op", sorted(CLAMPS))
def test_clamp_scalar_bounds(op, shape, layout):
    check(op, *CLAMPS[op], arr(shape, layout, rng_for(f"{op}{shape}{layout}")))


@pytest.mark.parametrize("op", sorted(CLAMPS))
def test_clamp_gradcheck(op):
    x = arr((3, 4), "t", rng_for(op))
    x[np.abs(np.abs(x) - 0.5) < 0.05] = 0.0  # keep finite differences away from the kinks
    gradcheck(CLAMPS[op][0], x)


def test_clamp_at_the_bounds():
    """Values exactly on a bound: PyTorch passes no gradient there (strictly inside only)."""
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32)
    for op in ["clamp_both", "clamp_min", "clamp_max", "clamp_int_bounds", "clip"]:
        check(op + "_ties", *CLAMPS[op], x)
    check("clamp_both_ties", lambda t: t.clamp(0.0, 0.0), lambda t: t.clamp(0.0, 0.0), x)


@pytest.mark.parametrize("which", ["both", "min", "max"])
def test_clamp_tensor_bounds(which):
    rng = rng_for("clamp_tensor" + which)
    x = arr((3, 4), "t", rng)
    lo = arr((4,), "c", rng) - np.float32(0.5)
    hi = lo + np.float32(1.0)
    if which == "both":
        fns = (lambda a, b, c: lucid.clamp(a, b, c), lambda a, b, c: torch.clamp(a, b, c))
        args = (x, lo, hi)
    elif which == "min":
        fns = (lambda a, b: a.clamp(min=b), lambda a, b: a.clamp(min=b))
        args = (x, lo)
    else:
        fns = (lambda a, b: a.clamp(max=b), lambda a, b: a.clamp(max=b))
        args = (x, hi)
    check("clamp_tensor", *fns, *args)
    gradcheck(fns[0], *args)


def test_clamp_tensor_bound_ties():
    x = np.array([0.0, 1.0, 2.0], np.float32)
    lo = np.array([0.0, 0.0, 3.0], np.float32)
    check("clamp_tensor_ties", lambda a, b: a.clamp(min=b), lambda a, b: a.clamp(min=b), x, lo)


def test_clamp_without_bounds_errors():
    with pytest.raises((ValueError, RuntimeError), match="min"):
        lucid.ones(3).clamp()


# ---------------------------------------------------------------------------------------------------------
# where
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (4,)), ((0, 2), (2,), (0, 2)),
                                    ((), (2, 3), (2, 3))], ids=str)
def test_where(shapes):
    rng = rng_for(f"where{shapes}")
    cond = np.asarray(rng.random(shapes[0]) > 0.5)
    a = arr(shapes[1], "t", rng)
    b = arr(shapes[2], "c", rng)
    check("where", lambda c, x, y: lucid.where(c, x, y), lambda c, x, y: torch.where(c, x, y), cond, a, b)
    gradcheck(lambda c, x, y: lucid.where(c, x, y), cond, a, b)


def test_where_with_scalars_and_tensor_condition():
    rng = rng_for("where_scalar")
    x = arr((3, 4), "n", rng)
    check("where", lambda t: lucid.where(t > 0, t, 0.0), lambda t: torch.where(t > 0, t, 0.0), x)
    check("where", lambda t: lucid.where(t > 0, -1.0, t), lambda t: torch.where(t > 0, -1.0, t), x)
    gradcheck(lambda t: lucid.where(t > 0, t * 2, 0.5), x)


def test_comparisons_give_bool_without_grad():
    rng = rng_for("cmp")
    a, b = arr((3, 4), "t", rng, kind="int"), arr((4,), "c", rng, kind="int")
    for op in ["__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"]:
        out = check("compare", lambda x, y: getattr(x, op)(y), lambda x, y: getattr(x, op)(y), a, b, grad=False)
        assert out[0].dtype == np.bool_ and not out[0].requires_grad
    check("compare", lambda x: x > 0.5, lambda x: x > 0.5, a, grad=False)
    check("logical", lambda x, y: (x > 0) & (y > 0), lambda x, y: (x > 0) & (y > 0), a, b, grad=False)
    check("logical", lambda x, y: (x > 0) | (y > 0), lambda x, y: (x > 0) | (y > 0), a, b, grad=False)
    check("logical", lambda x: ~(x > 0), lambda x: ~(x > 0), a, grad=False)
