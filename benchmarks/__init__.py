"""Benchmark suites for scripts/bench.py (dev-only: they import torch to time it beside lucid)."""
