"""Serial twins of the numba kernels (lucid/kernels/_numba.py): both launches give the same numbers.

Each family's threshold is forced to 0 (always parallel) and to a huge value (always serial) in turn on the
same inputs; the results must agree (to summation-order rounding), and agree with the NumPy reference.
"""
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid.backends import cpu
from lucid.kernels import _numba, batchnorm, depthwise
from lucid.kernels import mixer

ALWAYS_PARALLEL, ALWAYS_SERIAL = 0, 10 ** 12


def _both(monkeypatch, family, fn):
    out = []
    for threshold in (ALWAYS_PARALLEL, ALWAYS_SERIAL):
        monkeypatch.setitem(cpu.SERIAL_BELOW, family, threshold)
        out.append(fn())
    return out


def _close(a, b, tol=1e-5):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def test_serial_twin_is_a_separately_cached_non_parallel_dispatcher():
    twin = _numba._TWINS[batchnorm._scale_shift_kernel]
    assert twin.py_func.__qualname__.endswith("_serial_nogil")
    assert "parallel" not in twin.targetoptions and batchnorm._scale_shift_kernel.targetoptions["parallel"]
    assert twin._cache is not None and type(twin._cache).__name__ == "FunctionCache"


@pytest.mark.parametrize("shape", [(6, 5, 3, 4), (2, 7, 1, 1)])
def test_batch_and_layer_norm_twins_agree(monkeypatch, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w, b = rng.standard_normal(shape[1]).astype(np.float32), rng.standard_normal(shape[1]).astype(np.float32)

    def run():
        lx, lw, lb = (lucid.Tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.batch_norm(lx, None, None, lw, lb, training=True)
        y.backward(lucid.tensor(g))
        rows = lucid.Tensor(x.reshape(-1, shape[-1]), requires_grad=True)
        z = F.layer_norm(rows, (shape[-1],))
        z.backward(lucid.tensor(g.reshape(-1, shape[-1])))
        return [y.detach().numpy(), lx.grad.numpy(), lw.grad.numpy(), lb.grad.numpy(), z.detach().numpy(),
                rows.grad.numpy()]

    par, ser = _both(monkeypatch, "memory", run)
    _close(par, ser)
    monkeypatch.setenv("LUCID_NO_NUMBA", "1")
    _close(ser, run(), tol=1e-4)


def test_mixer_twins_agree(monkeypatch):
    rng = np.random.default_rng(1)
    br = mixer.Branches(c_id=3, gc=2, c0=(3, 5, 7), kernel=((3, 3), (1, 5), (5, 1)), pad=((1, 1), (0, 2), (2, 0)))
    x = rng.standard_normal((4, 3, 4, 9)).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    ws = [rng.standard_normal((2, kh, kw)).astype(np.float32) for kh, kw in br.kernel]
    bs = [rng.standard_normal(2).astype(np.float32) for _ in br.kernel]
    assert mixer.fused_pays(x, br)

    def run():
        gx, gws, gbs = mixer.backward(gy, x, ws, br)
        return [mixer.forward(x, ws, bs, br), gx, *gws, *gbs]

    par, ser = _both(monkeypatch, "mixer", run)
    _close(par, ser)


def test_depthwise_twins_agree(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 6, 5, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3)).astype(np.float32)
    geom = (2, 1, 1, 1, 1, 1)  # stride 2 down, 1 across, padding 1
    ho, wo = 3, 5
    gy = rng.standard_normal((3, ho, wo, 4)).astype(np.float32)

    def run():
        return [depthwise.forward(x, w, (ho, wo), geom), depthwise.grad_input(gy, w, (6, 5), geom),
                depthwise.grad_weight(gy, x, (3, 3), geom)]

    par, ser = _both(monkeypatch, "stencil", run)
    _close(par, ser)
    _close(ser, [depthwise.forward_ref(x, w, (ho, wo), geom), depthwise.grad_input_ref(gy, w, (6, 5), geom),
                 depthwise.grad_weight_ref(gy, x, (3, 3), geom)], tol=1e-4)


def test_serial_twins_follow_numpy_error_model_on_non_finite_input(monkeypatch):
    """A diverging run feeds inf/nan activations: the serial kernels must return nan, not raise."""
    monkeypatch.setitem(cpu.SERIAL_BELOW, "memory", ALWAYS_SERIAL)
    x = np.array([[np.inf, 1.0, 2.0], [0.0, 0.0, 0.0]], np.float32)
    y = F.layer_norm(lucid.tensor(x), (3,), eps=0.0).numpy()
    assert np.isnan(y[0]).all() and np.isnan(y[1]).all()  # 0/0 on the constant row, like torch with eps=0


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_twins_agree(monkeypatch, approximate):
    from lucid.kernels import gelu

    rng = np.random.default_rng(3)
    pre = rng.standard_normal((37, 11)).astype(np.float32) * 3
    bias = rng.standard_normal(11).astype(np.float32)
    g = rng.standard_normal(pre.shape).astype(np.float32)

    def run():
        p = pre.copy()
        out = gelu.bias_forward(p, bias, approximate)
        gp, gb = gelu.bias_backward(g.copy(), p, approximate)
        untouched = pre.copy()  # inference: the GEMM output is left as it was, the result is the same
        out_inference = gelu.bias_forward(untouched, bias, approximate, keep_pre=False)
        np.testing.assert_array_equal(untouched, pre)
        return [out, p, gp, gb, gelu.forward(pre, approximate), gelu.backward(pre, g, approximate), out_inference]

    par, ser = _both(monkeypatch, "gelu", run)
    _close(par, ser)
    monkeypatch.setenv("LUCID_NO_NUMBA", "1")
    _close(ser, run(), tol=1e-5)
