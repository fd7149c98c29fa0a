"""Suite "model": InceptionNeXt eval forward and full train step, lucid vs timm/torch (issues 5 and 8).

    python scripts/bench.py model --threads 2 --json bench.json   # atto+tiny at 32x32 b128 and 224x224 b16
    python scripts/bench.py model --quick                         # atto at 32x32 b16, 2 repeats (smoke test)

Per configuration (model, image size, batch), both frameworks get the same initial weights (timm's state
dict, its own default init, copied into lucid) and the same batch (standard-normal images, random labels):
- ``eval forward``: ``model.eval()`` under no_grad / ``torch.no_grad()``.
- ``train step``: ``zero_grad``, forward, cross-entropy with label smoothing 0.1, backward, AdamW step (lr 1e-3,
  weight decay 0.05; torch's default AdamW, which on the CPU is its single-tensor loop). The weights move
  with every timed step in both frameworks alike.
Times are medians of ``--repeat`` runs per framework, timed in ``--repeat`` alternating blocks of one untimed
warm-up run and one timed run (``compare_blocks`` says why); the ratio is lucid / torch (< 1:
lucid is faster). lucid's images are the NCHW view of an NHWC buffer, as the trainer's batches are
(DESIGN.md's channels-last convention); torch runs in whichever of contiguous and channels_last memory format
was faster in a probe of each case, three alternating runs per format (``torch_layout`` in the row).

Rows' extras: ``ips_lucid``/``ips_torch`` images per second; on eval rows ``maxdiff`` (max |logits diff| /
max |torch logits| before any training step, a check that the two run the same network); on train rows
``loss_diff`` (|difference of the first step's losses|) and the peak resident memory of a training step,
measured for each framework in a child process of its own (benchmarks/memory.py): ``mem_lucid_MiB`` and
``mem_torch_MiB`` are VmHWM over two steps minus VmRSS before them, ``mem_ratio`` lucid / torch, and
``peak_lucid_MiB``/``peak_torch_MiB`` the absolute peaks (torch's include ~0.5 GiB of torch+timm import);
``total_*_MiB`` peak minus RSS after the imports (model, optimizer, batch and step), ``total_ratio`` theirs.

Threads: torch gets ``torch.set_num_threads(--threads)``; lucid's numba kernels and NumPy's BLAS get the same
count (numba.set_num_threads, threadpoolctl) for the duration of the suite. The first output line gives the
thread counts, ``OPENBLAS_CORETYPE`` (it changes single GEMMs by up to 2x on some machines) and numba's
threading layer.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import sys

import numpy as np

from . import memory
from .timing import Row, compare, time_ms

SUITE = "model"
CONFIGS = [("inception_next_atto", 32, 128), ("inception_next_tiny", 32, 128),
           ("inception_next_atto", 224, 16), ("inception_next_tiny", 224, 16)]
QUICK_CONFIGS = [("inception_next_atto", 32, 16)]
QUICK_REPEAT = 2
LR, WEIGHT_DECAY, LABEL_SMOOTHING = 1e-3, 0.05, 0.1


def _thread_limits(threads: int):
    """Context limiting NumPy's BLAS to ``threads`` (threadpoolctl) and numba to as many; restores both."""
    # lucid first: importing it selects numba's "workqueue" threading layer (lucid/kernels/__init__.py), and
    # numba.set_num_threads starts the threads, fixing the layer; before that import it would be OpenMP,
    # which spin-waits against OpenBLAS and torch and made every figure several times slower.
    import lucid  # noqa: F401

    stack = contextlib.ExitStack()
    try:
        import threadpoolctl

        stack.enter_context(threadpoolctl.threadpool_limits(threads, user_api="blas"))
    except ImportError:  # the BLAS keeps its own default (OPENBLAS_NUM_THREADS or all cores)
        pass
    try:
        import numba

        before = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        stack.callback(numba.set_num_threads, before)
    except ImportError:
        pass
    return stack


