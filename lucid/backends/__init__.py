"""lucid.backends: how lucid runs on each kind of hardware. ``lucid.backends.cpu`` is the one seam for CPU
tuning (``configure()``, feature flags, measured thresholds); ``row_threads`` splits row-parallel jobs over
cores (lucid/backends/row_threads.py)."""
from . import cpu, row_threads  # noqa: F401
