"""TensorBoard event files and console summary lines for the trainer, without torch.

``SummaryWriter`` mirrors the parts of ``torch.utils.tensorboard.SummaryWriter`` the trainer uses (scalars,
images, image grids, histograms, text, hparams), but builds the protocol buffers itself from the ``tensorboard``
package (``tensorboard.compat.proto``, the hparams and text plugins) and writes them with tensorboard's own
``EventFileWriter``. The trainer must not import torch, so ``torch.utils.tensorboard`` is not an option.

Accepted array-likes everywhere: NumPy arrays and scalars, Python numbers, lucid Tensors (also GPU ones and
Parameters: they are detached and copied to the host) and CuPy arrays.

Typical use::

    with SummaryWriter(run_dir / "tb") as tb:
        tb.add_images_grid("train/inputs", x, step=0, mean=MEAN, std=STD)
        for epoch in range(epochs):
            ...
            tb.add_scalars_dict({"train/loss": loss, "val/top1": top1, "lr": lr}, step)
            print(format_epoch_line(epoch + 1, epochs, metrics, seconds))
        tb.add_hparams(flat_config, {"hparam/top1": best_top1, "hparam/loss": best_loss})

(This module is ``trainer.logging``; ``import logging`` inside it is an absolute import of the standard library's
module, kept as ``_pylogging`` so the two names are not confused.)
"""
from __future__ import annotations

import io
import logging as _pylogging
import math
import numbers
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import numpy as np

from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.hparams import api_pb2 as _hp_api
from tensorboard.plugins.hparams import metadata as _hp_meta
from tensorboard.plugins.hparams import plugin_data_pb2 as _hp_data
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
from tensorboard.summary.writer.event_file_writer import EventFileWriter

__all__ = [
    "SummaryWriter",
    "ConsoleLogger",
    "flatten_dict",
    "format_duration",
    "format_epoch_line",
    "make_image_grid",
]

_log = _pylogging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------
# conversions
# ----------------------------------------------------------------------------------------------------------------
def _to_numpy(x: Any, what: str = "value") -> np.ndarray:
    """A host NumPy array from a NumPy/CuPy array, lucid Tensor/Parameter, or anything ``np.asarray`` takes."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (np.generic, numbers.Number)):
        return np.asarray(x)
    # lucid (or torch) tensors: detach so Parameters that require grad can be read, then copy to the host.
    if hasattr(x, "detach") and hasattr(x, "numpy"):
        return np.asarray(x.detach().numpy())
    if hasattr(x, "get") and hasattr(x, "__cuda_array_interface__"):  # CuPy
        return np.asarray(x.get())
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - message only
        raise TypeError(f"{what}: cannot convert {type(x).__name__} to a NumPy array") from exc


def _to_float(x: Any, what: str) -> float:
    """A Python float from a number, 0-d/size-1 array or one-element tensor; errors name ``what``."""
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, numbers.Real):
        return float(x)
    arr = _to_numpy(x, what)
    if arr.size != 1:
        raise ValueError(f"{what}: a scalar needs exactly one element, got shape {tuple(arr.shape)}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{what}: expected a real number, got dtype {arr.dtype}")
    return float(arr.reshape(()).item())


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"tag must be a non-empty str, got {tag!r}")
    return tag


def _check_step(step: Any) -> int | None:
    if step is None:
        return None
    try:
        s = int(step)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"step must be an int, got {step!r}") from exc
    if s != step:
        raise ValueError(f"step must be a whole number, got {step!r}")
    return s


def flatten_dict(d: Mapping, sep: str = ".", prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings: ``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}``; key order is kept."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten_dict(v, sep, key))
        else:
            out[key] = v
    return out


# ----------------------------------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------------------------------
def _float_to_uint8(a: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 the way torch's SummaryWriter does it (scale by 255, clip, truncate)."""
    return np.clip(a.astype(np.float32, copy=False) * np.float32(255.0), 0, 255).astype(np.uint8)


