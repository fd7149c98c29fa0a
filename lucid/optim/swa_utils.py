"""Weight averaging: ``AveragedModel`` keeps an exponential moving average (EMA) of a model's weights.

    ema = AveragedModel(model, decay=0.9998, use_warmup=True)
    for batch in data:
        ...; opt.step()
        ema.update_parameters(model)
    evaluate(ema.module)                     # or ema(x): the averaged copy, in eval mode

The update is timm's ``ModelEmaV3`` (the EMA the InceptionNeXt recipes use), with
``ema = lerp(ema, model, 1 - decay)`` computed as torch's ``lerp_`` does; the decay at update ``step``::

    step' = max(0, step - update_after_step - 1);  decay = 0 if step' == 0, else
    decay = clamp(1 - (1 + step'/warmup_gamma) ** -warmup_power, min_decay, decay)   (use_warmup, "power")
    decay = clamp((1 + step') / (10 + step'), min_decay, decay)                     (use_warmup, "ratio")
    decay = decay                                                                   (no warmup)

so the first update copies the model, and with warmup the average forgets its early, poor weights quickly.
``warmup_mode="ratio"`` is the ``(1 + n) / (10 + n)`` warmup of TensorFlow's ExponentialMovingAverage.
"""
from __future__ import annotations

from copy import deepcopy

import numpy as np

from .. import _backend
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..nn.module import Module

__all__ = ["AveragedModel"]


def _lerp_(ema, value, weight: float) -> None:
    """``ema.lerp_(value, weight)`` in place, with torch's formula and the ema's dtype for the scalars."""
    if _backend.device_of(value) != _backend.device_of(ema):
        value = _backend.to_device(value, _backend.device_of(ema))
    if value.dtype != ema.dtype:
        value = value.astype(ema.dtype)
    xp = _backend.xp_of(ema)
    t = ema.dtype.type
    w = t(weight)
    diff = xp.subtract(value, ema)
    if abs(w) < 0.5:  # ema + w * (value - ema)
        diff *= w
        ema += diff
    else:  # value - (value - ema) * (1 - w): exact copy of value when w == 1
        diff *= t(1) - w
        xp.subtract(value, diff, out=ema)


