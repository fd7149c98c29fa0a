"""Forward/backward parity with torch and float64 gradchecks for the shape, indexing, joining, padding and
copy ops (lucid/ops/shape.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lucid
import lucid.nn.functional as LF

from ._parity import arr, check, gradcheck, rng_for

LAYOUTS = ["c", "t", "s", "n"]


def both(name, fn_l, fn_t, *arrays, gc=True, **kw):
    """Parity check plus a float64 gradcheck of the lucid function."""
    check(name, fn_l, fn_t, *arrays, **kw)
    if gc:
        gradcheck(fn_l, *arrays)


# ---------------------------------------------------------------------------------------------------------
RESHAPES = [
    ((3, 4, 2), (4, 6)),
    ((3, 4, 2), (-1,)),
    ((3, 4, 2), (2, -1, 3)),
    ((3, 4, 2), (24, 1)),
    ((0, 4), (4, 0, 1)),
    ((0, 4), (-1, 2)),
    ((1,), ()),
    ((), (1, 1)),
    ((3, 4, 2), (3, 4, 2)),
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("src,dst", RESHAPES, ids=str)
def test_reshape_view(src, dst, layout):
    x = arr(src, layout, rng_for(f"reshape{src}{dst}{layout}"))
    check("reshape", lambda t: t.reshape(dst), lambda t: t.reshape(dst), x)
    if dst:
        check("reshape", lambda t: t.reshape(*dst), lambda t: t.reshape(*dst), x)
    check("reshape_fn", lambda t: lucid.reshape(t, dst), lambda t: torch.reshape(t, dst), x)
    # torch.view needs compatible strides; lucid.view copies when it must, so compare with reshape
    check("view", lambda t: t.view(*dst) if dst else t.view(dst), lambda t: t.reshape(dst), x)
    if x.size:
        gradcheck(lambda t: t.reshape(dst), x)


def test_view_as_reshape_as():
    rng = rng_for("view_as")
    x, y = arr((2, 6), "t", rng), arr((3, 4), "c", rng)
    check("view", lambda a, b: a.view_as(b), lambda a, b: a.reshape_as(b), x, y, grad_args=[0])
    check("reshape", lambda a, b: a.reshape_as(b), lambda a, b: a.reshape_as(b), x, y, grad_args=[0])


def test_reshape_errors_name_the_shapes():
    with pytest.raises(RuntimeError, match=r"\(5,\).*\(2, 3\)"):
        lucid.zeros(2, 3).reshape(5)
    with pytest.raises(RuntimeError, match="-1"):
        lucid.zeros(2, 3).reshape(-1, -1)
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        lucid.zeros(2, 3).reshape(4, -1)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dims", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (-1, -3, -2), (2, 1, 0)], ids=str)
def test_permute(dims, layout):
    x = arr((2, 3, 4), layout, rng_for(f"permute{dims}{layout}"))
    both("permute", lambda t: t.permute(*dims), lambda t: t.permute(*dims), x)
    check("permute", lambda t: t.permute(dims), lambda t: t.permute(dims), x)
    check("permute_fn", lambda t: lucid.permute(t, dims), lambda t: torch.permute(t, dims), x)


def test_permute_errors():
    with pytest.raises(RuntimeError, match="permutation"):
        lucid.zeros(2, 3).permute(0, 0)
    with pytest.raises(RuntimeError, match="2 dimensions"):
        lucid.zeros(2, 3).permute(0, 1, 2)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("d0,d1", [(0, 1), (0, -1), (-1, -2), (1, 1), (2, 0)])
def test_transpose(d0, d1, layout):
    x = arr((2, 3, 4), layout, rng_for(f"transpose{d0}{d1}{layout}"))
    both("transpose", lambda t: t.transpose(d0, d1), lambda t: t.transpose(d0, d1), x)
    check("transpose_fn", lambda t: lucid.transpose(t, d0, d1), lambda t: torch.transpose(t, d0, d1), x)


@pytest.mark.parametrize("shape", [(3, 4), (5,), (2, 0)], ids=str)
def test_T(shape):
    x = arr(shape, "t", rng_for(f"T{shape}"))
    both("T", lambda t: t.T, lambda t: t.T, x, gc=bool(x.size))


@pytest.mark.parametrize("shape", [(3, 4), (5,), ()], ids=str)
def test_t(shape):
    x = arr(shape, "t", rng_for(f"t{shape}"))
    both("t", lambda t: t.t(), lambda t: t.t(), x)
    with pytest.raises(RuntimeError, match=r"<= 2.*\(2, 3, 4\)"):
        lucid.zeros(2, 3, 4).t()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("args", [(), (1,), (0, 1), (1, -1), (-2, -1), (2, 2), (0, 0)], ids=str)
def test_flatten(args, layout):
    x = arr((2, 3, 4), layout, rng_for(f"flatten{args}{layout}"))
    both("flatten", lambda t: t.flatten(*args), lambda t: t.flatten(*args), x)
    check("flatten_fn", lambda t: lucid.flatten(t, *args), lambda t: torch.flatten(t, *args), x)


def test_flatten_edge_shapes():
    check("flatten", lambda t: t.flatten(), lambda t: t.flatten(), np.asarray(np.float32(3.0)))
    check("flatten", lambda t: t.flatten(1), lambda t: t.flatten(1), arr((0, 2, 3)))
    with pytest.raises(RuntimeError, match="start_dim"):
        lucid.zeros(2, 3, 4).flatten(2, 1)


@pytest.mark.parametrize("dim", [None, 0, 2, -1, 1, (0, 2), (1, -1)], ids=str)
def test_squeeze(dim):
    x = arr((1, 3, 1, 2), "t", rng_for(f"squeeze{dim}"))
    kw = {} if dim is None else {"dim": dim}
    both("squeeze", lambda t: t.squeeze(**kw), lambda t: t.squeeze(**kw), x)
    check("squeeze_fn", lambda t: lucid.squeeze(t, **kw), lambda t: torch.squeeze(t, **kw), x)


def test_squeeze_edge_shapes():
    check("squeeze", lambda t: t.squeeze(), lambda t: t.squeeze(), arr((1, 1)))
    check("squeeze", lambda t: t.squeeze(0), lambda t: t.squeeze(0), np.asarray(np.float32(1.0)))
    check("squeeze", lambda t: t.squeeze(), lambda t: t.squeeze(), arr((0, 1, 2)))


@pytest.mark.parametrize("dim", [0, 1, 3, -1, -4, -2])
def test_unsqueeze(dim):
    x = arr((2, 3, 4), "n", rng_for(f"unsqueeze{dim}"))
    both("unsqueeze", lambda t: t.unsqueeze(dim), lambda t: t.unsqueeze(dim), x)
    check("unsqueeze_fn", lambda t: lucid.unsqueeze(t, dim), lambda t: torch.unsqueeze(t, dim), x)


def test_unsqueeze_0d_and_errors():
    check("unsqueeze", lambda t: t.unsqueeze(0), lambda t: t.unsqueeze(0), np.asarray(np.float32(1.0)))
    check("unsqueeze", lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1), np.asarray(np.float32(1.0)))
    with pytest.raises(IndexError, match="dim=4"):
        lucid.zeros(2, 3).unsqueeze(4)


EXPANDS = [((3, 1), (3, 4)), ((3, 1), (-1, 4)), ((1,), (2, 3, 5)), ((2, 1, 1), (2, 3, 4)),
           ((1, 3), (0, 3)), ((), (2, 2)), ((2, 3), (2, 3)), ((3, 1), (2, 3, -1))]


@pytest.mark.parametrize("src,dst", EXPANDS, ids=str)
def test_expand(src, dst):
    x = arr(src, "t", rng_for(f"expand{src}{dst}"))
    both("expand", lambda t: t.expand(*dst), lambda t: t.expand(*dst), x, gc=0 not in dst)
    check("expand", lambda t: t.expand(dst), lambda t: t.expand(dst), x)
    check("expand_fn", lambda t: lucid.expand(t, dst), lambda t: t.expand(dst), x)


def test_expand_as_and_errors():
    rng = rng_for("expand_as")
    x, y = arr((3, 1), "c", rng), arr((2, 3, 4), "c", rng)
    check("expand", lambda a, b: a.expand_as(b), lambda a, b: a.expand_as(b), x, y, grad_args=[0])
    with pytest.raises(RuntimeError, match=r"\(3, 2\)"):
        lucid.zeros(3, 2).expand(3, 4)
    with pytest.raises(RuntimeError, match="less than"):
        lucid.zeros(3, 2).expand(2)


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_contiguous_and_clone(layout):
    x = arr((2, 3, 4, 5), layout, rng_for(f"contig{layout}"))
    out = check("contiguous", lambda t: t.contiguous(), lambda t: t.contiguous(), x)
    assert out[0].is_contiguous() and out[0].array.flags.c_contiguous
    gradcheck(lambda t: t.contiguous() * 1.0, x)
    out = check("clone", lambda t: t.clone(), lambda t: t.clone(), x)
    assert not np.shares_memory(out[0].array, x)
    gradcheck(lambda t: t.clone(), x)


@pytest.mark.parametrize("layout", ["c", "t", "cl"])
def test_contiguous_channels_last(layout):
    rng = rng_for(f"cl{layout}")
    if layout == "cl":  # already channels-last: an NHWC buffer seen as NCHW
        x = arr((2, 4, 5, 3), "c", rng).transpose(0, 3, 1, 2)
    else:
        x = arr((2, 3, 4, 5), layout, rng)
    out = check("contiguous_channels_last", lambda t: t.contiguous(memory_format=lucid.channels_last),
                lambda t: t.contiguous(memory_format=torch.channels_last), x)
    y = out[0]
    assert y.shape == (2, 3, 4, 5)
    assert y.is_contiguous(memory_format=lucid.channels_last)
    assert y.array.transpose(0, 2, 3, 1).flags.c_contiguous  # NHWC in memory
    if layout == "cl":
        assert np.shares_memory(y.array, x)  # no copy when already channels-last
    gradcheck(lambda t: t.contiguous(memory_format="channels_last"), x)
    # clone keeps the layout
    assert lucid.Tensor(x).contiguous(memory_format="channels_last").clone().is_contiguous("channels_last")
    with pytest.raises(ValueError, match="4-D"):
        lucid.zeros(2, 3).contiguous(memory_format=lucid.channels_last)


# ---------------------------------------------------------------------------------------------------------
# indexing: torch has no negative steps, so those cases compare with flip
INDEXES = {
    "int": (lambda t: t[1], lambda t: t[1]),
    "neg_int": (lambda t: t[-1, 2], lambda t: t[-1, 2]),
    "slice": (lambda t: t[1:3], lambda t: t[1:3]),
    "slices_steps": (lambda t: t[::2, 1:, :3:2], lambda t: t[::2, 1:, :3:2]),
    "none": (lambda t: t[None, :, None], lambda t: t[None, :, None]),
    "ellipsis": (lambda t: t[..., 1], lambda t: t[..., 1]),
    "ellipsis_none": (lambda t: t[0, ..., None], lambda t: t[0, ..., None]),
    "empty_slice": (lambda t: t[2:2], lambda t: t[2:2]),
    "neg_step": (lambda t: t[::-1], lambda t: t.flip(0)),
    "neg_step2": (lambda t: t[:, ::-2], lambda t: t.flip(1)[:, ::2]),
    "neg_step_range": (lambda t: t[3:0:-1, 1], lambda t: t.flip(0)[0:3, 1]),
    "int_list": (lambda t: t[[0, 2, 2, 0]], lambda t: t[[0, 2, 2, 0]]),
    "int_array_repeats": (lambda t: t[np.array([1, 1, 3, -1])], lambda t: t[torch.tensor([1, 1, 3, -1])]),
    "int_tensor": (lambda t: t[lucid.tensor([0, 0, 2])], lambda t: t[torch.tensor([0, 0, 2])]),
    "int_tensor_2d": (lambda t: t[lucid.tensor([[0, 1], [1, 1]])], lambda t: t[torch.tensor([[0, 1], [1, 1]])]),
    "adv_pair": (lambda t: t[lucid.tensor([0, 1, 1]), lucid.tensor([2, 0, 2])],
                 lambda t: t[torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])]),
    "adv_mixed": (lambda t: t[1:, [0, 2, 0]], lambda t: t[1:, [0, 2, 0]]),
    "adv_ellipsis": (lambda t: t[..., lucid.tensor([1, 1])], lambda t: t[..., torch.tensor([1, 1])]),
    "scalar_tensor": (lambda t: t[lucid.tensor(2)], lambda t: t[torch.tensor(2)]),
    "bool_mask": (lambda t: t[t > 0], lambda t: t[t > 0]),
    "bool_mask_rows": (lambda t: t[lucid.tensor([True, False, True, True])],
                       lambda t: t[torch.tensor([True, False, True, True])]),
    "bool_mask_all_false": (lambda t: t[t > 100], lambda t: t[t > 100]),
    # torch applies integers first, then the index arrays: NumPy's order differs once a slice separates them
    "int_slice_array": (lambda t: t[1, :, [4, 0, 4]], lambda t: t[1, :, [4, 0, 4]]),
    "int_slice_mask": (lambda t: t[2, :, lucid.tensor([True, False, True, True, False])],
                       lambda t: t[2, :, torch.tensor([True, False, True, True, False])]),
    "none_int_slice_array": (lambda t: t[None, 2, :, lucid.tensor([4, 0])], lambda t: t[None, 2, :, torch.tensor([4, 0])]),
    "tensor0d_slice_array2d": (lambda t: t[lucid.tensor(1), :, lucid.tensor([[0, 1], [4, 4]])],
                               lambda t: t[torch.tensor(1), :, torch.tensor([[0, 1], [4, 4]])]),
    "ellipsis_int_array": (lambda t: t[..., 0, [1, 2]], lambda t: t[..., 0, [1, 2]]),
    "array_slice_int": (lambda t: t[[3, 0, 3], :, 4], lambda t: t[[3, 0, 3], :, 4]),
    "arrays_around_slice": (lambda t: t[[0, 3], :, [1, 4]], lambda t: t[[0, 3], :, [1, 4]]),
    "int32_index": (lambda t: t[lucid.tensor([0, 3], dtype=lucid.int32)],
                    lambda t: t[torch.tensor([0, 3], dtype=torch.int32)]),
}


@pytest.mark.parametrize("layout", ["c", "t", "n"])
@pytest.mark.parametrize("kind", sorted(INDEXES))
def test_getitem(kind, layout):
    x = arr((4, 3, 5), layout, rng_for(f"getitem{kind}{layout}"))
    both("getitem_" + kind, *INDEXES[kind], x, gc=layout == "t")


def test_getitem_on_0d_and_errors():
    check("getitem_none", lambda t: t[None], lambda t: t[None], np.asarray(np.float32(1.5)))
    check("getitem_ellipsis", lambda t: t[...], lambda t: t[...], np.asarray(np.float32(1.5)))
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        lucid.zeros(2, 3)[5]
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        lucid.zeros(2, 3, requires_grad=True)[0, 7]


def test_setitem_follows_torch_index_order():
    for index in [(0, slice(None), [3, 1]), (slice(None), 1, [0, 2]), (None, 1, Ellipsis, [2, 2, 0]),
                  ([1, 0], slice(None), 2), (1, slice(None), [True, False, True, False, True])]:
        tx = torch.zeros(2, 3, 5)
        tidx = tuple(torch.tensor(i) if isinstance(i, list) else i for i in index)
        value = torch.arange(float(tx[tidx].numel())).reshape(tx[tidx].shape)
        tx[tidx] = value
        lx = lucid.zeros(2, 3, 5)
        lidx = tuple(lucid.tensor(i) if isinstance(i, list) else i for i in index)
        lx[lidx] = lucid.tensor(value.numpy())
        np.testing.assert_array_equal(lx.numpy(), tx.numpy(), err_msg=str(index))


@pytest.mark.parametrize("dtype,match", [
    (lucid.uint8, "uint8 tensor is ambiguous"),  # torch: a deprecated mask; NumPy: positions. lucid refuses
    (lucid.int8, "must be long, int or bool tensors, got dtype int8"),  # torch refuses too
    (lucid.float32, "must be long, int or bool tensors, got dtype float32"),  # torch refuses too
])
def test_index_dtypes_torch_refuses_or_reads_differently(dtype, match):
    x = lucid.arange(20.).reshape(4, 5)
    idx = lucid.tensor([1, 0, 1, 0]).to(dtype)
    with pytest.raises(IndexError, match=match):
        x[idx]
    with pytest.raises(IndexError, match=match):
        x[idx] = 0.0
    with pytest.raises(IndexError, match=match):
        x[:, idx.numpy()[:2]]  # NumPy arrays in the index are checked the same way
    if dtype != lucid.uint8:
        with pytest.raises(IndexError):
            torch.arange(20.).reshape(4, 5)[torch.from_numpy(idx.numpy())]


def test_getitem_then_other_ops_accumulate():
    """Two overlapping reads of the same tensor add their gradients."""
    x = arr((5, 3), "t", rng_for("getitem_overlap"))
    both("getitem_overlap", lambda t: t[1:4] * t[[0, 1, 1]], lambda t: t[1:4] * t[[0, 1, 1]], x)


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1, -2])
def test_cat(dim):
    rng = rng_for(f"cat{dim}")
    base = [2, 3]
    shapes = []
    for n in (1, 3, 2):
        s = list(base)
        s[dim] = n
        shapes.append(tuple(s))
    arrays = [arr(s, lay, rng) for s, lay in zip(shapes, ["c", "t", "n"])]
    both("cat", lambda *xs: lucid.cat(list(xs), dim), lambda *xs: torch.cat(list(xs), dim), *arrays)
    check("cat", lambda *xs: lucid.cat(xs, dim=dim), lambda *xs: torch.cat(xs, dim=dim), *arrays, grad_args=[1])
    check("cat", lambda *xs: lucid.concat(xs, dim=dim), lambda *xs: torch.concat(xs, dim=dim), *arrays)


def test_cat_edge_cases():
    rng = rng_for("cat_edge")
    a, b = arr((2, 3), "c", rng), arr((0, 3), "c", rng)
    check("cat", lambda x, y: lucid.cat([x, y]), lambda x, y: torch.cat([x, y]), a, b)
    check("cat", lambda x, y: lucid.cat([x, y]), lambda x, y: torch.cat([x, y]), a, np.zeros(0, np.float32))
    check("cat", lambda x: lucid.cat([x]), lambda x: torch.cat([x]), a)
    # mixed dtypes promote, as in torch
    check("cat", lambda x, y: lucid.cat([x, y]), lambda x, y: torch.cat([x, y]), a, np.ones((1, 3), np.int64),
          grad_args=[0])


def test_cat_errors_name_both_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(2, 4\)"):
        lucid.cat([lucid.zeros(2, 3), lucid.zeros(2, 4)])
    with pytest.raises(ValueError, match="non-empty"):
        lucid.cat([])
    with pytest.raises(IndexError, match="dim"):
        lucid.cat([lucid.zeros(2, 3)], dim=2)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dim):
    rng = rng_for(f"stack{dim}")
    arrays = [arr((2, 3), lay, rng) for lay in ["c", "t", "n"]]
    both("stack", lambda *xs: lucid.stack(list(xs), dim), lambda *xs: torch.stack(list(xs), dim), *arrays)
    check("stack", lambda *xs: lucid.stack(xs, dim=dim), lambda *xs: torch.stack(xs, dim=dim), *arrays)


def test_stack_errors():
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(3, 2\)"):
        lucid.stack([lucid.zeros(2, 3), lucid.zeros(3, 2)])
    with pytest.raises(ValueError, match="non-empty"):
        lucid.stack([])


@pytest.mark.parametrize("arg,dim", [(2, 0), (3, 1), (1, -1), (5, 1), (7, 0), ([1, 3, 1], 1), ([0, 5], 1),
                                     ((2, 0, 3), 0), ([5], -1)], ids=str)
def test_split(arg, dim):
    x = arr((5, 5), "t", rng_for(f"split{arg}{dim}"))
    both("split", lambda t: t.split(arg, dim), lambda t: t.split(arg, dim), x)
    check("split_fn", lambda t: lucid.split(t, arg, dim=dim), lambda t: torch.split(t, arg, dim=dim), x)


def test_split_partial_use_and_errors():
    x = arr((6, 2), "c", rng_for("split_partial"))
    check("split", lambda t: t.split(2)[1] * 3, lambda t: t.split(2)[1] * 3, x)
    check("split", lambda t: t.split(4, 0), lambda t: t.split(4, 0), arr((0, 2)))
    with pytest.raises(RuntimeError, match="sum to 5"):
        lucid.zeros(6).split([2, 3])
    with pytest.raises(ValueError, match="positive"):
        lucid.zeros(6).split(0)


@pytest.mark.parametrize("chunks,dim", [(2, 0), (3, 0), (4, 1), (6, 1), (1, -1), (7, 0), (5, 0)], ids=str)
def test_chunk(chunks, dim):
    x = arr((6, 5), "n", rng_for(f"chunk{chunks}{dim}"))
    both("chunk", lambda t: t.chunk(chunks, dim), lambda t: t.chunk(chunks, dim), x)
    check("chunk_fn", lambda t: lucid.chunk(t, chunks, dim), lambda t: torch.chunk(t, chunks, dim), x)


def test_chunk_errors():
    with pytest.raises(ValueError, match="positive"):
        lucid.zeros(4).chunk(0)


# ---------------------------------------------------------------------------------------------------------
PADS = [
    ("constant", (1, 2)),
    ("constant", (1, 0, 2, 3)),
    ("constant", (0, 0, 0, 0, 1, 1)),
    ("constant", (-1, 2, 1, -2)),  # negative pads crop
    ("constant", (-2, -1)),
    ("reflect", (1, 2)),
    ("reflect", (2, 1, 3, 0)),
    ("replicate", (1, 2)),
    ("replicate", (2, 3, 0, 4)),
    ("circular", (1, 2)),
    ("circular", (2, 1, 3, 4)),
]


@pytest.mark.parametrize("layout", ["c", "t", "n"])
@pytest.mark.parametrize("mode,pad", PADS, ids=str)
def test_pad(mode, pad, layout):
    # torch pads the last dim of 2-D/3-D inputs and the last two of 3-D/4-D ones (non-constant modes)
    x = arr((2, 3, 4, 5)[-2 - len(pad) // 2:], layout, rng_for(f"pad{mode}{pad}{layout}"))
    check("pad_" + mode, lambda t: LF.pad(t, pad, mode=mode), lambda t: F.pad(t, pad, mode=mode), x)
    check("pad_" + mode, lambda t: lucid.pad(t, pad, mode), lambda t: F.pad(t, pad, mode), x)
    if layout == "t":
        gradcheck(lambda t: LF.pad(t, pad, mode=mode), x[:1, :2])


def test_pad_constant_value_and_errors():
    x = arr((2, 3), "c", rng_for("pad_value"))
    check("pad_constant", lambda t: LF.pad(t, (1, 1), value=-2.5), lambda t: F.pad(t, (1, 1), value=-2.5), x)
    check("pad_constant", lambda t: LF.pad(t, (1, 1, 2, 0), "constant", 7),
          lambda t: F.pad(t, (1, 1, 2, 0), "constant", 7), x)
    with pytest.raises(ValueError, match="reflect"):
        LF.pad(lucid.zeros(1, 2, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="even"):
        LF.pad(lucid.zeros(2, 3), (1, 2, 3))
    with pytest.raises(ValueError, match="circular"):
        LF.pad(lucid.zeros(2, 3), (1, 1), mode="zeros")


# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["c", "t"])
def test_to_dtype(layout):
    x = arr((3, 4), layout, rng_for(f"to{layout}")) * np.float32(3)
    both("to_dtype", lambda t: t.to(lucid.float64) * 2, lambda t: t.to(torch.float64) * 2, x)
    check("to_dtype", lambda t: t.double(), lambda t: t.double(), x)
    check("to_dtype", lambda t: t.to(dtype=lucid.float64).float(), lambda t: t.double().float(), x)
    check("to_dtype", lambda t: t.to("float64"), lambda t: t.to(torch.float64), x)
    check("to_dtype", lambda t: t.to(lucid.int64), lambda t: t.to(torch.int64), x, grad=False)
    check("to_dtype", lambda t: t.long(), lambda t: t.long(), x, grad=False)
    check("to_dtype", lambda t: t.int(), lambda t: t.int(), x, grad=False)
    check("to_dtype", lambda t: t.bool(), lambda t: t.bool(), x, grad=False)
    check("to_dtype", lambda t: t.half().float(), lambda t: t.half().float(), x)
    xi = np.array([[1, -2], [3, 0]], np.int64)
    check("to_dtype", lambda t: t.float(), lambda t: t.float(), xi, grad=False)


def test_to_float64_gradient_is_float32():
    x = lucid.randn(3, requires_grad=True)
    (x.to(lucid.float64) * 3).sum().backward()
    assert x.grad.dtype == lucid.float32
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))


def test_to_same_dtype_returns_self_and_copy_true_copies():
    x = lucid.randn(3)
    assert x.to(lucid.float32) is x
    assert x.to("cpu") is x
    y = x.to(lucid.float32, copy=True)
    assert y is not x and not np.shares_memory(y.array, x.array)
