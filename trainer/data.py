"""Data sets for the trainer: torchvision readers -> uint8 arrays in memory -> augmented NumPy batches.

    bundle = build_data(cfg.data, seed=cfg.seed)        # cfg.data: one of conf/data/*.yaml
    for epoch in range(epochs):
        for images, targets in bundle.train.epoch_batches(epoch):
            ...                                          # images (N, C, H, W) float32, targets (N,) int64
    for images, targets in bundle.val:                   # eval loaders: fixed order, no augmentation
        ...

What comes from where:

- ``cifar10``, ``cifar100``, ``mnist``, ``fashion_mnist`` are read by torchvision's own classes (``CIFAR10``...),
  whose ``.data`` / ``.targets`` arrays are copied once into a uint8 NHWC array; ``download`` lets torchvision
  fetch missing files, ``verify=false`` drops torchvision's md5 check (for hand-made files). Validation is a
  held-out ``val_fraction`` of train (seeded), the official test split is ``test``.
- ``imagefolder`` reads ``root/train/<class>/*`` (and ``root/val/``, optionally ``root/test/``) with
  torchvision's ``ImageFolder`` file listing; images are decoded with PIL (RGB, or L for ``in_channels=1``),
  resized to ``image_size`` and, if a split fits in ``CACHE_LIMIT_BYTES``, kept in memory after their first
  decode. Without ``val/`` a seeded ``val_fraction`` of train is held out.
- ``cifar10_sample`` is the same folder reader on the project's embedded sample (data/cifar10_sample, 2,000
  train + 500 test real CIFAR-10 images), so training works on a fresh machine without a network.

Batches: a train loader shuffles with a permutation drawn from ``(seed, epoch)`` only, drops the last partial
batch and augments batch ``b`` of epoch ``e`` with ``np.random.default_rng([seed, e, b])`` (see augment.py), so
any batch can be recomputed alone and ``epoch_batches(e, start_batch=k)`` resumes an interrupted epoch with
exactly the batches the uninterrupted run would have seen. Batches are prepared ahead in a background thread
(``num_workers`` > 0; decoding of folder images uses ``num_workers`` threads); an exception there is re-raised
in the consumer, and leaving the loop early stops and joins the thread.

Layout: images come back as the NCHW **view** of a C-contiguous NHWC buffer (the project's channels-last
convention, see DESIGN.md): ``images.shape == (N, C, H, W)`` and ``images.transpose(0, 2, 3, 1)`` is free.
Copy with ``np.ascontiguousarray(images.transpose(0, 2, 3, 1))`` before a host-to-GPU transfer to keep that.

torchvision is imported only inside ``build_data`` (it is a reader here, and it imports torch); batches never
contain torch tensors.
"""
from __future__ import annotations

import hashlib
import math
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from . import augment as _aug

__all__ = ["DataError", "DataBundle", "Loader", "build_data", "load_data_config", "DATA_SETS",
           "EMBEDDED_SAMPLE_DIR", "CACHE_LIMIT_BYTES"]

#: The embedded CIFAR-10 sample, found relative to this package so it works from any working directory.
EMBEDDED_SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "cifar10_sample"
#: conf/data/*.yaml, the data configurations (read by ``load_data_config``).
DATA_CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf" / "data"
#: A folder split whose decoded uint8 array (N*H*W*C bytes) is smaller than this stays in memory.
CACHE_LIMIT_BYTES = 1 << 30
#: Batches prepared ahead of the consumer by the background thread.
PREFETCH_BATCHES = 3

# Keys of a data config and of its ``augment`` sub-config; build_data rejects missing and unknown ones.
CONFIG_KEYS = ("name", "root", "download", "verify", "image_size", "in_channels", "num_classes", "mean", "std",
               "val_fraction", "batch_size", "eval_batch_size", "num_workers", "augment")
AUGMENT_KEYS = ("crop_padding", "hflip", "mixup_alpha", "cutmix_alpha", "mixup_prob", "mixup_switch_prob")

# SeedSequence spawn keys that keep the shuffle and split streams apart from the per-batch augmentation
# streams ``default_rng([seed, epoch, batch])`` (a spawn key changes the hashed entropy, see numpy's docs).
_SHUFFLE_KEY = (1,)
_SPLIT_KEY = (2,)


