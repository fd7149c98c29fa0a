"""trainer/data.py and trainer/augment.py: readers, splits, batches, augmentation, background thread, errors.

References: torchvision's readers and transforms (ImageFolder, CIFAR100, MNIST, ToTensor/Normalize, pad/crop/
hflip) and timm's Mixup. Files in CIFAR-100's and MNIST's real on-disk formats are written to tmp_path; the
network is disabled wherever a download could be attempted.
"""
from __future__ import annotations

import hashlib
import itertools
import pickle
import socket
import struct
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

from trainer import augment as aug
from trainer import data as D
from trainer.data import DataError, Loader, build_data, load_data_config

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def data_threads():
    """The loader's producer and decode threads (not lucid's persistent row-split pool, lucid-rows_*)."""
    return [t for t in threading.enumerate() if t.name.startswith(("lucid-data-", "lucid-decode-"))]


def collect(it):
    return [(x.copy(), y.copy()) for x, y in it]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert ya.dtype == yb.dtype


@pytest.fixture
def offline(monkeypatch):
    """Every way torchvision could reach the network raises URLError (so the tests never touch it)."""
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.mnist as tv_mnist
    import torchvision.datasets.utils as tv_utils

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("network disabled by the test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(tv_utils, "download_url", refuse)
    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


@pytest.fixture(scope="module")
def sample_bundle():
    return build_data(load_data_config("cifar10_sample"), seed=0)


# ------------------------------------------------------------------------------------------ embedded sample
def test_embedded_sample_reads_with_torchvision_imagefolder():
    root = D.EMBEDDED_SAMPLE_DIR
    for split, per_class in (("train", 200), ("test", 50)):
        ds = tvd.ImageFolder(str(root / split))
        assert ds.classes == CIFAR10_CLASSES == sorted(ds.classes)
        counts = np.bincount(np.asarray(ds.targets), minlength=10)
        assert counts.tolist() == [per_class] * 10
        img, target = ds[0]
        assert img.size == (32, 32) and img.mode == "RGB" and target == 0
    files = [p for p in root.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 3_000_000          # `du --apparent-size` budget
    assert (root / "README.md").is_file()
    listed = (root / "MD5SUMS").read_text().split("\n")
    assert len([line for line in listed if line]) == 2500


def test_sample_bundle_splits_and_batches(sample_bundle):
    b = sample_bundle
    assert (b.name, b.num_classes, b.in_channels, b.image_size) == ("cifar10_sample", 10, 3, 32)
    assert b.classes == CIFAR10_CLASSES
    assert (b.train.num_samples, b.val.num_samples, b.test.num_samples) == (1800, 200, 500)
    assert len(b.train) == 1800 // 64 and len(b.val) == 1 and len(b.test) == 2
    # val is held out of train: disjoint, together the whole train folder
    assert b.train.source is b.val.source
    assert not set(b.train.indices) & set(b.val.indices)
    assert len(set(b.train.indices) | set(b.val.indices)) == 2000
    assert np.bincount(b.test.targets).tolist() == [50] * 10
    x, y = next(iter(b.train.epoch_batches(0)))
    assert x.shape == (64, 3, 32, 32) and x.dtype == np.float32
    assert y.shape == (64,) and y.dtype == np.int64
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous      # channels-last under the NCHW shape
    batches = collect(b.test)
    assert [xb.shape[0] for xb, _ in batches] == [250, 250]
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), b.test.targets)
    assert "1800 train / 200 val / 500 test" in b.summary()
    te = b.train_eval                                      # train split read like an eval loader
    assert not te.train and te.source is b.train.source and te.num_samples == 1800 and len(te) == 8
    np.testing.assert_array_equal(te.targets, b.train.targets)