def environment(threads: int) -> dict:
    """Thread settings and the knobs that move CPU timings; runs one small lucid GELU first, so that numba
    has started its threading layer and can name it."""
    import torch

    import lucid
    import lucid.nn.functional as F
    from lucid.backends import row_threads

    env = {"threads": threads, "torch_threads": torch.get_num_threads(),
           "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
           "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"), "cpus": os.cpu_count(),
           "row_threads": "on" if row_threads.enabled() else "off"}
    try:
        import threadpoolctl

        env["blas"] = ",".join(sorted({f"{i['internal_api']}:{i['num_threads']}"
                                       for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}))
    except ImportError:
        env["blas"] = "threadpoolctl missing"
    try:
        import numba
    except ImportError:
        env["numba"] = "missing"
        return env
    env["numba_threads"] = numba.get_num_threads()
    with lucid.no_grad():
        F.gelu(lucid.ones(256, 256))
    try:
        env["numba_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel ran (e.g. LUCID_NO_NUMBA=1): say what would be used
        env["numba_layer"] = f"{numba.config.THREADING_LAYER} (configured, not started)"
    if os.environ.get("LUCID_NO_NUMBA"):
        env["LUCID_NO_NUMBA"] = os.environ["LUCID_NO_NUMBA"]
    return env


def _torch_model(name: str, state: dict, layout: str, device: str = "cpu"):
    """A timm model holding ``state`` in ``layout`` memory format on ``device`` ("cpu" or "gpu"), with its
    AdamW."""
    import timm
    import torch

    model = timm.create_model(name)
    model.load_state_dict(state)
    model = model.to(_TORCH_DEVICE[device])
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    return model, opt


_TORCH_DEVICE = {"cpu": "cpu", "gpu": "cuda"}


def _synced(fn, device: str, framework: str):
    """``fn`` that returns only after the GPU finished its work (CUDA runs asynchronously; a timer around the
    bare call would time the launches); ``fn`` itself on the CPU."""
    if device == "cpu":
        return fn
    if framework == "torch":
        import torch

        sync = torch.cuda.synchronize
    else:
        from lucid import _backend

        sync = _backend.cupy_module().cuda.runtime.deviceSynchronize

    def synced():
        out = fn()
        sync()
        return out

    return synced


def _check_device(device: str) -> None:
    """Exit with a clear message when ``device`` cannot run here."""
    if device == "cpu":
        return
    import torch

    from lucid import _backend

    problems = []
    if not _backend.gpu_available():
        problems.append("lucid needs CuPy with a CUDA device (pip install 'lucid-next[gpu]')")
    if not torch.cuda.is_available():
        problems.append("torch.cuda.is_available() is False")
    if problems:
        raise SystemExit(f"model suite --device gpu: {'; '.join(problems)}")


def _step_fns(model, opt, x, y, criterion, no_grad):
    """(eval forward, train step) closures; the same code serves both frameworks (their APIs agree)."""

    def forward():
        model.eval()
        with no_grad():
            return model(x)

    def train_step():
        model.train()
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.item())

    return forward, train_step


def _torch_fns(model, opt, x, y):
    import torch

    return _step_fns(model, opt, x, y, torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING), torch.no_grad)


def _lucid_fns(model, opt, x, y):
    import lucid

    return _step_fns(model, opt, x, y, lucid.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING), lucid.no_grad)


def compare_blocks(case: str, lucid_fn, torch_fn, repeat: int, blocks: int | None = None) -> Row:
    """benchmarks.timing.compare for this suite: by default ``repeat`` alternating blocks of one warm-up and
    one timed run each (see compare's docstring for why blocks and warm-ups).

    One timed run per block because this machine's load comes in phases of one to a few seconds (a process
    timing tiny's 32x32 eval forward back to back saw 210 265 295 316 356 340 ms): with two long blocks per
    framework, one phase could fall on one framework's block only; tiny's 32x32 eval ratio read 0.56 to 1.19
    across runs of the same code that way.
    """
    return compare(SUITE, case, lucid_fn, torch_fn, repeat=repeat, warmup=1, blocks=blocks or repeat)


def _probe_layout(name: str, state: dict, x, y, mode: str, repeat: int, device: str = "cpu") -> tuple[str, dict]:
    """Time torch's ``mode`` ("eval" or "train") in both memory formats on fresh models; the faster wins.

    The two formats run alternately, one run each per round, after one warm-up each, and each format's median
    over ``repeat`` rounds decides: timing one format after the other let a burst of machine load pick the
    slower format for torch (the 32x32 tiny eval row once compared lucid against torch's 454 ms contiguous
    run instead of its ~330 ms channels-last one).
    """
    import torch

    runs = {}
    for layout in ("contiguous", "channels_last"):
        model, opt = _torch_model(name, state, layout, device)
        xl = x.contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
        forward, train_step = _torch_fns(model, opt, xl, y)
        runs[layout] = _synced(forward if mode == "eval" else train_step, device, "torch")
        runs[layout]()  # warm-up
    times = {layout: [] for layout in runs}
    for _ in range(repeat):
        for layout, fn in runs.items():
            times[layout].append(time_ms(fn, repeat=1, warmup=0))
    medians = {layout: statistics.median(t) for layout, t in times.items()}
    return min(medians, key=medians.get), medians


def _short(name: str) -> str:
    return name.removeprefix("inception_next_")