def _hwc_uint8(img: Any, dataformats: str) -> np.ndarray:
    """Convert one image to an (H, W, C) uint8 array with C in {1, 3, 4}."""
    a = _to_numpy(img, "image")
    fmt = dataformats.upper()
    if fmt not in ("HWC", "CHW", "HW"):
        raise ValueError(f"dataformats must be 'HWC', 'CHW' or 'HW', got {dataformats!r}")
    if a.ndim != len(fmt):
        raise ValueError(f"image with dataformats={fmt!r} must be {len(fmt)}-D, got shape {tuple(a.shape)}")
    if fmt == "HW":
        a = a[:, :, None]
    elif fmt == "CHW":
        a = a.transpose(1, 2, 0)
    if a.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must have 1, 3 or 4 channels, got shape {tuple(a.shape)} ({fmt})")
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.floating):
        return _float_to_uint8(a)
    raise TypeError(f"image must be uint8 (0..255) or float (0..1), got dtype {a.dtype}")


def _png_image(hwc: np.ndarray) -> Summary.Image:
    """PNG-encode an (H, W, C) uint8 array into a ``Summary.Image``."""
    from PIL import Image  # imported here: only image logging needs Pillow

    h, w, c = hwc.shape
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
    pil = Image.fromarray(np.ascontiguousarray(hwc[:, :, 0] if c == 1 else hwc), mode=mode)
    buf = io.BytesIO()
    # compress_level 1: logging runs inside the training loop; the size gain of level 6+ is small for photos.
    pil.save(buf, format="PNG", compress_level=1)
    return Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=buf.getvalue())


