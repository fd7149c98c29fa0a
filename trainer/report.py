"""Evaluation report rendering: Markdown report, console table, confusion-matrix PNG, image grids.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``),
never through ``pyplot``: nothing here changes the process-wide backend or needs a display, and figures are
freed as soon as they go out of scope. Every file is written atomically (to a temporary name in the same
directory, then ``os.replace``), so an interrupted evaluation never leaves a half-written report.

The ``render_*`` functions return ``uint8 (H, W, 3)`` arrays (what ``SummaryWriter.add_image(...,
dataformats="HWC")`` takes); the ``plot_*`` / ``save_*`` / ``write_*`` functions write files.
"""
from __future__ import annotations

import io
import math
import os
import re
import tempfile
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "console_table",
    "write_markdown_report",
    "render_confusion_matrix",
    "plot_confusion_matrix",
    "image_grid",
    "render_misclassified_grid",
    "save_misclassified_grid",
]


# ----------------------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------------------
def _atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> str:
    """Write ``path`` through ``write(fileobj)`` into a temp file beside it, fsync, then rename over it."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; reports get the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _write_png(array: np.ndarray, path) -> str:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array))
    return _atomic_write(path, lambda f: img.save(f, format="PNG"))


def _figure_to_array(fig) -> np.ndarray:
    """Render a matplotlib Figure on an Agg canvas and return its pixels as uint8 (H, W, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _new_figure(figsize, dpi):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi, facecolor="white")


# ----------------------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------------------
_TOPK = re.compile(r"^top(\d+)$")


def _headline(metrics: Mapping) -> list[tuple[str, str]]:
    """(column title, formatted value) for the headline figures present in ``metrics``, in a fixed order."""
    cols = []
    topk = sorted((int(m.group(1)), key) for key in metrics if (m := _TOPK.match(str(key))))
    for k, key in topk:
        cols.append((f"Top-{k} (%)", f"{float(metrics[key]):.2f}"))
    if "loss" in metrics:
        cols.append(("Loss", f"{float(metrics['loss']):.4f}"))
    if "ece" in metrics:
        cols.append(("ECE", f"{float(metrics['ece']):.4f}"))
    if "num_samples" in metrics:
        cols.append(("Samples", f"{int(metrics['num_samples'])}"))
    if not cols:
        raise ValueError(f"metrics has none of the headline keys top<k>, loss, ece, num_samples; "
                         f"got keys {sorted(map(str, metrics))}")
    return cols


def console_table(metrics: Mapping) -> str:
    """The headline figures as a small fixed-width table for the console, e.g.::

         Top-1 (%) | Top-5 (%) |   Loss |    ECE | Samples
        -----------+-----------+--------+--------+--------
             76.21 |     93.10 | 0.9512 | 0.0213 |   10000

    Uses whichever of ``top<k>``, ``loss``, ``ece``, ``num_samples`` are in ``metrics``.
    """
    cols = _headline(metrics)
    widths = [max(len(t), len(v)) for t, v in cols]
    head = " | ".join(t.rjust(w) for (t, _), w in zip(cols, widths))
    rule = "-+-".join("-" * w for w in widths)
    vals = " | ".join(v.rjust(w) for (_, v), w in zip(cols, widths))
    return "\n".join(" " + line for line in (head, rule, vals))