def test_eval_batches_match_torchvision_transforms(sample_bundle):
    """Eval batches = PIL decode + ToTensor + Normalize of the same files, in the split's order."""
    b = sample_bundle
    tf = T.Compose([T.ToTensor(), T.Normalize(b.mean, b.std)])
    x, y = next(iter(b.val))
    paths = [b.val.source.paths[i] for i in b.val.indices[:x.shape[0]]]
    ref = np.stack([tf(Image.open(p).convert("RGB")).numpy() for p in paths])
    assert np.abs(x - ref).max() <= 1e-5 * np.abs(ref).max()
    np.testing.assert_array_equal(y, b.val.targets[:x.shape[0]])


def test_same_seed_same_batches_epochs_and_seeds_differ(sample_bundle):
    cfg = load_data_config("cifar10_sample", num_workers=0)
    other = build_data(cfg, seed=0)
    first = collect(sample_bundle.train.epoch_batches(3))          # background thread
    assert_same_batches(first, collect(other.train.epoch_batches(3)))  # same seed, no thread
    e4 = collect(other.train.epoch_batches(4))
    assert not np.array_equal(first[0][1], e4[0][1])                # different order
    assert not np.array_equal(first[0][0], e4[0][0])
    seed1 = build_data(cfg, seed=1)
    assert not np.array_equal(seed1.val.indices, other.val.indices)  # the split follows the seed
    # the same image in two epochs is augmented differently (crop offsets / flip)
    order3, order4 = other.train.order(3), other.train.order(4)
    assert sorted(order3) == sorted(order4) == sorted(other.train.indices)


def test_mid_epoch_resume_gives_the_uninterrupted_batches(sample_bundle):
    cfg = load_data_config("cifar10_sample", augment={"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mixup_prob": 0.7})
    b = build_data(cfg, seed=5)
    full = collect(b.train.epoch_batches(2))
    resumed = collect(b.train.epoch_batches(2, start_batch=11))
    assert_same_batches(full[11:], resumed)
    assert collect(b.train.epoch_batches(2, start_batch=len(b.train))) == []
    with pytest.raises(ValueError, match="start_batch"):
        b.train.epoch_batches(2, start_batch=len(b.train) + 1)
    # soft targets appear on mixed batches and are proper distributions
    soft = [y for _, y in full if y.ndim == 2]
    assert soft and all(y.dtype == np.float32 and y.shape == (64, 10) for y in soft)
    np.testing.assert_allclose(np.concatenate(soft).sum(1), 1.0, atol=1e-6)
    assert any(y.ndim == 1 for _, y in full)      # mixup_prob 0.7: some batches are left alone


# ---------------------------------------------------------------------------------------------- augmentation
@pytest.mark.parametrize("padding,hflip", [(2, True), (0, True), (3, False), (0, False)])
def test_crop_flip_matches_torchvision_per_image(padding, hflip):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 5, 7, 3), dtype=np.uint8)   # H != W catches swapped axes
    out = aug.random_crop_flip(images, padding, hflip, np.random.default_rng(42))
    assert out.shape == images.shape and out.dtype == np.uint8
    draws = np.random.default_rng(42)         # the documented draw order
    oy = draws.integers(0, 2 * padding + 1, size=16) if padding else np.zeros(16, int)
    ox = draws.integers(0, 2 * padding + 1, size=16) if padding else np.zeros(16, int)
    flip = draws.random(16) < 0.5 if hflip else np.zeros(16, bool)
    for n in range(16):
        img = torch.from_numpy(images[n]).permute(2, 0, 1)
        ref = TF.crop(TF.pad(img, [padding] * 4, fill=0), int(oy[n]), int(ox[n]), 5, 7)
        if flip[n]:
            ref = TF.hflip(ref)
        np.testing.assert_array_equal(out[n], ref.permute(1, 2, 0).numpy())
    if hflip:
        assert 0 < flip.sum() < 16


def test_crop_flip_hand_made_batch():
    img = np.arange(9, dtype=np.uint8).reshape(1, 3, 3, 1) + 1     # [[1,2,3],[4,5,6],[7,8,9]]

    class Fixed:  # a stand-in generator: row offset 2, column offset 0, flipped
        ints = [np.array([2]), np.array([0])]

        def integers(self, low, high, size):
            return self.ints.pop(0)

        def random(self, size):
            return np.array([0.1])

    out = aug.random_crop_flip(img, 1, True, Fixed())[0, :, :, 0]
    # padded: rows -1..3 / cols -1..3 with zeros; top=2 -> rows 1,2 and the zero row; left=0 -> cols -1,0,1
    np.testing.assert_array_equal(out, [[5, 4, 0], [8, 7, 0], [0, 0, 0]])


