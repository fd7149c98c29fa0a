"""The NumPy/CuPy seam (lucid/_backend.py) without a GPU: device names, the CuPy import path (with fake
``cupy`` modules), cross-device errors and array-module dispatch."""
import sys
import types

import numpy as np
import pytest

import lucid
from lucid import _backend


@pytest.fixture
def no_cached_cupy(monkeypatch):
    """Forget a cupy module imported earlier, and restore the cache afterwards."""
    monkeypatch.setattr(_backend, "_cupy", None)


def _fake_cupy(count=1, error=None):
    """A stand-in ``cupy`` module: getDeviceCount returns ``count`` or raises ``error``; asarray tags arrays."""
    mod = types.ModuleType("cupy")

    def get_device_count():
        if error is not None:
            raise error
        return count

    mod.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))

    class ndarray:  # noqa: N801  (cupy's class name)
        def __init__(self, a):
            self.a = np.asarray(a)
            self.shape, self.dtype = self.a.shape, self.a.dtype

        def get(self):
            return self.a

    ndarray.__module__ = "cupy"
    mod.ndarray = ndarray
    mod.asarray = lambda a: ndarray(a)
    return mod


@pytest.mark.parametrize("name,expected", [("cpu", "cpu"), ("CPU", "cpu"), ("gpu", "gpu"), ("cuda", "gpu"),
                                           ("cuda:0", "gpu"), ("gpu:0", "gpu"), ("Cuda", "gpu"), (None, "cpu")])
def test_normalize_device_aliases(name, expected):
    assert _backend.normalize_device(name) == expected


@pytest.mark.parametrize("name", ["tpu", "cuda:1", "mps", "", 0])
def test_unknown_device_lists_the_allowed_ones(name):
    with pytest.raises(ValueError, match=r"unknown device.*'cpu', 'gpu'"):
        _backend.normalize_device(name)


def test_gpu_without_cupy_gives_install_hint(monkeypatch, no_cached_cupy):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(RuntimeError, match=r"needs CuPy.*pip install"):
        _backend.cupy_module()
    with pytest.raises(RuntimeError, match="CuPy"):
        lucid.zeros(2, device="gpu")
    with pytest.raises(RuntimeError, match="CuPy"):
        lucid.randn(2).to("cuda")
    with pytest.raises(RuntimeError, match="CuPy"):
        lucid.randn(2, device="gpu")
    assert _backend.gpu_available() is False


def test_fake_cupy_without_devices_gives_clear_error(monkeypatch, no_cached_cupy):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(count=0))
    with pytest.raises(RuntimeError, match="no CUDA device was found"):
        _backend.cupy_module()
    with pytest.raises(RuntimeError, match="no CUDA device"):
        lucid.ones(3).gpu()
    assert not _backend.gpu_available()
    assert _backend._cupy is None  # a failed check is not cached


def test_fake_cupy_with_broken_driver_gives_clear_error(monkeypatch, no_cached_cupy):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(error=RuntimeError("cudaErrorInsufficientDriver")))
    with pytest.raises(RuntimeError, match="no CUDA device is usable.*InsufficientDriver"):
        _backend.cupy_module()


def test_fake_cupy_with_a_device_dispatches(monkeypatch, no_cached_cupy):
    fake = _fake_cupy(count=1)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert _backend.gpu_available()
    assert _backend.cupy_module() is fake
    assert _backend.xp_for("gpu") is fake and _backend.xp_for("cpu") is np
    g = _backend.to_device(np.arange(3.0), "gpu")
    assert isinstance(g, fake.ndarray)
    assert _backend.device_of(g) == "gpu" and _backend.xp_of(g) is fake
    back = _backend.to_device(g, "cpu")
    assert isinstance(back, np.ndarray) and back.tolist() == [0.0, 1.0, 2.0]
    a = np.ones(2)
    assert _backend.to_device(a, "cpu") is a


