"""The stand-in's record of host/device traffic.

``LOG.crossings``: implicit host<->device traffic, each a ``Crossing(kind, message, where)``. Real CuPy lets
some of these pass (``float(x)``, a NumPy scalar on the left of a device array, a list index) and refuses
others (``__array__``, NumPy array operands); the stand-in logs all of them, and raises where CuPy raises.
The device tests assert this list is empty. Kinds:

    implicit-conversion  ``__array__``: NumPy tried to convert a device array (raises TypeError, as CuPy)
    implicit-sync        ``bool``/``float``/``int``/``complex`` of a device array (a hidden device->host read)
    host-operand         a NumPy array given to a device function or operator (raises TypeError, as CuPy)
    host-index           a NumPy array or list used as an index of a device array (CuPy copies it over)
    host-value           a NumPy array or list assigned through an index (CuPy copies it, or refuses)
    numpy-dispatch       a NumPy function or ufunc applied to a device array (CuPy's ``__array_ufunc__`` /
                         ``__array_function__`` hand-off: works on CuPy, but it is ``np.xxx`` on device data,
                         and a NumPy scalar on the left decides the result dtype)

``LOG.syncs``: explicit device->host reads (``get``, ``item``, ``tolist``, ``asnumpy``, ``repr``,
``synchronize``, boolean-mask indexing and ``nonzero``, whose result size needs the host). Legal, but each
one stalls a real GPU: hot-path tests count them. ``LOG.uploads``: explicit host->device copies
(``asarray``/``array`` of host data, ``ndarray.set``). ``LOG.refused``: kernels that need a real GPU
(ElementwiseKernel, ReductionKernel, RawKernel, RawModule) and were called anyway.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Crossing:
    kind: str
    message: str
    where: str  # "file:line in function" of the first caller outside the stand-in and NumPy

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message} (at {self.where})"


def _caller() -> str:
    """The first frame outside this package, NumPy and SciPy: the code that caused the event."""
    f = sys._getframe(2)
    while f is not None:
        path = f.f_code.co_filename
        if not (path.startswith(_HERE) or f"{os.sep}numpy{os.sep}" in path or f"{os.sep}scipy{os.sep}" in path):
            return f"{os.path.relpath(path)}:{f.f_lineno} in {f.f_code.co_name}"
        f = f.f_back
    return "?"


class DeviceLog:
    """See the module docstring. One instance, ``LOG``, shared by the whole stand-in."""

    def __init__(self) -> None:
        self.crossings: list[Crossing] = []
        self.syncs: list[str] = []
        self.uploads: list[str] = []
        self.refused: list[str] = []
        self.sync_allowed = True  # cupyx.allow_synchronize(False) turns syncs into DeviceSynchronized errors

    def clear(self) -> None:
        self.crossings.clear()
        self.syncs.clear()
        self.uploads.clear()
        self.refused.clear()
        self.sync_allowed = True

    def crossing(self, kind: str, message: str) -> None:
        self.crossings.append(Crossing(kind, message, _caller()))

    def sync(self, what: str) -> None:
        if not self.sync_allowed:
            from ._cupyx import DeviceSynchronized

            raise DeviceSynchronized(f"{what}: device synchronization is disallowed here "
                                     "(cupyx.allow_synchronize(False))")
        self.syncs.append(f"{what} at {_caller()}")

    def upload(self, what: str) -> None:
        self.uploads.append(f"{what} at {_caller()}")

    def report(self) -> str:
        return "\n".join(str(c) for c in self.crossings)


LOG = DeviceLog()
