"""Timing helpers shared by the benchmark suites: interleaved lucid/torch runs, medians, result rows."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    """One benchmark line: a case timed for lucid and torch in the same process on the same inputs."""

    suite: str
    case: str
    lucid_ms: float
    torch_ms: float
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.lucid_ms / self.torch_ms if self.torch_ms > 0 else float("nan")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def time_ms(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def compare(suite: str, case: str, lucid_fn, torch_fn, repeat: int = 5, warmup: int = 1, **extra) -> Row:
    """Time lucid and torch alternately (so machine noise hits both) and return a Row of medians."""
    for _ in range(warmup):
        lucid_fn()
        torch_fn()
    lt, tt = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        lucid_fn()
        lt.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        torch_fn()
        tt.append((time.perf_counter() - t0) * 1e3)
    return Row(suite, case, statistics.median(lt), statistics.median(tt), dict(extra))
