"""``Tensor``: an array (NumPy on "cpu", CuPy on "gpu") plus what autograd needs.

Arrays. ``tensor.array`` is the NumPy (or CuPy) array itself: what ops compute on, shared, never copied.
``tensor.data`` is PyTorch's ``.data``: a Tensor sharing that array, cut from the graph, for code such as
``p.data.add_(...)`` or ``p.data.copy_(...)``. Where lucid differs from torch: an in-place change made through
``.data`` counts as an in-place change of the tensor itself (its ``_version`` is bumped), so cached folded
weights see it, and autograd raises instead of silently using the new values if the tensor was saved for a
backward that has not run yet.

Memory layout. A tensor's ``array`` is an ndarray whose *shape* is PyTorch's (NCHW for images) but whose
*strides* may be anything NumPy allows. The conv, norm and pooling ops produce 4-D activations stored
channels-last (an NHWC buffer seen through an NCHW-shaped transposed view, PyTorch's ``channels_last``
memory format), because then every 1x1 convolution and Linear is one ``(N*H*W, C) @ (C, C')`` GEMM with no
copy. Elementwise NumPy ufuncs keep their input's layout, so the layout flows through the graph.
``contiguous()`` returns a C-contiguous copy when needed; ``numpy()`` returns the array as it is (values and
shape are what PyTorch gives; call ``np.ascontiguousarray`` if you need C order).
"""
from __future__ import annotations

import weakref

import numpy as np

from . import _backend
from .autograd.grad_mode import _state

_SCALAR_TYPES = (int, float, bool, np.generic)


def _infer_dtype(data):
    """dtype a tensor gets from Python data, as in torch.tensor: floats float32, ints int64, bools bool."""
    if isinstance(data, bool):
        return _backend.bool_
    if isinstance(data, int):
        return _backend.int64
    if isinstance(data, float):
        return _backend.float32
    arr = np.asarray(data)
    if arr.dtype == np.float64:
        return _backend.float32
    if arr.dtype.kind in "iu":
        return _backend.int64 if arr.dtype.kind == "i" or arr.dtype.itemsize >= 4 else arr.dtype
    return arr.dtype


def _device_sequence(data):
    """A nested list/tuple holding GPU Tensors as one array on the GPU (None when it holds no GPU Tensor):
    ``tensor([t1, t2])`` keeps the values where they are, as torch does, instead of pulling each to the host.
    Tensors on two devices are an error naming both."""
    leaves, todo = [], [data]
    while todo:
        v = todo.pop()
        if isinstance(v, (list, tuple)):
            todo.extend(v)
        elif isinstance(v, Tensor):
            leaves.append(v)
    devices = sorted({t.device for t in leaves})
    if len(devices) > 1:
        raise RuntimeError(f"tensor(): expected all tensors in the sequence on the same device, got {devices[0]} "
                           f"and {devices[1]}")
    if not devices or devices[0] == "cpu":
        return None
    xp, ref = _backend.xp_for(devices[0]), leaves[0].dtype

    def build(v):
        if isinstance(v, (list, tuple)):
            return xp.stack([build(x) for x in v]) if v else xp.zeros((0,), dtype=ref)
        return v.array if isinstance(v, Tensor) else xp.asarray(v, dtype=ref)

    return build(data)


