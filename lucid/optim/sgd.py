"""``SGD``: stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from .optimizer import Optimizer


def _check_number(name: str, value, low: float = 0.0) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= low:
        raise ValueError(f"Invalid {name} value: {value!r} (expected a number >= {low})")


class SGD(Optimizer):
    """Stochastic gradient descent, torch.optim.SGD's update operation by operation::

        g = -grad if maximize else grad
        g = g + weight_decay * p                                   (if weight_decay != 0)
        b = g (first step) | b = momentum * b + (1 - dampening) * g (if momentum != 0)
        g = g + momentum * b if nesterov else b                    (if momentum != 0)
        p = p - lr * g

    Args:
        params: iterable of Parameters or of param-group dicts (see ``Optimizer``).
        lr: learning rate (>= 0). Default 1e-3.
        momentum: momentum factor (>= 0). Default 0.
        dampening: dampening of the momentum. Default 0.
        weight_decay: L2 penalty added to the gradient (>= 0). Default 0.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0). Default False.
        maximize: maximize the objective instead of minimizing. Default False.

    State per parameter: ``momentum_buffer`` (a Tensor shaped like the parameter, float32 for float32
    parameters) once momentum is used; no ``step`` counter, as in torch.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        _check_number("learning rate (lr)", group["lr"])
        _check_number("momentum", group["momentum"])
        _check_number("weight_decay", group["weight_decay"])
        if not isinstance(group["dampening"], (int, float)) or isinstance(group["dampening"], bool):
            raise ValueError(f"Invalid dampening value: {group['dampening']!r} (expected a number)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening; got "
                             f"momentum={group['momentum']!r}, dampening={group['dampening']!r}")

    def step(self, closure=None):
        """Update every parameter that has a gradient once; returns the closure's loss (or None)."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                param, grad = p.array, p.grad.array
                xp = xp_of(param)
                # scalars in the parameter's dtype, as torch's kernels use them, and on the right of the arrays:
                # a NumPy scalar on the left would hand a CuPy array to NumPy's ufunc machinery
                t = param.dtype.type
                g = xp.negative(grad) if maximize else grad
                if weight_decay != 0:
                    g = g + param * t(weight_decay)
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        # a copy of g in the parameter's memory order (g may be the grad array itself)
                        b = xp.empty_like(param)
                        b[...] = g
                        state["momentum_buffer"] = Tensor._wrap(b)
                    else:
                        b = buf.array
                        b *= t(momentum)
                        if dampening == 0:
                            b += g  # (1 - 0) * g is g exactly; skip the temporary
                        else:
                            b += g * t(1 - dampening)
                    g = g + b * t(momentum) if nesterov else b
                param += g * t(-lr)  # param.add_(g, alpha=-lr); the product is a temporary
                p._version += 1
        return loss
