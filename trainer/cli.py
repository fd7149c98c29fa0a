"""What the scripts share: turning expected failures into one line on stderr and a non-zero exit."""
from __future__ import annotations

import sys


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def expected_errors() -> tuple:
    """Exceptions that mean bad input (config, data, checkpoint), not a bug: shown without a traceback."""
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .engine import TrainingDiverged

    return (ConfigError, DataError, CheckpointError, TrainingDiverged, FileNotFoundError)


def run_guarded(fn, on_error=fail):
    try:
        return fn()
    except expected_errors() as exc:
        on_error(str(exc))
    except KeyboardInterrupt:
        on_error("interrupted", 130)
