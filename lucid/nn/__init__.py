"""lucid.nn: Module system, layers, functional ops, init and utilities (PyTorch's names and semantics).

Each layer family lives in its own module (linear, conv, pooling, norm, activation, dropout, loss) and
lists its public names in ``__all__``; this file only re-exports them.
"""
from .parameter import Parameter
from .module import Module
from .containers import ModuleDict, ModuleList, Sequential
from .linear import *  # noqa: F401,F403  Linear, Identity, Flatten
from .conv import *  # noqa: F401,F403  Conv2d
from .pooling import *  # noqa: F401,F403  AvgPool2d, MaxPool2d, AdaptiveAvgPool2d
from .norm import *  # noqa: F401,F403  BatchNorm2d, LayerNorm, GroupNorm
from .activation import *  # noqa: F401,F403  GELU, ReLU, SiLU, Sigmoid, Tanh, Softmax
from .dropout import *  # noqa: F401,F403  Dropout, DropPath
from .loss import *  # noqa: F401,F403  CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss
from .fuse import fuse, fusion_summary, register_fusion  # noqa: F401  the fusion pass (lucid/nn/fuse.py)
from . import functional, fused, init, utils  # noqa: E402,F401