class DataError(Exception):
    """A data set cannot be built: missing or corrupt files, or a bad data configuration.

    The message is one line that says what was wrong, where the loader looked, and what to do about it.
    """


# ----------------------------------------------------------------------------------- torchvision data sets
@dataclass(frozen=True)
class _TorchvisionSet:
    cls_name: str          # torchvision.datasets class
    title: str             # human name for messages
    folder: str            # where torchvision keeps the files below root
    url: str               # where the official files come from (for the "how to get it" hint)
    manual: str            # how to put them in place by hand; {url}, {root} and {where} are filled in


_UNTAR = "download {url} and extract it into {root}"
_GUNZIP = "download the four *-ubyte.gz files of {url} into {where} and gunzip them there"
_TORCHVISION_SETS = {
    "cifar10": _TorchvisionSet("CIFAR10", "CIFAR-10", "cifar-10-batches-py",
                               "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", _UNTAR),
    "cifar100": _TorchvisionSet("CIFAR100", "CIFAR-100", "cifar-100-python",
                                "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", _UNTAR),
    "mnist": _TorchvisionSet("MNIST", "MNIST", "MNIST/raw",
                             "https://ossci-datasets.s3.amazonaws.com/mnist/", _GUNZIP),
    "fashion_mnist": _TorchvisionSet("FashionMNIST", "Fashion-MNIST", "FashionMNIST/raw",
                                     "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", _GUNZIP),
}
_FOLDER_SETS = ("imagefolder", "cifar10_sample")
#: Every data set name build_data knows.
DATA_SETS = tuple(_TORCHVISION_SETS) + _FOLDER_SETS