def test_normalize_matches_torchvision():
    x = np.random.default_rng(1).integers(0, 256, size=(4, 6, 5, 3), dtype=np.uint8)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ours = aug.normalize(x, mean, std)
    ref = T.Normalize(mean, std)(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).permute(0, 2, 3, 1)
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    assert np.abs(ours - ref.numpy()).max() <= 1e-5 * np.abs(ref.numpy()).max()


def _timm_mixup(lam, use_cutmix, num_classes):
    from timm.data import Mixup

    m = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=num_classes)
    m._params_per_batch = lambda: (lam, use_cutmix)
    return m


@pytest.mark.parametrize("lam", [0.3, 0.77])
def test_mixup_matches_timm_on_fixed_lambda(lam):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 4, 5)).astype(np.float32)
    t = rng.integers(0, 7, size=6)
    xt, yt = _timm_mixup(lam, False, 7)(torch.from_numpy(x.copy()), torch.from_numpy(t))
    ours = aug.mixup_images(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), lam).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours, xt.numpy(), rtol=1e-6, atol=1e-6)
    soft = aug.mix_targets(t, 7, lam)
    assert soft.dtype == np.float32
    np.testing.assert_allclose(soft, yt.numpy(), atol=1e-7)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)


class _Centres:
    """Stand-in generator returning fixed box centres (cy, then cx), as timm draws them."""

    def __init__(self, *values):
        self.values = list(values)

    def integers(self, low, high, size=None):
        v = self.values.pop(0)
        assert low <= v < high
        return v


@pytest.mark.parametrize("lam,cy,cx", [(0.4, 3, 5), (0.5, 3, 6), (0.9, 0, 11), (0.05, 7, 0), (0.999, 4, 4)])
def test_cutmix_matches_timm_on_fixed_lambda(monkeypatch, lam, cy, cx):
    import timm.data.mixup as tm

    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 2, 8, 12)).astype(np.float32)   # H=8, W=12
    t = rng.integers(0, 5, size=4)
    centres = itertools.cycle([cy, cx])     # timm draws cy then cx on each call
    monkeypatch.setattr(tm.np.random, "randint", lambda low, high, size=None: next(centres))
    (tb, tlam) = tm.cutmix_bbox_and_lam(x.shape, lam)
    xt, yt = _timm_mixup(lam, True, 5)(torch.from_numpy(x.copy()), torch.from_numpy(t))
    box, our_lam = aug.cutmix_box(8, 12, lam, _Centres(cy, cx))
    assert box == tuple(int(v) for v in tb)
    assert our_lam == pytest.approx(tlam, abs=1e-12)
    ours = aug.cutmix_images(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), box).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(ours, xt.numpy())
    soft = aug.mix_targets(t, 5, our_lam)
    np.testing.assert_allclose(soft, yt.numpy(), atol=1e-7)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)


def test_mix_params_follow_prob_and_switch():
    never = aug.MixupConfig(mixup_alpha=1.0, prob=0.0)
    assert not never.enabled
    assert aug.mix_params(never, np.random.default_rng(0)) == (1.0, False)
    cut = aug.MixupConfig(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=1.0)
    mix = aug.MixupConfig(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.0)
    for s in range(20):
        lam, use_cutmix = aug.mix_params(cut, np.random.default_rng(s))
        assert use_cutmix and 0.0 <= lam <= 1.0
        assert not aug.mix_params(mix, np.random.default_rng(s))[1]
    x = np.ones((4, 3, 3, 1), np.float32)
    t = np.array([0, 1, 2, 3])
    xo, to = aug.mixup_cutmix(x, t, 4, never, np.random.default_rng(0))
    assert to is t and to.dtype == t.dtype     # not mixed: the int targets are kept
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        aug.one_hot(np.array([0, 4]), 4)


