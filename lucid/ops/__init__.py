"""Differentiable operations, one family per module; each op is a Function with forward and backward."""
from . import elementwise, linalg, reduce, shape  # noqa: F401
