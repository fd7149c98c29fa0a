"""The one place that knows NumPy from CuPy.

Every other module asks this one for the array module of a device (``xp``), so that an op is written once
against the NumPy API and runs on CuPy arrays unchanged. Devices are named ``"cpu"`` and ``"gpu"``
(``"cuda"`` and ``"cuda:0"`` are accepted as aliases for PyTorch habits).
"""
from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "gpu")
_DEVICE_ALIASES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "cuda:0": "gpu", "gpu:0": "gpu"}

_cupy = None  # the cupy module once it has been imported successfully


def normalize_device(device) -> str:
    """Return "cpu" or "gpu" for a device name; anything else is a ValueError naming the allowed ones."""
    if device is None:
        return "cpu"
    name = str(device).lower()
    if name not in _DEVICE_ALIASES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES} (or 'cuda')")
    return _DEVICE_ALIASES[name]


def cupy_module():
    """Import CuPy and check for a CUDA device, or raise a RuntimeError saying how to get one."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415 (optional dependency, imported on first use of "gpu")
    except ImportError as exc:
        raise RuntimeError(
            "device 'gpu' needs CuPy, which is not installed; install it with "
            "`pip install 'lucid-next[gpu]'` (cupy-cuda12x) on a machine with a CUDA GPU"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(f"device 'gpu': CuPy is installed but no CUDA device is usable ({exc})") from exc
    if count == 0:
        raise RuntimeError("device 'gpu': CuPy is installed but no CUDA device was found")
    _cupy = cupy
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and at least one CUDA device exists."""
    try:
        cupy_module()
    except RuntimeError:
        return False
    return True


def xp_for(device: str):
    """Array module (numpy or cupy) for a normalized device name."""
    if device == "cpu":
        return np
    return cupy_module()


def device_of(array) -> str:
    """"cpu" for NumPy arrays (and scalars), "gpu" for CuPy arrays."""
    if isinstance(array, np.ndarray):
        return "cpu"
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return "gpu"
    if type(array).__module__.startswith("cupy"):
        return "gpu"
    return "cpu"


def xp_of(array):
    """Array module that owns ``array``."""
    return np if isinstance(array, np.ndarray) else xp_for(device_of(array))


def is_array(value) -> bool:
    """True for a NumPy or CuPy array (not for scalars, lists or Tensors)."""
    return isinstance(value, np.ndarray) or device_of(value) == "gpu"


def as_array(value):
    """The array behind ``value`` without moving it: NumPy and CuPy arrays as they are, anything else
    (nested lists, numbers) through ``np.asarray`` (on the host). ``np.asarray`` alone would try to pull a
    CuPy array to the host, which CuPy refuses."""
    return value if is_array(value) else np.asarray(value)


def to_device(array, device: str):
    """Move an array to a device (a no-op when it is already there)."""
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return cupy_module().asarray(array)


# ---------------------------------------------------------------------------------------------------------
# dtypes: lucid's dtypes are NumPy dtype objects, so they compare equal to numpy's and cupy's.
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

DTYPES = {
    "float32": float32, "float": float32, "float64": float64, "double": float64, "float16": float16,
    "half": float16, "int64": int64, "long": int64, "int32": int32, "int": int32, "int8": int8,
    "uint8": uint8, "bool": bool_,
}
_ALLOWED = sorted({str(d) for d in DTYPES.values()})


def normalize_dtype(dtype) -> np.dtype:
    """Map a dtype-like (lucid/NumPy dtype, name, Python type) to a supported NumPy dtype."""
    if dtype is None:
        return float32
    if dtype is float:
        return float32
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    if isinstance(dtype, str):
        key = dtype.replace("lucid.", "").replace("torch.", "")
        if key in DTYPES:
            return DTYPES[key]
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {_ALLOWED}")
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; expected one of {_ALLOWED}") from None
    if str(d) not in _ALLOWED:
        raise TypeError(f"unsupported dtype {d}; expected one of {_ALLOWED}")
    return d