# ------------------------------------------------------------------------------------- CIFAR-100 on disk
class _Py2Str(bytes):
    """A Python 2 ``str``: what the official CIFAR pickles hold for dict keys and label names."""


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes _Py2Str with the BINSTRING opcodes Python 2 used for str.

    Python 3 reads those back as ``str`` under ``encoding="latin1"`` (what torchvision passes) and as the
    familiar ``b'data'`` keys under ``encoding="bytes"``, exactly as with the files of cifar-100-python.tar.gz.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj):
        raw = bytes(obj)
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2str


def _py2_pickle(path: Path, obj) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def write_cifar100(root: Path, n_train=30, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    names = [f"class{i:03d}" for i in range(100)]
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n).tolist()
        entry = {_Py2Str(b"filenames"): [_Py2Str(b"img_%d.png" % i) for i in range(n)],
                 _Py2Str(b"batch_label"): _Py2Str(b"%s batch 1 of 1" % split.encode()),
                 _Py2Str(b"fine_labels"): fine,
                 _Py2Str(b"coarse_labels"): [f // 5 for f in fine],
                 _Py2Str(b"data"): images.transpose(0, 3, 1, 2).reshape(n, 3072)}   # R, G, B planes per row
        _py2_pickle(folder / split, entry)
        splits[split] = (images, np.asarray(fine))
    _py2_pickle(folder / "meta", {_Py2Str(b"fine_label_names"): [_Py2Str(s.encode()) for s in names],
                                  _Py2Str(b"coarse_label_names"): [_Py2Str(b"super%d" % i) for i in range(20)]})
    return names, splits


def test_cifar100_real_format_through_torchvision(tmp_path, offline):
    names, splits = write_cifar100(tmp_path)
    with open(tmp_path / "cifar-100-python" / "train", "rb") as f:   # what the usual recipe sees
        assert b"data" in pickle.load(f, encoding="bytes")
    cfg = load_data_config("cifar100", root=str(tmp_path), verify=False, batch_size=8, eval_batch_size=4)
    b = build_data(cfg, seed=0)
    assert not offline                                   # files present: no download attempted
    assert b.classes == names and b.num_classes == 100
    assert (b.train.num_samples, b.val.num_samples, b.test.num_samples) == (27, 3, 10)
    np.testing.assert_array_equal(b.test.targets, splits["test"][1])
    x = np.concatenate([xb for xb, _ in b.test])
    pixels = x.transpose(0, 2, 3, 1) * np.float32(b.std) + np.float32(b.mean)
    np.testing.assert_allclose(pixels * 255, splits["test"][0], atol=1e-3)
    xb, yb = next(iter(b.train.epoch_batches(0)))
    assert xb.shape == (8, 3, 32, 32) and yb.dtype == np.int64 and yb.max() < 100
    # with the md5 check on, hand-made files are refused with a message saying what to do
    with pytest.raises(DataError, match="verify=false") as err:
        build_data(load_data_config("cifar100", root=str(tmp_path)), seed=0)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_cifar_grey_conversion_matches_pil(tmp_path):
    _, splits = write_cifar100(tmp_path, n_train=20, n_test=4)
    cfg = load_data_config("cifar100", root=str(tmp_path), verify=False, in_channels=1, mean=[0.5], std=[0.25], batch_size=8,
                           eval_batch_size=4)
    b = build_data(cfg, seed=0)
    x, _ = next(iter(b.test))
    assert x.shape == (4, 1, 32, 32)
    ref = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in splits["test"][0]])
    np.testing.assert_allclose((x[:, 0] * 0.25 + 0.5) * 255, ref, atol=1e-3)


# ------------------------------------------------------------------------------------------ offline errors
@pytest.mark.parametrize("name,folder", [("cifar100", "cifar-100-python"), ("cifar10", "cifar-10-batches-py"),
                                         ("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw")])
