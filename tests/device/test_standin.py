"""The CuPy stand-in's own contract (tests/_fake_cupy/README.md): what it refuses as CuPy 14 refuses, what it
logs, and that it exposes only names real CuPy 14 has."""
from __future__ import annotations

import json

import numpy as np
import pytest

import lucid
from lucid import _backend

from .._fake_cupy import LOG, modules
from .._fake_cupy import _modules


@pytest.fixture
def cp():
    LOG.clear()
    yield modules()["cupy"]
    LOG.clear()


def kinds():
    return [c.kind for c in LOG.crossings]


def test_arrays_are_not_numpy_arrays(cp):
    x = cp.asarray(np.arange(6.0))
    assert not isinstance(x, np.ndarray) and type(x).__module__ == "cupy" and type(x).__name__ == "ndarray"
    assert _backend.device_of(x) == "gpu"
    with pytest.raises(TypeError, match="unhashable"):
        hash(x)
    assert not hasattr(x.flags, "writeable") and x.flags.c_contiguous
    cai = x.__cuda_array_interface__
    assert cai["shape"] == (6,) and cai["typestr"] == "<f8" and cai["version"] == 3 and cai["strides"] is None


def test_implicit_conversion_is_refused_and_logged(cp):
    x = cp.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(x)
    with pytest.raises(TypeError):
        np.ascontiguousarray(x)
    assert kinds() == ["implicit-conversion", "implicit-conversion"]


@pytest.mark.parametrize("call", [
    lambda cp, h: cp.add(cp.ones(3), h),
    lambda cp, h: cp.ones(3) * h,
    lambda cp, h: h - cp.ones(3),
    lambda cp, h: cp.concatenate([cp.ones(3), h]),
    lambda cp, h: cp.matmul(cp.ones((3, 3)), h),
    lambda cp, h: cp.where(cp.ones(3) > 0, h, 0.0),
    lambda cp, h: cp.ones(3).__iadd__(h),
], ids=["ufunc", "operator", "reflected", "function", "matmul", "where", "inplace"])
def test_numpy_operands_are_refused(cp, call):
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        call(cp, np.ones(3))
    assert "host-operand" in kinds()
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.add(cp.ones(3), np.array(2.0))  # a 0-d NumPy array is not a scalar for CuPy either


def test_scalars_are_accepted_and_numpy_scalars_left_are_logged(cp):
    x = cp.arange(3, dtype=cp.float32)
    for y in (x * 2.0, x + np.float32(1), 2 * x, cp.maximum(x, np.float64(0.5)), x == np.array(1.0)):
        assert type(y) is cp.ndarray
    assert (x * np.float64(2)).dtype == np.float64  # NumPy 2's promotion: a NumPy float64 scalar is strong
    assert not LOG.crossings
    y = np.float32(2) * x
    assert type(y) is cp.ndarray and kinds() == ["numpy-dispatch"]
    np.exp(x)
    np.concatenate([x, x])
    assert kinds() == ["numpy-dispatch"] * 3


def test_lucid_tensors_on_the_right_get_their_turn(cp):
    t = lucid.Tensor(np.ones(3, np.float32))
    assert cp.ndarray.__add__(cp.ones(3), t) is NotImplemented  # __array_priority__: Tensor.__radd__ runs


def test_reductions_and_scalar_indexing_give_0d_device_arrays(cp):
    x = cp.arange(6.0).reshape(2, 3)
    for r in (x.sum(), x.max(), cp.mean(x), x.argmax(), cp.count_nonzero(x), cp.allclose(x, x), x[1, 2]):
        assert type(r) is cp.ndarray and r.shape == ()
    v = x[0, 1]
    v += 10  # CuPy's x[i, j] is a view
    assert x[0, 1].item() == 11.0


def test_setitem_rules(cp):
    x = cp.zeros((4, 3))
    x[0] = 1.5
    x[1] = np.float32(2)
    x[2] = np.array(3.0)  # a 0-d host value is a scalar
    x[3] = cp.arange(3.0)
    assert not LOG.crossings
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[0] = np.ones(3)
    with pytest.raises(TypeError):
        x[0] = [1.0, 2.0, 3.0]
    assert kinds() == ["host-value", "host-value"]
    LOG.clear()
    x[[0, 1]] = np.ones((2, 3))  # advanced indexing: CuPy copies the host value over
    assert "host-value" in kinds() and "host-index" in kinds()


def test_integer_array_indices_wrap_around(cp):
    x = cp.arange(5)
    i = cp.asarray([7, -1, 2])
    assert x[i].tolist() == [2, 4, 2]
    assert x.take(cp.asarray([6])).tolist() == [1]
    x[cp.asarray([5])] = 9
    assert x.tolist()[0] == 9


def test_transfers_are_explicit_copies(cp):
    h = np.arange(4.0)
    d = cp.asarray(h)
    h[0] = 100
    assert d[0].item() == 0.0 and LOG.uploads
    back = d.get()
    back[1] = 100
    assert d[1].item() == 1.0
    t = cp.asarray(np.arange(6.0).reshape(2, 3)).T
    assert t.get().flags.c_contiguous and cp.asnumpy(t).tolist() == [[0, 3], [1, 4], [2, 5]]
    assert any("get" in s for s in LOG.syncs) and not LOG.crossings


