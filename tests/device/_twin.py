"""Run the same lucid code on "cpu" and on "gpu" and compare: the device tests' one helper.

``twin(fn, *args)`` takes NumPy arrays (float ones get ``requires_grad``) and other values, builds CPU tensors
and GPU copies of the same arrays, runs ``fn`` on each, and checks that every output lives on its input's
device with the same dtype, shape and values; then it backpropagates the same random upstream gradient
through both and compares every input gradient (which must live on the GPU too). The ``gpu`` fixture
(tests/_fake_cupy/plugin.py) fails the test afterwards if the stand-in saw an implicit host/device crossing.

Values must agree to ``rtol`` relative to the largest magnitude: on the stand-in the GPU path runs NumPy, but
through lucid's CuPy branches (no numba kernels), so agreement checks those branches; on a real GPU the
tolerance covers CUDA's different rounding.
"""
from __future__ import annotations

import zlib

import numpy as np

import lucid
from lucid import _backend

RTOL = 1e-5


def seed_rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def host(t) -> np.ndarray:
    """The values of a tensor or array as a NumPy array (an explicit copy from the GPU)."""
    if isinstance(t, lucid.Tensor):
        return t.detach().cpu().numpy()
    return _backend.to_device(t, "cpu") if _backend.is_array(t) else np.asarray(t)


def close(actual, expected, what: str, rtol: float = RTOL) -> None:
    a, e = host(actual), host(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != {e.dtype}"
    if a.dtype.kind not in "fc":
        np.testing.assert_array_equal(a, e, err_msg=what)
        return
    assert np.array_equal(np.isfinite(a), np.isfinite(e)), f"{what}: non-finite values differ"
    fin = np.isfinite(e)
    if fin.any():
        scale = max(float(np.abs(e[fin]).max()), 1e-30)
        err = float(np.abs(a[fin].astype(np.float64) - e[fin]).max()) / scale
        assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol}"


def _outputs(out) -> list:
    if isinstance(out, lucid.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [o for o in out if isinstance(o, lucid.Tensor)]
    raise AssertionError(f"expected tensors, got {type(out).__name__}")


def tensors(args, device: str, grad: bool):
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            t = lucid.tensor(a, device=device)
            if grad and a.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return out


def twin(fn, *args, grad: bool = True, rtol: float = RTOL, name: str = "twin"):
    """Run ``fn`` on CPU and GPU copies of ``args`` and compare outputs and input gradients (see the module
    docstring). Returns (cpu outputs, gpu outputs)."""
    cpu_args, gpu_args = tensors(args, "cpu", grad), tensors(args, "gpu", grad)
    out_c, out_g = _outputs(fn(*cpu_args)), _outputs(fn(*gpu_args))
    assert len(out_c) == len(out_g), f"{name}: {len(out_g)} outputs on gpu, {len(out_c)} on cpu"
    for k, (c, g) in enumerate(zip(out_c, out_g)):
        assert g.device == "gpu", f"{name}: output {k} is on {g.device}, expected gpu"
        close(g, c, f"{name}: output {k}", rtol)
    if not grad:
        return out_c, out_g
    rng = seed_rng(name + "/grad")
    pairs = [(c, g) for c, g in zip(out_c, out_g) if c.requires_grad]
    assert all(g.requires_grad for _, g in pairs), f"{name}: a gpu output lost requires_grad"
    seeds = [rng.standard_normal(c.shape).astype(c.dtype) for c, _ in pairs]
    for j, ((c, g), s) in enumerate(zip(pairs, seeds)):
        keep = j < len(pairs) - 1
        c.backward(lucid.tensor(s), retain_graph=keep)
        g.backward(lucid.tensor(s, device="gpu"), retain_graph=keep)
    for i, (c, g) in enumerate(zip(cpu_args, gpu_args)):
        if not isinstance(c, lucid.Tensor) or not c.requires_grad:
            continue
        assert (c.grad is None) == (g.grad is None), f"{name}: input {i} has a gradient on one device only"
        if c.grad is not None:
            assert g.grad.device == "gpu", f"{name}: gradient of input {i} is on {g.grad.device}"
            close(g.grad, c.grad, f"{name}: gradient of input {i}", rtol)
    return out_c, out_g
