"""Core ops on channels-last 4-D inputs (an NHWC buffer seen with NCHW shape: lucid's activation layout).

The conv/norm/pool ops hand such tensors to everything downstream, so each core op must give torch's
values and gradients for them, and the elementwise ones should keep the layout (no hidden NCHW copies).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lucid
import lucid.nn.functional as LF

from ._parity import arr, check, gradcheck, rng_for

SHAPE = (2, 3, 4, 5)

UNARY = {
    "exp": lambda t: t.exp(),
    "tanh": lambda t: t.tanh(),
    "sigmoid": lambda t: t.sigmoid(),
    "relu": lambda t: t.relu(),
    "erf": lambda t: t.erf(),
    "abs": lambda t: t.abs(),
    "neg": lambda t: -t,
    "scale_shift": lambda t: t * 1.5 + 0.25,
    "square": lambda t: t ** 2,
    "clamp": lambda t: t.clamp(-0.5, 0.5),
    "sum_all": lambda t: t.sum(),
    "sum_c": lambda t: t.sum(1),
    "sum_nhw": lambda t: t.sum((0, 2, 3), keepdim=True),
    "mean_hw": lambda t: t.mean((-1, -2)),
    "var_nhw": lambda t: t.var((0, 2, 3), correction=0),
    "amax_c": lambda t: t.amax(1),
    "max_w": lambda t: t.max(-1)[0],
    "softmax_c": lambda t: t.softmax(1),
    "log_softmax_w": lambda t: t.log_softmax(-1),
    "logsumexp_c": lambda t: t.logsumexp(1),
    "norm_c": lambda t: t.norm(dim=1),
    "flatten": lambda t: t.flatten(1),
    "reshape": lambda t: t.reshape(2, -1),
    "permute_nhwc": lambda t: t.permute(0, 2, 3, 1),
    "transpose": lambda t: t.transpose(1, 3),
    "getitem_crop": lambda t: t[:, 1:, ::2, 1:-1],
    "getitem_channels": lambda t: t[:, [2, 0]],
    "split_c": lambda t: t.split([1, 2], 1),
    "chunk_h": lambda t: t.chunk(2, 2),
    "pad_reflect": lambda t: (LF.pad if isinstance(t, lucid.Tensor) else F.pad)(t, (1, 1, 2, 0), mode="reflect"),
    "pad_constant": lambda t: (LF.pad if isinstance(t, lucid.Tensor) else F.pad)(t, (1, -1, 0, 2)),
    "contiguous": lambda t: t.contiguous(),
    "clone": lambda t: t.clone(),
    "unsqueeze": lambda t: t.unsqueeze(2),
    "to_double": lambda t: t.double(),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_op_on_channels_last_input(op):
    x = arr(SHAPE, "cl", rng_for("cl" + op))
    check(op + "_cl", UNARY[op], UNARY[op], x)
    gradcheck(UNARY[op], x[:1])


BINARY = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
    "maximum": lambda a, b: (lucid.maximum if isinstance(a, lucid.Tensor) else torch.maximum)(a, b),
    "where": lambda a, b: (lucid.where if isinstance(a, lucid.Tensor) else torch.where)(a > 0, a, b),
    "cat_c": lambda a, b: (lucid.cat if isinstance(a, lucid.Tensor) else torch.cat)([a, b], 1),
}


@pytest.mark.parametrize("op,other", [(op, other) for op in sorted(BINARY) for other in ["cl", "c", "bias", "row"]
                                      if not (op == "cat_c" and other in ("bias", "row"))])  # cat: equal ranks
def test_binary_with_channels_last_operand(op, other):
    rng = rng_for(f"clbin{op}{other}")
    a = arr(SHAPE, "cl", rng)
    if other in ("cl", "c"):
        b = arr(SHAPE, other, rng)
    elif other == "bias":  # per-channel (1, C, 1, 1), as after a conv
        b = arr((1, SHAPE[1], 1, 1), "c", rng)
    else:
        b = arr((SHAPE[-1],), "c", rng)
    check(op + "_cl", BINARY[op], BINARY[op], a, b)
    gradcheck(BINARY[op], a[:1], b[:1] if b.ndim == 4 else b)


@pytest.mark.parametrize("op", ["exp", "scale_shift", "relu", "clone"])
def test_elementwise_ops_keep_the_channels_last_layout(op):
    x = lucid.Tensor(arr(SHAPE, "cl", rng_for("keep" + op)))
    y = UNARY[op](x)
    assert y.is_contiguous(memory_format=lucid.channels_last), f"{op} lost the channels-last layout"


def test_bias_add_and_residual_keep_the_layout_and_grad_layout_is_usable():
    rng = rng_for("residual")
    x = lucid.Tensor(arr(SHAPE, "cl", rng), requires_grad=True)
    bias = lucid.Tensor(arr((1, 3, 1, 1), "c", rng), requires_grad=True)
    y = x + bias
    z = y * x + x
    assert y.is_contiguous("channels_last") and z.is_contiguous("channels_last")
    z.sum().backward()
    assert x.grad.shape == SHAPE and bias.grad.shape == (1, 3, 1, 1)
