"""Shape and copy ops: reshape, permute/transpose, flatten, (un)squeeze, expand, indexing, cat/stack,
split/chunk, pad, dtype casts, device moves, clone/contiguous.

Views stay views where NumPy gives them (permute, transpose, expand, basic indexing), which is also how a
channels-last buffer is seen with NCHW shape without a copy.
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from .._backend import xp_of
from .._tensor import Tensor
from ..autograd.function import Function
from ._util import normalize_dim


def _sizes(args):
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return (g.astype(ctx.src) if ctx.src.kind == "f" else None), None


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.src = _backend.device_of(x)
        return _backend.to_device(x, device)

    @staticmethod
    def backward(ctx, g):
        return _backend.to_device(g, ctx.src), None


class Clone(Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy(order="K")  # keeps a channels-last layout channels-last

    @staticmethod
    def backward(ctx, g):
        return g


class Contiguous(Function):
    @staticmethod
    def forward(ctx, x, channels_last):
        xp = xp_of(x)
        if channels_last:
            return xp.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        return xp.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, g):
        return g, None


def contiguous(x: Tensor, memory_format=None) -> Tensor:
    channels_last = memory_format in ("channels_last", "lucid.channels_last")
    if channels_last and x.ndim != 4:
        raise ValueError(f"memory_format='channels_last' needs a 4-D tensor, got shape {tuple(x.shape)}")
    if x.is_contiguous("channels_last" if channels_last else None):
        return x
    return Contiguous.apply(x, channels_last)


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


def _resolve_shape(numel: int, shape: tuple, src_shape: tuple) -> tuple:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"only one dimension can be inferred (-1) in shape {shape}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape {shape} is invalid for input of shape {src_shape} ({numel} elements)")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape {shape} is invalid for input of shape {src_shape} ({numel} elements)")
    return shape


def reshape(x: Tensor, *shape) -> Tensor:
    """Reshape to ``shape`` (one -1 allowed). A view when NumPy can make one, else a copy."""
    shape = _resolve_shape(x.array.size, _sizes(shape), tuple(x.shape))
    if shape == x.array.shape:
        return x
    return Reshape.apply(x, shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        ctx.inverse = tuple(np.argsort(dims))
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse), None


def permute(x: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    if len(dims) != x.ndim:
        raise RuntimeError(f"permute: got {len(dims)} dims {dims} for a tensor with {x.ndim} dimensions")
    dims = tuple(normalize_dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of 0..{x.ndim - 1}")
    return Permute.apply(x, dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(x.ndim))
    d0, d1 = normalize_dim(dim0, x.ndim), normalize_dim(dim1, x.ndim)
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(x, tuple(dims))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = normalize_dim(start_dim, x.ndim), normalize_dim(end_dim, x.ndim)
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return reshape(x, shape)


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove size-1 dims (all, or the given ones; a given dim whose size is not 1 is left, as in PyTorch)."""
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {normalize_dim(d, x.ndim) for d in dims}
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1))
    return reshape(x, shape)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    d = normalize_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        from ._util import unbroadcast

        return unbroadcast(g, ctx.shape), None


