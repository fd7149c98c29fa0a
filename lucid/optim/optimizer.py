"""``Optimizer``: the base class of lucid's optimizers, with PyTorch's param groups, state and state dicts.

    opt = lucid.optim.AdamW(model.parameters(), lr=1e-3)
    opt = lucid.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    loss.backward(); opt.step(); opt.zero_grad()

Everything an optimizer knows lives in ``param_groups`` (a list of dicts: ``"params"`` plus every
hyper-parameter, so a scheduler can change ``group["lr"]`` between steps) and ``state`` (a dict keyed by the
parameter object, holding per-parameter buffers as lucid Tensors). ``state_dict()`` has PyTorch's layout,
with parameters replaced by their index in group order::

    {"state": {0: {"step": Tensor(3.), "exp_avg": Tensor, ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1, 2]}, ...]}

Where lucid differs from torch.optim: hyper-parameters are checked in every group (not only the
defaults), and a group key that no optimizer or scheduler uses is an error (a typo such as
``"weight_decy"`` would otherwise be silently ignored).

Updates are done in place on ``param.array`` (the array object is never replaced: modules, EMA copies and
channels-last views keep references to it) and bump the parameter's version counter, as torch's in-place
updates do, so a backward through a graph recorded before ``step()`` is reported instead of being wrong.
"""
from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from copy import deepcopy
from itertools import chain

import numpy as np

from .. import _backend
from .._tensor import Tensor
from ..autograd.grad_mode import enable_grad

# Group keys that are not hyper-parameters of an optimizer but that schedulers and helpers store in groups
# (torch does the same): LRScheduler -> initial_lr; OneCycleLR -> max_lr, min_lr, max_momentum,
# base_momentum; named parameters -> param_names; timm's layer-wise decay -> lr_scale.
EXTRA_GROUP_KEYS = frozenset({"params", "param_names", "initial_lr", "max_lr", "min_lr", "max_momentum",
                              "base_momentum", "lr_scale"})


class _Required:
    """Marker for a hyper-parameter without default (every group must give it)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def _count_step(step):
    """Wrap a subclass's ``step`` so schedulers can tell whether ``optimizer.step()`` ran (as torch does)."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        self._opt_called = True
        return step(self, *args, **kwargs)

    wrapper._lucid_counts_steps = True
    return wrapper


