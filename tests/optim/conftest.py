"""Prints the worst lucid-vs-torch parameter errors of the optimizer trajectory tests (runs without -n)."""
from __future__ import annotations

from . import _common


def pytest_terminal_summary(terminalreporter):
    if not _common.WORST:
        return
    tr = terminalreporter
    tr.section("lucid.optim vs torch.optim: worst relative parameter error over 50 steps")
    for name, err in sorted(_common.WORST.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"{err:9.2e}  {name}")