class AveragedModel(Module):
    """An exponential moving average of ``model``'s parameters and buffers, for evaluation.

    Args:
        model: the module being trained; a deep copy becomes ``self.module`` (put in eval mode).
        decay: EMA decay (the weight kept from the average at each update), in [0, 1]. Default 0.9999.
        min_decay: lower bound of the warmed-up decay. Default 0.
        update_after_step: updates up to this step copy the model (decay 0). Default 0.
        use_warmup: ramp the decay up from 0 (see the module docstring). Default False.
        warmup_gamma, warmup_power: shape of the "power" warmup (timm's defaults 1.0, 2/3).
        warmup_mode: "power" (timm ModelEmaV3) or "ratio" ((1 + n) / (10 + n)). Default "power".
        use_buffers: True (default): floating buffers (BatchNorm running stats) are averaged like the
            parameters and integer ones copied (timm's default); False: parameters are averaged and every
            buffer is copied from the model (timm's ``exclude_buffers=True``).
        device: keep the average on this device ("cpu"/"gpu") instead of the model's.

    Attributes: ``module`` (the averaged copy), ``n_averaged`` (int64 0-d buffer: updates so far). The
    ``state_dict()`` keys are ``module.<name>`` and ``n_averaged``; ``ema.module.state_dict()`` has the
    model's own keys (what an evaluation checkpoint wants).
    """

    def __init__(self, model: Module, decay: float = 0.9999, *, min_decay: float = 0.0,
                 update_after_step: int = 0, use_warmup: bool = False, warmup_gamma: float = 1.0,
                 warmup_power: float = 2 / 3, warmup_mode: str = "power", use_buffers: bool = True,
                 device=None) -> None:
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel expects a lucid.nn.Module, got {type(model).__name__}")
        for name, value in (("decay", decay), ("min_decay", min_decay)):
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"AveragedModel {name} must be in [0, 1], got {value!r}")
        if warmup_mode not in ("power", "ratio"):
            raise ValueError(f"AveragedModel warmup_mode must be 'power' or 'ratio', got {warmup_mode!r}")
        if not warmup_gamma > 0:
            raise ValueError(f"AveragedModel warmup_gamma must be positive, got {warmup_gamma!r}")
        self.module = deepcopy(model)
        for p in self.module.parameters():
            p.grad = None
        self.module.eval()
        if device is not None:
            self.module.to(device)
        self.decay = float(decay)
        self.min_decay = float(min_decay)
        self.update_after_step = int(update_after_step)
        self.use_warmup = bool(use_warmup)
        self.warmup_gamma = float(warmup_gamma)
        self.warmup_power = float(warmup_power)
        self.warmup_mode = warmup_mode
        self.use_buffers = bool(use_buffers)
        self.register_buffer("n_averaged", Tensor(np.zeros((), dtype=np.int64)))
        self._count = None  # ((buffer id, version), updates so far) mirrored on the host: see _updates()

    def forward(self, *args, **kwargs):
        """Run the averaged model."""
        return self.module(*args, **kwargs)

    def get_decay(self, step: int | None = None) -> float:
        """The decay used at update ``step`` (timm's ``get_decay``; ``None`` gives ``decay`` itself)."""
        if step is None:
            return self.decay
        step = max(0, step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        if not self.use_warmup:
            return self.decay
        if self.warmup_mode == "power":
            decay = 1 - (1 + step / self.warmup_gamma) ** -self.warmup_power
        else:
            decay = (1 + step) / (10 + step)
        return max(min(decay, self.decay), self.min_decay)

    def _pairs(self, model: Module):
        """(ema tensor, model tensor, average?) for every entry the update touches, matched by name."""
        if self.use_buffers:
            own = self.module.state_dict(keep_vars=True)
            other = model.state_dict(keep_vars=True)
            self._check_keys(own, other)
            for k, e in own.items():
                yield e, other[k], e.array.dtype.kind == "f"
        else:
            own_p, other_p = dict(self.module.named_parameters()), dict(model.named_parameters())
            self._check_keys(own_p, other_p)
            for k, e in own_p.items():
                yield e, other_p[k], True
            own_b, other_b = dict(self.module.named_buffers()), dict(model.named_buffers())
            self._check_keys(own_b, other_b)
            for k, e in own_b.items():
                yield e, other_b[k], False

    @staticmethod
    def _check_keys(own: dict, other: dict) -> None:
        if own.keys() != other.keys():
            missing = [k for k in own if k not in other]
            extra = [k for k in other if k not in own]
            raise ValueError(f"AveragedModel: the model does not match the averaged copy; missing in the "
                             f"model: {missing}, not in the copy: {extra}")

    def update_parameters(self, model: Module, step: int | None = None) -> None:
        """Fold ``model``'s current weights into the average.

        ``step``: the optimizer-update count the decay is computed for (timm's ``num_updates``); by default
        this average's own count of updates (1 on the first call), which is the same when called once after
        every optimizer step.
        """
        count = self._updates()
        if step is None:
            step = count + 1
        decay = self.get_decay(step)
        with no_grad():
            for ema, value, average in self._pairs(model):
                if tuple(ema.shape) != tuple(value.shape):
                    raise ValueError(f"AveragedModel: shape {tuple(value.shape)} in the model vs "
                                     f"{tuple(ema.shape)} in the averaged copy")
                if average:
                    _lerp_(ema.array, value.array, 1.0 - decay)
                else:
                    ema.array[...] = _backend.to_device(value.array, ema.device)
                ema._version += 1
        self.n_averaged.array += 1
        self._count = ((id(self.n_averaged), self.n_averaged._version), count + 1)

    def _updates(self) -> int:
        """``n_averaged`` as a Python int. Read from the buffer only when it is new or was loaded (its version
        changed) and counted on the host otherwise, so an average kept on the GPU is not read back (a device
        sync) at every update."""
        key = (id(self.n_averaged), self.n_averaged._version)
        if self._count is None or self._count[0] != key:
            self._count = (key, int(_backend.to_device(self.n_averaged.array, "cpu")))
        return self._count[1]

    def set(self, model: Module) -> None:
        """Copy ``model``'s parameters and buffers into the average (timm's ``set``)."""
        own, other = self.module.state_dict(keep_vars=True), model.state_dict(keep_vars=True)
        self._check_keys(own, other)
        with no_grad():
            for k, e in own.items():
                e.array[...] = _backend.to_device(other[k].array, e.device)
                e._version += 1

    def extra_repr(self) -> str:
        return (f"decay={self.decay}, use_warmup={self.use_warmup}, warmup_mode={self.warmup_mode!r}, "
                f"use_buffers={self.use_buffers}")
