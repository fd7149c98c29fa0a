"""Plot a lucid training run against the PyTorch + timm reference run, and print the results table (issue 9).

    python benchmarks/plot_results.py --lucid-run outputs/<date>/<time>_inception_next_atto_cifar10 \\
        --torch results/torch_cifar10_atto.json --lucid-test outputs/<eval run>/metrics.json \\
        --out docs/results_cifar10_atto.png --markdown results/table.md

Inputs:
- lucid, one of
  ``--lucid-run PATH``: a run directory of scripts/train.py (its ``tb/`` is read), a TensorBoard log directory,
  or one event file. Read with tensorboard's ``EventAccumulator``: the tags ``val/top1``, ``train/epoch_loss``
  and ``epoch_time``, which the trainer writes once per epoch (at the epoch's last global step; where a resumed
  run wrote a step again, the last value written wins);
  ``--lucid-json PATH``: a JSON with per-epoch lists, either in reference_torch.py's format (``history``:
  ``val_top1``, ``train_loss``, ``train_time``) or flat (those keys, or the TensorBoard tag names, at the top
  level), or a list of per-epoch objects with those keys;
- ``--torch PATH``: the JSON written by ``benchmarks/reference_torch.py``;
- optionally ``--lucid-test PATH``: the ``metrics.json`` of ``scripts/evaluate.py`` on the test split (its
  ``top1``/``top5``), shown in the table next to the torch run's test figures.

Outputs: one PNG with two panels (validation top-1 and training loss per epoch, both runs; matplotlib Agg,
written atomically) and a Markdown table on stdout (and in ``--markdown`` if given): final and best validation
top-1 of both runs, test top-1 where known, and the mean training time per epoch of both with their ratio
(lucid / torch; the lucid trainer's ``epoch_time`` and the reference's ``train_time`` cover the same work: data
preparation, forward, backward, optimizer and schedule steps; evaluation is not included).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import tempfile
from dataclasses import dataclass, field

#: TensorBoard tags of the lucid trainer (trainer/engine.py) read for each curve.
LUCID_TAGS = {"val_top1": "val/top1", "train_loss": "train/epoch_loss", "train_time": "epoch_time"}
#: Accepted names for each series in a JSON file (first match wins).
JSON_ALIASES = {
    "val_top1": ("val_top1", "val/top1"),
    "train_loss": ("train_loss", "train/epoch_loss"),
    "train_time": ("train_time", "epoch_time"),
}


class ResultsError(Exception):
    """An input file is missing or does not hold what is needed; the message says which file and what."""


@dataclass
class Curves:
    """Per-epoch series of one run (epochs numbered from 1); ``train_time`` may be empty when unknown."""

    label: str
    source: str
    val_top1: list[float]
    train_loss: list[float]
    train_time: list[float] = field(default_factory=list)
    test_top1: float | None = None
    test_top5: float | None = None

    @property
    def epochs(self) -> list[int]:
        return list(range(1, len(self.val_top1) + 1))

    @property
    def final_top1(self) -> float:
        return self.val_top1[-1] if self.val_top1 else float("nan")

    @property
    def best(self) -> tuple[float, int]:
        """(best validation top-1, its epoch); NaN epochs (no validation) are ignored."""
        finite = [(v, i + 1) for i, v in enumerate(self.val_top1) if not math.isnan(v)]
        if not finite:
            return float("nan"), 0
        top = max(v for v, _ in finite)
        return top, next(e for v, e in finite if v == top)  # the first epoch that reached it

    def mean_time(self, skip_first: bool = False) -> float:
        t = self.train_time[1:] if skip_first else self.train_time
        return sum(t) / len(t) if t else float("nan")


# ---------------------------------------------------------------------------------------------- reading
def _event_location(path: pathlib.Path) -> pathlib.Path:
    """The event file or log directory to read for ``path`` (a run dir with tb/, a log dir, or a file)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise ResultsError(f"--lucid-run {path}: no such file or directory")
    for cand in (path / "tb", path):
        if cand.is_dir() and any(p.name.startswith("events.out.tfevents") for p in cand.iterdir()):
            return cand
    raise ResultsError(f"--lucid-run {path}: no TensorBoard event file (events.out.tfevents.*) in {path} or "
                       f"{path / 'tb'}; pass the run directory of scripts/train.py or its tb/ folder")


