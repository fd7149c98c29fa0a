"""lucid/backends/row_threads.py: row-split threading with single-threaded BLAS, and the ops that use it (the fused
block MLP, the Inception mixer): the split gives the unsplit results, forward and backward."""
import multiprocessing
import os
import threading

import numpy as np
import scipy.special
import pytest

import lucid
from lucid.backends import cpu, row_threads
from lucid.kernels import gelu as gelu_kernels
from lucid.kernels import mixer
from lucid.ops import fused


def _blas_threads():
    return [c.get_num_threads() for c in row_threads._blas_controllers()]


@pytest.fixture
def two_blas_threads(monkeypatch):
    """Splits allowed (BLAS workers counted as sleeping), OpenBLAS at 2 threads; restores its count."""
    if not row_threads._blas_controllers():
        pytest.skip("NumPy's BLAS here is not OpenBLAS (threadpoolctl sees none)")  # pragma: no cover
    monkeypatch.setattr(cpu, "blas_workers_sleep", lambda: True)
    monkeypatch.setenv("LUCID_ROW_THREADS", "1")
    saved = _blas_threads()
    for c in row_threads._blas_controllers():
        c.set_num_threads(2)
    yield
    for c, n in zip(row_threads._blas_controllers(), saved):
        c.set_num_threads(n)


def test_parts_follow_blas_threads_rows_and_switches(two_blas_threads, monkeypatch):
    assert row_threads.parts(1000, 100) == 2
    assert row_threads.parts(150, 100) == 1  # each thread would get fewer than min_rows rows
    monkeypatch.setenv("LUCID_ROW_THREADS", "0")
    assert row_threads.parts(1000, 100) == 1
    monkeypatch.setenv("LUCID_ROW_THREADS", "1")
    monkeypatch.setattr(cpu, "blas_workers_sleep", lambda: False)  # spinning OpenBLAS workers would hold the cores
    assert row_threads.parts(1000, 100) == 1


def test_run_covers_every_row_once_on_several_threads_with_one_blas_thread(two_blas_threads):
    seen = []
    all_running = threading.Barrier(3, timeout=30)  # breaks (and the test fails) unless the parts run at once

    def job(r0, r1):
        seen.append((r0, r1, threading.get_ident(), _blas_threads()))
        all_running.wait()

    row_threads.run(job, 101, 3)
    spans = sorted(s[:2] for s in seen)
    assert spans == [(0, 33), (33, 67), (67, 101)]
    assert {s[2] for s in seen if s[0] == 0} == {threading.get_ident()}  # part 0 on the caller
    assert len({s[2] for s in seen}) == 3
    assert all(set(s[3]) == {1} for s in seen)  # BLAS single-threaded inside the parts ...
    assert set(_blas_threads()) == {2}  # ... and restored after


def test_error_in_a_part_is_raised_after_all_parts_and_restores_state(two_blas_threads):
    finished = []

    def job(r0, r1):
        if r0 > 0:
            raise ValueError(f"bad rows {r0}:{r1}")
        finished.append(r0)

    with pytest.raises(ValueError, match="bad rows 50:100"):
        row_threads.run(job, 100, 2)
    assert finished == [0] and set(_blas_threads()) == {2}
    out = []
    row_threads.run(lambda r0, r1: out.append((r0, r1)), 10, 2)  # the lock was released
    assert sorted(out) == [(0, 5), (5, 10)]


def test_a_split_started_during_another_runs_inline(two_blas_threads):
    inner = []

    def outer_job(r0, r1):
        if r0 == 0:  # a second split while this one runs (as from another Python thread)
            row_threads.run(lambda a, b: inner.append((a, b, threading.get_ident())), 8, 2)

    row_threads.run(outer_job, 4, 2)
    assert inner == [(0, 8, threading.get_ident())]


def _split_in_child(queue):
    out = np.zeros(6)

    def job(r0, r1):
        out[r0:r1] = np.arange(r0, r1)

    row_threads.run(job, 6, 2)
    queue.put(out.tolist())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_a_fresh_pool(two_blas_threads):
    row_threads.run(lambda r0, r1: None, 4, 2)  # the parent has a pool (and its threads) now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_split_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the child hung or failed in a split (inherited pool without threads?)"
    assert queue.get(timeout=5) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


# ---------------------------------------------------------------------------------------------------------
# the ops: split vs unsplit results
def _mlp_case(rng, n=5, c=6, h=7, w=3, d=20):
    x = rng.standard_normal((n, h, w, c)).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last
    params = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((d, c, 1, 1), (d,), (c, d, 1, 1), (c,))]
    residual = rng.standard_normal((n, c, h, w)).astype(np.float32)
    return x, params, residual


