"""Device discipline at lucid's boundaries (issue 17, section 2): every raw array, scalar, index, gradient or
constant entering an op on the GPU is placed there, or is a clear error naming both devices, as in torch.
Most tests are a bug the CuPy stand-in found (they failed before the fix in lucid); the rest guard the same
boundaries (a NumPy gradient seed, moving a graph between devices, Python conversions)."""
from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F

from ._twin import close


def _pair(shape=(3, 4), seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return lucid.tensor(a, requires_grad=True), lucid.tensor(a, device="gpu", requires_grad=True)


# -- gradients ----------------------------------------------------------------------------------------------
def test_backward_with_a_gradient_on_another_device_names_both(gpu):
    _, x = _pair()
    y = x * 2
    with pytest.raises(RuntimeError, match=r"gradient is on cpu but the tensor is on gpu"):
        y.backward(lucid.ones(3, 4))
    c = lucid.ones(3, 4, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"gradient is on gpu but the tensor is on cpu"):
        c.backward(lucid.ones(3, 4, device="gpu"))


def test_backward_with_a_host_array_gradient_places_it_on_the_device(gpu):
    xc, xg = _pair()
    seed = np.arange(12, dtype=np.float32).reshape(3, 4)
    (xc * 3).backward(seed)
    (xg * 3).backward(seed)
    assert xg.grad.device == "gpu"
    close(xg.grad, xc.grad, "grad from a NumPy seed")


def test_gradcheck_on_gpu_inputs(gpu):
    x = lucid.randn(2, 3, dtype=lucid.float64, device="gpu", requires_grad=True)
    w = lucid.randn(3, 2, dtype=lucid.float64, device="gpu").t().contiguous().t().requires_grad_(True)
    assert lucid.autograd.gradcheck(lambda a, b: (a @ b).tanh(), (x, w))
    x.register_hook(lambda g: g * 2)  # a wrong analytic gradient must still be caught on the GPU
    with pytest.raises(AssertionError, match="gradcheck failed for input 0"):
        lucid.autograd.gradcheck(lambda a: a.exp(), (x,))


# -- indexing -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [
    lambda: lucid.tensor([1.0, 2.0, 3.0]),  # a CPU tensor into a GPU one: copied over, as torch's copy_
    lambda: np.array([1.0, 2.0, 3.0], np.float32),
    lambda: [1.0, 2.0, 3.0],
    lambda: 7.5,
    lambda: lucid.tensor(2.0),
], ids=["cpu_tensor", "ndarray", "list", "number", "cpu_0d"])
def test_setitem_places_values_on_the_device(gpu, value):
    c, g = lucid.zeros(4, 3), lucid.zeros(4, 3, device="gpu")
    for idx in (1, (slice(0, 3), 0), [0, 2], lucid.tensor([3]), np.array([True, False, True, False])):
        c[idx] = value()
        g[idx] = value()
    assert g.device == "gpu"
    close(g, c, "after assignments")
    back = lucid.zeros(4, 3)
    back[1:3] = lucid.ones(2, 3, device="gpu")  # a GPU tensor into a CPU one: copied back, as torch does
    assert back.numpy()[1:3].sum() == 6
    g.fill_(lucid.tensor(4.0))
    assert g.device == "gpu" and float(g.sum().item()) == 48.0


def test_index_tensor_placement(gpu):
    _, x = _pair((5, 3))
    idx = lucid.tensor([4, 0, 0])
    close(x[idx], x.detach().cpu()[idx], "a CPU index tensor on a GPU tensor")
    y = x[[4, 0, 0]]
    y.sum().backward()
    assert x.grad.device == "gpu" and x.grad.cpu().numpy()[0, 0] == 2
    with pytest.raises(RuntimeError, match="indices should be either on cpu or on the same device"):
        lucid.randn(5, 3)[lucid.tensor([1, 2], device="gpu")]