# ------------------------------------------------------------------------------------------ configuration
def load_data_config(name: str, /, **overrides: Any) -> dict:
    """Read ``conf/data/<name>.yaml`` outside Hydra, apply ``overrides`` and resolve interpolations.

    Handy in scripts and tests: ``build_data(load_data_config("cifar100", root="/data/c100"), seed=0)``.
    ``augment={"mixup_alpha": 0.8}`` merges into the augment sub-config.
    """
    from omegaconf import OmegaConf  # noqa: PLC0415 (hydra's config library; only needed here)

    path = DATA_CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in DATA_CONFIG_DIR.glob("*.yaml"))
        raise DataError(f"no data config {path}; known data configs: {', '.join(known)}")
    cfg = OmegaConf.merge(OmegaConf.load(path), OmegaConf.create(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


@dataclass(frozen=True)
class _Config:
    name: str
    root: str | None
    download: bool
    verify: bool
    image_size: int
    in_channels: int
    num_classes: int | None
    mean: tuple
    std: tuple
    val_fraction: float
    batch_size: int
    eval_batch_size: int
    num_workers: int
    crop_padding: int
    hflip: bool
    mixup: _aug.MixupConfig


def _as_dict(cfg) -> dict:
    """A plain dict from a Mapping or an OmegaConf DictConfig (interpolations resolved)."""
    if type(cfg).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf  # noqa: PLC0415

        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:  # an unresolvable ${...}: say which
            raise DataError(f"data config does not resolve: {_one_line(exc)}") from exc
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise DataError(f"data config must be a mapping (conf/data/*.yaml), got {type(cfg).__name__}")


def _parse_config(cfg_data) -> _Config:
    d = _as_dict(cfg_data)
    missing = [k for k in CONFIG_KEYS if k not in d]
    unknown = [k for k in d if k not in CONFIG_KEYS]
    if unknown:
        raise DataError(f"unknown data config key(s) {', '.join(map(repr, unknown))}; "
                        f"expected keys: {', '.join(CONFIG_KEYS)}")
    if missing:
        raise DataError(f"data config lacks key(s) {', '.join(missing)} (see conf/data/*.yaml)")
    name = d["name"]
    if name not in DATA_SETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATA_SETS)} "
                        f"(for your own images use data=imagefolder data.root=<folder with train/ and val/>)")
    aug = d["augment"] or {}
    if not isinstance(aug, Mapping):
        raise DataError(f"data.augment must be a mapping with keys {', '.join(AUGMENT_KEYS)}, got {aug!r}")
    aug = dict(aug)
    bad = [k for k in aug if k not in AUGMENT_KEYS]
    if bad:
        raise DataError(f"unknown data.augment key(s) {', '.join(map(repr, bad))}; expected: {', '.join(AUGMENT_KEYS)}")
    lacking = [k for k in AUGMENT_KEYS if k not in aug]
    if lacking:
        raise DataError(f"data.augment lacks key(s) {', '.join(lacking)}")

    def integer(key, value, low):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DataError(f"data.{key} must be an integer >= {low}, got {value!r}")
        return int(value)

    def number(key, value, low, high, high_open=False):
        ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        if not ok or not (low <= value <= high) or (high_open and value == high):
            bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
            raise DataError(f"data.{key} must be a number in {bound}, got {value!r}")
        return float(value)

    def boolean(key, value):
        if not isinstance(value, bool):
            raise DataError(f"data.{key} must be true or false, got {value!r}")
        return value

    in_channels = integer("in_channels", d["in_channels"], 1)
    if in_channels not in (1, 3):
        raise DataError(f"data.in_channels must be 1 (grey) or 3 (RGB), got {in_channels}")
    stats = {}
    for key in ("mean", "std"):
        v = d[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v]
        if not isinstance(v, Sequence) or isinstance(v, str) or len(v) != in_channels:
            raise DataError(f"data.{key} must be a list of {in_channels} numbers (one per channel, "
                            f"data.in_channels={in_channels}), got {d[key]!r}")
        try:
            stats[key] = tuple(float(x) for x in v)
        except (TypeError, ValueError):
            raise DataError(f"data.{key} must hold numbers, got {d[key]!r}") from None
    if any(s <= 0 for s in stats["std"]):
        raise DataError(f"data.std must be > 0 per channel, got {list(stats['std'])}")
    num_classes = d["num_classes"]
    if num_classes is not None:
        num_classes = integer("num_classes", num_classes, 1)
    root = d["root"]
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise DataError(f"data.root must be a path or null, got {root!r}")
    mixup = _aug.MixupConfig(
        mixup_alpha=number("augment.mixup_alpha", aug["mixup_alpha"], 0.0, math.inf),
        cutmix_alpha=number("augment.cutmix_alpha", aug["cutmix_alpha"], 0.0, math.inf),
        prob=number("augment.mixup_prob", aug["mixup_prob"], 0.0, 1.0),
        switch_prob=number("augment.mixup_switch_prob", aug["mixup_switch_prob"], 0.0, 1.0))
    return _Config(
        name=name,
        root=None if root is None else os.path.expanduser(os.fspath(root)),
        download=boolean("download", d["download"]),
        verify=boolean("verify", d["verify"]),
        image_size=integer("image_size", d["image_size"], 1),
        in_channels=in_channels,
        num_classes=num_classes,
        mean=stats["mean"],
        std=stats["std"],
        val_fraction=number("val_fraction", d["val_fraction"], 0.0, 1.0, high_open=True),
        batch_size=integer("batch_size", d["batch_size"], 1),
        eval_batch_size=integer("eval_batch_size", d["eval_batch_size"], 1),
        num_workers=integer("num_workers", d["num_workers"], 0),
        crop_padding=integer("augment.crop_padding", aug["crop_padding"], 0),
        hflip=boolean("augment.hflip", aug["hflip"]),
        mixup=mixup,
    )


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------------------------------------ sources
class _ArraySource:
    """Images already in memory: a uint8 (N, H, W, C) array and (N,) int64 targets."""

    def __init__(self, images: np.ndarray, targets: np.ndarray) -> None:
        self.images = images
        self.targets = targets
        self.needs_decoding = False

    def __len__(self) -> int:
        return len(self.targets)

    def load(self, idx: np.ndarray, pool=None) -> np.ndarray:
        return self.images[idx]


def _decode_image(path: str, size: int, channels: int) -> np.ndarray:
    """One image file -> uint8 (size, size, channels): PIL decode, RGB/L conversion, bilinear resize."""
    from PIL import Image  # noqa: PLC0415

    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            if im.size != (size, size):
                # Bilinear with PIL's antialiasing when shrinking, as torchvision's Resize((s, s)) on PIL images.
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL raises these for unreadable / truncated files
        raise DataError(f"cannot decode image {path}: {_one_line(exc)}") from exc
    return arr.reshape(size, size, channels)