def make_image_grid(images: Any, ncols: int = 8, mean: Any = None, std: Any = None, padding: int = 2,
                    pad_value: int = 0) -> np.ndarray:
    """Tile a batch of images into one (H', W', C) uint8 grid, laid out like ``torchvision.utils.make_grid``.

    Args:
        images: float (N, C, H, W), normalised as the model sees it when ``mean``/``std`` are given (each a
            scalar or one value per channel; ``x * std + mean`` is undone first) or already in [0, 1]; or
            uint8 (N, H, W, C) straight from a data set. C is 1, 3 or 4.
        ncols: images per row (``nrow`` in torchvision).
        padding: pixels between images and around the border (as torchvision; none for a single image).
        pad_value: uint8 value of the padding.

    Returns:
        (ymaps * (H + padding) + padding, xmaps * (W + padding) + padding, C) uint8, where
        ``xmaps = min(ncols, N)`` and ``ymaps = ceil(N / xmaps)``.
    """
    a = _to_numpy(images, "images")
    if a.ndim != 4:
        raise ValueError(f"images must be 4-D (N, C, H, W) float or (N, H, W, C) uint8, got shape {tuple(a.shape)}")
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if a.dtype == np.uint8:
        if mean is not None or std is not None:
            raise ValueError("mean/std apply to float (N, C, H, W) images; uint8 images are taken as they are")
        nhwc = a
    elif np.issubdtype(a.dtype, np.floating):
        c = a.shape[1]
        # (N, C, H, W) -> (N, H, W, C): free for lucid's channels-last activations, one copy otherwise.
        x = a.transpose(0, 2, 3, 1).astype(np.float32)
        if std is not None:
            s = np.asarray(std, dtype=np.float32).reshape(-1)
            if s.size not in (1, c):
                raise ValueError(f"std has {s.size} values, expected 1 or {c} (one per channel)")
            x *= s
        if mean is not None:
            m = np.asarray(mean, dtype=np.float32).reshape(-1)
            if m.size not in (1, c):
                raise ValueError(f"mean has {m.size} values, expected 1 or {c} (one per channel)")
            x += m
        nhwc = _float_to_uint8(x)
    else:
        raise TypeError(f"images must be float (N, C, H, W) or uint8 (N, H, W, C), got dtype {a.dtype}")
    n, h, w, c = nhwc.shape
    if c not in (1, 3, 4):
        layout = "(N, H, W, C)" if a.dtype == np.uint8 else "(N, C, H, W)"
        raise ValueError(f"images must have 1, 3 or 4 channels; shape {tuple(a.shape)} read as {layout} has {c}")
    if n == 0:
        raise ValueError("images is empty (N = 0): nothing to show")
    if n == 1:  # torchvision returns a single image unpadded
        return np.ascontiguousarray(nhwc[0])
    xmaps = min(ncols, n)
    ymaps = -(-n // xmaps)
    ch, cw = h + padding, w + padding
    grid = np.full((ymaps * ch + padding, xmaps * cw + padding, c), pad_value, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, xmaps)
        grid[r * ch + padding:r * ch + padding + h, q * cw + padding:q * cw + padding + w] = nhwc[k]
    return grid


# ----------------------------------------------------------------------------------------------------------------
# histograms
# ----------------------------------------------------------------------------------------------------------------
def _histogram_proto(values: Any, bins: Any, tag: str) -> HistogramProto:
    """HistogramProto as torch's ``make_histogram`` builds it (TensorBoard draws right bucket limits only, so
    leading/trailing empty buckets are trimmed and one empty bucket is kept on the left)."""
    v = _to_numpy(values, f"histogram {tag!r}")
    if not (np.issubdtype(v.dtype, np.number) or v.dtype == np.bool_):
        raise TypeError(f"histogram {tag!r}: values must be numeric, got dtype {v.dtype}")
    # float64 here: the statistics (sum, sum of squares) of millions of float32 weights need it; this is a
    # logging copy, not a tensor on the compute path.
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError(f"histogram {tag!r}: values are empty")
    finite = np.isfinite(v)
    if not finite.all():
        bad = int(v.size - np.count_nonzero(finite))
        raise ValueError(f"histogram {tag!r}: {bad} of {v.size} values are NaN or infinite")
    counts, limits = np.histogram(v, bins=bins)
    nonzero = np.flatnonzero(counts)
    start, end = int(nonzero[0]), int(nonzero[-1]) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    return HistogramProto(
        min=float(v.min()), max=float(v.max()), num=int(v.size), sum=float(v.sum()),
        sum_squares=float(np.dot(v, v)), bucket_limit=limits.tolist(), bucket=counts.tolist(),
    )


# ----------------------------------------------------------------------------------------------------------------
# hparams
# ----------------------------------------------------------------------------------------------------------------
_STATUS = {
    "success": "STATUS_SUCCESS",
    "failure": "STATUS_FAILURE",
    "running": "STATUS_RUNNING",
    "unknown": "STATUS_UNKNOWN",
}


def _hparams_summary(tag: str, data: _hp_data.HParamsPluginData) -> Summary:
    # The null tensor is what tensorboard's own hparams summary writes: some readers only index values that
    # carry a tensor.
    return Summary(value=[Summary.Value(tag=tag, metadata=_hp_meta.create_summary_metadata(data),
                                        tensor=_hp_meta.NULL_TENSOR)])


def _hparam_value(key: str, v: Any) -> tuple[str, Any, int]:
    """(field, python value, DataType) for one hparam; bool before int since bool is an int subclass."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bool):
        return "bool_value", v, _hp_api.DATA_TYPE_BOOL
    if isinstance(v, numbers.Real):
        return "number_value", float(v), _hp_api.DATA_TYPE_FLOAT64
    if isinstance(v, str):
        return "string_value", v, _hp_api.DATA_TYPE_STRING
    if isinstance(v, (list, tuple)):
        # Config lists (e.g. depths, mean/std) are shown as text; TensorBoard has no list type.
        return "string_value", str(list(v)), _hp_api.DATA_TYPE_STRING
    raise TypeError(f"hparam {key!r}: value must be bool, int, float or str (or a list of them), "
                    f"got {type(v).__name__} {v!r}")


# ----------------------------------------------------------------------------------------------------------------
# the writer
# ----------------------------------------------------------------------------------------------------------------
class SummaryWriter:
    """Write TensorBoard event files into ``log_dir`` (created if missing), without torch.

    Same method names and argument order as ``torch.utils.tensorboard.SummaryWriter`` where it has the method
    (``add_scalar(tag, value, step, walltime)``, ``add_image``, ``add_histogram``, ``add_text``,
    ``add_hparams``, ``flush``, ``close``); the extras are ``add_scalars_dict``, ``add_images_grid`` and
    ``add_histograms``. Differences from torch are stated per method.

    Every writer opens a new ``events.out.tfevents.<time>.<host>.<pid>.<n>`` file, so reopening a log dir (a
    resumed run) appends a file and never clobbers an earlier one; TensorBoard merges all files of a dir.
    Events are queued and written by tensorboard's background thread, at the latest every ``flush_secs``
    seconds, and on ``flush()``/``close()``. After ``close()`` the next ``add_*`` opens a fresh file (as torch).

    Args:
        log_dir: directory of the run (a ``str`` or ``os.PathLike``).
        flush_secs: longest time an event waits in memory before it is written.
        max_queue: events queued before an ``add_*`` call blocks on the writer thread.
        purge_step: for a resumed run: TensorBoard hides events of earlier files in this dir with a step
            ``>= purge_step`` (those the crashed run wrote after its last checkpoint), as in torch.
        filename_suffix: appended to the event file name.

    Thread safety: the ``add_*`` methods may be called from several threads (e.g. the training loop and a data
    thread); events are queued under a lock.
    """

    def __init__(self, log_dir: str | os.PathLike, flush_secs: float = 10, max_queue: int = 10,
                 purge_step: int | None = None, filename_suffix: str = "") -> None:
        if log_dir is None or str(log_dir) == "":
            raise ValueError("log_dir must be a directory path, got an empty value")
        if not (isinstance(flush_secs, numbers.Real) and flush_secs > 0):
            raise ValueError(f"flush_secs must be a positive number of seconds, got {flush_secs!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, numbers.Integral) or max_queue < 1:
            raise ValueError(f"max_queue must be a positive int, got {max_queue!r}")
        self.log_dir = os.fspath(log_dir)
        self.flush_secs = flush_secs
        self.max_queue = int(max_queue)
        self.filename_suffix = filename_suffix
        self.purge_step = _check_step(purge_step)
        self._lock = threading.RLock()
        self._writer: EventFileWriter | None = None
        self._max_step = -1  # largest step written so far; add_hparams logs its metrics there
        self._get_writer()

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _get_writer(self) -> EventFileWriter:
        with self._lock:
            if self._writer is None:
                self._writer = EventFileWriter(self.log_dir, self.max_queue, self.flush_secs,
                                               self.filename_suffix)
                if self.purge_step is not None:
                    # A SessionLog.START at step T makes TensorBoard drop earlier events with step >= T.
                    self._writer.add_event(event_pb2.Event(step=self.purge_step, file_version="brain.Event:2",
                                                           wall_time=time.time()))
                    self._writer.add_event(event_pb2.Event(
                        step=self.purge_step, wall_time=time.time(),
                        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
                    self.purge_step = None
            return self._writer

    def get_logdir(self) -> str:
        """The directory event files are written to."""
        return self.log_dir

    def add_summary(self, summary: Summary, step: int | None = None, walltime: float | None = None) -> None:
        """Queue a ready ``Summary`` proto as one event (``step`` defaults to 0 in TensorBoard)."""
        step = _check_step(step)
        event = event_pb2.Event(summary=summary, wall_time=time.time() if walltime is None else float(walltime))
        if step is not None:
            event.step = step
        with self._lock:
            self._get_writer().add_event(event)
            if step is not None and step > self._max_step:
                self._max_step = step

    # -- scalars -------------------------------------------------------------------------------------------------
    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None) -> None:
        """Log one scalar (stored as float32 ``simple_value``, as torch's default).

        ``scalar_value``: Python/NumPy number, or a one-element array / lucid Tensor.
        """
        tag = _check_tag(tag)
        value = _to_float(scalar_value, f"scalar {tag!r}")
        self.add_summary(Summary(value=[Summary.Value(tag=tag, simple_value=value)]), global_step, walltime)

    def add_scalars_dict(self, mapping: Mapping[str, Any], global_step: int | None = None,
                         walltime: float | None = None) -> None:
        """Log several scalars (``{tag: value}``) at one step in a single event; ``None`` values are skipped.

        Unlike torch's ``add_scalars`` this writes each tag into this run (no sub-runs per key), which is what
        per-epoch metrics (``train/loss``, ``val/top1``, ``lr`` ...) want.
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"add_scalars_dict needs a mapping of tag -> value, got {type(mapping).__name__}")
        values = [Summary.Value(tag=_check_tag(tag), simple_value=_to_float(v, f"scalar {tag!r}"))
                  for tag, v in mapping.items() if v is not None]
        if values:
            self.add_summary(Summary(value=values), global_step, walltime)

    # -- images --------------------------------------------------------------------------------------------------
    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None, walltime: float | None = None,
                  dataformats: str = "HWC") -> None:
        """Log one PNG-encoded image.

        ``img_tensor``: uint8 in 0..255 or float in [0, 1] (scaled by 255, clipped, truncated as torch does);
        shape (H, W, C) with C in {1, 3, 4} by default. Differs from torch, whose default is
        ``dataformats="CHW"``: the trainer's images are HWC; pass ``"CHW"`` or ``"HW"`` for the others.
        """
        tag = _check_tag(tag)
        image = _png_image(_hwc_uint8(img_tensor, dataformats))
        self.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), global_step, walltime)

    def add_images_grid(self, tag: str, images: Any, global_step: int | None = None, ncols: int = 8,
                        mean: Any = None, std: Any = None, padding: int = 2, walltime: float | None = None) -> None:
        """Log a batch as one grid image (see ``make_image_grid`` for shapes and layout).

        ``images``: float (N, C, H, W), denormalised with ``x * std + mean`` when given, else in [0, 1]; or
        uint8 (N, H, W, C). ``ncols`` images per row.
        """
        tag = _check_tag(tag)
        grid = make_image_grid(images, ncols=ncols, mean=mean, std=std, padding=padding)
        self.add_summary(Summary(value=[Summary.Value(tag=tag, image=_png_image(grid))]), global_step, walltime)

    # -- histograms ----------------------------------------------------------------------------------------------
    def add_histogram(self, tag: str, values: Any, global_step: int | None = None, bins: Any = 64,
                      walltime: float | None = None) -> None:
        """Log a histogram of ``values`` (any shape; NaN/inf raise ``ValueError``, as do empty values).

        ``bins``: number of equal-width bins over [min, max], or explicit edges, as ``np.histogram`` takes.
        Differs from torch, whose default is ``bins="tensorflow"`` (exponential buckets); 64 equal bins read
        better for weights.
        """
        tag = _check_tag(tag)
        hist = _histogram_proto(values, bins, tag)
        self.add_summary(Summary(value=[Summary.Value(tag=tag, histo=hist)]), global_step, walltime)

    def add_histograms(self, named_values: Mapping[str, Any] | Iterable[tuple[str, Any]],
                       global_step: int | None = None, prefix: str = "", bins: Any = 64,
                       walltime: float | None = None) -> None:
        """Log many histograms in one event, e.g. ``add_histograms(model.named_parameters(), step, "weights/")``.

        Tags are ``prefix + name``; ``None`` values (e.g. a missing ``.grad``) are skipped.
        """
        items = named_values.items() if isinstance(named_values, Mapping) else named_values
        values = []
        for name, v in items:
            if v is None:
                continue
            tag = _check_tag(prefix + str(name))
            values.append(Summary.Value(tag=tag, histo=_histogram_proto(v, bins, tag)))
        if values:
            self.add_summary(Summary(value=values), global_step, walltime)

    # -- text ----------------------------------------------------------------------------------------------------
    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """Log a (Markdown) string for TensorBoard's TEXT tab; stored under ``tag + "/text_summary"`` like torch."""
        tag = _check_tag(tag)
        if not isinstance(text_string, str):
            raise TypeError(f"text {tag!r}: expected str, got {type(text_string).__name__}")
        smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        self.add_summary(Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=smd, tensor=tensor)]),
                         global_step, walltime)

    # -- hparams -------------------------------------------------------------------------------------------------
    def add_hparams(self, hparam_dict: Mapping[str, Any], metric_dict: Mapping[str, Any],
                    hparam_domain_discrete: Mapping[str, list] | None = None, run_name: str | None = None,
                    global_step: int | None = None, status: str = "success") -> None:
        """Record the run's hyper-parameters with its final metrics for TensorBoard's HPARAMS tab.

        Writes the hparams plugin's three summaries (experiment: hparam and metric names; session start: the
        values; session end: ``status``) and each metric as a scalar, which is where the tab reads the values.

        Args:
            hparam_dict: name -> bool/int/float/str (lists/tuples are shown as text, ``None`` is skipped);
                nested mappings are flattened with '.' (``{"optim": {"lr": 1}}`` -> ``optim.lr``).
            metric_dict: metric tag -> final value. Use tags not logged otherwise (``hparam/top1``), or the
                extra point lands in that tag's curve.
            hparam_domain_discrete: optional name -> list of all values the hparam can take (as torch).
            run_name: ``None`` (default) writes into this writer's own directory, so the HPARAMS row is the run
                with all its curves. Differs from torch, which always writes to a sub-run (``log_dir/<time>``);
                give ``run_name`` to get that sub-run ``log_dir/run_name``.
            global_step: step of the metric scalars; default the largest step written so far (0 if none).
            status: "success", "failure", "running" or "unknown" (the session-end status).
        """
        if not isinstance(hparam_dict, Mapping) or not isinstance(metric_dict, Mapping):
            raise TypeError(f"hparam_dict and metric_dict must be mappings, got {type(hparam_dict).__name__} "
                            f"and {type(metric_dict).__name__}")
        if status not in _STATUS:
            raise ValueError(f"status must be one of {sorted(_STATUS)}, got {status!r}")
        flat = flatten_dict(hparam_dict)
        domains = dict(hparam_domain_discrete or {})
        for k in domains:
            if k not in flat:
                raise ValueError(f"hparam_domain_discrete names {k!r}, which is not in hparam_dict "
                                 f"(known: {sorted(flat)})")

        start = _hp_data.SessionStartInfo(start_time_secs=time.time())
        infos = []
        for k, v in flat.items():
            if v is None:
                continue
            field, value, dtype = _hparam_value(k, v)
            setattr(start.hparams[k], field, value)
            info = _hp_api.HParamInfo(name=k, type=dtype)
            if k in domains:
                for d in domains[k]:
                    f2, dv, _ = _hparam_value(k, d)
                    if f2 != field:
                        raise TypeError(f"hparam_domain_discrete[{k!r}]: {d!r} is not of the type of {v!r}")
                    setattr(info.domain_discrete.values.add(), f2, dv)
            infos.append(info)
        metrics = {_check_tag(k): _to_float(v, f"metric {k!r}") for k, v in metric_dict.items()}
        experiment = _hp_api.Experiment(
            hparam_infos=infos, time_created_secs=start.start_time_secs,
            metric_infos=[_hp_api.MetricInfo(name=_hp_api.MetricName(tag=k)) for k in metrics])
        end = _hp_data.SessionEndInfo(status=_hp_api.Status.Value(_STATUS[status]), end_time_secs=time.time())

        def write(w: SummaryWriter) -> None:
            step = _check_step(global_step)
            if step is None:
                step = max(self._max_step, 0)
            w.add_summary(_hparams_summary(_hp_meta.EXPERIMENT_TAG, _hp_data.HParamsPluginData(
                experiment=experiment)), step)
            w.add_summary(_hparams_summary(_hp_meta.SESSION_START_INFO_TAG, _hp_data.HParamsPluginData(
                session_start_info=start)), step)
            if metrics:
                w.add_summary(Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]),
                              step)
            w.add_summary(_hparams_summary(_hp_meta.SESSION_END_INFO_TAG, _hp_data.HParamsPluginData(
                session_end_info=end)), step)
            w.flush()

        if run_name is None:
            write(self)
        else:
            if not isinstance(run_name, str) or not run_name or os.path.isabs(run_name):
                raise ValueError(f"run_name must be a relative directory name, got {run_name!r}")
            with SummaryWriter(os.path.join(self.log_dir, run_name), flush_secs=self.flush_secs) as sub:
                write(sub)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every queued event to disk now."""
        with self._lock:
            if self._writer is not None:
                self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file; idempotent. A later ``add_*`` opens a new file."""
        with self._lock:
            if self._writer is not None:
                self._writer.flush()
                self._writer.close()
                self._writer = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SummaryWriter(log_dir={self.log_dir!r}, open={self._writer is not None})"


