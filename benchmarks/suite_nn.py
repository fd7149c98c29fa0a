"""Suite "nn": the layer ops, gathered from the per-family suites (conv/pool, norm) that exist."""
from __future__ import annotations

import importlib


def run(args) -> list:
    from . import suite_nn_conv

    rows = list(suite_nn_conv.run(args))
    try:
        norm = importlib.import_module("benchmarks.suite_nn_norm")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.suite_nn_norm":
            raise
    else:
        rows += list(norm.run(args))
    return rows