class _FolderSource:
    """Image files decoded on demand (PIL), cached as one uint8 array when the split fits in memory."""

    def __init__(self, paths: Sequence[str], targets: np.ndarray, image_size: int, channels: int,
                 cache_limit: int | None = None) -> None:
        if cache_limit is None:
            cache_limit = CACHE_LIMIT_BYTES  # read at call time, so it can be changed on the module
        self.paths = list(paths)
        self.targets = targets
        self.size = image_size
        self.channels = channels
        nbytes = len(self.paths) * image_size * image_size * channels
        # np.empty reserves address space only; pages are touched as images get decoded into it.
        self.cache = np.empty((len(self.paths), image_size, image_size, channels), np.uint8) \
            if nbytes < cache_limit else None
        self.decoded = np.zeros(len(self.paths), dtype=bool)
        self.needs_decoding = True

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, idx: np.ndarray, pool) -> list:
        def one(i):
            return _decode_image(self.paths[i], self.size, self.channels)
        return list(pool.map(one, idx)) if pool is not None else [one(i) for i in idx]

    def load(self, idx: np.ndarray, pool=None) -> np.ndarray:
        if self.cache is None:
            out = np.empty((len(idx), self.size, self.size, self.channels), np.uint8)
            for k, arr in enumerate(self._decode(idx, pool)):
                out[k] = arr
            return out
        todo = np.unique(idx[~self.decoded[idx]])
        if todo.size:
            for i, arr in zip(todo, self._decode(todo, pool)):
                self.cache[i] = arr
            # Set after the pixels are written; a concurrent loader at worst decodes an image twice.
            self.decoded[todo] = True
        return self.cache[idx]


