"""``Tensor.data`` is torch's (a detached tensor sharing storage); ``Tensor.array`` is the raw array."""
import numpy as np
import pytest
import torch

import lucid
from lucid import nn


def test_data_is_a_detached_tensor_sharing_storage():
    p = nn.Parameter(lucid.ones(3))
    d = p.data
    assert isinstance(d, lucid.Tensor) and not d.requires_grad and d.grad_fn is None
    assert d.array is p.array
    d.add_(2.0)                     # torch scripts: p.data.add_(...) outside autograd, on a leaf that wants grad
    np.testing.assert_array_equal(p.array, [3.0, 3.0, 3.0])
    p.data.copy_(lucid.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(p.data.numpy(), [1.0, 2.0, 3.0])  # .numpy() works although p wants grad


def test_sgd_by_hand_matches_torch():
    """The classic pre-optimizer update loop, written for torch, runs unchanged."""
    rng = np.random.default_rng(0)
    w0, x0 = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    results = []
    for lib in (lucid, torch):
        w = lib.tensor(w0.copy(), requires_grad=True)
        x = lib.tensor(x0)
        for _ in range(3):
            loss = (x @ w).tanh().sum()
            loss.backward()
            w.data.sub_(0.1 * w.grad.data)
            w.grad.data.zero_()
        results.append(w.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-6)


def test_change_through_data_bumps_the_owner_version():
    """lucid's caches of derived values (folded weights) must see changes made through .data."""
    p = nn.Parameter(lucid.zeros(2))
    v = p._version
    p.data.fill_(1.0)
    assert p._version == v + 1
    p.data.data.mul_(2.0)           # an alias of an alias still reaches the owner
    assert p._version == v + 2
    np.testing.assert_array_equal(p.array, [2.0, 2.0])


def test_in_place_through_data_of_a_saved_tensor_is_detected():
    """Where lucid differs from torch: the change counts as in-place, so a pending backward refuses it."""
    x = lucid.ones(3, requires_grad=True)
    y = (x * x).sum()
    x.data.mul_(5.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_data_setter_takes_a_tensor_or_an_array():
    p = nn.Parameter(lucid.zeros(2))
    p.data = lucid.ones(2, 2)       # torch allows another shape
    assert p.shape == (2, 2) and isinstance(p, nn.Parameter) and p.requires_grad
    p.data = np.full(3, 7.0, dtype=np.float32)
    np.testing.assert_array_equal(p.array, [7.0, 7.0, 7.0])
    with pytest.raises(TypeError, match="expected a Tensor or an array"):
        p.data = [1.0, 2.0]
