"""``Module``: the base class of layers and models, with PyTorch's registration, state-dict and hook rules.

Assigning a ``Parameter``, a ``Module`` or (through ``register_buffer``) a Tensor to an attribute registers
it, in order, so that ``state_dict()`` keys come out exactly as PyTorch names them (``stem.0.weight``).
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .. import _backend
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _RemovableHandle:
    def __init__(self, module: "Module", hooks: dict, key: int) -> None:
        self._module, self._hooks, self._key = module, hooks, key

    def remove(self) -> None:
        if self._hooks.pop(self._key, None) is not None:
            self._module.structure_changed()

    def __enter__(self) -> "_RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _dtype_problem(value, dtype) -> str | None:
    """Why ``value`` (a Tensor, array or nested list) cannot be copied into a tensor of ``dtype``, or None."""
    arr = value.array if isinstance(value, Tensor) else _backend.as_array(value)
    src = np.dtype(arr.dtype)
    if src.kind == "f" and dtype.kind == "f" or src.kind == "b" and dtype.kind == "b" or src == dtype:
        return None
    if src.kind in "iu" and dtype.kind in "iu":
        if arr.size == 0 or np.can_cast(src, dtype):
            return None
        lo, hi = (int(_backend.to_device(v, "cpu")) for v in (arr.min(), arr.max()))  # an explicit read
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return None
        return f"checkpoint values [{lo}, {hi}] do not fit the model's dtype {dtype}"
    what = {"f": "floating", "i": "integer", "u": "integer", "b": "bool"}.get(src.kind, str(src))
    return (f"checkpoint dtype {src} vs model dtype {dtype}: lucid does not cast {what} values into a {dtype} "
            "tensor (torch would, silently); convert the checkpoint explicitly if that is really intended")

class Module:
    """Base class for all layers and models; subclasses define ``forward``."""

    training: bool
    _hook_counter = 0

    def __init__(self) -> None:
        # Counts the changes to this module made through Module's API (attributes, registrations, hooks,
        # training mode). A value derived from a module (a fused module's plan, folded weights; see
        # lucid.nn.derived) names the modules it depends on and stays valid while their counts do; a change to
        # any other module, even inside a forward, leaves it alone.
        object.__setattr__(self, "_structure_version", 0)
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # -- attribute registration -----------------------------------------------------------------------------
    def structure_changed(self) -> None:
        """Record a change to this module (called by every change through Module's API)."""
        self.__dict__["_structure_version"] += 1

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() was called "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")
        self.structure_changed()
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            modules.pop(name, None)
            buffers.pop(name, None)
            self._non_persistent_buffers.discard(name)
            params[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            params.pop(name, None)
            buffers.pop(name, None)
            self._non_persistent_buffers.discard(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                                "(expected a lucid.nn.Parameter or None)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} "
                                "(expected a Module or None)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r} (expected a Tensor)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        self.structure_changed()
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def _check_new_name(self, kind: str, name: str, store: dict) -> None:
        """PyTorch's rules for a new parameter/buffer/submodule name: a non-empty str without '.', and not
        already an attribute of another kind (that would make attribute lookup ambiguous)."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name {name!r} must be non-empty and contain no '.'")
        if name not in store and (name in self.__dict__ or hasattr(type(self), name)
                                  or any(name in d for d in (self._parameters, self._buffers, self._modules))):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}; cannot register a "
                           f"{kind} under that name")

    def register_parameter(self, name: str, param) -> None:
        """Register ``param`` (a Parameter, or None for an absent one such as ``bias=False``) under ``name``."""
        self.structure_changed()
        self._check_new_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register a non-trainable tensor (e.g. running statistics) saved in the state dict when persistent."""
        self.structure_changed()
        self._check_new_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}): expected a Tensor or None, got {type(tensor).__name__}")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def register_module(self, name: str, module) -> None:
        self.structure_changed()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"register_module({name!r}): expected a Module or None, got {type(module).__name__}")
        self._check_new_name("module", name, self._modules)
        self._modules[name] = module

    add_module = register_module

    def get_submodule(self, target: str) -> "Module":
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} (looking up {target!r})")
            mod = mod._modules[part]
        return mod

    # -- calling --------------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):  # the common case, ~45 calls per forward
            return self.forward(*args, **kwargs)
        for hook in tuple(self._forward_pre_hooks.values()):
            out = hook(self, args)
            if out is not None:
                args = out if isinstance(out, tuple) else (out,)
        result = self.forward(*args, **kwargs)
        for hook in tuple(self._forward_hooks.values()):
            out = hook(self, args, result)
            if out is not None:
                result = out
        return result

    def _add_hook(self, hooks: dict, hook) -> _RemovableHandle:
        self.structure_changed()
        Module._hook_counter += 1
        hooks[Module._hook_counter] = hook
        return _RemovableHandle(self, hooks, Module._hook_counter)

    def register_forward_hook(self, hook) -> _RemovableHandle:
        """``hook(module, inputs, output)`` runs after forward; a non-None return replaces the output."""
        return self._add_hook(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook) -> _RemovableHandle:
        """``hook(module, inputs)`` runs before forward; a non-None return replaces the inputs."""
        return self._add_hook(self._forward_pre_hooks, hook)

    # -- traversal ------------------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if self in memo and remove_duplicate:
            return
        memo.add(self)
        yield prefix, self
        for name, mod in self._modules.items():
            if mod is None:
                continue
            yield from mod.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, mod in self._modules.items():
            if mod is not None and mod not in seen:
                seen.add(mod)
                yield name, mod

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- modes and bulk changes -----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and, through each child's own ``train`` (so overrides run, as in
        PyTorch), on all descendants."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {mode!r}")
        if self.training != mode:  # eval() on an eval-mode model (every eval loop's first line) changes nothing
            self.structure_changed()
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.array[...] = 0

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every submodule (children first) and on self, like PyTorch."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, device=None, dtype=None) -> "Module":
        """Move parameters and buffers to a device and/or cast floating ones to a dtype, in place."""
        for a in args:
            if isinstance(a, str) and a.lower() in ("cpu", "gpu", "cuda", "cuda:0", "gpu:0"):
                device = a
            else:
                dtype = a
        if device is not None:
            device = _backend.normalize_device(device)
        if dtype is not None:
            dtype = _backend.normalize_dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")

        def convert(t: Tensor) -> None:
            arr = t.array
            if dtype is not None and arr.dtype.kind == "f" and arr.dtype != dtype:
                arr = arr.astype(dtype)
            if device is not None:
                arr = _backend.to_device(arr, device)
            t.array = arr
            if t.grad is not None:
                g = t.grad.array
                if dtype is not None and g.dtype != arr.dtype:
                    g = g.astype(arr.dtype)
                if device is not None:
                    g = _backend.to_device(g, device)
                t.grad.array = g

        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    convert(p)
            for b in m._buffers.values():
                if b is not None:
                    convert(b)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def gpu(self) -> "Module":
        return self.to("gpu")

    cuda = gpu

    def float(self) -> "Module":
        return self.to(_backend.float32)

    def double(self) -> "Module":
        return self.to(_backend.float64)

    def half(self) -> "Module":
        return self.to(_backend.float16)

    # -- state dict -----------------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> "OrderedDict":
        """Parameters and persistent buffers by dotted name, in registration order (PyTorch's keys).

        Values are detached tensors sharing memory with the module (``keep_vars=True`` returns the objects).
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, mod in self._modules.items():
            if mod is not None:
                mod.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into parameters and buffers (in place, keeping dtype and device).

        Returns ``(missing_keys, unexpected_keys)``; with ``strict`` either being non-empty is an error, and a
        shape or dtype mismatch is always an error. All problems are reported together, naming keys, shapes and
        dtypes; nothing is modified unless every key checks out.

        Dtypes (where lucid differs from torch, which casts whatever it gets): a floating value loads into a
        floating tensor of any width (a float16 or float64 checkpoint into a float32 model is fine), an integer
        value into an integer tensor that can hold every one of its values, a bool into a bool. Anything else
        is an error naming the tensor: integer or bool weights in a float model (torch would train on from
        their truncated values, often zeros, without a word) and float values in an integer buffer such as
        ``num_batches_tracked`` (torch truncates 2.7 to 2) mean the checkpoint is not what it claims to be.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = state_dict[k]
            shape = tuple(value.shape) if hasattr(value, "shape") else tuple(np.shape(value))
            if shape != tuple(target.shape):
                problems.append(f"  {k}: checkpoint shape {shape} vs model shape {tuple(target.shape)}")
                continue
            problem = _dtype_problem(value, target.array.dtype)
            if problem:
                problems.append(f"  {k}: {problem}")
        if strict and (missing or unexpected):
            if missing:
                problems.append("  missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("  unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise RuntimeError(f"error(s) in loading state_dict for {type(self).__name__}:\n" + "\n".join(problems))
        with no_grad():
            for k, target in own.items():
                if k not in state_dict:
                    continue
                value = state_dict[k]
                arr = value.array if isinstance(value, Tensor) else _backend.as_array(value)
                arr = _backend.to_device(arr, target.device).reshape(target.array.shape)
                # copy into the existing array (optimizers and EMA keep references to it)
                target.array[...] = arr.astype(target.array.dtype, copy=False)
                target._version += 1
        return IncompatibleKeys(missing, unexpected)

    # -- printing -------------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, mod in self._modules.items():
            body = repr(mod).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        main = self._get_name() + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._modules) + list(self._buffers)