# ----------------------------------------------------------------------------------------------------------------
# console
# ----------------------------------------------------------------------------------------------------------------
def format_duration(seconds: float) -> str:
    """Human duration: ``0.42s``, ``12.3s``, ``1m 05s``, ``2h 03m 04s``, ``3d 04h 05m``.

    Raises ``ValueError`` for a negative value; NaN/inf give ``"?"``.
    """
    s = float(seconds)
    if not math.isfinite(s):
        return "?"
    if s < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds!r}")
    if s < 9.995:
        return f"{s:.2f}s"
    if s < 59.95:
        return f"{s:.1f}s"
    total = int(round(s))
    d, rem = divmod(total, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d}d {h:02d}h {m:02d}m"
    if h:
        return f"{h}h {m:02d}m {sec:02d}s"
    return f"{m}m {sec:02d}s"


_PERCENT = {"acc", "accuracy", "top1", "top5", "acc1", "acc5", "top-1", "top-5"}
_THROUGHPUT = {"throughput", "img_per_sec", "images_per_sec", "img/s", "images/s", "ips"}
_LABELS = {"top1": "top-1", "top5": "top-5", "acc1": "top-1", "acc5": "top-5", "grad_norm": "grad-norm",
           "lr": "lr"}


def _format_metric(name: str, value: Any, full_key: str) -> str:
    """``name value`` with a format chosen by the metric's name (see ``format_epoch_line``)."""
    key = name.lower()
    v = _to_float(value, f"metric {full_key!r}")
    if key in _THROUGHPUT:
        return f"{v:,.0f} img/s" if math.isfinite(v) else f"{v} img/s"
    if key in ("time", "seconds", "epoch_time"):
        return f"{key.replace('_', ' ')} {format_duration(v)}"
    label = _LABELS.get(key, name)
    if not math.isfinite(v):
        return f"{label} {v}"
    if key in _PERCENT:
        return f"{label} {v:.2f}%"
    if key.endswith("loss"):
        return f"{label} {v:.4f}"
    if key == "lr" or key.endswith("_lr"):
        return f"{label} {v:.2e}"
    if key == "grad_norm":
        return f"{label} {v:.3g}"
    return f"{label} {v:.4g}"