def read_lucid_events(path, label: str = "lucid") -> Curves:
    """Per-epoch curves of a lucid run from its TensorBoard event file(s) (all files of the log dir, merged)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    loc = _event_location(pathlib.Path(path))
    # size 0 = keep every point, not a sample. No purging: a resumed run is written with purge_step = its
    # checkpoint's step, at which the last completed epoch's scalars were logged, and TensorBoard's purge would
    # drop that epoch (steps >= purge_step). The resumed run rewrites every later step anyway, and the last
    # value written at a step wins below.
    acc = EventAccumulator(str(loc), size_guidance={SCALARS: 0}, purge_orphaned_data=False)
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    series = {}
    for key, tag in LUCID_TAGS.items():
        if tag not in tags:
            if key == "train_time":
                series[key] = []
                continue
            raise ResultsError(f"{loc}: no scalar tag {tag!r} (the lucid trainer writes it once per epoch); "
                               f"tags found: {', '.join(sorted(tags)) or 'none'}")
        by_step: dict[int, float] = {}
        for ev in acc.Scalars(tag):  # file order; a later value at the same step (a resumed run) wins
            by_step[int(ev.step)] = float(ev.value)
        series[key] = [by_step[s] for s in sorted(by_step)]
    return _check_lengths(Curves(label, str(loc), **series))


def _pick(mapping: dict, key: str, where: str, required: bool = True) -> list:
    for name in JSON_ALIASES[key]:
        if name in mapping:
            return mapping[name]
    if required:
        raise ResultsError(f"{where}: no per-epoch list for {key} (looked for keys "
                           f"{', '.join(JSON_ALIASES[key])}); keys found: {', '.join(sorted(mapping))}")
    return []


def _floats(values, what: str, where: str) -> list[float]:
    try:
        return [float("nan") if v is None else float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ResultsError(f"{where}: {what} must be a list of numbers ({exc})") from None


def read_json_curves(path, label: str, test_key: str = "test") -> Curves:
    """Per-epoch curves from a reference_torch.py JSON, a flat JSON of lists, or a list of per-epoch objects.

    ``test_key``: which test figures of a reference_torch.py JSON to take: ``"test"`` (final weights) or
    ``"test_best"`` (the weights of the best validation epoch).
    """
    path = pathlib.Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable JSON file ({exc})") from None
    where = str(path)
    test_top1 = test_top5 = None
    if isinstance(data, list):  # [{"val_top1": ..., "train_loss": ..., ...}, ...]
        if not all(isinstance(row, dict) for row in data):
            raise ResultsError(f"{where}: a list must hold one object per epoch")
        keys = {k for row in data for k in row}
        data = {k: [row.get(k) for row in data] for k in keys}
    elif not isinstance(data, dict):
        raise ResultsError(f"{where}: expected a JSON object or a list of per-epoch objects")
    else:
        test = data.get(test_key)
        if isinstance(test, dict):
            test_top1, test_top5 = test.get("top1"), test.get("top5")
        if isinstance(data.get("history"), dict):
            data = data["history"]
    curves = Curves(label, where,
                    val_top1=_floats(_pick(data, "val_top1", where), "val_top1", where),
                    train_loss=_floats(_pick(data, "train_loss", where), "train_loss", where),
                    train_time=_floats(_pick(data, "train_time", where, required=False), "train_time", where),
                    test_top1=None if test_top1 is None else float(test_top1),
                    test_top5=None if test_top5 is None else float(test_top5))
    return _check_lengths(curves)


def read_test_metrics(path) -> tuple[float, float | None]:
    """(top1, top5) from scripts/evaluate.py's metrics.json (or any JSON with ``top1`` at the top level)."""
    path = pathlib.Path(path)
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"--lucid-test {path}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"--lucid-test {path}: not a readable JSON file ({exc})") from None
    if not isinstance(m, dict) or "top1" not in m:
        raise ResultsError(f"--lucid-test {path}: expected scripts/evaluate.py's metrics.json with a 'top1' key")
    return float(m["top1"]), (float(m["top5"]) if m.get("top5") is not None else None)


def _check_lengths(c: Curves) -> Curves:
    if not c.val_top1:
        raise ResultsError(f"{c.source}: no epochs recorded")
    if len(c.train_loss) != len(c.val_top1) or (c.train_time and len(c.train_time) != len(c.val_top1)):
        raise ResultsError(f"{c.source}: per-epoch series differ in length (val top-1 {len(c.val_top1)}, train "
                           f"loss {len(c.train_loss)}, epoch time {len(c.train_time)})")
    return c


