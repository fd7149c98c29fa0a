"""lucid.nn.functional: the functional forms of the layers (``F.conv2d``, ``F.gelu``, ``F.cross_entropy``...).

The ops themselves live in ``lucid/ops/<family>.py``, each a Function with forward and backward together;
this module re-exports their public names (each family's ``__all__``).
"""
from ..ops.activation import *  # noqa: F401,F403
from ..ops.conv import *  # noqa: F401,F403
from ..ops.dropout import *  # noqa: F401,F403
from ..ops.elementwise import relu, sigmoid, tanh  # noqa: F401
from ..ops.linear import *  # noqa: F401,F403
from ..ops.loss import *  # noqa: F401,F403
from ..ops.norm import *  # noqa: F401,F403
from ..ops.pool import *  # noqa: F401,F403
from ..ops.reduce import log_softmax, softmax  # noqa: F401
from ..ops.shape import pad  # noqa: F401
