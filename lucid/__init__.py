"""lucid: a readable deep-learning library on NumPy (CPU) and CuPy (GPU) with a PyTorch-shaped API.

    import lucid
    x = lucid.randn(4, 3, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()          # x.grad == 2 * exp(x)

Importing lucid changes no process-wide state; ``lucid.backends.cpu.configure()`` applies lucid's CPU tuning
(OpenBLAS thread timeout, malloc thresholds, numba's threading layer) when a program asks for it.
"""
from . import _backend, backends  # noqa: F401
from ._backend import bool_, float16, float32, float64, gpu_available, int8, int32, int64, uint8
from ._creation import (arange, empty, empty_like, eye, full, full_like, linspace, ones, ones_like, tensor,
                        zeros, zeros_like)
from ._tensor import Tensor
from . import autograd
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .ops.elementwise import (abs, add, clamp, div, erf, exp, log, maximum, minimum, mul, neg, pow, relu,
                              rsqrt, sigmoid, sqrt, sub, tanh, where)
from .ops.linalg import einsum, matmul
from .ops.reduce import (amax, amin, argmax, argmin, logsumexp, log_softmax, max, mean, min, norm, softmax, std,
                         sum, var)
from .ops.shape import cat, chunk, expand, flatten, pad, permute, reshape, split, squeeze, stack, transpose, unsqueeze
from . import profiler, random
from .serialization import load, save
from .random import manual_seed, rand, randint, randn, randperm, seed, get_rng_state, set_rng_state

clip = clamp
concat = cat
float = float32  # noqa: A001  (lucid.float, like torch.float)
double = float64
half = float16
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001
channels_last = "channels_last"
contiguous_format = None

__version__ = "0.1.0"


def is_tensor(obj) -> "builtins.bool":  # noqa: F821
    return isinstance(obj, Tensor)


def numel(x: Tensor):
    return x.numel()


# subpackages, so that `import lucid` gives lucid.nn, lucid.optim and lucid.models as torch does
# (nn first: optim.swa_utils and models build on it)
from . import nn, optim, models  # noqa: E402,F401


def clone(x: Tensor) -> Tensor:
    """A copy of ``x`` that stays in the graph (``x.clone()``)."""
    return x.clone()