def _mlp_run(x, params, residual, g, approximate):
    lx = lucid.Tensor(x, requires_grad=True)
    lp = [lucid.Tensor(p, requires_grad=True) for p in params]
    lr = lucid.Tensor(residual, requires_grad=True)
    out = fused.conv_mlp_gelu(lx, *lp, approximate=approximate, residual=lr)
    out.backward(lucid.tensor(g))
    with lucid.no_grad():
        inference = fused.conv_mlp_gelu(lucid.tensor(x), *map(lucid.tensor, params), approximate=approximate,
                                        residual=lucid.tensor(residual)).numpy()
    return [out.detach().numpy(), inference, lx.grad.numpy(), lr.grad.numpy()] + [p.grad.numpy() for p in lp]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_fused_mlp_split_matches_unsplit(two_blas_threads, monkeypatch, approximate):
    rng = np.random.default_rng(0)
    x, params, residual = _mlp_case(rng)  # 105 rows: 2 parts of 52/53 rows
    g = rng.standard_normal(residual.shape).astype(np.float32)
    monkeypatch.setattr(fused, "MLP_MIN_ROWS_PER_THREAD", 16)
    monkeypatch.setattr(fused, "MLP_MIN_CHUNK_ROWS", 8)
    monkeypatch.setattr(fused, "MLP_CHUNK_BYTES", 20 * 4 * 12)  # ~12-row chunks: several, the last one short
    calls = []
    real = gelu_kernels.bias_forward
    monkeypatch.setattr(gelu_kernels, "bias_forward",
                        lambda pre, *a, **k: calls.append((threading.get_ident(), len(pre), row_threads.inside()))
                        or real(pre, *a, **k))
    split = _mlp_run(x, params, residual, g, approximate)
    threads = {c[0] for c in calls}
    assert threading.get_ident() in threads and len(threads) >= 2 and all(c[2] for c in calls)  # inside a split: serial kernels
    # 53 rows per part, chunks of at least max(MLP_MIN_CHUNK_ROWS, 4 x 6 channels) rows: 2 per part
    assert sorted(c[1] for c in calls) == [25, 25, 26, 26, 27, 27, 27, 27]  # training forward, inference
    monkeypatch.setenv("LUCID_ROW_THREADS", "0")
    calls.clear()
    whole = _mlp_run(x, params, residual, g, approximate)
    assert {c[1] for c in calls} == {105}
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_residual", [True, False])
def test_inference_mlp_with_few_rows_splits_over_hidden_units(two_blas_threads, monkeypatch, with_residual):
    """Fewer rows than 4 x in-channels: inference splits fc1's columns / fc2's rows over the threads and sums
    the partial outputs; the result is the unsplit one, and training still splits by rows."""
    rng = np.random.default_rng(3)
    x, params, residual = _mlp_case(rng, n=2, h=3, w=2, c=6, d=20)  # 12 rows < 4 x 6
    residual = residual if with_residual else None
    monkeypatch.setattr(fused, "MLP_MIN_ROWS_PER_THREAD", 8)
    calls = []
    real = gelu_kernels.bias_forward
    monkeypatch.setattr(gelu_kernels, "bias_forward",
                        lambda pre, *a, **k: calls.append((threading.get_ident(), pre.shape)) or real(pre, *a, **k))

    def run():
        with lucid.no_grad():
            return fused.conv_mlp_gelu(lucid.tensor(x), *map(lucid.tensor, params),
                                       residual=None if residual is None else lucid.tensor(residual)).numpy()

    split = run()
    assert sorted(c[1] for c in calls) == [(12, 10), (12, 10)] and len({c[0] for c in calls}) == 2
    monkeypatch.setenv("LUCID_ROW_THREADS", "0")
    calls.clear()
    whole = run()
    assert [c[1] for c in calls] == [(12, 20)]
    np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-5)
    w1, b1, w2, b2 = params
    x2 = x.transpose(0, 2, 3, 1).reshape(-1, 6).astype(np.float64)
    pre = x2 @ w1.reshape(20, 6).T + b1
    gelu = 0.5 * pre * (1 + scipy.special.erf(pre / np.sqrt(2)))
    expected = (gelu @ w2.reshape(6, 20).T + b2).reshape(2, 3, 2, 6).transpose(0, 3, 1, 2)
    if residual is not None:
        expected = expected + residual
    np.testing.assert_allclose(split, expected, rtol=1e-4, atol=1e-5)


def test_mixer_forward_split_matches_unsplit(two_blas_threads, monkeypatch):
    rng = np.random.default_rng(1)
    monkeypatch.setattr(mixer, "SPLIT_MIN_ELEMENTS", 100)
    for hw in (6, 3):  # per-branch way (36 px) and fused way (9 px)
        br = mixer.Branches(4, 3, (4, 7, 10), ((3, 3), (1, 5), (5, 1)), ((1, 1), (0, 2), (2, 0)))
        x = rng.standard_normal((7, hw, hw, 13)).astype(np.float32)
        ws = [rng.standard_normal((3,) + k).astype(np.float32) for k in br.kernel]
        bs = [rng.standard_normal(3).astype(np.float32) for _ in ws]
        monkeypatch.setenv("LUCID_ROW_THREADS", "1")
        kept_split = []
        split = mixer.forward(x, ws, bs, br, keep=kept_split)
        monkeypatch.setenv("LUCID_ROW_THREADS", "0")
        kept_whole = []
        whole = mixer.forward(x, ws, bs, br, keep=kept_whole)
        np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(split, mixer.forward_per_branch(x, ws, bs, br), rtol=1e-5, atol=1e-5)
        assert len(kept_split) == len(kept_whole)
        for a, b in zip(kept_split, kept_whole):
            np.testing.assert_array_equal(a, b)


def test_patchify_split_over_images_matches_reference(two_blas_threads, monkeypatch):
    from lucid.kernels import patchify

    if not patchify.HAVE_NUMBA:
        pytest.skip("numba is not installed")  # pragma: no cover
    monkeypatch.setattr(patchify, "SPLIT_MIN_ELEMENTS", 100)
    calls = []
    real_run = row_threads.run
    monkeypatch.setattr(row_threads, "run", lambda job, rows, parts: (calls.append(parts), real_run(job, rows, parts)))
    x = np.random.default_rng(0).standard_normal((5, 3, 9, 10)).astype(np.float32)  # 2x3 patches, rest dropped
    got = patchify.patches(x, 4, 3, 2, 3)
    assert calls == [2]
    np.testing.assert_array_equal(got, patchify.patches_ref(x, 4, 3, 2, 3))
