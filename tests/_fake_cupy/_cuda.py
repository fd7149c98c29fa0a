"""``cupy.cuda`` of the stand-in: one pretend device, streams and events that order nothing (everything
runs synchronously on the host), memory pools that report zeros. Synchronisations are recorded as syncs."""
from __future__ import annotations

import types

from ._log import LOG


class CUDARuntimeError(RuntimeError):
    pass


def _runtime():
    rt = types.ModuleType("cupy.cuda.runtime")
    rt.CUDARuntimeError = CUDARuntimeError
    rt.getDeviceCount = lambda: 1
    rt.getDevice = lambda: 0

    def set_device(device):
        if int(device) != 0:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    rt.setDevice = set_device
    rt.deviceSynchronize = lambda: LOG.sync("cupy.cuda.runtime.deviceSynchronize")
    rt.getDeviceProperties = lambda device: {
        "name": b"CuPy stand-in (NumPy)", "totalGlobalMem": 16 * 2 ** 30, "major": 9, "minor": 0,
        "multiProcessorCount": 1, "warpSize": 32, "maxThreadsPerBlock": 1024}
    rt.memGetInfo = lambda: (16 * 2 ** 30, 16 * 2 ** 30)
    rt.runtimeGetVersion = lambda: 12080
    rt.driverGetVersion = lambda: 12080
    return rt


runtime = _runtime()


class Device:
    """``cupy.cuda.Device``: device 0 only."""

    def __init__(self, device=None) -> None:
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    compute_capability = "90"
    pci_bus_id = "0000:00:00.0"
    attributes: dict = {}
    mem_info = property(lambda self: runtime.memGetInfo())

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        LOG.sync("Device.synchronize")

    def __int__(self) -> int:
        return self.id

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and other.id == self.id

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False) -> None:
        self.ptr = 0

    done = True

    def record(self, stream=None) -> None:
        pass

    def synchronize(self) -> None:
        LOG.sync("Event.synchronize")


class Stream:
    """``cupy.cuda.Stream``: a context manager whose work runs at once (the stand-in has no queue)."""

    null: "Stream"

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None) -> None:
        self.ptr = 0 if null else 1
        self.is_non_blocking = bool(non_blocking)
        self.ptds = bool(ptds)
        self.priority = priority or 0

    done = True

    def use(self) -> "Stream":
        return self

    def synchronize(self) -> None:
        LOG.sync("Stream.synchronize")

    def record(self, event=None) -> Event:
        return event or Event()

    def wait_event(self, event) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


Stream.null = Stream(null=True)


class MemoryPool:
    """Reports no memory: the stand-in cannot measure device memory."""

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_bytes(self) -> int:
        return 0

    def free_all_blocks(self, stream=None) -> None:
        pass

    def n_free_blocks(self) -> int:
        return 0

    def set_limit(self, size=None, fraction=None) -> None:
        pass

    def get_limit(self) -> int:
        return 0


class PinnedMemoryPool(MemoryPool):
    pass


_POOL, _PINNED = MemoryPool(), PinnedMemoryPool()


def get_default_memory_pool() -> MemoryPool:
    return _POOL


def get_default_pinned_memory_pool() -> PinnedMemoryPool:
    return _PINNED


def module():
    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = runtime
    cuda.Device, cuda.Stream, cuda.Event = Device, Stream, Event
    cuda.MemoryPool, cuda.PinnedMemoryPool = MemoryPool, PinnedMemoryPool
    cuda.is_available = lambda: True
    cuda.get_current_stream = lambda device_id=-1: Stream.null
    cuda.get_device_id = lambda: 0
    cuda.get_elapsed_time = lambda start, end: 0.0
    cuda.get_local_runtime_version = lambda: 12080
    return cuda