# -- raw device arrays --------------------------------------------------------------------------------------
def test_where_with_raw_device_arrays(gpu):
    xp = gpu.xp
    a, b = lucid.randn(3, 4, device="gpu"), lucid.randn(3, 4, device="gpu")
    cond = xp.asarray(np.arange(12).reshape(3, 4) % 2 == 0)
    out = lucid.where(cond, a, b)
    assert out.device == "gpu"
    expected = np.where(np.arange(12).reshape(3, 4) % 2 == 0, a.cpu().numpy(), b.cpu().numpy())
    close(out, expected, "where(raw cupy condition)")
    close(lucid.where(np.arange(12).reshape(3, 4) % 2 == 0, a, b), expected, "where(NumPy condition)")
    close(lucid.where(cond, xp.ones((3, 4), dtype=xp.float32), xp.zeros((3, 4), dtype=xp.float32)),
          (np.arange(12).reshape(3, 4) % 2 == 0).astype(np.float32), "where of raw device arrays")


def test_load_state_dict_with_raw_arrays(gpu):
    xp = gpu.xp
    src = nn.Linear(3, 2)
    raw_gpu = {k: xp.asarray(v.numpy()) for k, v in src.state_dict().items()}
    raw_cpu = {k: v.numpy() for k, v in src.state_dict().items()}
    for state in (raw_gpu, raw_cpu):
        for device in ("gpu", "cpu"):
            dst = nn.Linear(3, 2).to(device)
            dst.load_state_dict(state)
            assert dst.weight.device == device
            close(dst.weight, src.weight, f"{device} model from raw arrays")


def test_load_state_dict_checks_integer_ranges_on_the_device(gpu):
    """The range check of an int64 value loaded into a narrower integer buffer reads min/max explicitly."""
    m = nn.Module()
    m.register_buffer("small", lucid.zeros(2, dtype=lucid.int8, device="gpu"))
    m.load_state_dict({"small": gpu.xp.asarray(np.array([-5, 7]))})
    assert m.small.cpu().numpy().tolist() == [-5, 7]
    with pytest.raises(RuntimeError, match=r"small: checkpoint values \[0, 300\] do not fit"):
        m.load_state_dict({"small": lucid.tensor([0, 300], device="gpu")})


# -- constants of the losses --------------------------------------------------------------------------------
def test_loss_constants_on_another_device_are_clear_errors(gpu):
    x, t = lucid.randn(4, 3, device="gpu"), lucid.rand(4, 3, device="gpu")
    with pytest.raises(RuntimeError, match="pos_weight is on cpu and input is on gpu"):
        nn.BCEWithLogitsLoss(pos_weight=lucid.ones(3))(x, t)
    with pytest.raises(RuntimeError, match="weight is on cpu and input is on gpu"):
        nn.CrossEntropyLoss(weight=lucid.ones(3))(x, lucid.tensor([0, 1, 2, 0], device="gpu"))
    with pytest.raises(RuntimeError, match="weight is on cpu and input is on gpu"):
        F.nll_loss(x, lucid.tensor([0, 1, 2, 0], device="gpu"), weight=lucid.ones(3))
    moved = nn.BCEWithLogitsLoss(pos_weight=lucid.ones(3) * 2).to("gpu")
    assert moved(x, t).device == "gpu"
    # host constants (NumPy arrays) are placed on the input's device, like numbers
    ref = F.binary_cross_entropy_with_logits(x.cpu(), t.cpu(), pos_weight=np.full(3, 2.0, np.float32))
    close(F.binary_cross_entropy_with_logits(x, t, pos_weight=np.full(3, 2.0, np.float32)), ref, "NumPy pos_weight")
    ce = F.cross_entropy(x, lucid.tensor([0, 1, 2, 0], device="gpu"), weight=np.array([1.0, 2.0, 3.0], np.float32))
    assert ce.device == "gpu"


