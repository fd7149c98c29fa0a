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


def compare(suite: str, case: str, lucid_fn, torch_fn, repeat: int = 5, warmup: int = 1, blocks: int = 2,
            **extra) -> Row:
    """Time lucid and torch on the same work and return a Row of medians.

    Each framework runs in ``blocks`` alternating blocks (lucid's runs, then torch's, then again), each block
    opened by ``warmup`` untimed runs. Strict run-by-run alternation would be unfair to both: OpenBLAS's and
    OpenMP's idle threads keep spinning for a while after a parallel region, so each framework's runs would
    overlap the other's spinning threads (InceptionNeXt-atto eval, 2 cores: alone lucid 24 ms / torch 21 ms,
    strictly alternated 32 / 39-48 ms, in blocks 29 / 25 ms). Alternating blocks still spread slow drifts of
    machine load over both.
    """
    per_block = [repeat // blocks + (i < repeat % blocks) for i in range(blocks)]
    times = {"lucid": [], "torch": []}
    for n in per_block:
        if n == 0:
            continue
        for name, fn in (("lucid", lucid_fn), ("torch", torch_fn)):
            for _ in range(warmup):
                fn()
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return Row(suite, case, statistics.median(times["lucid"]), statistics.median(times["torch"]), dict(extra))
