"""Activations against torch (values, gradients, layouts), the float32 GELU kernel against float64 exact
GELU, numba vs NumPy paths, and gradcheck in float64."""
import numpy as np
import pytest
import torch
from scipy.special import erf

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.autograd import gradcheck
from lucid.kernels import gelu as gelu_kernels


def rel_err(a, b) -> float:
    a = np.asarray(a.detach().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    b = np.asarray(b.detach().numpy() if hasattr(b, "detach") else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    monkeypatch.setenv("LUCID_NO_NUMBA", "0" if request.param == "numba" else "1")
    return request.param


def inputs(shape, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# (lucid fn, torch fn) pairs; every one gets the same parity and gradcheck treatment
ACTIVATIONS = {
    "gelu": (lambda x: F.gelu(x), lambda x: torch.nn.functional.gelu(x)),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    "silu": (F.silu, torch.nn.functional.silu),
    "softplus": (F.softplus, torch.nn.functional.softplus),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=5.0),
                      lambda x: torch.nn.functional.softplus(x, beta=2.0, threshold=5.0)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: torch.nn.functional.leaky_relu(x, 0.2)),
    "hardswish": (F.hardswish, torch.nn.functional.hardswish),
    "hardsigmoid": (F.hardsigmoid, torch.nn.functional.hardsigmoid),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: torch.nn.functional.elu(x, 0.7)),
    "relu": (F.relu, torch.nn.functional.relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided", "empty", "size1"])
def test_activation_matches_torch(backend, name, layout):
    lfn, tfn = ACTIVATIONS[name]
    if layout == "channels_last":
        a = inputs((2, 5, 4, 3), 1).transpose(0, 3, 1, 2)  # (2, 3, 5, 4) stored NHWC
    elif layout == "strided":
        a = inputs((4, 9, 6), 2)[:, ::2, 1:]
    elif layout == "empty":
        a = inputs((3, 0, 4), 3)
    elif layout == "size1":
        a = inputs((1, 1, 7), 4)
    else:
        a = inputs((3, 4, 5), 5)
    lx = lucid.Tensor(a, requires_grad=True)
    tx = torch.tensor(np.ascontiguousarray(a), requires_grad=True)
    ly, ty = lfn(lx), tfn(tx)
    assert ly.shape == tuple(ty.shape) and ly.dtype == lucid.float32
    assert rel_err(ly, ty) < 1e-5
    if layout == "channels_last" and name not in ("relu", "sigmoid", "tanh"):
        assert ly.is_contiguous("channels_last")  # the layout flows through
    g = inputs(a.shape, 6, 1.0)
    ly.backward(lucid.Tensor(g))
    ty.backward(torch.tensor(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4


def test_kinks_and_thresholds_match_torch():
    # values on the kinks of the piecewise functions, where the gradient convention matters
    a = np.array([-3.0, -1e-3, 0.0, 1e-3, 3.0, 2.5, 10.0, 20.0, 25.0, -25.0], dtype=np.float32)
    for name in ("leaky_relu", "hardswish", "hardsigmoid", "elu", "softplus", "softplus_beta", "relu"):
        lfn, tfn = ACTIVATIONS[name]
        lx = lucid.Tensor(a, requires_grad=True)
        tx = torch.tensor(a, requires_grad=True)
        ly, ty = lfn(lx), tfn(tx)
        assert rel_err(ly, ty) < 1e-6, name
        ly.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck_float64(name):
    lfn, _ = ACTIVATIONS[name]
    # keep clear of the kinks (finite differences straddling a kink are meaningless)
    a = np.array([[-4.1, -2.2, -0.7, -0.3], [0.2, 0.9, 1.7, 4.3]])
    x = lucid.Tensor(a, requires_grad=True)
    y = lfn(x)
    assert y.dtype == lucid.float64  # float64 stays float64 (the reference path)
    gradcheck(lfn, (x,))


@pytest.mark.parametrize("mode", ["none", "tanh"])
def test_gelu_float32_kernel_close_to_float64_exact(mode):
    x = np.linspace(-12.0, 12.0, 400_001).astype(np.float32)
    x = np.concatenate([x, np.array([-100.0, -10.0, -5.657, 0.0, 5.657, 10.0, 100.0], np.float32)])
    x64 = x.astype(np.float64)
    if mode == "none":
        exact = 0.5 * x64 * (1 + erf(x64 / np.sqrt(2)))
        dexact = 0.5 * (1 + erf(x64 / np.sqrt(2))) + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    else:
        t = np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3))
        exact = 0.5 * x64 * (1 + t)
        dexact = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x64 ** 2)
    y = gelu_kernels.forward(x, mode)
    assert y.dtype == np.float32
    assert np.abs(y - exact).max() <= 2e-6
    g = np.ones_like(x)
    d = gelu_kernels.backward(x, g, mode)
    assert np.abs(d - dexact).max() <= 2e-6


def test_gelu_kernel_large_channels_last_array_matches_reference(monkeypatch):
    # a large array exercises the parallel chunks; channels-last in, channels-last out
    a = inputs((8, 20, 20, 96), 7, 2.0).transpose(0, 3, 1, 2)
    g = inputs((8, 96, 20, 20), 8, 1.0)
    monkeypatch.setenv("LUCID_NO_NUMBA", "0")
    y = gelu_kernels.forward(a)
    d = gelu_kernels.backward(a, g)
    assert y.strides == a.strides and d.strides == a.strides
    ref_y = gelu_kernels.forward_ref(a.astype(np.float64))
    ref_d = gelu_kernels.backward_ref(a.astype(np.float64), g.astype(np.float64))
    assert np.abs(y - ref_y).max() <= 2e-6
    assert np.abs(d - ref_d).max() <= 2e-6 * np.abs(g).max()
    monkeypatch.setenv("LUCID_NO_NUMBA", "1")  # the NumPy path gives the same numbers (to float32 rounding)
    assert np.abs(gelu_kernels.forward(a) - y).max() <= 2e-6
    assert np.abs(gelu_kernels.backward(a, g) - d).max() <= 2e-6 * np.abs(g).max()


def test_gelu_saves_only_its_input():
    x = lucid.randn(3, 4, requires_grad=True)
    y = F.gelu(x)
    assert len(y.grad_fn.saved_tensors) == 1 and y.grad_fn.saved_tensors[0] is x.array


def test_gelu_errors():
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(lucid.randn(3), approximate="fast")
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("erf")


def test_integer_input_is_promoted_to_float32():
    y = F.gelu(lucid.tensor([-1, 0, 2]))
    assert y.dtype == lucid.float32
    assert rel_err(y, torch.nn.functional.gelu(torch.tensor([-1.0, 0.0, 2.0]))) < 1e-6


# ---------------------------------------------------------------------------------------------------------
# modules
MODULES = [
    (nn.GELU(), torch.nn.GELU()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.ReLU(), torch.nn.ReLU()),
    (nn.SiLU(), torch.nn.SiLU()),
    (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.Tanh(), torch.nn.Tanh()),
    (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
    (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
    (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)),
    (nn.Softplus(beta=2.0), torch.nn.Softplus(beta=2.0)),
    (nn.Hardswish(), torch.nn.Hardswish()),
    (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    (nn.ELU(alpha=0.5), torch.nn.ELU(alpha=0.5)),
]


@pytest.mark.parametrize("pair", MODULES, ids=lambda p: repr(p[1]))
def test_modules_match_torch(pair):
    lmod, tmod = pair
    assert repr(lmod) == repr(tmod)
    a = inputs((2, 3, 4), 9)
    lx = lucid.Tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    ly, ty = lmod(lx), tmod(tx)
    assert rel_err(ly, ty) < 1e-5
    g = inputs((2, 3, 4), 10, 1.0)
    ly.backward(lucid.Tensor(g))
    ty.backward(torch.tensor(g))
    assert rel_err(lx.grad, tx.grad) < 1e-4
    assert list(lmod.state_dict()) == []


def test_softmax_without_dim_uses_torchs_legacy_rule():
    for shape in [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 5)]:
        a = inputs(shape, 11)
        with pytest.warns(UserWarning):
            ref = torch.nn.Softmax()(torch.tensor(a))
        assert rel_err(nn.Softmax()(lucid.Tensor(a)), ref) < 1e-5