# ------------------------------------------------------------------------------------------------- loader
class _Failure:
    """Carries an exception from the producer thread to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class Loader:
    """Batches of one split: ``(images, targets)`` NumPy pairs, prepared ahead in a background thread.

    Args:
        source: where images come from (built by ``build_data``).
        indices: (M,) positions in ``source`` that form this split.
        batch_size: images per batch.
        train: True for a training loader (shuffle per epoch, drop_last, augmentation); False for evaluation
            (fixed order, last partial batch kept, no augmentation).
        seed: base seed of the shuffle and of the augmentation streams.
        mean, std: per-channel normalisation of pixel values scaled to [0, 1].
        num_classes: width of soft targets under mixup/cutmix.
        crop_padding, hflip, mixup: augmentation settings (train only).
        num_workers: 0 prepares batches in the consumer's thread; >= 1 runs one producer thread that keeps
            ``prefetch`` batches ready, decoding folder images with ``num_workers`` threads.
        prefetch: bound of the producer's queue (batches prepared ahead).
        name: used in thread names (``lucid-data-<name>``) and messages.

    Yields (from ``epoch_batches``):
        images: float32 (N, C, H, W), normalised, an NCHW view of a C-contiguous NHWC buffer.
        targets: int64 (N,) class indices, or float32 (N, num_classes) soft targets on a batch where mixup or
        cutmix fired (rows sum to 1; label smoothing is the loss's job).
    """

    def __init__(self, source, indices, batch_size: int, *, train: bool, seed: int = 0, mean=(0.0,),
                 std=(1.0,), num_classes: int, crop_padding: int = 0, hflip: bool = False,
                 mixup: _aug.MixupConfig | None = None, num_workers: int = 0, prefetch: int = PREFETCH_BATCHES,
                 name: str = "loader") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.num_classes = int(num_classes)
        self.crop_padding = int(crop_padding)
        self.hflip = bool(hflip)
        self.mixup = mixup if mixup is not None else _aug.MixupConfig()
        self.num_workers = int(num_workers)
        self.prefetch = int(prefetch)
        self.name = name

    # -- sizes ---------------------------------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        """Images in this split (a train epoch sees ``len(self) * batch_size`` of them: drop_last)."""
        return int(self.indices.size)

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.train:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    @property
    def targets(self) -> np.ndarray:
        """(num_samples,) int64 targets in the split's stored order (the eval loaders' batch order)."""
        return self.source.targets[self.indices]

    def __repr__(self) -> str:
        kind = "train" if self.train else "eval"
        return (f"Loader({self.name!r}, {kind}, num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"batches={len(self)})")

    # -- batches -------------------------------------------------------------------------------------------
    def order(self, epoch: int) -> np.ndarray:
        """Source positions in the order epoch ``epoch`` visits them (a permutation drawn from seed and epoch
        for train loaders; the stored order for eval loaders)."""
        if not self.train:
            return self.indices
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch], spawn_key=_SHUFFLE_KEY))
        return self.indices[rng.permutation(self.indices.size)]

    def make_batch(self, order: np.ndarray, epoch: int, batch_index: int, pool=None):
        """Batch ``batch_index`` of an epoch whose visiting order is ``order``; pure given its arguments."""
        sel = order[batch_index * self.batch_size:(batch_index + 1) * self.batch_size]
        images = self.source.load(sel, pool)
        targets = self.source.targets[sel].astype(np.int64, copy=True)
        rng = None
        if self.train:
            rng = np.random.default_rng([self.seed, epoch, batch_index])
            images = _aug.random_crop_flip(images, self.crop_padding, self.hflip, rng)
        x = _aug.normalize(images, self.mean, self.std)
        if self.train and self.mixup.enabled:
            x, targets = _aug.mixup_cutmix(x, targets, self.num_classes, self.mixup, rng)
        return x.transpose(0, 3, 1, 2), targets

    def epoch_batches(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the batches ``start_batch, start_batch + 1, ..., len(self) - 1`` of epoch ``epoch``.

        The batches are the same whether or not the epoch started at 0 (mid-epoch resume). Stopping the
        iteration early (``break``, an exception, or closing the generator) stops the producer thread and
        waits for it.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        n = len(self)
        if isinstance(start_batch, bool) or not isinstance(start_batch, (int, np.integer)) \
                or not 0 <= start_batch <= n:
            raise ValueError(f"start_batch must be an integer in [0, {n}] for {self!r}, got {start_batch!r}")
        return self._iterate(int(epoch), int(start_batch))

    def __iter__(self):
        """Epoch 0's batches (eval loaders have no epoch dependence; train loaders should call epoch_batches)."""
        return self.epoch_batches(0)

    def _iterate(self, epoch: int, start: int):
        order = self.order(epoch)
        n = len(self)
        if self.num_workers == 0:
            for b in range(start, n):
                yield self.make_batch(order, epoch, b)
            return

        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            # Timed puts so that a producer blocked on a full queue notices when the consumer has gone.
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                pool = None
                if self.source.needs_decoding and self.num_workers > 1:
                    pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix=f"lucid-decode-{self.name}")
                try:
                    for b in range(start, n):
                        if stop.is_set() or not put(self.make_batch(order, epoch, b, pool)):
                            return
                finally:
                    if pool is not None:
                        pool.shutdown(wait=True, cancel_futures=True)
                put(_END)
            except BaseException as exc:  # noqa: BLE001 (handed to the consumer, which re-raises it)
                put(_Failure(exc))

        thread = threading.Thread(target=produce, name=f"lucid-data-{self.name}", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    item = q.get(timeout=0.5)
                except queue.Empty:
                    if not thread.is_alive() and q.empty():
                        raise RuntimeError(f"data thread of {self!r} ended without finishing the epoch") from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            thread.join()


# ------------------------------------------------------------------------------------------------- bundle
@dataclass
class DataBundle:
    """What ``build_data`` returns: the loaders and what the model needs to know about the data.

    ``val`` is None when there is no validation data (``val_fraction=0`` and no val/ folder); ``test`` is None
    when the data set has no test split (an image folder without test/). ``train_eval`` reads the train split
    like an eval loader (stored order, no augmentation, ``eval_batch_size``), e.g. to measure train accuracy.
    """

    name: str
    train: Loader
    val: Loader | None
    test: Loader | None
    classes: list
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple
    std: tuple
    root: str = ""
    train_eval: Loader | None = None

    def summary(self) -> str:
        """One line for the console, e.g. ``cifar10_sample: 1800 train / 200 val / 500 test images, ...``."""
        parts = [f"{self.train.num_samples} train"]
        parts.append(f"{self.val.num_samples} val" if self.val is not None else "no val")
        parts.append(f"{self.test.num_samples} test" if self.test is not None else "no test")
        return (f"{self.name}: {' / '.join(parts)} images, {self.num_classes} classes, "
                f"{self.in_channels}x{self.image_size}x{self.image_size}, from {self.root}")


# ---------------------------------------------------------------------------------------------- building
def _holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split range(n) into sorted (train, val) positions: val is a seeded ``fraction`` of n (seed only)."""
    if fraction <= 0.0 or n == 0:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_val = min(max(int(round(fraction * n)), 1), n - 1)
    perm = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_SPLIT_KEY)).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 NHWC with 1 or 3 channels -> ``channels`` channels (grey repeated, or PIL's 'L' luma formula)."""
    have = images.shape[3]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.ascontiguousarray(np.repeat(images, 3, axis=3))
    # ITU-R 601-2 luma in PIL's fixed-point form, so an array set converts exactly as Image.convert("L").
    rgb = images.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def _resize_array(images: np.ndarray, size: int, workers: int) -> np.ndarray:
    """uint8 NHWC -> (N, size, size, C) with PIL bilinear (as folder images are resized)."""
    from PIL import Image  # noqa: PLC0415

    n, h, w, c = images.shape
    if (h, w) == (size, size):
        return images
    out = np.empty((n, size, size, c), np.uint8)

    def one(i):
        im = Image.fromarray(images[i, :, :, 0] if c == 1 else images[i])
        out[i] = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR)).reshape(size, size, c)

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(n)))
    else:
        for i in range(n):
            one(i)
    return out