def test_offline_missing_data_is_one_line_error_naming_the_path(tmp_path, offline, name, folder):
    root = tmp_path / "nothing-here"
    with pytest.raises(DataError) as err:
        build_data(load_data_config(name, root=str(root)), seed=0)
    msg = str(err.value)
    assert offline, "torchvision's download should have been attempted (and refused)"
    assert str(root / folder) in msg and "download failed" in msg and "data.root=" in msg
    assert "\n" not in msg
    with pytest.raises(DataError, match="data.download=false") as err:
        build_data(load_data_config(name, root=str(root), download=False), seed=0)
    assert str(root / folder) in str(err.value)


def test_default_root_follows_lucid_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LUCID_DATA_DIR", str(tmp_path))
    assert load_data_config("cifar100")["root"] == f"{tmp_path}/cifar100"
    monkeypatch.delenv("LUCID_DATA_DIR")
    assert load_data_config("mnist")["root"] == "~/.cache/lucid-data/mnist"


# ------------------------------------------------------------------------------------------ MNIST on disk
def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())


def test_mnist_real_idx_format_through_torchvision(tmp_path, offline):
    rng = np.random.default_rng(7)
    train = rng.integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    test_labels = rng.integers(0, 10, size=6)
    write_idx(tmp_path / "MNIST" / "raw", "train", train, rng.integers(0, 10, size=16))
    write_idx(tmp_path / "MNIST" / "raw", "t10k", test, test_labels)
    ds = tvd.MNIST(str(tmp_path), train=False)            # torchvision itself accepts the files
    np.testing.assert_array_equal(ds.data.numpy(), test)
    cfg = load_data_config("mnist", root=str(tmp_path), batch_size=4, eval_batch_size=4, val_fraction=0.25)
    b = build_data(cfg, seed=0)
    assert not offline
    assert b.in_channels == 1 and b.image_size == 32 and b.classes[0] == "0 - zero"
    assert (b.train.num_samples, b.val.num_samples, b.test.num_samples) == (12, 4, 6)
    x = np.concatenate([xb for xb, _ in b.test])
    assert x.shape == (6, 1, 32, 32)
    ref = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.Resampling.BILINEAR)) for im in test])
    np.testing.assert_allclose((x[:, 0] * b.std[0] + b.mean[0]) * 255, ref, atol=1e-3)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in b.test]), test_labels)
    rgb = build_data(load_data_config("mnist", root=str(tmp_path), in_channels=3, mean=[0.1] * 3, std=[0.3] * 3,
                                      image_size=28, batch_size=4), seed=0)
    xr, _ = next(iter(rgb.test))
    assert xr.shape == (6, 3, 28, 28)
    np.testing.assert_array_equal(xr[:, 0], xr[:, 2])


# -------------------------------------------------------------------------------------------- imagefolder
def write_folder(root: Path, split: str, per_class: dict, size=(20, 14), seed=0) -> list:
    rng = np.random.default_rng(seed)
    paths = []
    for cls, n in per_class.items():
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            p = root / split / cls / f"{i:03d}.png"
            Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(p)
            paths.append(p)
    return paths


def folder_cfg(root, **kw):
    base = dict(root=str(root), image_size=8, batch_size=4, eval_batch_size=3, num_workers=2)
    base.update(kw)
    return load_data_config("imagefolder", **base)