def expand(x: Tensor, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dim); the result is a read-only view."""
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand: the number of sizes {sizes} is less than the tensor's dims {tuple(x.shape)}")
    lead = len(sizes) - x.ndim
    shape = tuple(
        (x.shape[i - lead] if s == -1 else s) if i >= lead else s for i, s in enumerate(sizes)
    )
    for i in range(x.ndim):
        if x.shape[i] != 1 and x.shape[i] != shape[lead + i]:
            raise RuntimeError(f"expand: cannot expand shape {tuple(x.shape)} to {shape}")
    return Expand.apply(x, shape)


# ---------------------------------------------------------------------------------------------------------
# indexing
def _index_part(i, device: str):
    """One part of an index, on ``device``: Tensors give their arrays, lists become arrays, and arrays are
    moved to the indexed tensor's device (torch accepts CPU indices for a GPU tensor; CuPy would otherwise
    copy a host index implicitly on every call). An index on the GPU for a CPU tensor is an error, as in torch.

    Index arrays must be bool, int64 or int32, as torch's: a uint8 array is refused (torch reads it as a
    deprecated mask, NumPy as integer positions), int8/int16/float ones as torch refuses them."""
    if isinstance(i, Tensor):
        i = i.array
    elif isinstance(i, list):
        i = np.asarray(i) if i else np.zeros(0, np.int64)  # [] is an empty integer index, as in torch
    if hasattr(i, "dtype") and hasattr(i, "ndim"):
        if i.dtype == np.uint8:
            raise IndexError("indexing with a uint8 tensor is ambiguous (torch reads it as a deprecated boolean "
                             "mask, NumPy as integer positions): use .bool() for a mask or .long() for indices")
        if i.dtype.kind != "b" and i.dtype not in (np.int64, np.int32):
            raise IndexError(f"tensors used as indices must be long, int or bool tensors, got dtype {i.dtype}")
    if isinstance(i, np.ndarray):
        return i if device == "cpu" else _backend.to_device(i, device)
    if device == "cpu" and _backend.device_of(i) == "gpu":
        raise RuntimeError("indices should be either on cpu or on the same device as the indexed tensor (cpu)")
    return i


def unwrap_index(index, device: str = "cpu"):
    """Replace Tensors inside an index by their arrays (bool tensors stay masks), with every array part on
    ``device`` (the indexed tensor's) and checked as ``_index_part`` says.

    Where lucid differs from torch: negative slice steps (``x[::-1]``) are allowed and give a reversed view
    with NumPy's semantics (torch raises "step must be greater than zero"; its equivalent is ``flip``).
    """
    if isinstance(index, tuple):
        return tuple(_index_part(i, device) for i in index)
    return _index_part(index, device)


def _is_array(item) -> bool:
    return hasattr(item, "dtype") and hasattr(item, "ndim") and item.ndim > 0


def _is_int(item) -> bool:
    return (isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))) or (
        hasattr(item, "dtype") and hasattr(item, "ndim") and item.ndim == 0 and item.dtype.kind in "iu")


def index_steps(index, device: str = "cpu") -> list:
    """The checked index as the one or two array indices that give torch's result, applied in turn.

    torch applies integer indices first (they remove their dims), then indexes with the arrays, so
    ``x[0, :, idx]`` of a (2, 3, 4, 5) tensor is (3, len(idx), 5); NumPy counts the integer as an advanced
    index too and, as it is separated from ``idx`` by a slice, puts the advanced dim first: (len(idx), 3, 5).
    An index mixing integers with index arrays is therefore split: the basic part (integers, slices, None,
    the arrays' dims kept whole), then the arrays on what is left.
    """
    index = unwrap_index(index, device)
    items = index if isinstance(index, tuple) else (index,)
    if not (any(_is_array(i) for i in items) and any(_is_int(i) for i in items)) or any(
            isinstance(i, (bool, np.bool_)) for i in items):
        return [index]
    first, second = [], []
    for item in items:
        if _is_array(item):
            first.extend([slice(None)] * (item.ndim if item.dtype.kind == "b" else 1))  # a mask spans its ndim
            second.append(item)
        elif _is_int(item):
            first.append(int(item.item() if hasattr(item, "item") else item))  # (an explicit read on the GPU)
        elif item is None or isinstance(item, slice):
            first.append(item)
            second.append(slice(None))  # the dim the slice kept (or None inserted) is whole in step two
        else:  # Ellipsis stands for the same dims in both steps
            first.append(item)
            second.append(item)
    return [tuple(first), tuple(second)]


def setitem(array, index, value, device: str = "cpu") -> None:
    """``array[index] = value`` with torch's index rules (see ``index_steps``); writes through a view."""
    steps = index_steps(index, device)
    for step in steps[:-1]:
        array = array[step]  # integers, slices and None only: a view
    array[steps[-1]] = value


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) and not isinstance(i, bool)
               for i in items)


def scatter_add(target, index, values) -> None:
    """target[index] += values, adding repeated indices (np.add.at; cupyx.scatter_add on the GPU)."""
    if isinstance(target, np.ndarray):
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.args = (x.shape, x.dtype, index)
        return x[index]

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.args
        gx = xp_of(g).zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            gx[index] = g
        else:
            scatter_add(gx, index, g)
        return gx, None


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]`` with torch's rules (``index_steps``); differentiable (repeated indices accumulate)."""
    steps = index_steps(index, x.device)
    try:
        for step in steps:
            x = GetItem.apply(x, step) if x.requires_grad else Tensor._wrap(x.array[step])
        return x
    except IndexError as exc:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {tuple(x.shape)}: {exc}") from None


# ---------------------------------------------------------------------------------------------------------
# joining and splitting
class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *arrays):
        ctx.dim = dim
        ctx.bounds = np.cumsum([a.shape[dim] for a in arrays])[:-1]
        return xp_of(arrays[0]).concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        return (None, *xp_of(g).split(g, ctx.bounds, axis=ctx.dim))


