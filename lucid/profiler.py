"""``lucid.profiler.profile``: time spent per op, forward and backward, like torch.profiler's table.

    with lucid.profiler.profile() as prof:
        loss = criterion(model(x), y)
        loss.backward()
    print(prof.table())          # ops sorted by total time, with calls, ms and share of the total

Times are wall-clock around each Function's ``forward`` and ``backward`` (GPU work is asynchronous: on
"gpu" the table shows launch time unless you synchronise). Only one profile is active at a time.
"""
from __future__ import annotations

import time
from collections import defaultdict

_active: list = [None]  # the running profile, read by Function.apply and the backward engine


class profile:
    """Context manager collecting per-op forward/backward call counts and times."""

    def __init__(self) -> None:
        self.records = defaultdict(lambda: [0, 0.0, 0, 0.0])  # name -> [fwd calls, fwd s, bwd calls, bwd s]
        self.wall = 0.0

    def __enter__(self) -> "profile":
        if _active[0] is not None:
            raise RuntimeError("a lucid.profiler.profile is already active")
        _active[0] = self
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._t0
        _active[0] = None

    def add(self, name: str, phase: int, seconds: float) -> None:
        rec = self.records[name]
        rec[phase] += 1
        rec[phase + 1] += seconds

    def totals(self) -> dict:
        """{op name: {"fwd_calls", "fwd_ms", "bwd_calls", "bwd_ms", "total_ms"}}."""
        return {name: {"fwd_calls": r[0], "fwd_ms": 1e3 * r[1], "bwd_calls": r[2], "bwd_ms": 1e3 * r[3],
                       "total_ms": 1e3 * (r[1] + r[3])} for name, r in self.records.items()}

    def table(self, row_limit: int = 25) -> str:
        rows = sorted(self.totals().items(), key=lambda kv: -kv[1]["total_ms"])
        ops_ms = sum(r["total_ms"] for _, r in rows)
        head = f"{'op':28s} {'fwd calls':>9s} {'fwd ms':>9s} {'bwd calls':>9s} {'bwd ms':>9s} {'total ms':>9s} {'share':>6s}"
        lines = [head, "-" * len(head)]
        for name, r in rows[:row_limit]:
            share = 100 * r["total_ms"] / ops_ms if ops_ms else 0.0
            lines.append(f"{name:28s} {r['fwd_calls']:9d} {r['fwd_ms']:9.2f} {r['bwd_calls']:9d} {r['bwd_ms']:9.2f} "
                         f"{r['total_ms']:9.2f} {share:5.1f}%")
        lines.append("-" * len(head))
        lines.append(f"ops {ops_ms:.2f} ms of {1e3 * self.wall:.2f} ms wall (the rest: Python, autograd, "
                     "data, anything outside ops)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()