def format_epoch_line(epoch: int, epochs: int, metrics: Mapping[str, Any], seconds: float) -> str:
    """One summary line per epoch, e.g.
    ``epoch  3/90 | train loss 2.3456 acc 34.56% | val loss 2.1000 top-1 45.67% top-5 78.90% | lr 1.00e-03
    | 1,234 img/s | 1m 23s``.

    Keys may be grouped by a ``group/`` prefix (``train/loss``, ``val/top1``): each group becomes one segment,
    in order of first appearance; keys without a prefix are segments of their own. Formats by name: ``*loss``
    4 decimals; ``acc``/``top1``/``top5`` as percentages (values already in percent, as ``metrics.json``);
    ``lr`` in e-notation; ``throughput``/``img_per_sec`` as images per second; ``grad_norm`` 3 digits; others
    4 significant digits. ``None`` values are skipped; NaN/inf print as ``nan``/``inf``.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
        raise TypeError(f"epoch must be an int, got {epoch!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    groups: dict[str, list[str]] = {}
    for key, value in metrics.items():
        if value is None:
            continue
        group, _, name = str(key).rpartition("/")
        if group:
            groups.setdefault(group, []).append(_format_metric(name, value, str(key)))
        else:
            groups.setdefault("\0" + name, []).append(_format_metric(name, value, str(key)))
    width = len(str(int(epochs)))
    parts = [f"epoch {int(epoch):>{width}d}/{int(epochs)}"]
    for group, items in groups.items():
        parts.append(" ".join(items) if group.startswith("\0") else f"{group} " + " ".join(items))
    parts.append(format_duration(seconds))
    return " | ".join(parts)


class ConsoleLogger:
    """Prints the per-epoch summary line (and other messages) without breaking tqdm progress bars.

    Args:
        logger: a ``logging.Logger`` to send lines to at INFO (Hydra then also writes them to the run's log
            file); when ``None`` lines go to ``stream``.
        stream: where lines go without a logger (default ``sys.stdout``), through ``tqdm.write`` when tqdm is
            installed so that an open progress bar is redrawn below the line.
    """

    def __init__(self, logger: _pylogging.Logger | None = None, stream: TextIO | None = None) -> None:
        self.logger = logger
        self.stream = stream
        self._lock = threading.Lock()

    def info(self, message: str) -> None:
        """Emit one message line."""
        with self._lock:
            if self.logger is not None:
                self.logger.info(message)
                return
            stream = self.stream if self.stream is not None else sys.stdout
            try:
                from tqdm import tqdm
            except ImportError:  # tqdm is optional for this helper
                stream.write(message + "\n")
                stream.flush()
            else:
                tqdm.write(message, file=stream)

    def epoch(self, epoch: int, epochs: int, metrics: Mapping[str, Any], seconds: float) -> str:
        """Format (``format_epoch_line``), emit and return the epoch's summary line."""
        line = format_epoch_line(epoch, epochs, metrics, seconds)
        self.info(line)
        return line