def _md_cell(text) -> str:
    """Escape a value for a Markdown table cell (pipes would split the cell, newlines end the row)."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _per_class_rows(metrics: Mapping, class_names: Sequence[str] | None) -> tuple[list[tuple[str, dict]], dict]:
    """(name, stats) per class in class order, and the averages, from ``per_class`` or ``confusion``."""
    per_class = metrics.get("per_class")
    if per_class is None:
        if "confusion" not in metrics:
            return [], {}
        from .metrics import per_class_report

        per_class = per_class_report(np.asarray(metrics["confusion"]), class_names)
    classes = per_class["classes"]
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if len(class_names) != len(classes):
            raise ValueError(f"class_names has {len(class_names)} names but the metrics have "
                             f"{len(classes)} classes")
        names = class_names
    else:
        names = list(classes)
    rows = list(zip(names, classes.values()))
    avgs = {k: per_class[k] for k in ("macro", "weighted") if k in per_class}
    return rows, avgs


def write_markdown_report(metrics: Mapping, class_names: Sequence[str] | None, path,
                          title: str = "Evaluation report", figures: Mapping[str, str] | None = None,
                          notes: Sequence[str] = ()) -> str:
    """Write a Markdown report: headline table, per-class table (precision, recall, F1, support), figures.

    Args:
        metrics: a dict like :meth:`trainer.metrics.MetricAccumulator.compute` returns (``top<k>``, ``loss``,
            ``ece``, ``num_samples``, ``per_class`` and/or ``confusion``).
        class_names: names shown in the per-class table, in class-index order; ``None`` uses the keys of
            ``metrics["per_class"]["classes"]``.
        path: output file; written atomically, parent directories created.
        title: top heading.
        figures: optional ``{caption: relative path}`` of images to embed (e.g. the confusion matrix PNG).
        notes: optional lines shown under the title (checkpoint, split, data set...).

    Returns:
        ``path`` as a string.
    """
    lines = [f"# {title}", ""]
    for note in notes:
        lines.append(f"- {note}")
    if notes:
        lines.append("")
    cols = _headline(metrics)
    lines += ["| " + " | ".join(t for t, _ in cols) + " |",
              "|" + "|".join("---:" for _ in cols) + "|",
              "| " + " | ".join(v for _, v in cols) + " |", ""]
    rows, avgs = _per_class_rows(metrics, class_names)
    if rows:
        lines += ["## Per-class results", "",
                  "| Class | Precision | Recall | F1 | Support |",
                  "|---|---:|---:|---:|---:|"]

        def row(name: str, s: Mapping) -> str:
            return (f"| {name} | {float(s['precision']):.4f} | {float(s['recall']):.4f} | "
                    f"{float(s['f1']):.4f} | {int(s['support'])} |")

        lines += [row(_md_cell(n), s) for n, s in rows]
        lines += [row(f"**{k} avg**", s) for k, s in avgs.items()]
        lines.append("")
    for caption, rel in (figures or {}).items():
        lines += [f"## {caption}", "", f"![{_md_cell(caption)}]({rel})", ""]
    text = "\n".join(lines)
    return _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ----------------------------------------------------------------------------------------------------------
# confusion matrix
# ----------------------------------------------------------------------------------------------------------
def _short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _confusion_layout(num_classes: int, names: Sequence[str]) -> dict:
    """Figure size (inches), font sizes and tick step for a C-class matrix; cells stay legible up to ~100."""
    c = num_classes
    annotate = c <= 20
    # inches per cell: roomy when counts are written; else the matrix is capped at 24 in (2400 px at 100 dpi;
    # C=100 -> 0.24 in cells, ImageNet-1k -> 2.4 px cells, still one pixel block per class)
    cell = 0.55 if annotate else min(0.3, 24.0 / c)
    side = max(3.0, c * cell)
    tick_fs = 9 if annotate else max(5.0, min(8.0, cell * 72 * 0.8))
    step = max(1, math.ceil(c / 120))  # at most ~120 labelled ticks per axis (ImageNet-1k: every 9th)
    label_in = max((len(n) for n in names), default=1) * tick_fs * 0.62 / 72  # text width, DejaVu Sans
    margin = 0.9 + label_in
    return {"figsize": (side + margin + 1.3, side + margin + 0.6), "annotate": annotate,
            "tick_fs": tick_fs, "step": step}


def render_confusion_matrix(confusion, class_names: Sequence[str] | None = None, *,
                            title: str = "Confusion matrix", annotate: bool | None = None,
                            figsize: tuple[float, float] | None = None, dpi: int = 100) -> np.ndarray:
    """Draw a confusion matrix and return it as a uint8 ``(H, W, 3)`` image.

    Rows are true classes, columns predicted classes, both labelled with the class names (long names are
    shortened to 24 characters; above ~120 classes every n-th name is shown). Cell colour is the count
    divided by its row total (the recall-style view: the diagonal reads as per-class recall, and large and
    small classes share one colour scale); a class with no samples is a white row. Counts are written in the
    cells when ``annotate`` (default: up to 20 classes).

    Args:
        confusion: ``(C, C)`` counts.
        class_names: ``C`` names; default ``"0"..."C-1"``.
        figsize: inches (default grows with C); the image is ``figsize * dpi`` pixels.
    """
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"confusion must be a square (C, C) matrix with C >= 1, got shape {cm.shape}")
    cm = cm.astype(np.int64, copy=False)
    c = cm.shape[0]
    names = [str(i) for i in range(c)] if class_names is None else [str(n) for n in class_names]
    if len(names) != c:
        raise ValueError(f"class_names has {len(names)} names but the confusion matrix has {c} classes")
    names = [_short(n, 24) for n in names]
    lay = _confusion_layout(c, names)
    annotate = lay["annotate"] if annotate is None else bool(annotate)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)

    fig = _new_figure(figsize or lay["figsize"], dpi)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label("fraction of the true class (row-normalised)")
    ticks = np.arange(0, c, lay["step"])
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=lay["tick_fs"])
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=lay["tick_fs"])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} (N={int(cm.sum())})")
    if annotate:
        # One text per cell (C <= ~20, so at most a few hundred artists); white on dark cells.
        fs = 9 if c <= 10 else 7
        for i, j in np.ndindex(c, c):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=fs,
                    color="white" if norm[i, j] > 0.55 else "black")
    fig.tight_layout()
    return _figure_to_array(fig)


def plot_confusion_matrix(confusion, class_names: Sequence[str] | None, path, **kwargs) -> str:
    """Save :func:`render_confusion_matrix`'s image as a PNG at ``path`` (atomically); returns the path."""
    return _write_png(render_confusion_matrix(confusion, class_names, **kwargs), path)