def _reader_class(base, verify: bool):
    """torchvision's reader class, or (verify=false) a subclass with every md5 set to None.

    torchvision's ``check_integrity(path, None)`` only checks that the file exists, so the subclass reads
    hand-made files with torchvision's own code. The class name is kept: MNIST derives its folder from it.
    """
    if verify:
        return base
    attrs: dict = {}
    if hasattr(base, "train_list"):  # CIFAR10 / CIFAR100
        attrs["train_list"] = [[f, None] for f, _ in base.train_list]
        attrs["test_list"] = [[f, None] for f, _ in base.test_list]
        attrs["meta"] = {**base.meta, "md5": None}
        attrs["tgz_md5"] = None
    if hasattr(base, "resources"):  # MNIST family: md5 of the downloaded archives
        attrs["resources"] = [(f, None) for f, _ in base.resources]
    return type(base.__name__, (base,), attrs)


def _torchvision_files_present(spec: _TorchvisionSet, base, root: str) -> bool:
    folder = os.path.join(root, spec.folder)
    if hasattr(base, "train_list"):
        names = [f for f, _ in base.train_list + base.test_list] + [base.meta["filename"]]
    else:
        names = [os.path.splitext(f)[0] for f, _ in base.resources]
    return all(os.path.isfile(os.path.join(folder, f)) for f in names)