def test_out_of_range_targets(gpu):
    """CPU: IndexError (a host check). GPU: no per-step read-back, so the loss and its gradient become nan
    (the device-side counterpart of torch's CUDA assert)."""
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        F.cross_entropy(lucid.randn(2, 3), lucid.tensor([0, 5]))
    x = lucid.randn(2, 3, device="gpu", requires_grad=True)
    loss = F.cross_entropy(x, lucid.tensor([0, 5], device="gpu"))
    loss.backward()
    assert np.isnan(loss.item()) and np.isnan(x.grad.cpu().numpy()).all()
    assert np.isnan(F.nll_loss(x, lucid.tensor([-3, 1], device="gpu")).item())
    ok = F.cross_entropy(x, lucid.tensor([0, -100], device="gpu"))
    assert np.isfinite(ok.item())


# -- tensors from sequences ---------------------------------------------------------------------------------
def test_tensor_and_stack_of_gpu_tensors_stay_on_the_gpu(gpu):
    a, b = lucid.tensor(1.5, device="gpu"), lucid.tensor(2.5, device="gpu")
    t = lucid.tensor([a, b])
    assert t.device == "gpu" and t.dtype == lucid.float32
    np.testing.assert_array_equal(t.cpu().numpy(), [1.5, 2.5])
    rows = [lucid.ones(3, device="gpu"), lucid.zeros(3, device="gpu")]
    assert lucid.tensor([rows, rows]).shape == (2, 2, 3) and lucid.tensor(rows).device == "gpu"
    assert lucid.tensor([a, 4]).device == "gpu"
    s = lucid.stack(rows, 1)
    assert s.device == "gpu" and s.shape == (3, 2)
    with pytest.raises(RuntimeError, match="same device, got cpu and gpu"):
        lucid.tensor([a, lucid.tensor(1.0)])
    with pytest.raises(RuntimeError, match="same device"):
        lucid.stack([rows[0], lucid.ones(3)])


# -- scalars and operands -----------------------------------------------------------------------------------
def test_zero_dim_cpu_tensors_are_scalars_on_the_gpu(gpu):
    xc, xg = _pair()
    close(xg * lucid.tensor(2.0) + lucid.tensor(1.0) / xg.abs().add(1), xc * lucid.tensor(2.0)
          + lucid.tensor(1.0) / xc.abs().add(1), "0-d CPU tensors with a GPU tensor")
    with pytest.raises(RuntimeError, match="same device.*(cpu and gpu|gpu and cpu)"):
        xg + lucid.ones(4)
    with pytest.raises(RuntimeError, match="same device"):
        lucid.ones(4) + lucid.tensor(1.0, device="gpu").reshape(1)


def test_in_place_operands_across_devices(gpu):
    g = lucid.ones(2, 3, device="gpu")
    g += lucid.tensor(2.0)  # a CPU scalar tensor
    g.mul_(np.full((2, 3), 2.0, np.float32))  # a host constant
    g.add_(lucid.ones(2, 3, device="gpu"), alpha=0.5)
    assert g.device == "gpu" and np.allclose(g.cpu().numpy(), 6.5)
    with pytest.raises(RuntimeError, match="operand is on cpu but the tensor is on gpu"):
        g.sub_(lucid.ones(2, 3))


def test_to_device_round_trip_is_differentiable(gpu):
    x = lucid.randn(3, 4, requires_grad=True)
    y = (x.to("gpu") * 3).exp().cpu().sum()
    y.backward()
    assert x.grad.device == "cpu"
    close(x.grad, 3 * np.exp(3 * x.detach().numpy()), "gradient through gpu and back")
    g = lucid.randn(2, device="gpu", requires_grad=True)
    g.cpu().sum().backward()
    assert g.grad.device == "gpu"


def test_python_conversions_of_gpu_tensors_are_explicit_reads(gpu):
    """bool/float/int of a GPU tensor read it back deliberately (``item``), never through NumPy's implicit
    conversion of the device array."""
    t = lucid.tensor([2.0], device="gpu")
    assert bool(t > 1) and float(t) == 2.0 and int(t) == 2 and t.item() == 2.0
    assert lucid.tensor(3, device="gpu").__index__() == 3