def test_xp_of_and_device_of_on_cpu():
    a = np.zeros(3)
    assert _backend.xp_of(a) is np and _backend.device_of(a) == "cpu"
    assert _backend.xp_of(a[::2]) is np
    assert _backend.device_of(np.float32(1.0)) == "cpu"
    assert _backend.device_of(3.0) == "cpu"
    assert lucid.randn(2).device == "cpu"


def test_array_from_an_unimported_cupy_is_seen_as_gpu(no_cached_cupy):
    """device_of recognises CuPy arrays by their module even before lucid imported cupy itself."""
    cls = type("ndarray", (), {})
    cls.__module__ = "cupy._core.core"
    assert _backend.device_of(cls()) == "gpu"


class _OnGpu(lucid.Tensor):
    """A CPU tensor that claims to live on the GPU, to provoke cross-device checks without one."""

    __slots__ = ()

    @property
    def device(self):
        return "gpu"


@pytest.mark.parametrize("op", [
    lambda a, b: a + b,
    lambda a, b: a * b,
    lambda a, b: b - a,
    lambda a, b: a @ b,
    lambda a, b: lucid.maximum(a, b),
    lambda a, b: lucid.cat([a, b]),
    lambda a, b: lucid.where(a > 0, a, b),
])
def test_tensors_on_different_devices_error(op):
    a = lucid.randn(3)
    b = _OnGpu._wrap(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match=r"same device.*(cpu and gpu|gpu and cpu)"):
        op(a, b)


def test_where_condition_on_another_device_errors(monkeypatch):
    a, b = lucid.randn(3), lucid.randn(3)
    cond = a > 0
    marked = cond.array
    real = _backend.device_of
    monkeypatch.setattr(_backend, "device_of", lambda arr: "gpu" if arr is marked else real(arr))
    with pytest.raises(RuntimeError, match="condition on gpu and values on cpu"):
        lucid.where(cond, a, b)


def test_device_mismatch_via_backend_device_of(monkeypatch):
    """The same check when it is the backend that reports a second device."""
    a, b = lucid.randn(3), lucid.randn(3)
    marked = b.array
    real = _backend.device_of

    def fake_device_of(array):
        return "gpu" if array is marked else real(array)

    monkeypatch.setattr(_backend, "device_of", fake_device_of)
    monkeypatch.setattr(lucid.Tensor, "device", property(lambda self: _backend.device_of(self.array)))
    assert b.device == "gpu" and a.device == "cpu"
    with pytest.raises(RuntimeError, match="same device"):
        a + b


def test_dtype_normalisation():
    assert _backend.normalize_dtype(None) == np.float32
    assert _backend.normalize_dtype(float) == np.float32  # python float means lucid's default, float32
    assert _backend.normalize_dtype(int) == np.int64
    assert _backend.normalize_dtype(bool) == np.bool_
    assert _backend.normalize_dtype("torch.float16") == np.float16
    assert _backend.normalize_dtype("lucid.long") == np.int64
    assert _backend.normalize_dtype(np.float64) == np.float64
    with pytest.raises(TypeError, match=r"unknown dtype 'float128'.*float32"):
        _backend.normalize_dtype("float128")
    with pytest.raises(TypeError, match="unsupported dtype complex128"):
        _backend.normalize_dtype(np.complex128)


def test_engine_treats_zero_stride_arrays_as_read_only_without_a_writeable_flag():
    """CuPy arrays have no flags.writeable; a broadcast (zero-stride) gradient must still be copied."""
    from lucid.autograd import engine

    class Flags:
        c_contiguous = False

    class FakeGpuArray:
        def __init__(self, strides, shape):
            self.flags, self.strides, self.shape = Flags(), strides, shape

    assert engine._writable(FakeGpuArray((0, 4), (3, 2))) is False
    assert engine._writable(FakeGpuArray((8, 4), (3, 2))) is True
    assert engine._writable(FakeGpuArray((0, 4), (1, 2))) is True  # a zero stride on a size-1 dim is harmless
    assert engine._writable(np.broadcast_to(np.ones(2), (3, 2))) is False
    assert engine._writable(np.ones((3, 2))) is True