def test_imagefolder_with_val_and_cache(tmp_path, monkeypatch):
    write_folder(tmp_path, "train", {"b_dog": 5, "a_cat": 7})
    val_paths = write_folder(tmp_path, "val", {"a_cat": 2, "b_dog": 2}, seed=1)
    b = build_data(folder_cfg(tmp_path), seed=0)
    assert b.classes == ["a_cat", "b_dog"] and b.test is None and b.num_classes == 2
    assert (b.train.num_samples, b.val.num_samples, len(b.train), len(b.val)) == (12, 4, 3, 2)
    x = np.concatenate([xb for xb, _ in b.val])
    ref = np.stack([T.Normalize(b.mean, b.std)(T.ToTensor()(
        Image.open(p).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))).numpy() for p in val_paths])
    np.testing.assert_allclose(x, ref, atol=1e-5)
    np.testing.assert_array_equal(b.val.targets, [0, 0, 1, 1])

    calls = []
    real = D._decode_image
    monkeypatch.setattr(D, "_decode_image", lambda *a: calls.append(a[0]) or real(*a))
    b = build_data(folder_cfg(tmp_path), seed=0)
    collect(b.train.epoch_batches(0))
    assert len(calls) == 12
    collect(b.train.epoch_batches(1))
    assert len(calls) == 12                 # decoded once, then served from memory
    monkeypatch.setattr(D, "CACHE_LIMIT_BYTES", 0)
    b = build_data(folder_cfg(tmp_path), seed=0)
    collect(b.train.epoch_batches(0))
    collect(b.train.epoch_batches(1))
    assert len(calls) == 12 + 24            # too big to cache: decoded every epoch


def test_imagefolder_without_val_holds_out_and_reads_test(tmp_path):
    write_folder(tmp_path, "train", {"x": 10, "y": 10})
    write_folder(tmp_path, "test", {"x": 1, "y": 2})
    b = build_data(folder_cfg(tmp_path, val_fraction=0.2, in_channels=1, mean=[0.5], std=[0.5]), seed=3)
    assert (b.train.num_samples, b.val.num_samples, b.test.num_samples) == (16, 4, 3)
    x, y = next(iter(b.train.epoch_batches(0)))
    assert x.shape == (4, 1, 8, 8) and y.dtype == np.int64
    assert build_data(folder_cfg(tmp_path, val_fraction=0.0), seed=3).val is None


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="no image folder") as err:
        build_data(folder_cfg(tmp_path / "missing"), seed=0)
    assert str(tmp_path / "missing" / "train") in str(err.value)
    write_folder(tmp_path, "train", {"x": 6, "y": 6})
    with pytest.raises(DataError, match="num_classes=5"):
        build_data(folder_cfg(tmp_path, num_classes=5), seed=0)
    with pytest.raises(DataError, match="MD5SUMS"):
        build_data(folder_cfg(tmp_path, verify=True), seed=0)
    with pytest.raises(DataError, match="download"):
        build_data(folder_cfg(tmp_path, download=True), seed=0)
    with pytest.raises(DataError, match="batch_size=64"):
        build_data(folder_cfg(tmp_path, batch_size=64), seed=0)
    write_folder(tmp_path, "val", {"z": 1})
    with pytest.raises(DataError, match="class folder"):
        build_data(folder_cfg(tmp_path), seed=0)


def test_imagefolder_md5_manifest(tmp_path):
    paths = write_folder(tmp_path, "train", {"x": 4, "y": 4})
    lines = [f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(tmp_path).as_posix()}" for p in paths]
    (tmp_path / "MD5SUMS").write_text("\n".join(lines) + "\n")
    assert build_data(folder_cfg(tmp_path, verify=True), seed=0).train.num_samples == 7
    paths[3].write_bytes(paths[3].read_bytes() + b"\0")
    with pytest.raises(DataError, match="md5") as err:
        build_data(folder_cfg(tmp_path, verify=True), seed=0)
    assert str(paths[3]) in str(err.value)


def test_corrupt_image_error_reaches_the_consumer_from_the_thread(tmp_path):
    paths = write_folder(tmp_path, "train", {"x": 4, "y": 4})
    paths[5].write_bytes(b"not an image")
    b = build_data(folder_cfg(tmp_path, val_fraction=0.0, batch_size=8), seed=0)
    with pytest.raises(DataError, match="cannot decode") as err:
        collect(b.train.epoch_batches(0))
    assert str(paths[5]) in str(err.value)
    assert not data_threads()