# --------------------------------------------------------------------------------------------- plotting
def plot(runs: list[Curves], out, title: str | None = None) -> pathlib.Path:
    """Two panels (val top-1, train loss) with one line per run; the PNG is written atomically to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = pathlib.Path(out)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    styles = [dict(color="tab:blue", marker="o"), dict(color="tab:orange", marker="s", linestyle="--")]
    for c, style in zip(runs, styles * len(runs)):
        ax_acc.plot(c.epochs, c.val_top1, label=f"{c.label} (final {c.final_top1:.2f}%)", markersize=3, **style)
        ax_loss.plot(c.epochs, c.train_loss, label=c.label, markersize=3, **style)
    ax_acc.set(xlabel="epoch", ylabel="validation top-1 (%)", title="validation top-1")
    ax_loss.set(xlabel="epoch", ylabel="training loss (label-smoothed CE)", title="training loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=130)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return out


# ------------------------------------------------------------------------------------------------ table
def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def _secs(v) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.1f}"


def _diff(a, b) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return "n/a"
    return f"{a - b:+.2f} points"


def _ratio(a, b) -> str:
    if math.isnan(a) or math.isnan(b) or b <= 0:
        return "n/a"
    return f"{a / b:.2f}x"


def markdown_table(lucid: Curves, ref: Curves, test_weights: str = "final weights") -> str:
    """The results table for docs/results.md: accuracy figures and training time per epoch of both runs."""
    lb, le = lucid.best
    rb, re_ = ref.best
    rows = [
        ("epochs", str(len(lucid.val_top1)), str(len(ref.val_top1)), ""),
        ("final val top-1 (%)", _pct(lucid.final_top1), _pct(ref.final_top1), _diff(lucid.final_top1, ref.final_top1)),
        ("best val top-1 (%)", f"{_pct(lb)} (epoch {le})", f"{_pct(rb)} (epoch {re_})", _diff(lb, rb)),
    ]
    if lucid.test_top1 is not None or ref.test_top1 is not None:
        rows.append((f"test top-1 (%), {test_weights}", _pct(lucid.test_top1), _pct(ref.test_top1),
                     _diff(lucid.test_top1, ref.test_top1)))
    if lucid.test_top5 is not None or ref.test_top5 is not None:
        rows.append((f"test top-5 (%), {test_weights}", _pct(lucid.test_top5), _pct(ref.test_top5),
                     _diff(lucid.test_top5, ref.test_top5)))
    lt, rt = lucid.mean_time(), ref.mean_time()
    rows.append(("mean train time per epoch (s)", _secs(lt), _secs(rt), _ratio(lt, rt)))
    if len(lucid.train_time) > 1 and len(ref.train_time) > 1:
        # the first epoch carries one-off costs (numba compilation / cache load, torch's warm-up)
        lt2, rt2 = lucid.mean_time(skip_first=True), ref.mean_time(skip_first=True)
        rows.append(("mean train time per epoch, epochs 2+ (s)", _secs(lt2), _secs(rt2), _ratio(lt2, rt2)))
    head = f"| | {lucid.label} | {ref.label} | {lucid.label} vs {ref.label} |"
    lines = [head, "|---|---:|---:|---:|"]
    lines += [f"| {name} | {a} | {b} | {d} |" for name, a, b, d in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Plot a lucid run against the torch/timm reference run; print the "
                                            "Markdown results table.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--lucid-run", type=pathlib.Path,
                     help="scripts/train.py run directory (reads tb/), a TensorBoard log dir or an event file")
    src.add_argument("--lucid-json", type=pathlib.Path, help="per-epoch lucid metrics as JSON (see module doc)")
    p.add_argument("--torch", type=pathlib.Path, required=True, help="JSON of benchmarks/reference_torch.py")
    p.add_argument("--lucid-test", type=pathlib.Path, default=None,
                   help="metrics.json of scripts/evaluate.py on the test split (adds lucid's test top-1)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("results/curves.png"),
                   help="PNG to write (default results/curves.png)")
    p.add_argument("--torch-test-weights", choices=("final", "best"), default="final",
                   help="which test figures of the torch JSON to show: of the final weights (default) or of the "
                        "best validation epoch's; use the same choice as the lucid checkpoint given to --lucid-test")
    p.add_argument("--markdown", type=pathlib.Path, default=None, help="also write the table to this file")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--lucid-label", default="lucid")
    p.add_argument("--torch-label", default="PyTorch + timm")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.lucid_run is not None:
            lucid = read_lucid_events(args.lucid_run, args.lucid_label)
        else:
            lucid = read_json_curves(args.lucid_json, args.lucid_label)
        if args.lucid_test is not None:
            lucid.test_top1, lucid.test_top5 = read_test_metrics(args.lucid_test)
        ref = read_json_curves(args.torch, args.torch_label,
                               "test" if args.torch_test_weights == "final" else "test_best")
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(lucid.val_top1) != len(ref.val_top1):
        print(f"warning: the runs have different epoch counts (lucid {len(lucid.val_top1)}, torch "
              f"{len(ref.val_top1)}); final figures are not comparable", file=sys.stderr)
    png = plot([lucid, ref], args.out, args.title)
    table = markdown_table(lucid, ref, "final weights" if args.torch_test_weights == "final"
                           else "best-val weights")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.markdown.with_name(f".{args.markdown.name}.tmp")
        tmp.write_text(table)
        os.replace(tmp, args.markdown)
    print(table, end="")
    print(f"\nplot: {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
