"""Peak resident memory of an InceptionNeXt training step, lucid or torch, each in a child process of its own.

    python -m benchmarks.memory --framework lucid --model inception_next_atto --size 32 --batch 128
    python -m benchmarks.memory --framework torch --model inception_next_tiny --size 224 --batch 16 --layout channels_last

The child builds the model, AdamW (weight decay 0.05) and one batch, runs one warm-up step (so lazily
allocated state, gradients, the numba kernels and the allocator's pools exist), records VmRSS, resets the
kernel's high-water mark by writing "5" to /proc/self/clear_refs (which sets VmHWM back to the current RSS),
runs ``--steps`` more steps and reads VmHWM. It prints one JSON line with the figures in MiB:
``rss_before`` (after the warm-up), ``peak`` (VmHWM after the steps) and ``delta = peak - rss_before``, the
memory a training step needs on top of what model, optimizer state and batch hold anyway; and
``over_imports = peak - rss_imports`` (VmRSS after importing the framework, before building the model), all
the memory that model, optimizer, batch and step take. The two differ by what the allocator kept from the
warm-up step: glibc hands NumPy's large (mmap'd) arrays back to the OS when they are freed, so lucid's
``rss_before`` is low and its ``delta`` high, while freed torch blocks mostly stay resident and out of ``delta``.

A fresh process per framework keeps the two from polluting each other: torch's and NumPy's allocators keep
freed memory, and an import of torch alone adds ~300 MiB of RSS that lucid never needs (the lucid child does
not import torch or timm). Linux only (it reads /proc); ``measure_in_child`` returns None elsewhere.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def available() -> bool:
    """True where /proc/self/status reports VmHWM (Linux)."""
    try:
        return "VmHWM" in pathlib.Path(_STATUS).read_text()
    except OSError:
        return False


def status_mib(field: str) -> float:
    """A memory line of /proc/self/status (``VmRSS``, ``VmHWM``, ...) in MiB; the kernel reports kB."""
    for line in pathlib.Path(_STATUS).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise KeyError(f"{field!r} not found in {_STATUS}")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS ("5" to /proc/self/clear_refs, Linux >= 4.0). False if refused, in
    which case VmHWM still holds the peak since the process started (model building included)."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _set_threads(framework: str, threads: int) -> None:
    """Thread counts as the parent's timing run has them: torch intra-op threads, or numba and BLAS threads."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        return
    # lucid before numba.set_num_threads: importing lucid selects numba's "workqueue" threading layer, and
    # starting numba's threads first would fix it to OpenMP, which spin-waits against OpenBLAS's threads.
    import lucid  # noqa: F401

    try:
        import threadpoolctl

        threadpoolctl.threadpool_limits(threads, user_api="blas")
    except ImportError:  # pragma: no cover - the BLAS keeps its default (OPENBLAS_NUM_THREADS or all cores)
        pass
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is optional for lucid
        pass


def _lucid_step(model_name: str, size: int, batch: int, num_classes: int):
    import numpy as np

    import lucid
    from lucid.models import create_model

    model = lucid.nn.fuse(create_model(model_name, num_classes=num_classes), inference=True)
    model.train()
    opt = lucid.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    crit = lucid.nn.CrossEntropyLoss(label_smoothing=0.1)
    rng = np.random.default_rng(0)
    # the trainer's batches: NCHW views of C-contiguous NHWC buffers (DESIGN.md's channels-last convention)
    x = lucid.tensor(rng.standard_normal((batch, size, size, 3), dtype=np.float32).transpose(0, 3, 1, 2))
    y = lucid.tensor(rng.integers(0, num_classes, batch))

    def step():
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()

    return step


def _torch_step(model_name: str, size: int, batch: int, num_classes: int, layout: str):
    import timm
    import torch

    model = timm.create_model(model_name, num_classes=num_classes)
    model.train()
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    y = torch.randint(0, num_classes, (batch,), generator=torch.Generator().manual_seed(1))

    def step():
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()

    return step


def measure(framework: str, model_name: str, size: int, batch: int, *, threads: int = 2, steps: int = 2,
            layout: str = "contiguous", num_classes: int = 1000) -> dict:
    """Build, warm up, reset the high-water mark, run ``steps`` training steps in *this* process; figures
    in MiB. Call it in a fresh process (``measure_in_child``) or the figures include whatever came before."""
    if framework not in ("lucid", "torch"):
        raise ValueError(f"framework must be 'lucid' or 'torch', got {framework!r}")
    if layout not in ("contiguous", "channels_last"):
        raise ValueError(f"layout must be 'contiguous' or 'channels_last', got {layout!r}")
    _set_threads(framework, threads)
    if framework == "torch":
        import timm  # noqa: F401  (imported here so that rss_imports covers the whole framework)
    # after the framework's imports, before the model: peak - rss_imports is what the model, its optimizer
    # state, the batch and the step's activations take, whatever the allocator kept from the warm-up step
    rss_imports = status_mib("VmRSS")
    if framework == "lucid":
        layout = "channels_last"  # lucid's activations always are (DESIGN.md); the option is torch's
        step = _lucid_step(model_name, size, batch, num_classes)
    else:
        step = _torch_step(model_name, size, batch, num_classes, layout)
    step()  # warm-up: optimizer state, gradient buffers, allocator pools, compiled kernels
    rss_before = status_mib("VmRSS")
    reset = reset_peak()
    for _ in range(steps):
        step()
    peak = status_mib("VmHWM")
    extra = {}
    if framework == "lucid":
        try:
            import numba

            extra["numba_layer"] = numba.threading_layer()
        except (ImportError, ValueError):  # no numba, or no parallel kernel ran (LUCID_NO_NUMBA=1)
            pass
    return {"framework": framework, "model": model_name, "size": size, "batch": batch, "layout": layout,
            "steps": steps, "rss_before": round(rss_before, 1), "peak": round(peak, 1),
            "delta": round(peak - rss_before, 1), "rss_imports": round(rss_imports, 1),
            "over_imports": round(peak - rss_imports, 1), "hwm_reset": reset, **extra}


def measure_in_child(framework: str, model_name: str, size: int, batch: int, *, threads: int = 2, steps: int = 2,
                     layout: str = "contiguous", num_classes: int = 1000, timeout: float = 600) -> dict | None:
    """``measure`` in a fresh Python process (this interpreter, repository root as working directory).
    Returns its dict, or None where /proc gives no VmHWM. A failing child raises RuntimeError with its stderr."""
    if not available():
        return None
    cmd = [sys.executable, "-m", "benchmarks.memory", "--framework", framework, "--model", model_name,
           "--size", str(size), "--batch", str(batch), "--threads", str(threads), "--steps", str(steps),
           "--layout", layout, "--num-classes", str(num_classes)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {' '.join(cmd[2:])} failed with exit code {proc.returncode}:\n"
                           f"{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"memory child {' '.join(cmd[2:])} printed no JSON line; stdout:\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--framework", required=True, choices=["lucid", "torch"])
    p.add_argument("--model", default="inception_next_atto")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=2, help="training steps measured after the warm-up step")
    p.add_argument("--layout", default="contiguous", choices=["contiguous", "channels_last"],
                   help="torch memory format of model and input (lucid is always channels-last)")
    p.add_argument("--num-classes", type=int, default=1000)
    a = p.parse_args(argv)
    if not available():
        print(f"{_STATUS} has no VmHWM (Linux only)", file=sys.stderr)
        return 2
    print(json.dumps(measure(a.framework, a.model, a.size, a.batch, threads=a.threads, steps=a.steps,
                             layout=a.layout, num_classes=a.num_classes)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