class Tensor:
    """A multi-dimensional array with automatic differentiation (see the module docstring for layout).

    ``Tensor(data, requires_grad=False, dtype=None, device=None)``: ``data`` may be a NumPy/CuPy array (its
    dtype is kept unless ``dtype`` is given), a nested list or a scalar (floats become float32, ints int64).
    """

    __slots__ = ("array", "grad", "requires_grad", "grad_fn", "_version", "_hooks", "_data_of", "__weakref__")
    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None) -> None:
        if isinstance(data, Tensor):
            data = data.array
        elif isinstance(data, (list, tuple)) and data:
            seq = _device_sequence(data)
            if seq is not None:
                data = seq
        if device is not None:
            device = _backend.normalize_device(device)
        is_array = isinstance(data, np.ndarray) or _backend.device_of(data) == "gpu"
        if dtype is not None:
            dtype = _backend.normalize_dtype(dtype)
        elif not is_array:
            dtype = _infer_dtype(data)
        if is_array:
            arr = data if dtype is None or data.dtype == dtype else data.astype(dtype)
            if dtype is None:
                _backend.normalize_dtype(arr.dtype)  # reject unsupported dtypes (complex, object...)
        else:
            arr = np.asarray(data, dtype=dtype)
            _backend.normalize_dtype(arr.dtype)  # refuse object/str arrays (e.g. lists of None or strings)
        if device is not None:
            arr = _backend.to_device(arr, device)
        self.array = arr
        self.grad = None
        self.grad_fn = None
        self._version = 0
        self._hooks = None
        self._data_of = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array) -> "Tensor":
        """Wrap an array without checks or copies (internal fast path)."""
        t = object.__new__(cls)
        t.array = array
        t.grad = None
        t.grad_fn = None
        t.requires_grad = False
        t._version = 0
        t._hooks = None
        t._data_of = None
        return t

    # -- torch's .data --------------------------------------------------------------------------------------
    @property
    def data(self) -> "Tensor":
        """A tensor sharing this one's array, outside autograd (torch's ``.data``; see the module docstring
        for where lucid differs). ``tensor.array`` is the raw NumPy/CuPy array."""
        t = Tensor._wrap(self.array)
        t._data_of = self if self._data_of is None else self._data_of
        return t

    @data.setter
    def data(self, value) -> None:
        """``tensor.data = other``: this tensor now holds ``other``'s array (a Tensor or an ndarray), as in torch."""
        array = value.array if isinstance(value, Tensor) else value
        if _backend.device_of(array) == "cpu" and not isinstance(array, np.ndarray):
            raise TypeError(f"tensor.data = value: expected a Tensor or an array, got {type(value).__name__}")
        self.array = array  # a new array: caches keyed on the old one see the change by identity

    def _bump_version(self) -> None:
        """Record an in-place change (autograd's saved-tensor check and lucid's derived-value caches read it);
        a ``.data`` alias passes it on to the tensor it was taken from."""
        self._version += 1
        if self._data_of is not None:
            self._data_of._version += 1

    # -- basic attributes -----------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self) -> str:
        return "cpu" if isinstance(self.array, np.ndarray) else _backend.device_of(self.array)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    @property
    def is_cuda(self) -> bool:
        return self.device == "gpu"

    def size(self, dim=None):
        if dim is None:
            return self.array.shape
        return self.array.shape[dim]

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def element_size(self) -> int:
        return self.array.itemsize

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def is_contiguous(self, memory_format=None) -> bool:
        if memory_format == "channels_last" and self.ndim == 4:
            return bool(self.array.transpose(0, 2, 3, 1).flags.c_contiguous)
        return bool(self.array.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    # -- autograd -------------------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.array.dtype.kind != "f":
            raise RuntimeError(f"only floating point tensors can require gradients, got dtype {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * gradient into ``.grad`` of every leaf that requires grad.

        ``gradient`` may be omitted for a single-element tensor (it is then 1).
        """
        from .autograd.engine import run_backward

        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; got shape {tuple(self.shape)}, "
                    "pass gradient= of that shape"
                )
            g = _backend.xp_of(self.array).ones(self.array.shape, dtype=self.array.dtype)
        else:
            g = self._same_device(gradient, "backward: gradient", allow_scalar=False)
            if not _backend.is_array(g):
                g = _backend.xp_of(self.array).asarray(g)
            if g.shape != self.array.shape:
                raise RuntimeError(
                    f"gradient has shape {tuple(g.shape)} but the tensor has shape {tuple(self.shape)}"
                )
            g = g.astype(self.array.dtype, copy=False)
        run_backward(self, g, retain_graph=retain_graph)

    def register_hook(self, hook):
        """Call ``hook(grad) -> Tensor or None`` when this tensor's gradient is computed; returns a handle."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self.grad_fn is not None:
            if self.grad_fn._hooks is None:
                self.grad_fn._hooks = []
            hooks = self.grad_fn._hooks
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is not None:
            self.grad_fn._retained = weakref.ref(self)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor._wrap(self.array)

    def detach_(self) -> "Tensor":
        self.grad_fn = None
        self.requires_grad = False
        return self

    # -- conversion -----------------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU when needed). Errors if the tensor requires grad,
        as in PyTorch; use ``detach().numpy()``."""
        if self.requires_grad and _state["enabled"]:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return _backend.to_device(self.array, "cpu")

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(tensor)`` gives the values (as torch does; errors if the tensor requires grad).

        Without this NumPy would treat a Tensor as a sequence and build an object array of 0-d tensors.
        """
        a = self.numpy()
        if dtype is not None and a.dtype != dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {tuple(self.shape)}")
        return _backend.to_device(self.array, "cpu").reshape(()).item()

    def tolist(self):
        return _backend.to_device(self.array, "cpu").tolist()

    def to(self, *args, dtype=None, device=None, copy: bool = False) -> "Tensor":
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or keywords; differentiable."""
        for a in args:
            if isinstance(a, str) and a.lower() in _backend._DEVICE_ALIASES:
                device = a
            elif isinstance(a, str) and a.replace("lucid.", "").replace("torch.", "") not in _backend.DTYPES:
                raise ValueError(f"to(): {a!r} is neither a device {_backend.DEVICES} (or 'cuda') nor a dtype "
                                 f"{_backend._ALLOWED}")
            else:
                dtype = a
        out = self
        if dtype is not None:
            dtype = _backend.normalize_dtype(dtype)
            if dtype != self.dtype:
                out = _ops.shape.Cast.apply(out, dtype)
        if device is not None:
            device = _backend.normalize_device(device)
            if device != out.device:
                out = _ops.shape.ToDevice.apply(out, device)
        if copy and out is self:
            out = self.clone()
        return out

    def float(self) -> "Tensor":
        return self.to(_backend.float32)

    def double(self) -> "Tensor":
        return self.to(_backend.float64)

    def half(self) -> "Tensor":
        return self.to(_backend.float16)

    def long(self) -> "Tensor":
        return self.to(_backend.int64)

    def int(self) -> "Tensor":
        return self.to(_backend.int32)

    def bool(self) -> "Tensor":
        return self.to(_backend.bool_)

    def type(self, dtype) -> "Tensor":
        return self.to(dtype)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def gpu(self) -> "Tensor":
        return self.to("gpu")

    cuda = gpu

    def clone(self) -> "Tensor":
        return _ops.shape.Clone.apply(self)

    def contiguous(self, memory_format=None) -> "Tensor":
        """C-contiguous (or, with memory_format="channels_last" on 4-D, NHWC-strided) copy if not already."""
        return _ops.shape.contiguous(self, memory_format)

    # -- in-place -------------------------------------------------------------------------------------------
    def _check_inplace(self) -> None:
        if self.requires_grad and _state["enabled"]:
            kind = "a leaf tensor" if self.grad_fn is None else "a tensor"
            raise RuntimeError(
                f"in-place operation on {kind} that requires grad would corrupt the graph; run it under "
                "lucid.no_grad() or on a tensor that does not require grad (e.g. x.detach())"
            )

    def _same_device(self, value, what: str, allow_scalar: bool = True):
        """The array of ``value`` (a Tensor, an array, a nested list or a number) for an operation on this
        tensor: numbers stay numbers; lists and NumPy arrays are constants, placed on this tensor's device;
        a Tensor or CuPy array on another device is an error naming both devices, as in torch, except a 0-d
        CPU Tensor, which (with ``allow_scalar``) counts as a number, as torch's CPU scalars do."""
        if isinstance(value, _SCALAR_TYPES):
            return value
        if isinstance(value, Tensor):
            if value.device != self.device:
                if allow_scalar and value.ndim == 0 and value.device == "cpu":
                    return _backend.to_device(value.array, self.device)
                raise RuntimeError(f"{what} is on {value.device} but the tensor is on {self.device}; "
                                   f"expected all tensors on the same device (move it with .to('{self.device}'))")
            return value.array
        arr = _backend.as_array(value)
        if _backend.device_of(arr) == "gpu" and self.device != "gpu":
            raise RuntimeError(f"{what} is a GPU array but the tensor is on {self.device}; expected all arrays on "
                               f"the same device")
        return _backend.to_device(arr, self.device)

    def _set_inplace(self, result) -> "Tensor":
        self._check_inplace()
        result = result.array if isinstance(result, Tensor) else result
        if result.shape != self.array.shape:
            raise RuntimeError(
                f"in-place result of shape {tuple(result.shape)} does not fit tensor of shape {tuple(self.shape)}"
            )
        self.array[...] = result
        self._bump_version()
        return self

    def _inplace_binary(self, ufunc, other) -> "Tensor":
        self._check_inplace()
        o = self._same_device(other, f"in-place {ufunc.__name__}: the operand")
        try:
            ufunc(self.array, o, out=self.array, casting="same_kind")
        except (TypeError, ValueError) as exc:
            raise RuntimeError(f"in-place {ufunc.__name__} on tensor of shape {tuple(self.shape)} and dtype "
                               f"{self.dtype} with operand of shape {tuple(np.shape(o))}: {exc}") from None
        self._bump_version()
        return self

    def __iadd__(self, other):
        return self._inplace_binary(_backend.xp_of(self.array).add, other)

    def __isub__(self, other):
        return self._inplace_binary(_backend.xp_of(self.array).subtract, other)

    def __imul__(self, other):
        return self._inplace_binary(_backend.xp_of(self.array).multiply, other)

    def __itruediv__(self, other):
        return self._inplace_binary(_backend.xp_of(self.array).true_divide, other)

    def add_(self, other, alpha=1):
        return self._inplace_binary(_backend.xp_of(self.array).add, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return self._inplace_binary(_backend.xp_of(self.array).subtract, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self._inplace_binary(_backend.xp_of(self.array).multiply, other)

    def div_(self, other):
        return self._inplace_binary(_backend.xp_of(self.array).true_divide, other)

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self._check_inplace()
        self.array[...] = self._same_device(value, "fill_: the value")
        self._bump_version()
        return self

    def copy_(self, src):
        src = src.array if isinstance(src, Tensor) else src
        return self._set_inplace(_backend.xp_of(self.array).broadcast_to(
            _backend.to_device(_backend.xp_of(src).asarray(src), self.device), self.array.shape))

    def clamp_(self, min=None, max=None):
        self._check_inplace()
        _backend.xp_of(self.array).clip(self.array, min, max, out=self.array)
        self._bump_version()
        return self

    def __setitem__(self, index, value) -> None:
        self._check_inplace()
        if isinstance(value, Tensor):
            value = value.array
        if not isinstance(value, _SCALAR_TYPES):  # values from another device are copied over, as torch's copy_
            value = _backend.to_device(_backend.as_array(value), self.device)
        _ops.shape.setitem(self.array, index, value, self.device)
        self._bump_version()

    # -- operators ------------------------------------------------------------------------------------------
    def __add__(self, other):
        return _ops.elementwise.add(self, other)

    def __radd__(self, other):
        return _ops.elementwise.add(other, self)

    def __sub__(self, other):
        return _ops.elementwise.sub(self, other)

    def __rsub__(self, other):
        return _ops.elementwise.sub(other, self)

    def __mul__(self, other):
        return _ops.elementwise.mul(self, other)

    def __rmul__(self, other):
        return _ops.elementwise.mul(other, self)

    def __truediv__(self, other):
        return _ops.elementwise.div(self, other)

    def __rtruediv__(self, other):
        return _ops.elementwise.div(other, self)

    def __pow__(self, other):
        return _ops.elementwise.pow(self, other)

    def __rpow__(self, other):
        return _ops.elementwise.pow(other, self)

    def __matmul__(self, other):
        return _ops.linalg.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.linalg.matmul(other, self)

    def __neg__(self):
        return _ops.elementwise.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.elementwise.abs(self)

    def __eq__(self, other):  # comparisons give bool tensors, as in PyTorch
        return _ops.elementwise.compare("equal", self, other)

    def __ne__(self, other):
        return _ops.elementwise.compare("not_equal", self, other)

    def __lt__(self, other):
        return _ops.elementwise.compare("less", self, other)

    def __le__(self, other):
        return _ops.elementwise.compare("less_equal", self, other)

    def __gt__(self, other):
        return _ops.elementwise.compare("greater", self, other)

    def __ge__(self, other):
        return _ops.elementwise.compare("greater_equal", self, other)

    def __invert__(self):
        return Tensor._wrap(~self.array)

    def __and__(self, other):
        return _ops.elementwise.compare("logical_and", self, other)

    def __or__(self, other):
        return _ops.elementwise.compare("logical_or", self, other)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.array.size} elements is ambiguous")
        return bool(self.item())  # an explicit read from the GPU, as torch's bool(tensor) is

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iu":
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __getitem__(self, index):
        return _ops.shape.getitem(self, index)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(_backend.to_device(self.array, "cpu"), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if self.dtype not in (_backend.float32, _backend.int64, _backend.bool_):
            extras.append(f"dtype=lucid.{self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # -- methods delegating to the ops ----------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None):
        return _ops.reduce.sum(self, dim, keepdim, dtype=dtype)

    def mean(self, dim=None, keepdim=False):
        return _ops.reduce.mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops.reduce.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _ops.reduce.std(self, dim, unbiased, keepdim, correction=correction)

    def max(self, dim=None, keepdim=False):
        return _ops.reduce.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return _ops.reduce.min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return _ops.reduce.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return _ops.reduce.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops.reduce.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops.reduce.argmin(self, dim, keepdim)

    def logsumexp(self, dim, keepdim=False):
        return _ops.reduce.logsumexp(self, dim, keepdim)

    def softmax(self, dim):
        return _ops.reduce.softmax(self, dim)

    def log_softmax(self, dim):
        return _ops.reduce.log_softmax(self, dim)

    def norm(self, p=2, dim=None, keepdim=False):
        return _ops.reduce.norm(self, p, dim, keepdim)

    def exp(self):
        return _ops.elementwise.exp(self)

    def log(self):
        return _ops.elementwise.log(self)

    def sqrt(self):
        return _ops.elementwise.sqrt(self)

    def rsqrt(self):
        return _ops.elementwise.rsqrt(self)

    def abs(self):
        return _ops.elementwise.abs(self)

    def tanh(self):
        return _ops.elementwise.tanh(self)

    def sigmoid(self):
        return _ops.elementwise.sigmoid(self)

    def relu(self):
        return _ops.elementwise.relu(self)

    def erf(self):
        return _ops.elementwise.erf(self)

    def clamp(self, min=None, max=None):
        return _ops.elementwise.clamp(self, min, max)

    clip = clamp

    def pow(self, exponent):
        return _ops.elementwise.pow(self, exponent)

    def add(self, other, alpha=1):
        return _ops.elementwise.add(self, other, alpha=alpha)

    def sub(self, other, alpha=1):
        return _ops.elementwise.sub(self, other, alpha=alpha)

    def mul(self, other):
        return _ops.elementwise.mul(self, other)

    def div(self, other):
        return _ops.elementwise.div(self, other)

    def neg(self):
        return _ops.elementwise.neg(self)

    def maximum(self, other):
        return _ops.elementwise.maximum(self, other)

    def minimum(self, other):
        return _ops.elementwise.minimum(self, other)

    def t(self) -> "Tensor":
        """Transpose of a matrix (0-D and 1-D tensors are returned as they are), as torch.Tensor.t."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, got shape {tuple(self.shape)}; "
                               "use transpose(dim0, dim1) or permute")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def matmul(self, other):
        return _ops.linalg.matmul(self, other)

    def reshape(self, *shape):
        return _ops.shape.reshape(self, *shape)

    def view(self, *shape):
        """Like reshape (lucid never needs storage sharing to be guaranteed; see reshape)."""
        return _ops.shape.reshape(self, *shape)

    def view_as(self, other):
        return _ops.shape.reshape(self, other.shape)

    def reshape_as(self, other):
        return _ops.shape.reshape(self, other.shape)

    def permute(self, *dims):
        return _ops.shape.permute(self, *dims)

    def transpose(self, dim0, dim1):
        return _ops.shape.transpose(self, dim0, dim1)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.shape.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        return _ops.shape.squeeze(self, dim)

    def unsqueeze(self, dim):
        return _ops.shape.unsqueeze(self, dim)

    def expand(self, *sizes):
        return _ops.shape.expand(self, *sizes)

    def expand_as(self, other):
        return _ops.shape.expand(self, *other.shape)

    def split(self, split_size_or_sections, dim=0):
        return _ops.shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return _ops.shape.chunk(self, chunks, dim)


class _HookHandle:
    def __init__(self, hooks: list, hook) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


from .autograd import function as _function  # noqa: E402

_function.Tensor = Tensor

from . import ops as _ops  # noqa: E402  (circular: the ops create Tensors)