def _check_same_device_dtype(tensors, op):
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dtype:
            from ._util import promote_types

            dtype = promote_types(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = _check_same_device_dtype(list(tensors), "cat")
    # PyTorch skips 1-D empty tensors in cat (legacy behaviour users rely on)
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim)
    for t in tensors[1:]:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape)) if i != d):
            raise RuntimeError(f"cat: shapes {tuple(ref.shape)} and {tuple(t.shape)} differ outside dim {dim}")
    return Cat.apply(d, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack: all tensors need the same shape, got {tuple(tensors[0].shape)} "
                               f"and {tuple(t.shape)}")
    d = normalize_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, d) for t in tensors], d)


class Slice(Function):
    """x[start:stop] along one dim (the pieces of split/chunk)."""

    @staticmethod
    def forward(ctx, x, dim, start, stop):
        ctx.args = (x.shape, dim, start, stop)
        index = (slice(None),) * dim + (slice(start, stop),)
        return x[index]

    @staticmethod
    def backward(ctx, g):
        shape, dim, start, stop = ctx.args
        gx = xp_of(g).zeros(shape, dtype=g.dtype)
        gx[(slice(None),) * dim + (slice(start, stop),)] = g
        return gx, None, None, None


def split(x: Tensor, split_size_or_sections, dim: int = 0):
    """Split into pieces of ``split_size`` (last one smaller) or of the listed sizes, as torch.split."""
    d = normalize_dim(dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
        if not sizes:
            sizes = [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(f"split: sections {sizes} sum to {sum(sizes)}, but dim {dim} has size {n}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(Slice.apply(x, d, start, start + s))
        start += s
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[normalize_dim(dim, x.ndim)]
    size = -(-n // chunks) if n else 1
    return split(x, max(size, 1), dim)


# ---------------------------------------------------------------------------------------------------------
# padding
class ConstantPad(Function):
    @staticmethod
    def forward(ctx, x, pads, value):
        """pads: ((before, after), ...) per dim, possibly negative (cropping)."""
        xp = xp_of(x)
        crop = tuple(slice(max(-b, 0), s - max(-a, 0)) for (b, a), s in zip(pads, x.shape))
        inner = x[crop]
        grow = [(max(b, 0), max(a, 0)) for b, a in pads]
        out_shape = tuple(s + b + a for s, (b, a) in zip(inner.shape, grow))
        out = xp.full(out_shape, value, dtype=x.dtype)
        place = tuple(slice(b, b + s) for s, (b, _) in zip(inner.shape, grow))
        out[place] = inner
        ctx.args = (x.shape, crop, place)
        return out

    @staticmethod
    def backward(ctx, g):
        shape, crop, place = ctx.args
        gx = xp_of(g).zeros(shape, dtype=g.dtype)
        gx[crop] = g[place]
        return gx, None, None


class IndexPad(Function):
    """reflect / replicate / circular padding as a gather with precomputed per-dim indices."""

    @staticmethod
    def forward(ctx, x, indices):
        xp = xp_of(x)
        grid = xp.ix_(*[xp.asarray(i) for i in indices])
        ctx.args = (x.shape, grid)
        return x[grid]

    @staticmethod
    def backward(ctx, g):
        shape, grid = ctx.args
        gx = xp_of(g).zeros(shape, dtype=g.dtype)
        scatter_add(gx, grid, g)
        return gx, None


_NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:  # noqa: A002
    """``F.pad``: ``pad`` lists (left, right) for the last dim first, then the one before, and so on.

    Modes: "constant" (negative pads crop), "reflect", "replicate", "circular".
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of values covering at most {input.ndim} dims, got {pad}")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return ConstantPad.apply(input, tuple(pairs), value)
    if mode not in _NP_MODES:
        raise ValueError(f"pad: unknown mode {mode!r}; expected 'constant', 'reflect', 'replicate' or 'circular'")
    if any(b < 0 or a < 0 for b, a in pairs):
        raise ValueError(f"pad: mode {mode!r} needs non-negative pads, got {pad}")
    indices = []
    for (b, a), s in zip(pairs, input.shape):
        if mode == "reflect" and (b >= s or a >= s):
            raise ValueError(f"pad: reflect padding ({b}, {a}) must be smaller than the dim size {s}")
        indices.append(np.pad(np.arange(s), (b, a), mode=_NP_MODES[mode]))
    return IndexPad.apply(input, indices)