def _build_torchvision(cfg: _Config, seed: int) -> tuple[dict, dict]:
    import torchvision.datasets as tvd  # noqa: PLC0415 (reader only; imports torch)

    spec = _TORCHVISION_SETS[cfg.name]
    if cfg.root is None:
        raise DataError(f"data.root is null for {spec.title}; set data.root=<folder> (or LUCID_DATA_DIR)")
    root = cfg.root
    where = os.path.join(root, spec.folder)
    base = getattr(tvd, spec.cls_name)
    reader = _reader_class(base, cfg.verify)
    manual = spec.manual.format(url=spec.url, root=root, where=where)
    if not _torchvision_files_present(spec, base, root):
        if not cfg.download:
            raise DataError(f"{spec.title} not found in {where} and data.download=false: set data.download=true "
                            f"to fetch it, or {manual}, or set data.root=<folder that holds {spec.folder}>")
        try:
            reader(root, train=True, download=True)
        except Exception as exc:  # noqa: BLE001 (URLError, HTTP errors, md5 mismatch of the archive...)
            raise DataError(
                f"{spec.title} not found in {where} and download failed (no network?): {_one_line(exc, 120)}; "
                f"{manual}, or set data.root=<folder that holds {spec.folder}> (LUCID_DATA_DIR sets the "
                f"parent of every data root)") from exc
    splits = {}
    try:
        for split, train in (("train", True), ("test", False)):
            ds = reader(root, train=train, download=False)
            images = np.asarray(ds.data.numpy() if hasattr(ds.data, "numpy") else ds.data, dtype=np.uint8)
            if images.ndim == 3:  # MNIST family: (N, H, W) grey
                images = images[..., None]
            targets = np.asarray(ds.targets.numpy() if hasattr(ds.targets, "numpy") else ds.targets,
                                 dtype=np.int64)
            splits[split] = (images, targets)
        classes = list(ds.classes)
    except RuntimeError as exc:
        hint = ("their md5 sums differ from the official files: delete them to re-download, or set "
                "data.verify=false for hand-made files") if cfg.verify else "they could not be read"
        raise DataError(f"{spec.title} files in {where} were rejected by torchvision ({_one_line(exc, 100)}); "
                        f"{hint}") from exc
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{spec.title} files in {where} could not be read: {_one_line(exc)}") from exc
    _check_num_classes(cfg, classes, where)
    sources = {}
    for split, (images, targets) in splits.items():
        images = _to_channels(images, cfg.in_channels)
        images = np.ascontiguousarray(_resize_array(images, cfg.image_size, cfg.num_workers))
        sources[split] = _ArraySource(images, targets)
    train_idx, val_idx = _holdout(len(sources["train"]), cfg.val_fraction, seed)
    plan = {"train": (sources["train"], train_idx), "test": (sources["test"], None)}
    if val_idx.size:
        plan["val"] = (sources["train"], val_idx)
    return plan, {"classes": classes, "root": where}


def _check_num_classes(cfg: _Config, classes: list, where: str) -> None:
    if cfg.num_classes is not None and cfg.num_classes != len(classes):
        raise DataError(f"data.num_classes={cfg.num_classes} but {where} has {len(classes)} classes "
                        f"({', '.join(map(str, classes[:5]))}{', ...' if len(classes) > 5 else ''}); "
                        f"set data.num_classes={len(classes)} (or null to infer it)")


def _verify_manifest(root: Path, files: Sequence[str]) -> None:
    """Check ``root/MD5SUMS`` (``md5sum`` format) covers ``files`` and that their md5 sums match."""
    manifest = root / "MD5SUMS"
    if not manifest.is_file():
        raise DataError(f"data.verify=true needs {manifest} (lines '<md5>  <path relative to {root}>', as "
                        f"written by `md5sum`); create it or set data.verify=false")
    expected = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, rel = line.strip().partition(" ")
            expected[rel.strip().lstrip("*")] = digest.lower()
    for path in files:
        rel = Path(path).relative_to(root).as_posix()
        if rel not in expected:
            raise DataError(f"{path} is not listed in {manifest}: add it or set data.verify=false")
        digest = hashlib.md5(Path(path).read_bytes()).hexdigest()
        if digest != expected[rel]:
            raise DataError(f"{path} has md5 {digest} but {manifest} says {expected[rel]}: the file is corrupt "
                            f"or was changed (restore it, or set data.verify=false)")


