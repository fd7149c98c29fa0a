"""Time lucid against PyTorch in one process on the same inputs and print ratios (lucid / torch).

    python scripts/bench.py                 # every suite
    python scripts/bench.py core nn         # chosen suites
    python scripts/bench.py model --json bench.json --threads 2
    python scripts/bench.py model --device gpu  # the model rows on CUDA (needs CuPy and torch with CUDA)

Suites live in benchmarks/suite_<name>.py and expose ``run(args) -> list[Row]``. Ratios below 1 mean lucid
is faster. Absolute times depend on the machine; compare ratios.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import platform
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUITES = ["core", "nn", "optim", "model"]


def _numba_layer() -> str | None:
    """The threading layer numba uses (lucid.backends.cpu.configure() selects "workqueue")."""
    try:
        import numba

        return numba.threading_layer()
    except Exception:  # numba missing, or no parallel kernel has run yet
        try:
            import numba

            return str(numba.config.THREADING_LAYER)
        except Exception:
            return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", default=None, help=f"suites to run (default all): {SUITES}")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and BLAS (default 2)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions per case (median is kept)")
    parser.add_argument("--quick", action="store_true", help="fewer/smaller cases (smoke test)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: the model suite on CUDA (lucid through CuPy, torch on cuda); no memory rows")
    args = parser.parse_args(argv)
    unknown = [s for s in args.suites or [] if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; expected some of {SUITES}")
    if args.device == "gpu" and (args.suites or SUITES) != ["model"]:
        parser.error(f"--device gpu: only the model suite has GPU rows (asked for {args.suites or SUITES})")

    import lucid

    lucid.backends.cpu.configure()  # as the train and evaluate scripts run: lucid/backends/cpu.py
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for name in args.suites or SUITES:
        try:
            module = importlib.import_module(f"benchmarks.suite_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.suite_{name}":
                print(f"(suite {name!r} not written yet)", file=sys.stderr)
                continue
            raise
        for row in module.run(args):
            rows.append(row)
            print(f"{row.suite:6s} {row.case:48s} lucid {row.lucid_ms:9.2f} ms  torch {row.torch_ms:9.2f} ms  "
                  f"ratio {row.ratio:6.2f}" + "".join(f"  {k}={v}" for k, v in row.extra.items()), flush=True)
    if args.json:
        meta = {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "torch": torch.__version__, "threads": args.threads,
                "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "numba_threading_layer": _numba_layer(),
                "device": args.device}
        tmp = pathlib.Path(args.json + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "rows": [r.as_dict() for r in rows]}, indent=2))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
