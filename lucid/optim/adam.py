"""``Adam`` and ``AdamW``: adaptive moment estimation, with L2 or decoupled weight decay."""
from __future__ import annotations

from .._backend import xp_of
from .._tensor import Tensor
from ..kernels import adamw as _kernel
from .optimizer import Optimizer, _get_step
from .sgd import _check_number


class Adam(Optimizer):
    """Adam (Kingma & Ba), torch.optim.Adam's single-tensor update operation by operation::

        t = t + 1;  g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)             (decoupled_weight_decay, i.e. AdamW)
        g = g + weight_decay * p                    (otherwise, if weight_decay != 0)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v), used instead of v    (amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: iterable of Parameters or of param-group dicts (see ``Optimizer``).
        lr: learning rate (>= 0). Default 1e-3.
        betas: (beta1, beta2), each in [0, 1). Default (0.9, 0.999).
        eps: added to the denominator (>= 0). Default 1e-8.
        weight_decay: L2 penalty (Adam) or decoupled decay (AdamW), >= 0. Default 0.
        amsgrad: use the running maximum of ``v`` (AMSGrad). Default False.
        maximize: maximize the objective. Default False.
        decoupled_weight_decay: AdamW's decay (``AdamW`` sets it). Default False.
        fused: True: one compiled numba pass per parameter (``lucid.kernels.adamw``); False: NumPy/CuPy
            ufuncs (the reference); None (default): the compiled pass where it can run (CPU arrays,
            float32/float64, numba importable and ``LUCID_NO_NUMBA`` unset), ufuncs elsewhere. Both give
            the same results. ``fused=True`` without numba is an error.

    State per parameter: ``step`` (float32 0-d CPU Tensor, as torch), ``exp_avg``, ``exp_avg_sq`` and with
    amsgrad ``max_exp_avg_sq`` (Tensors shaped and laid out like the parameter, in its dtype).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False, fused: bool | None = None) -> None:
        if fused and not _kernel.numba_available():
            raise RuntimeError(f"{type(self).__name__}(fused=True) needs numba, which is not importable here "
                               "(or LUCID_NO_NUMBA is set); use fused=None or fused=False")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay, fused=fused)
        self._validate_group(defaults)
        super().__init__(params, defaults)

    def _validate_group(self, group: dict) -> None:
        _check_number("learning rate (lr)", group["lr"])
        _check_number("epsilon (eps)", group["eps"])
        _check_number("weight_decay", group["weight_decay"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
        group["betas"] = tuple(betas)
        for i, b in enumerate(betas):
            if not isinstance(b, (int, float)) or isinstance(b, bool) or not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b!r} (expected 0 <= beta < 1)")

    def step(self, closure=None):
        """Update every parameter that has a gradient once; returns the closure's loss (or None)."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            hyper = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                         weight_decay=group["weight_decay"], decoupled=group["decoupled_weight_decay"],
                         maximize=group["maximize"])
            amsgrad, fused = group["amsgrad"], group["fused"]
            scalars = {}  # (dtype, step) -> adam_scalars: computed once for the parameters that share them
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p]
                param = p.array
                if "exp_avg" not in state:
                    xp = xp_of(param)
                    state["step"] = _get_step(state)
                    # zeros_like keeps the parameter's memory order, so all arrays share one flat order
                    state["exp_avg"] = Tensor._wrap(xp.zeros_like(param))
                    state["exp_avg_sq"] = Tensor._wrap(xp.zeros_like(param))
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = Tensor._wrap(xp_of(param).zeros_like(param))
                step_t = state["step"].array
                step_t += 1
                key = (param.dtype, float(step_t))
                sc = scalars.get(key)
                if sc is None:
                    sc = scalars[key] = _kernel.adam_scalars(param.dtype, step=key[1], **hyper)
                args = (param, grad.array, state["exp_avg"].array, state["exp_avg_sq"].array,
                        state["max_exp_avg_sq"].array if amsgrad else None, sc)
                if fused is False or not _kernel.adam_step_fused(*args):
                    _kernel.adam_step_reference(*args)
                p._version += 1
        return loss


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, ``p = p * (1 - lr * weight_decay)``
    before the Adam update (torch.optim.AdamW). Arguments as ``Adam``, with ``weight_decay`` defaulting to
    1e-2. Every group has ``decoupled_weight_decay=True``."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, fused=fused)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # as torch: AdamW is always decoupled, whatever was saved
            group["decoupled_weight_decay"] = True