def _build_folder(cfg: _Config, seed: int) -> tuple[dict, dict]:
    from torchvision.datasets import ImageFolder  # noqa: PLC0415 (the file listing; decoding is ours)
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset  # noqa: PLC0415

    if cfg.download:
        raise DataError(f"data.download=true is not possible for {cfg.name} (a folder of your files); "
                        f"set data.download=false")
    if cfg.root is None:
        if cfg.name != "cifar10_sample":
            raise DataError("data.root is null: set data.root=<folder holding train/<class>/*.jpg and val/>")
        root = EMBEDDED_SAMPLE_DIR
    else:
        root = Path(cfg.root)
    train_dir = root / "train"
    if not train_dir.is_dir():
        hint = (" (the embedded sample ships with the repository: restore data/cifar10_sample, e.g. "
                "`git checkout -- data/cifar10_sample`)" if cfg.name == "cifar10_sample" else "")
        raise DataError(f"no image folder at {train_dir}: {cfg.name} expects {root}/train/<class>/<image> and "
                        f"{root}/val/<class>/<image> (optionally test/); set data.root=<that folder>{hint}")
    try:
        train_set = ImageFolder(str(train_dir))
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"cannot list images in {train_dir}: {_one_line(exc)}") from exc
    classes, class_to_idx = train_set.classes, train_set.class_to_idx
    _check_num_classes(cfg, classes, str(train_dir))
    lists = {"train": train_set.samples}
    for split in ("val", "test"):
        d = root / split
        if d.is_dir():
            found, _ = find_classes(str(d))
            extra = sorted(set(found) - set(classes))
            if extra:
                raise DataError(f"{d} has class folder(s) {', '.join(extra)} that {train_dir} lacks; the classes "
                                f"of val/ and test/ must be those of train/")
            lists[split] = make_dataset(str(d), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    if cfg.verify:
        _verify_manifest(root, [p for samples in lists.values() for p, _ in samples])

    def source(samples):
        return _FolderSource([p for p, _ in samples], np.asarray([t for _, t in samples], dtype=np.int64),
                             cfg.image_size, cfg.in_channels)

    train_src = source(lists["train"])
    plan: dict = {}
    if "val" in lists:
        plan["train"] = (train_src, None)
        plan["val"] = (source(lists["val"]), None)
    else:
        train_idx, val_idx = _holdout(len(train_src), cfg.val_fraction, seed)
        plan["train"] = (train_src, train_idx)
        if val_idx.size:
            plan["val"] = (train_src, val_idx)
    if "test" in lists:
        plan["test"] = (source(lists["test"]), None)
    return plan, {"classes": list(classes), "root": str(root)}


def build_data(cfg_data, seed: int) -> DataBundle:
    """Build the train/val/test loaders of a data config (one of conf/data/*.yaml, or a dict with its keys).

    Args:
        cfg_data: the ``data`` config (DictConfig or mapping) with the keys ``CONFIG_KEYS``.
        seed: integer >= 0; fixes the validation hold-out, the shuffles and the augmentation.

    Returns:
        a ``DataBundle``.

    Raises:
        DataError: unknown data set name, bad config values, or files missing (and not downloadable),
            corrupt or unreadable; the one-line message says where it looked and what to do.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be an integer >= 0, got {seed!r}")
    cfg = _parse_config(cfg_data)
    if cfg.name in _TORCHVISION_SETS:
        plan, info = _build_torchvision(cfg, int(seed))
    else:
        plan, info = _build_folder(cfg, int(seed))
    classes = info["classes"]

    def loader(split: str, train: bool) -> Loader | None:
        if split not in plan:
            return None
        src, idx = plan[split]
        return Loader(src, np.arange(len(src)) if idx is None else idx,
                      cfg.batch_size if train else cfg.eval_batch_size, train=train, seed=int(seed),
                      mean=cfg.mean, std=cfg.std, num_classes=len(classes), crop_padding=cfg.crop_padding,
                      hflip=cfg.hflip, mixup=cfg.mixup, num_workers=cfg.num_workers, name=f"{cfg.name}-{split}")

    train = loader("train", True)
    if len(train) == 0:
        raise DataError(f"the train split of {cfg.name} ({info['root']}) has {train.num_samples} images, fewer "
                        f"than data.batch_size={cfg.batch_size} (the last partial batch is dropped): lower "
                        f"data.batch_size")
    train_eval = Loader(train.source, train.indices, cfg.eval_batch_size, train=False, seed=int(seed),
                        mean=cfg.mean, std=cfg.std, num_classes=len(classes), num_workers=cfg.num_workers,
                        name=f"{cfg.name}-train_eval")
    return DataBundle(name=cfg.name, train=train, val=loader("val", False), test=loader("test", False),
                      classes=classes, num_classes=len(classes), in_channels=cfg.in_channels,
                      image_size=cfg.image_size, mean=cfg.mean, std=cfg.std, root=info["root"],
                      train_eval=train_eval)