def test_implicit_syncs_work_but_are_logged_and_can_be_forbidden(cp):
    cupyx = modules()["cupyx"]
    s = cp.ones(3).sum()
    assert float(s) == 3.0 and int(s) == 3 and bool(s)
    assert kinds() == ["implicit-sync"] * 3
    with cupyx.allow_synchronize(False):
        cp.ones(3) * 2  # no sync: fine
        for read in (lambda: s.item(), lambda: s.get(), lambda: float(s), lambda: cp.asnumpy(s)):
            with pytest.raises(cupyx.DeviceSynchronized):
                read()
    assert s.item() == 3.0


def test_cuda_runtime_streams_and_pools(cp):
    assert cp.cuda.runtime.getDeviceCount() == 1 and cp.cuda.Device().id == 0
    with cp.cuda.Device(0), cp.cuda.Stream(non_blocking=True) as st:
        st.synchronize()
    cp.cuda.runtime.deviceSynchronize()
    assert len(LOG.syncs) == 2
    assert cp.get_default_memory_pool().used_bytes() == 0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        cp.cuda.Device(1)


def test_random_generator_api(cp):
    a = cp.random.default_rng(3).standard_normal((4, 2), dtype=cp.float32)
    b = cp.random.default_rng(3).standard_normal((4, 2), dtype=cp.float32)
    assert type(a) is cp.ndarray and a.dtype == np.float32 and (a == b).all().item()
    u = cp.random.default_rng(1).random(1000)
    assert 0 <= u.min().item() and u.max().item() < 1
    assert cp.random.default_rng(0).integers(0, 5, size=10).dtype == np.int64
    with pytest.raises(TypeError, match="Unsupported dtype"):
        cp.random.default_rng(0).random(3, dtype=cp.int32)
    assert not LOG.uploads


def test_fuse_runs_elementwise_code_and_refuses_the_rest(cp):
    @cp.fuse()
    def axpy(a, x, y):
        return cp.where(x > 0, a * x + y, y).astype(cp.float32).sum()

    x = cp.arange(-2.0, 3.0)
    assert axpy(2.0, x, cp.ones(5)).item() == 11.0

    @cp.fuse
    def mad(a, x, y):
        return a * x + y

    assert (mad(2.0, np.ones(2), np.ones(2)) == 3).all()  # host arguments: the plain function runs on them

    @cp.fuse(kernel_name="bad")
    def bad(x):
        return x[1:] + cp.concatenate([x, x]).sum()

    with pytest.raises(TypeError, match="not supported inside cupy.fuse"):
        bad(x)

    @cp.fuse
    def reads(x):
        return x * float(x.sum())

    with pytest.raises(TypeError, match="not supported inside cupy.fuse"):
        reads(x)


@pytest.mark.parametrize("make,call", [
    (lambda cp: cp.ElementwiseKernel("T x", "T y", "y = x * 2", "double_it"), lambda k, cp: k(cp.ones(3))),
    (lambda cp: cp.ReductionKernel("T x", "T y", "x", "a + b", "y = a", "0", "total"), lambda k, cp: k(cp.ones(3))),
    (lambda cp: cp.RawKernel("extern \"C\" __global__ void f() {}", "f"), lambda k, cp: k((1,), (1,), ())),
    (lambda cp: cp.RawModule(code="").get_function("g"), lambda k, cp: k((1,), (1,), ())),
])
def test_user_kernels_construct_but_refuse_to_run(cp, make, call):
    k = make(cp)
    with pytest.raises(RuntimeError, match="needs a real GPU"):
        call(k, cp)
    assert LOG.refused


def test_cupyx_pieces(cp):
    cupyx = modules()["cupyx"]
    x = cp.zeros(3)
    cupyx.scatter_add(x, cp.asarray([0, 0, 2]), cp.ones(3))
    assert x.tolist() == [2.0, 0.0, 1.0]
    erf = modules()["cupyx.scipy.special"].erf
    assert abs(erf(cp.asarray([0.5])).item() - 0.5204998778) < 1e-8
    assert abs(cupyx.rsqrt(cp.asarray([4.0])).item() - 0.5) < 1e-12


def test_only_names_of_real_cupy_14(cp):
    with open(_modules.NAMES_FILE) as f:
        real = json.load(f)
    assert real["version"].startswith("14.")
    exposed = {n for n in vars(cp) if not n.startswith("_")}
    assert exposed <= set(real["cupy"]) | {"annotations"}
    assert {"asarray", "asnumpy", "fuse", "ElementwiseKernel", "RawKernel", "ndarray", "cuda", "random"} <= exposed
    assert "errstate" not in exposed  # NumPy has it, CuPy 14 does not (cupyx.errstate is another thing)
    fake = dict(modules())
    fake["cupy"] = type(cp)("cupy")
    fake["cupy"].not_a_cupy_name = 1
    with pytest.raises(AssertionError, match="not_a_cupy_name"):
        _modules.check_names(fake)
