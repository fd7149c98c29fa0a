"""lucid.kernels.adamw: the numba pass equals the NumPy reference bit for bit, and both equal torch's
single-tensor Adam to float32 rounding, over options, dtypes, sizes (serial and parallel loops), layouts."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lucid.kernels import adamw as K

from ._common import rel_err

needs_numba = pytest.mark.skipif(not K.numba_available(), reason="numba not available")

OPTIONS = [
    dict(weight_decay=0.0, decoupled=True, amsgrad=False, maximize=False),
    dict(weight_decay=0.05, decoupled=True, amsgrad=False, maximize=False),
    dict(weight_decay=0.05, decoupled=True, amsgrad=True, maximize=True),
    dict(weight_decay=0.1, decoupled=False, amsgrad=False, maximize=True),
    dict(weight_decay=0.1, decoupled=False, amsgrad=True, maximize=False),
]


def _arrays(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    grads = [(rng.standard_normal(shape) * 10 ** rng.uniform(-3, 1)).astype(dtype) for _ in range(4)]
    return p, grads


def _run(fn, p, grads, opts, betas, layout=None):
    p = p.copy() if layout is None else layout(p)
    m, v, vm = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads, 1):
        if layout is not None:
            g = layout(g)
        sc = K.adam_scalars(p.dtype, lr=1e-2, beta1=betas[0], beta2=betas[1], eps=1e-8, step=step,
                            weight_decay=opts["weight_decay"], decoupled=opts["decoupled"],
                            maximize=opts["maximize"])
        out = fn(p, g, m, v, vm if opts["amsgrad"] else None, sc)
        assert out is None or out is True
    return p, m, v, vm


@needs_numba
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 37, K.PARALLEL_MIN_ELEMENTS + 3])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.2, 0.5)])
def test_fused_equals_reference_bitwise(opts, dtype, n, betas):
    p, grads = _arrays((n,), dtype)
    ref = _run(K.adam_step_reference, p, grads, opts, betas)
    fused = _run(K.adam_step_fused, p, grads, opts, betas)
    for a, b in zip(fused, ref):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == dtype


@pytest.mark.parametrize("opts", OPTIONS)
def test_reference_matches_torch(opts):
    p, grads = _arrays((3, 50), np.float32, seed=1)
    got = _run(K.adam_step_reference, p, grads, opts, (0.9, 0.999))[0]
    tp = torch.nn.Parameter(torch.tensor(p))
    topt = torch.optim.Adam([tp], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=opts["weight_decay"],
                            amsgrad=opts["amsgrad"], maximize=opts["maximize"],
                            decoupled_weight_decay=opts["decoupled"], foreach=False)
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
    assert rel_err(got, tp.detach().numpy()) <= 1e-6


def _transposed(a):
    return np.ascontiguousarray(a.T).T


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@needs_numba
@pytest.mark.parametrize("layout,shape", [(_transposed, (6, 40)), (_channels_last, (2, 3, 5, 4))])
def test_fused_handles_dense_non_c_layouts(layout, shape):
    opts = OPTIONS[2]
    p, grads = _arrays(shape, np.float32)
    ref = _run(K.adam_step_reference, p, grads, opts, (0.9, 0.999), layout)
    fused = _run(K.adam_step_fused, p, grads, opts, (0.9, 0.999), layout)
    for a, b in zip(fused, ref):
        np.testing.assert_array_equal(a, b)


@needs_numba
def test_fused_declines_what_it_cannot_do():
    p = np.ones((4, 6), np.float32)[:, ::2]  # strided: no flat order
    z = np.zeros_like(p)
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False,
              step=1)
    sc = K.adam_scalars(np.float32, **kw)
    assert K.adam_step_fused(p, np.ones_like(p), z, z.copy(), None, sc) is False
    assert (p == 1).all()  # untouched, the caller runs the reference
    h = np.ones(4, np.float16)
    assert K.adam_step_fused(h, h.copy(), h.copy(), h.copy(), None, K.adam_scalars(np.float16, **kw)) is False
    f = np.ones(4, np.float32)  # grad of another dtype
    assert K.adam_step_fused(f, np.ones(4), f.copy(), f.copy(), None, sc) is False
    # a grad in another layout than the parameter is copied, not refused
    q = np.ones((3, 5), np.float32)
    g = np.ascontiguousarray(np.full((5, 3), 0.5, np.float32)).T
    assert K.adam_step_fused(q, g, np.zeros_like(q), np.zeros_like(q), None, sc) is True


def test_lucid_no_numba_env_uses_numpy_path():
    code = ("import numpy as np, lucid\n"
            "from lucid.kernels import adamw\n"
            "from lucid import optim\n"
            "assert not adamw.numba_available()\n"
            "p = lucid.nn.Parameter(np.ones(3, np.float32)); p.grad = lucid.Tensor(np.ones(3, np.float32))\n"
            "optim.AdamW([p], lr=0.1).step()\n"
            "assert abs(p.array[0] - (1 - 0.1 * 0.01) + 0.1) < 1e-6, p.array\n"
            "try:\n    optim.AdamW([p], fused=True)\nexcept RuntimeError as e:\n    print('ok', e)\n")
    env = dict(os.environ, LUCID_NO_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok") and "needs numba" in out.stdout


@needs_numba
def test_kernels_from_the_disk_cache_in_a_fresh_process():
    """The serial and parallel kernels are cached on disk under distinct names; a fresh process loading
    them (this test's process wrote the cache) must run the right code (a name clash once crashed here)."""
    # numba keys its cache by qualified name, not by the parallel flag: the two loops need distinct names
    assert K._loop_parallel.py_func.__qualname__ != K._loop_serial.py_func.__qualname__
    for n in (5, K.PARALLEL_MIN_ELEMENTS * 2):  # compile (or load) both variants in this process first
        p = np.ones(n, np.float32)
        K.adam_step_fused(p, p.copy(), p.copy(), p.copy(), p.copy(),
                          K.adam_scalars(np.float32, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1,
                                         decoupled=True, maximize=False, step=1))
    code = (
        "import numpy as np\n"
        "from lucid.kernels import adamw as K\n"
        f"for n in (5, {K.PARALLEL_MIN_ELEMENTS * 2}):\n"
        "    for ams in (False, True):\n"
        "        arrs = [np.linspace(0.1, 1, n).astype(np.float32) for _ in range(5)]\n"
        "        ref = [a.copy() for a in arrs]\n"
        "        sc = K.adam_scalars(np.float32, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1,\n"
        "                            decoupled=True, maximize=False, step=2)\n"
        "        assert K.adam_step_fused(*arrs[:4], arrs[4] if ams else None, sc)\n"
        "        K.adam_step_reference(*ref[:4], ref[4] if ams else None, sc)\n"
        "        assert all((a == b).all() for a, b in zip(arrs, ref)), n\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"exit code {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout.strip() == "ok"