# ---------------------------------------------------------------------------------------- config checking
def test_every_data_config_parses_and_bad_values_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("LUCID_DATA_DIR", str(tmp_path))
    names = sorted(p.stem for p in D.DATA_CONFIG_DIR.glob("*.yaml"))
    assert names == sorted(D.DATA_SETS)
    for name in names:
        parsed = D._parse_config(load_data_config(name))
        assert parsed.name == name and len(parsed.mean) == parsed.in_channels
    good = load_data_config("cifar10_sample")
    with pytest.raises(DataError, match="unknown data set 'cifar1000'.*cifar100"):
        build_data({**good, "name": "cifar1000"}, seed=0)
    with pytest.raises(DataError, match="batch_sise"):
        build_data({**good, "batch_sise": 3}, seed=0)
    with pytest.raises(DataError, match="batch_size must be an integer >= 1, got 0"):
        build_data({**good, "batch_size": 0}, seed=0)
    with pytest.raises(DataError, match="mixup_prob"):
        build_data({**good, "augment": {**good["augment"], "mixup_prob": 1.5}}, seed=0)
    with pytest.raises(DataError, match="mean must be a list of 3"):
        build_data({**good, "mean": [0.5]}, seed=0)
    with pytest.raises(DataError, match="val_fraction"):
        build_data({**good, "val_fraction": 1.0}, seed=0)
    with pytest.raises(DataError, match="seed"):
        build_data(good, seed=-1)
    with pytest.raises(DataError, match="lacks key"):
        build_data({k: v for k, v in good.items() if k != "std"}, seed=0)


def test_hydra_composes_the_data_group(tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(D.DATA_CONFIG_DIR.parent), version_base=None):
        cfg = compose(config_name=None, overrides=["+data=cifar10_sample", "data.batch_size=100"])
    b = build_data(cfg.data, seed=0)          # a DictConfig straight from Hydra
    assert b.train.batch_size == 100 and len(b.train) == 18


# ------------------------------------------------------------------------------------------ loader thread
class _Flaky(D._ArraySource):
    def __init__(self, images, targets, fail_at):
        super().__init__(images, targets)
        self.calls, self.fail_at = 0, fail_at

    def load(self, idx, pool=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyError("boom in the data thread")
        return super().load(idx)


def tiny_loader(n=40, fail_at=0, **kw):
    images = np.random.default_rng(0).integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8)
    source = _Flaky(images, np.arange(n) % 3, fail_at)
    args = dict(train=True, num_classes=3, crop_padding=1, hflip=True, num_workers=1, prefetch=2, name="t")
    args.update(kw)
    return Loader(source, np.arange(n), 4, **args)


def test_thread_exception_surfaces_in_consumer():
    loader = tiny_loader(fail_at=3)
    seen = 0
    with pytest.raises(KeyError, match="boom"):
        for _ in loader.epoch_batches(0):
            seen += 1
    assert seen == 2
    assert not data_threads()


def test_early_stop_leaves_no_thread():
    loader = tiny_loader(n=400)
    for _ in loader.epoch_batches(0):
        break
    assert not data_threads()
    it = loader.epoch_batches(1)
    next(it)
    assert [t.name for t in data_threads()] == ["lucid-data-t"]   # producer alive, waiting on a full queue
    it.close()
    assert not data_threads()
    unstarted = loader.epoch_batches(2)                # never iterated: no thread was ever started
    assert not data_threads()
    del unstarted


def test_thread_and_inline_paths_give_identical_batches():
    a = collect(tiny_loader(num_workers=0, mixup=aug.MixupConfig(0.5, 1.0, 0.8, 0.5)).epoch_batches(4))
    b = collect(tiny_loader(num_workers=2, mixup=aug.MixupConfig(0.5, 1.0, 0.8, 0.5)).epoch_batches(4))
    assert_same_batches(a, b)
    assert len(a) == 10


def test_eval_loader_keeps_order_and_last_batch():
    loader = tiny_loader(n=10, train=False)
    batches = collect(loader)
    assert [len(y) for _, y in batches] == [4, 4, 2] == [len(y) for _, y in collect(loader.epoch_batches(9))]
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), np.arange(10) % 3)
    assert len(loader) == 3 and loader.num_samples == 10
    ref = aug.normalize(loader.source.images, (0.0,), (1.0,))     # no augmentation on eval batches
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), ref.transpose(0, 3, 1, 2))