def _config_rows(name: str, size: int, batch: int, repeat: int, threads: int, quick: bool,
                 device: str = "cpu") -> list:
    import timm
    import torch

    import lucid
    from lucid.models import create_model

    tag = f"{_short(name)} {size}x{size} b{batch}"
    print(f"model: {tag} ...", file=sys.stderr, flush=True)
    tmodel = timm.create_model(name)
    state = {k: v.detach().clone() for k, v in tmodel.state_dict().items()}
    del tmodel
    rng = np.random.default_rng(0)
    # one NHWC buffer: lucid gets its NCHW view (the trainer's layout), torch the same values in either format
    images = rng.standard_normal((batch, size, size, 3), dtype=np.float32).transpose(0, 3, 1, 2)
    labels = rng.integers(0, 1000, batch)
    lx, ly = lucid.tensor(images, device=device), lucid.tensor(labels, device=device)
    tx = torch.from_numpy(images.copy()).to(_TORCH_DEVICE[device])
    ty = torch.from_numpy(labels).to(_TORCH_DEVICE[device])

    def lucid_pair():
        model = lucid.nn.fuse(create_model(name), inference=True)  # as the trainer runs it
        model.load_state_dict({k: lucid.Tensor(v.numpy().copy()) for k, v in state.items()})
        model.to(device)
        opt = lucid.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        return tuple(_synced(fn, device, "lucid") for fn in _lucid_fns(model, opt, lx, ly))

    def torch_pair(layout):
        model, opt = _torch_model(name, state, layout, device)
        x = tx.contiguous(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
        return tuple(_synced(fn, device, "torch") for fn in _torch_fns(model, opt, x, ty))

    probe_repeat = 1 if quick else 3
    rows = []
    ips = lambda ms: round(batch / ms * 1e3, 1)  # noqa: E731

    # eval forward: untrained weights in both, so the logits must agree
    layout, _ = _probe_layout(name, state, tx, ty, "eval", probe_repeat, device)
    l_fwd, _ = lucid_pair()
    t_fwd, _ = torch_pair(layout)
    got, expected = l_fwd().numpy(), t_fwd().cpu().numpy()
    maxdiff = float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-12))
    row = compare_blocks(f"{tag} eval forward", l_fwd, t_fwd, repeat)
    row.extra.update(ips_lucid=ips(row.lucid_ms), ips_torch=ips(row.torch_ms), torch_layout=layout,
                     maxdiff=f"{maxdiff:.1e}")
    rows.append(row)
    del l_fwd, t_fwd

    # train step: fresh models and optimizers from the same state, the first step's losses compared
    layout, _ = _probe_layout(name, state, tx, ty, "train", probe_repeat, device)
    _, l_step = lucid_pair()
    _, t_step = torch_pair(layout)
    loss_diff = abs(l_step() - t_step())
    row = compare_blocks(f"{tag} train step", l_step, t_step, repeat)
    row.extra.update(ips_lucid=ips(row.lucid_ms), ips_torch=ips(row.torch_ms), torch_layout=layout,
                     loss_diff=f"{loss_diff:.1e}")
    del l_step, t_step
    if device != "cpu":  # the memory figures are the process's resident CPU memory: not the GPU's
        row.extra["device"] = device
        rows.append(row)
        return rows
    mem = {}
    for fw in ("lucid", "torch"):
        mem[fw] = memory.measure_in_child(fw, name, size, batch, threads=threads, layout=layout)
    if mem["lucid"] and mem["torch"]:
        row.extra.update(mem_lucid_MiB=mem["lucid"]["delta"], mem_torch_MiB=mem["torch"]["delta"],
                         mem_ratio=round(mem["lucid"]["delta"] / mem["torch"]["delta"], 2)
                         if mem["torch"]["delta"] > 0 else float("nan"),
                         peak_lucid_MiB=mem["lucid"]["peak"], peak_torch_MiB=mem["torch"]["peak"],
                         total_lucid_MiB=mem["lucid"]["over_imports"], total_torch_MiB=mem["torch"]["over_imports"],
                         total_ratio=round(mem["lucid"]["over_imports"] / mem["torch"]["over_imports"], 2))
        if not (mem["lucid"]["hwm_reset"] and mem["torch"]["hwm_reset"]):
            row.extra["mem_note"] = "VmHWM not reset: peaks include model building"
    rows.append(row)
    return rows


def run(args) -> list[Row]:
    import torch

    threads = int(getattr(args, "threads", 2))
    quick = bool(getattr(args, "quick", False))
    repeat = QUICK_REPEAT if quick else int(getattr(args, "repeat", 5))
    configs = QUICK_CONFIGS if quick else CONFIGS
    device = getattr(args, "device", "cpu")
    _check_device(device)
    torch.set_num_threads(threads)
    rows = []
    with _thread_limits(threads):
        env = environment(threads)
        env["device"] = device
        print(f"{SUITE:6s} env: " + "  ".join(f"{k}={v}" for k, v in env.items()), flush=True)
        for name, size, batch in configs:
            rows += _config_rows(name, size, batch, repeat, threads, quick, device)
    return rows


if __name__ == "__main__":  # python -m benchmarks.suite_model [--quick]: the rows without scripts/bench.py
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    for r in run(p.parse_args()):
        print(r.as_dict())
