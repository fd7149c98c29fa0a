"""Compiled kernels (numba on the CPU) for the few ops where NumPy alone is too slow; each module keeps the
pure-NumPy version it must match, used when numba is missing or ``LUCID_NO_NUMBA=1`` is set.

lucid/kernels/_numba.py is the one place that decides whether and which numba compilation runs. numba's
threading layer is chosen by ``lucid.backends.cpu.configure()`` (its default OpenMP layer spin-waits against
OpenBLAS's threads on small machines), not on import.
"""
