"""Keep freed NumPy buffers in the process instead of handing them back to the OS (glibc only).

A training step allocates and frees the same few hundred activation and gradient arrays every step. glibc's
malloc serves large requests (above a threshold that adapts up to 32 MiB) with fresh ``mmap`` pages and gives
freed memory at the top of the heap back to the OS (``M_TRIM_THRESHOLD``); the next step then touches
brand-new pages, and every 4 KiB page costs a page fault with zeroing in the kernel. Raising both thresholds
keeps the pages for reuse; peak memory is unchanged (the pages were needed at the peak anyway), but RSS does
not shrink after a big step. PyTorch gets the same effect on the GPU from its caching allocator; on the CPU its
tuning guides recommend preloading jemalloc or tcmalloc for this reason.

Process-wide and not undoable: only ``lucid.backends.cpu.configure()`` calls it.
"""
from __future__ import annotations

import ctypes
import platform

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_state = {"tuned": False}


def raise_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Set glibc's mmap and trim thresholds; True if glibc accepted both. Does nothing on non-glibc platforms."""
    if _state["tuned"]:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - glibc without the usual soname
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) == 1  # mallopt returns 1 on success
    ok = libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok
    _state["tuned"] = ok
    return ok


def is_tuned() -> bool:
    """Whether the thresholds were raised in this process."""
    return _state["tuned"]