# ----------------------------------------------------------------------------------------------------------
# image grids
# ----------------------------------------------------------------------------------------------------------
def _to_uint8_nhwc(images, mean=None, std=None) -> np.ndarray:
    """Images as uint8 (N, H, W, C).

    uint8 input is taken as is. Float input is taken as ``[0, 1]`` pixels, or as normalised pixels
    ``(x - mean) / std`` when ``mean``/``std`` (per channel, in [0, 1] units like torchvision's Normalize)
    are given; it is un-normalised, scaled to 0-255, rounded and clipped. Layout: ``(N, H, W)`` grayscale,
    ``(N, H, W, C)`` or ``(N, C, H, W)`` (the layout of lucid's image tensors): a last axis of 1 or 3 is
    taken as channels, else a second axis of 1 or 3, else 4 (RGBA) in either place.
    """
    from .metrics import _to_numpy

    x = _to_numpy(images, "images")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), (N, C, H, W) or (N, H, W), got {x.shape}")
    # Channel axis: 1 or 3 (gray, RGB) last, else 1 or 3 second (NCHW), else 4 (RGBA) last, else 4 second.
    # Only images 1 or 3 pixels wide could be misread, and those are not worth showing.
    last, second = x.shape[-1], x.shape[1]
    if last in (1, 3) or (last == 4 and second not in (1, 3)):
        pass
    elif second in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)
    else:
        raise ValueError(f"images must have 1, 3 or 4 channels (last or second axis), got shape {x.shape}")
    if x.dtype == np.uint8:
        if mean is not None or std is not None:
            raise ValueError("mean/std apply to float (normalised) images, but the images are uint8")
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"images must be uint8 or float, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if std is not None:
        x = x * np.asarray(std, dtype=np.float32)
    if mean is not None:
        x = x + np.asarray(mean, dtype=np.float32)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def image_grid(images, ncols: int = 8, mean=None, std=None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile images into one uint8 ``(H', W', C)`` grid, row by row (image ``i`` at row ``i // ncols``,
    column ``i % ncols``), like ``torchvision.utils.make_grid`` but channels-last.

    Every cell is ``padding`` pixels apart and from the border: image ``i`` occupies rows
    ``padding + r * (H + padding)`` ... ``+ H`` and columns ``padding + c * (W + padding)`` ... ``+ W``, so
    ``H' = rows * (H + padding) + padding`` and ``W' = min(N, ncols) * (W + padding) + padding``.

    Args:
        images: ``(N, H, W, C)`` uint8, or float in [0, 1], or float normalised with ``mean``/``std``
            (per channel, [0, 1] units); ``(N, C, H, W)`` and ``(N, H, W)`` are accepted too.
        ncols: images per row.
        padding: gap in pixels; ``pad_value``: its grey level (white by default, for reports).
    """
    x = _to_uint8_nhwc(images, mean, std)
    n, h, w, ch = x.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image, got an empty batch")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    cols = min(ncols, n)
    rows = -(-n // cols)
    p = padding
    # Pad every image on its right and bottom, lay the (rows, cols) tiles out with one reshape/transpose,
    # then add the top/left border: no per-image Python loop.
    tiles = np.full((rows * cols, h + p, w + p, ch), pad_value, dtype=np.uint8)
    tiles[:n, :h, :w] = x
    grid = tiles.reshape(rows, cols, h + p, w + p, ch).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * (h + p), cols * (w + p), ch)
    out = np.full((rows * (h + p) + p, cols * (w + p) + p, ch), pad_value, dtype=np.uint8)
    out[p:, p:] = grid
    return out


def _caption_lines(true: str, pred: str, prob: float, max_chars: int) -> list[str]:
    """``"true → pred (p)"`` on one line if it fits in ``max_chars``, else broken after the arrow."""
    one = f"{true} \u2192 {pred} ({prob:.2f})"
    if len(one) <= max_chars:
        return [one]
    tail = f" ({prob:.2f})"
    return [_short(true, max(1, max_chars - 2)) + " \u2192",
            _short(pred, max(1, max_chars - len(tail))) + tail]


def _render_misclassified(images, true_names, pred_names, probs, ncols, mean, std, min_cell,
                          fontsize, dpi) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    x = _to_uint8_nhwc(images, mean, std)
    n, h, w, ch = x.shape
    if n == 0:
        raise ValueError("no images to show (the model made no mistakes, or k was 0)")
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if not (len(true_names) == len(pred_names) == probs.shape[0] == n):
        raise ValueError(f"need one true name, predicted name and probability per image: got {n} images, "
                         f"{len(true_names)} true names, {len(pred_names)} predicted names, "
                         f"{probs.shape[0]} probabilities")
    if ch == 1:
        x = np.repeat(x, 3, axis=-1)
    elif ch == 4:
        x = x[..., :3]
    # Small images (CIFAR's 32x32) are enlarged by an integer factor, nearest neighbour, so that every cell
    # is at least min_cell pixels wide: the pixels stay honest and the caption has room.
    s = max(1, math.ceil(min_cell / w))
    if s > 1:
        x = np.repeat(np.repeat(x, s, axis=1), s, axis=2)
    hs, ws = h * s, w * s
    line_px = fontsize * dpi / 72.0 * 1.25
    cap = int(math.ceil(2 * line_px + 6))  # room for two caption lines under each image
    tiles = np.full((n, hs + cap, ws, 3), 255, dtype=np.uint8)
    tiles[:, :hs] = x
    pad = 6
    grid = image_grid(tiles, ncols=ncols, padding=pad, pad_value=255)
    gh, gw = grid.shape[:2]

    fig = _new_figure((gw / dpi, gh / dpi), dpi)
    fig.figimage(grid, xo=0, yo=0, origin="upper", resize=False)
    max_chars = max(4, int(ws / (fontsize * dpi / 72.0 * 0.6)))
    cols = min(ncols, n)
    boxes = []
    for i in range(n):  # one caption per shown image (a handful), not per evaluated sample
        r, c = divmod(i, cols)
        left, top = pad + c * (ws + pad), pad + r * (hs + cap + pad)
        boxes.append((left, top, left + ws, top + hs))
        text = "\n".join(_caption_lines(str(true_names[i]), str(pred_names[i]), float(probs[i]), max_chars))
        fig.text((left + ws / 2) / gw, 1.0 - (top + hs + 3) / gh, text, ha="center", va="top",
                 fontsize=fontsize, linespacing=1.1, color="#222222")
    return _figure_to_array(fig), boxes


def render_misclassified_grid(images, true_names: Sequence[str], pred_names: Sequence[str], probs, *,
                              ncols: int = 8, mean=None, std=None, min_cell: int = 144,
                              fontsize: float = 8, dpi: int = 100) -> np.ndarray:
    """Grid of images with a caption ``"true → pred (p)"`` under each, as uint8 ``(H, W, 3)``.

    ``probs`` is the probability the model gave its (wrong) prediction. Images smaller than ``min_cell``
    pixels wide are enlarged by a whole factor (nearest neighbour). See :func:`save_misclassified_grid`.
    """
    return _render_misclassified(images, true_names, pred_names, probs, ncols, mean, std, min_cell,
                                 fontsize, dpi)[0]


def save_misclassified_grid(images, true_names: Sequence[str], pred_names: Sequence[str], probs, path, *,
                            ncols: int = 8, mean=None, std=None, min_cell: int = 144, fontsize: float = 8,
                            dpi: int = 100) -> list[tuple[int, int, int, int]]:
    """Save a PNG grid of (misclassified) images captioned ``"true → pred (p)"``, atomically.

    Args:
        images: ``N`` images as for :func:`image_grid` (uint8, or float with optional ``mean``/``std``).
        true_names, pred_names: ``N`` class names each; probs: ``N`` predicted-class probabilities.
        path: PNG file to write.
        ncols: images per row; min_cell: minimum image width in the grid (small images are enlarged).

    Returns:
        The pixel box ``(left, top, right, bottom)`` of each image in the PNG (right/bottom exclusive), in
        input order: image ``i`` sits in row ``i // ncols``, column ``i % ncols``.
    """
    arr, boxes = _render_misclassified(images, true_names, pred_names, probs, ncols, mean, std, min_cell,
                                       fontsize, dpi)
    _write_png(arr, path)
    return boxes