class Optimizer:
    """Base class of optimizers (``torch.optim.Optimizer``'s API).

    Args:
        params: an iterable of Parameters (or of ``(name, Parameter)`` pairs), or of dicts each holding
            ``"params"`` and per-group hyper-parameters that override ``defaults``.
        defaults: hyper-parameter names and default values of this optimizer.

    Subclasses implement ``step`` and may override ``_validate_group(group)`` to check hyper-parameters.
    """

    _opt_called = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_lucid_counts_steps", False):
            cls.step = _count_step(step)

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = dict(defaults)
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got a {type(params).__name__}; pass [param] or model.parameters()")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets changes between runs; use a list instead")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # -- groups ---------------------------------------------------------------------------------------------
    def _validate_group(self, group: dict) -> None:
        """Check a group's hyper-parameters; subclasses raise ValueError naming the bad value."""

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (a dict with ``"params"`` and optional hyper-parameters) to ``param_groups``.

        Useful when fine-tuning: frozen layers can be made trainable and added as training goes on.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"param_group must have a 'params' entry; got keys {sorted(param_group)}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets changes between runs; use a list instead")
        else:
            params = list(params)
        names, tensors = [], []
        for p in params:
            if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
                names.append(p[0])
                p = p[1]
            tensors.append(p)
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names; some names are missing")
            param_group["param_names"] = names
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize lucid Tensors, but params[{i}] is a "
                                f"{type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError(f"can't optimize a non-leaf Tensor (params[{i}] of shape {tuple(p.shape)} "
                                 "was computed by an operation); optimize the leaf it came from")
        param_group["params"] = tensors

        unknown = sorted(k for k in param_group if k not in self.defaults and k not in EXTRA_GROUP_KEYS)
        if unknown:
            raise ValueError(f"unknown param group key(s) {unknown} for {type(self).__name__}; known keys are "
                             f"{sorted(self.defaults)} (plus {sorted(EXTRA_GROUP_KEYS - {'params'})})")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            param_group.setdefault(name, default)
        self._validate_group(param_group)

        if len(tensors) != len({id(p) for p in tensors}):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; each is updated "
                          "once per occurrence", stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        if self.param_groups and ("param_names" in param_group) != ("param_names" in self.param_groups[0]):
            raise ValueError("all optimizer param groups should be with/without names")
        self.param_groups.append(param_group)

    # -- stepping -------------------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters: to None (default, frees memory, and a parameter
        without grad is skipped by ``step``) or, with ``set_to_none=False``, to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.grad_fn = None
                    p.grad.requires_grad = False
                    p.grad.array[...] = 0

    def step(self, closure=None):
        """Update the parameters once from their ``.grad``; ``closure`` (re-evaluating and returning the
        loss, with gradients enabled) is called first when given, and its loss is returned."""
        raise NotImplementedError

    @staticmethod
    def _eval_closure(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # -- state dict -----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's layout (see the module docstring).

        Parameters are replaced by their index, counted over the groups in order. The state values are
        the optimizer's own Tensors (not copies, as in torch): save or copy them before stepping again.
        """
        index: dict[int, int] = {}
        start = 0
        param_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            param_groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if id(p) in index:
                state[index[id(p)]] = dict(s)
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state from ``state_dict()`` (of this optimizer class, over parameters of the same shapes).

        Group hyper-parameters are replaced by the saved ones; state arrays are copied, cast to each
        parameter's dtype (``step`` stays a float32 CPU scalar, as in torch) and moved to its device.
        Integer state keys may also come as strings (``"0"``), as after a JSON round trip.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"optimizer state_dict must be a dict with 'state' and 'param_groups', got {keys}")
        groups = self.param_groups
        saved_groups = deepcopy(list(state_dict["param_groups"]))
        if len(groups) != len(saved_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter group(s), but the optimizer "
                             f"has {len(groups)}")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has {len(s['params'])} parameters, "
                                 f"but the optimizer's group {i} has {len(g['params'])}")
        id_map = {int(k): p for k, p in zip(chain.from_iterable(s["params"] for s in saved_groups),
                                             chain.from_iterable(g["params"] for g in groups))}
        saved_state = {int(k): v for k, v in state_dict["state"].items()}

        new_state: defaultdict = defaultdict(dict)
        problems = []
        for k, value in saved_state.items():
            if k not in id_map:
                problems.append(f"  state for parameter index {k}, which no group lists")
                continue
            p = id_map[k]
            entry = {}
            for key, v in value.items():
                arr = v.array if isinstance(v, Tensor) else v
                if key == "step":
                    entry[key] = Tensor._wrap(np.array(float(np.asarray(_backend.to_device(arr, "cpu"))),
                                                       dtype=np.float32))
                elif hasattr(arr, "shape") and hasattr(arr, "dtype"):
                    if tuple(arr.shape) != tuple(p.shape):
                        problems.append(f"  state[{k}][{key!r}]: shape {tuple(arr.shape)} vs parameter shape "
                                        f"{tuple(p.shape)}")
                        continue
                    arr = _backend.to_device(arr, p.device)
                    xp = _backend.xp_of(p.array)
                    dtype = p.dtype if arr.dtype.kind == "f" and p.dtype.kind == "f" else arr.dtype
                    copy = xp.empty_like(p.array, dtype=dtype)  # same memory order as the parameter
                    copy[...] = arr
                    entry[key] = Tensor._wrap(copy)
                else:
                    entry[key] = deepcopy(v)
            new_state[p] = entry
        if problems:
            raise ValueError(f"error(s) loading {type(self).__name__} state_dict:\n" + "\n".join(problems))

        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            if isinstance(s.get("betas"), list):  # a JSON round trip turns tuples into lists
                s["betas"] = tuple(s["betas"])
        self.param_groups = saved_groups
        self.state = new_state


def _get_step(state: dict) -> Tensor:
    """The per-parameter step counter: a float32 0-d CPU tensor, as torch keeps it (non-capturable)."""
    step = state.get("step")
    if step is None:
        step = state["step"] = Tensor._wrap(np.zeros((), dtype=np.float32))
    return step
