"""Every op, forward and backward, on "cpu" and "gpu" (the CuPy stand-in, or a real GPU): same values, same
gradients, outputs and gradients on the GPU, and no implicit host/device crossing.

One case per op and code path, on the parity tests' inputs (tests/core/_parity.py's layouts: C order,
transposed, strided, negative strides, channels-last), kept small so the whole tier stays fast. The last
test checks that the cases cover every ``Function`` subclass of lucid/ops (except the fused ops of
lucid/ops/fused.py, which the model tests cover).
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid.autograd import Function

from ..core._parity import arr, rng_for
from ._twin import twin


def _ints(shape, high, seed):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(np.int64)


def _probs(shape, seed):
    p = np.random.default_rng(seed).random(shape).astype(np.float32)
    return p / p.sum(axis=1, keepdims=True)


def A(*shape, layout="c", low=None, kind="normal", seed="a"):  # noqa: N802
    return arr(shape, layout, rng_for(f"{seed}{shape}{layout}"), low=low, kind=kind)


# (name, fn, args): args are NumPy arrays (float ones get requires_grad) or plain values
CASES = [
    # -- elementwise --------------------------------------------------------------------------------------
    ("add_broadcast", lambda a, b: a + b, (A(3, 4, layout="t"), A(4))),
    ("sub_scalar_left", lambda a: 2.5 - a, (A(3, 4),)),
    ("mul_numpy_scalar", lambda a: a * np.float32(1.5) + np.float64(0.5) * a, (A(2, 3, layout="n"),)),
    ("div", lambda a, b: a / b, (A(3, 4), A(3, 1, low=0.5))),
    ("rdiv_scalar", lambda a: 1.0 / a, (A(5, low=0.5),)),
    ("pow_tensor_tensor", lambda a, b: a ** b, (A(3, 4, low=0.5), A(4))),
    ("pow_scalar_exponent", lambda a: a ** 3 + a.pow(0.5), (A(3, 4, low=0.1),)),
    ("pow_scalar_base", lambda a: 2.0 ** a, (A(3, 4),)),
    ("neg_abs", lambda a: (-a).abs(), (A(3, 4, layout="s"),)),
    ("exp_log_sqrt_rsqrt", lambda a: a.exp() + a.log() + a.sqrt() + a.rsqrt(), (A(6, low=0.5),)),
    ("tanh_sigmoid_relu_erf", lambda a: a.tanh() + a.sigmoid() + a.relu() + a.erf(), (A(2, 5, layout="t"),)),
    ("clamp_numbers", lambda a: a.clamp(-0.5, 0.5), (A(4, 5),)),
    ("clamp_tensors", lambda a, lo, hi: lucid.clamp(a, lo, hi), (A(4, 5), A(5) - 1, A(5) + 1)),
    ("maximum_minimum", lambda a, b: lucid.maximum(a, b) + lucid.minimum(a, b), (A(3, 4, kind="int"),
                                                                                  A(4, kind="int"))),
    ("maximum_scalar", lambda a: lucid.maximum(a, 0.25), (A(3, 4),)),
    ("where", lambda a, b: lucid.where(a > 0, a, b), (A(3, 4), A(3, 4, seed="b"))),
    ("where_scalar", lambda a: lucid.where(a > 0, a, 0.0), (A(3, 4),)),
    ("compare_logical", lambda a, b: ((a > b) | (a <= 0)) & (a != b), (A(3, 4), A(4)), ),
    ("int_float_promotion", lambda a: lucid.tensor([1, 2, 3], device=a.device) * a, (A(3),)),
    # -- reductions ---------------------------------------------------------------------------------------
    ("sum_mean", lambda a: a.sum() + a.mean(1).sum() + a.sum((0, 2), keepdim=True).mean(), (A(3, 4, 5, layout="t"),)),
    ("sum_short_axis", lambda a: a.sum(3).mean(), (A(2, 3, 4, 8),)),
    ("var_std", lambda a: a.var(1) + a.std(0, correction=0).sum(), (A(4, 5),)),
    ("std_of_a_constant_row", lambda a: a.std(1), (np.array([[2, 2, 2], [1, -1, 3]], np.float32),)),
    ("max_min_all", lambda a: a.max() - a.min(), (A(3, 4),)),
    ("max_min_dim", lambda a: a.max(1)[0] + a.min(0, keepdim=True)[0].sum(), (A(4, 4, kind="int"),)),
    ("max_dim_indices", lambda a: a.max(-1)[1], (A(3, 5),)),
    ("amax_amin_ties", lambda a: a.amax(1) + a.amin((0, 1)), (A(3, 4, kind="int"),)),
    ("argmax_argmin", lambda a: (a.argmax(), a.argmin(1, keepdim=True)), (A(3, 4),)),
    ("logsumexp", lambda a: a.logsumexp(1), (A(3, 6),)),
    ("softmax_log_softmax", lambda a: a.softmax(-1) * a.log_softmax(0), (A(3, 6, layout="t"),)),
    ("norm", lambda a: a.norm() + a.norm(1, 0).sum() + a.norm(3, 1).sum() + a.norm(float("inf")),
     (A(4, 5),)),
    # -- shape --------------------------------------------------------------------------------------------
    ("reshape_view_flatten", lambda a: a.reshape(4, 6).view(2, 12).flatten(), (A(2, 3, 4, layout="t"),)),
    ("permute_transpose_T", lambda a: a.permute(2, 0, 1).transpose(0, 1).T, (A(2, 3, 4),)),
    ("squeeze_unsqueeze", lambda a: a.unsqueeze(0).squeeze(2).unsqueeze(-1), (A(3, 1, 4),)),
    ("expand", lambda a: a.expand(3, 2, 4), (A(2, 1),)),
    ("getitem_basic", lambda a: a[1:, ::2, None, -1], (A(3, 4, 5),)),
    ("getitem_int_tensor", lambda a, i: a[i], (A(5, 3), np.array([0, 4, 4, 1]))),
    ("getitem_list", lambda a: a[[0, 2, 2]] + a[:, [1, 0]].sum(), (A(4, 3),)),
    ("getitem_bool_mask", lambda a: a[a > 0], (A(4, 5),)),
    ("getitem_int_slice_array", lambda a, i, j: a[1, :, i] + a[j, :, i], (A(3, 4, 5), np.array([4, 0]), np.array(2))),
    ("cat_stack", lambda a, b: (lucid.cat([a, b], 1), lucid.stack([a, b], 1), lucid.concat((b, a))),
     (A(3, 2), A(3, 2, seed="b"))),
    ("split_chunk", lambda a: [p * (k + 1) for k, p in enumerate(a.split([1, 3], 1) + a.chunk(2, 0))],
     (A(4, 4),)),
    ("pad_constant_crop", lambda a: F.pad(a, (1, -1, 2, 0), value=0.5), (A(2, 3, 4),)),
    ("pad_reflect_replicate_circular", lambda a: F.pad(a, (1, 2, 2, 1), mode="reflect")
     + F.pad(a, (1, 2, 2, 1), mode="replicate") + F.pad(a, (1, 2, 2, 1), mode="circular"), (A(2, 4, 5),)),
    ("cast_clone_contiguous", lambda a: a.double().clone().float().contiguous() + a.contiguous("channels_last"),
     (A(2, 3, 4, 5, layout="t"),)),
    ("to_dtype_int", lambda a: a.long().float() * a, (A(3, 4),)),
    ("einsum", lambda a, b: (lucid.einsum("ij,jk->ik", a, b), lucid.einsum("ij->j", a)), (A(3, 4), A(4, 5))),
    ("einsum_ellipsis_diagonal", lambda a, b: (lucid.einsum("bii->bi", a), lucid.einsum("...ij,...jk", a, b),
                                               lucid.einsum("iji->j", a.transpose(0, 1))), (A(3, 3, 3), A(1, 3, 2))),
    # -- linear algebra -----------------------------------------------------------------------------------
    ("matmul_2d_batched_1d", lambda a, b, v: (a @ b).sum() + (a @ v).sum() + (v @ v), (A(2, 3, 4), A(4, 5), A(4))),
    ("matmul_broadcast", lambda a, b: a.matmul(b), (A(2, 1, 3, 4), A(3, 4, 2))),
    ("linear", lambda x, w, b: F.linear(x, w, b), (A(2, 3, 4, layout="t"), A(5, 4), A(5))),
    # -- activations --------------------------------------------------------------------------------------
    ("gelu", lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"), (A(2, 3, 4, 5, layout="cl"),)),
    ("silu_softplus_elu", lambda x: F.silu(x) + F.softplus(x, beta=2.0, threshold=1.0) + F.elu(x, 0.5),
     (A(3, 7),)),
    ("leaky_hardswish_hardsigmoid", lambda x: F.leaky_relu(x, 0.1) + F.hardswish(x) + F.hardsigmoid(x),
     (4 * A(3, 7),)),
    # -- convolution and pooling --------------------------------------------------------------------------
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (A(2, 3, 7, 6, layout="cl"), A(4, 3, 3, 3),
                                                                      A(4))),
    ("conv2d_groups_dilation", lambda x, w: F.conv2d(x, w, None, padding="same", dilation=2, groups=2),
     (A(1, 4, 6, 6), A(6, 2, 3, 3))),
    ("conv2d_depthwise_1x1", lambda x, w, p: F.conv2d(F.conv2d(x, w, groups=4, padding=(0, 2)), p),
     (A(2, 4, 5, 5, layout="cl"), A(4, 1, 1, 5), A(3, 4, 1, 1))),
    ("avg_pool", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), (A(2, 3, 7, 6),)),
    ("max_pool", lambda x: F.max_pool2d(x, 3, 2, 1, dilation=1), (A(2, 3, 7, 6, kind="int"),)),
    ("max_pool_indices", lambda x: F.max_pool2d(x, 2, return_indices=True), (A(1, 2, 4, 4),)),
    ("adaptive_avg_pool", lambda x: F.adaptive_avg_pool2d(x, (3, 2)) + F.adaptive_avg_pool2d(x, 1),
     (A(2, 3, 7, 5, layout="cl"),)),
    # -- normalisation ------------------------------------------------------------------------------------
    ("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (A(4, 3, 5, 5, layout="cl"),
                                                                                        A(3), A(3))),
    ("batch_norm_eval", lambda x, m, v, w: F.batch_norm(x, m, v, w, None, training=False),
     (A(4, 3, 2, 2), A(3), A(3, low=0.5), A(3))),
    ("batch_norm_1d", lambda x: F.batch_norm(x, None, None, training=True), (A(6, 4),)),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (4, 5), w, b), (A(3, 4, 5), A(4, 5), A(4, 5))),
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), (A(2, 4, 3, 3, layout="cl"), A(4), A(4))),
    # -- losses -------------------------------------------------------------------------------------------
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t), (A(6, 5), _ints(6, 5, 1))),
    ("cross_entropy_smooth_weight_ignore", lambda x, t, w: F.cross_entropy(x, t, w, ignore_index=2,
                                                                           label_smoothing=0.1),
     (A(8, 5), _ints(8, 5, 2), A(5, low=0.5))),
    ("cross_entropy_spatial_none", lambda x, t: F.cross_entropy(x, t, reduction="none"),
     (A(2, 4, 3, 3), _ints((2, 3, 3), 4, 3))),
    ("cross_entropy_probs", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2), (A(4, 6), _probs((4, 6), 4))),
    ("cross_entropy_all_ignored", lambda x: F.cross_entropy(x, lucid.full((3,), -100, device=x.device)),
     (A(3, 4),)),
    ("nll_loss", lambda x, t, w: F.nll_loss(x, t, w, reduction="sum") + F.nll_loss(x, t),
     (A(5, 4), _ints(5, 4, 5), A(4, low=0.5))),
    ("mse_loss", lambda a, b: F.mse_loss(a, b) + F.mse_loss(a, b, reduction="sum"), (A(3, 4), A(4))),
    ("bce_with_logits", lambda x, t, w, pw: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
     (A(4, 3), np.random.default_rng(6).random((4, 3)).astype(np.float32), A(3, low=0.1), A(3, low=0.5))),
    ("bce_with_logits_none", lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
     (A(4, 3), np.random.default_rng(7).random((4, 3)).astype(np.float32))),
    # -- dropout, evaluation mode and p=0 (random masks: tests/device/test_random_device.py) --------------
    ("dropout_deterministic", lambda x: F.dropout(x, 0.5, training=False) + F.dropout(x, 0.0)
     + F.drop_path(x, 0.3) + F.dropout(x, 1.0) + F.drop_path(x, 1.0, training=True), (A(3, 4),)),
]


@pytest.mark.parametrize("name,fn,args", CASES, ids=[c[0] for c in CASES])
def test_op_on_gpu_matches_cpu(gpu, name, fn, args):
    twin(fn, *args, name=name)


# ops whose device behaviour is tested elsewhere, by name: why
ELSEWHERE = {"ToDevice": "moves between devices: test_discipline.py::test_to_device_round_trip_is_differentiable",
             "_MaxMin": "the base class of Maximum and Minimum"}


def _op_classes() -> set:
    """Every Function subclass defined in lucid/ops (the fused ops of lucid/ops/fused.py aside)."""
    import lucid.ops

    for mod in pkgutil.iter_modules(lucid.ops.__path__):
        importlib.import_module(f"lucid.ops.{mod.name}")
    found, todo = set(), [Function]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("lucid.ops.") and sub.__module__ != "lucid.ops.fused" and \
                    "forward" in vars(sub):
                found.add(sub.__name__)
    return found


def test_cases_cover_every_op():
    """Run every case on the CPU under the profiler and check that each op of lucid/ops was exercised."""
    from ._twin import tensors

    seen = set()
    for name, fn, args in CASES:
        with lucid.profiler.profile() as prof:
            outs = fn(*tensors(args, "cpu", True))
            outs = [outs] if isinstance(outs, lucid.Tensor) else [o for o in outs if isinstance(o, lucid.Tensor)]
            for o in outs:
                if o.requires_grad:
                    o.sum().backward() if o.numel() else None
        seen |= set(prof.records)
    missing = _op_classes() - seen - set(ELSEWHERE)
    assert not missing, f"ops without a device case in tests/device/test_ops_device.py: {sorted(missing)}"


def test_creation_functions(device):
    """The factories on each device: right device, dtype and values."""
    made = {
        "zeros": (lucid.zeros(2, 3, device=device), np.zeros((2, 3), np.float32)),
        "ones_int": (lucid.ones((2,), dtype=lucid.int64, device=device), np.ones(2, np.int64)),
        "full": (lucid.full((2, 2), 1.5, device=device), np.full((2, 2), 1.5, np.float32)),
        "empty_like": (lucid.zeros_like(lucid.empty(3, device=device)), np.zeros(3, np.float32)),
        "arange": (lucid.arange(0.0, 1.0, 0.25, device=device), np.arange(0, 1, 0.25, dtype=np.float32)),
        "arange_int": (lucid.arange(5, device=device), np.arange(5)),
        "linspace": (lucid.linspace(0, 1, 5, device=device), np.linspace(0, 1, 5, dtype=np.float32)),
        "linspace_nan_end": (lucid.linspace(0, float("inf"), 3, device=device), np.full(3, np.nan, np.float32)),
        "eye": (lucid.eye(3, 2, device=device), np.eye(3, 2, dtype=np.float32)),
        "tensor": (lucid.tensor([[1, 2], [3, 4]], device=device), np.array([[1, 2], [3, 4]])),
        "full_like": (lucid.full_like(lucid.ones(2, device=device), 7), np.full(2, 7, np.float32)),
    }
    for name, (t, expected) in made.items():
        assert t.device == device, name
        assert t.dtype == expected.dtype, name
        np.testing.assert_array_equal(t.cpu().numpy(), expected, err_msg=name)
