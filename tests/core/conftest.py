"""Prints the worst lucid-vs-torch relative errors per op after a run of the core parity tests.

Under pytest-xdist each worker keeps its own table, so the summary appears only in runs without ``-n``;
set ``LUCID_PARITY_JSON=path`` to also write the table to a JSON file (per process; last writer wins).
"""
from __future__ import annotations

import json
import os

from . import _parity


def pytest_terminal_summary(terminalreporter):
    if not _parity.WORST:
        return
    rows = sorted(_parity.WORST.items(), key=lambda kv: -max(kv[1]))
    tr = terminalreporter
    tr.section("lucid vs torch: worst relative errors (forward / gradient)")
    for name, (fwd, grad) in rows:
        tr.write_line(f"{name:40s} fwd {fwd:9.2e}   grad {grad:9.2e}")
    path = os.environ.get("LUCID_PARITY_JSON")
    if path:
        with open(path, "w") as f:
            json.dump({k: {"forward": v[0], "grad": v[1]} for k, v in rows}, f, indent=1)
