"""lucid.profiler counts every op's forward and backward calls and reports them in a table."""
import pytest

import lucid


def test_profile_counts_forward_and_backward_per_op():
    x = lucid.randn(8, 4, requires_grad=True)
    w = lucid.randn(4, 3, requires_grad=True)
    with lucid.profiler.profile() as prof:
        loss = (x @ w).tanh().sum()
        loss.backward()
    totals = prof.totals()
    assert totals["MatMul"]["fwd_calls"] == 1 and totals["MatMul"]["bwd_calls"] == 1
    assert totals["Tanh"]["fwd_calls"] == 1 and totals["Sum"]["bwd_calls"] == 1
    assert all(r["total_ms"] >= 0 for r in totals.values())
    table = prof.table()
    assert "MatMul" in table and "Tanh" in table and "ms wall" in table


def test_profiling_stops_at_exit_and_cannot_nest():
    with lucid.profiler.profile() as prof:
        with pytest.raises(RuntimeError, match="already active"):
            with lucid.profiler.profile():
                pass
    lucid.ones(3).exp()
    assert "Exp" not in prof.totals()
