"""trainer.report: Markdown/console tables, confusion-matrix PNG, image grids, atomic writes."""
import os
from pathlib import Path

import numpy as np
import pytest

from PIL import Image

from trainer import metrics as M
from trainer import report as R

NAMES = ["airplane", "automobile", "bird", "cat|dog", "deer"]  # '|' must not break the Markdown table


@pytest.fixture(scope="module")
def metrics():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 300)
    x = rng.standard_normal((300, 5)).astype(np.float32)
    x[np.arange(300), t] += 1.5
    acc = M.MetricAccumulator(5, class_names=NAMES)
    acc.update(x, t)
    return acc.compute()


def _no_temp_files(directory):
    return [f for f in os.listdir(directory) if f.endswith(".tmp")] == []


# ---------------------------------------------------------------------------------------------- tables
def test_console_table(metrics):
    text = R.console_table(metrics)
    lines = text.splitlines()
    assert len(lines) == 3
    for title in ("Top-1 (%)", "Top-5 (%)", "Loss", "ECE", "Samples"):
        assert title in lines[0]
    assert f"{metrics['top1']:.2f}" in lines[2] and "300" in lines[2] and f"{metrics['loss']:.4f}" in lines[2]
    assert len({len(line) for line in lines}) == 1  # columns line up
    assert "Top-5" not in R.console_table({"top1": 50.0, "loss": 1.0})
    with pytest.raises(ValueError, match="none of the headline keys"):
        R.console_table({"foo": 1})


def test_markdown_report(metrics, tmp_path):
    path = tmp_path / "sub" / "report.md"
    out = R.write_markdown_report(metrics, NAMES, path, figures={"Confusion matrix": "confusion.png"},
                                  notes=["checkpoint: best.safetensors"])
    assert out == str(path) and path.exists() and _no_temp_files(path.parent)
    text = path.read_text(encoding="utf-8")
    for name in NAMES:
        assert name.replace("|", "\\|") in text
    assert "| cat\\|dog |" in text
    for title in ("Top-1 (%)", "Top-5 (%)", "Loss", "ECE", "Samples", "Precision", "Recall", "F1", "Support"):
        assert title in text
    assert f"{metrics['top1']:.2f}" in text and "**macro avg**" in text and "**weighted avg**" in text
    assert "![Confusion matrix](confusion.png)" in text and "- checkpoint: best.safetensors" in text
    # every per-class row has as many cells as the header
    lines = text.splitlines()
    start = lines.index("| Class | Precision | Recall | F1 | Support |") + 2
    table = lines[start:lines.index("", start)]
    assert len(table) == 5 + 2
    assert all(len(line.replace("\\|", "").split("|")) == 7 for line in table)
    cat = metrics["per_class"]["classes"]["cat|dog"]
    assert f"{cat['precision']:.4f} | {cat['recall']:.4f} | {cat['f1']:.4f} | {cat['support']} |" in text


def test_markdown_report_from_confusion_only_and_default_names(tmp_path):
    m = {"top1": 75.0, "num_samples": 4, "confusion": [[2, 0], [1, 1]]}
    text = Path(R.write_markdown_report(m, ["left", "right"], tmp_path / "r.md")).read_text()
    assert "| left | 0.6667 | 1.0000 | 0.8000 | 2 |" in text
    text = Path(R.write_markdown_report(m, None, tmp_path / "r.md")).read_text()  # overwrites
    assert "| 1 | 1.0000 | 0.5000 | 0.6667 | 2 |" in text
    with pytest.raises(ValueError, match="3 names"):
        R.write_markdown_report(m, ["a", "b", "c"], tmp_path / "r.md")


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    path.write_text("old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        R._atomic_write(path, boom)
    assert path.read_text() == "old" and _no_temp_files(tmp_path)


# ----------------------------------------------------------------------------------------- confusion PNG
def test_confusion_png(metrics, tmp_path):
    cm = np.array(metrics["confusion"])
    path = tmp_path / "confusion.png"
    assert R.plot_confusion_matrix(cm, NAMES, path, figsize=(6, 5), dpi=100) == str(path)
    assert _no_temp_files(tmp_path)
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size == (600, 500)
        pix = np.asarray(im.convert("RGB"))
    assert pix.std() > 10  # something was drawn
    auto = R.render_confusion_matrix(cm, NAMES)
    assert auto.dtype == np.uint8 and auto.ndim == 3 and auto.shape[2] == 3
    big = R.render_confusion_matrix(np.eye(40, dtype=np.int64) * 3, [f"c{i}" for i in range(40)])
    assert big.shape[0] > auto.shape[0]  # grows with the class count
    with pytest.raises(ValueError, match="2 names but the confusion matrix has 5"):
        R.render_confusion_matrix(cm, ["a", "b"])
    with pytest.raises(ValueError, match="square"):
        R.render_confusion_matrix(np.zeros((2, 3)))


# ------------------------------------------------------------------------------------------------ grids
def _solid(n, h, w):
    """n solid-colour uint8 images, image i has colour (10*i, 255 - 10*i, 7*i)."""
    colours = np.stack([10 * np.arange(n), 255 - 10 * np.arange(n), 7 * np.arange(n)], 1).astype(np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (n, h, w, 3)).copy(), colours


def test_image_grid_layout():
    imgs, colours = _solid(7, 4, 5)
    g = R.image_grid(imgs, ncols=3, padding=2, pad_value=255)
    assert g.dtype == np.uint8 and g.shape == (3 * 6 + 2, 3 * 7 + 2, 3)
    for i in range(7):
        r, c = divmod(i, 3)
        y, x = 2 + r * 6, 2 + c * 7
        assert (g[y:y + 4, x:x + 5] == colours[i]).all(), f"image {i} not in cell ({r}, {c})"
        assert (g[y - 2:y, x:x + 5] == 255).all()  # padding above
    assert (g[2 + 2 * 6:, 2 + 7:] == 255).all()  # the two unused cells are blank
    assert R.image_grid(imgs[:2], ncols=8, padding=0).shape == (4, 10, 3)  # fewer images than ncols


def test_image_grid_float_nchw_normalised_and_gray():
    imgs, _ = _solid(3, 4, 4)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    norm = ((imgs.astype(np.float32) / 255 - mean) / std).astype(np.float32).transpose(0, 3, 1, 2)  # NCHW
    np.testing.assert_array_equal(R.image_grid(norm, ncols=3, mean=mean, std=std), R.image_grid(imgs, ncols=3))
    unit = imgs.astype(np.float32) / 255
    np.testing.assert_array_equal(R.image_grid(unit, 2), R.image_grid(imgs, 2))
    rgba = np.concatenate([_solid(3, 5, 6)[0], np.full((3, 5, 6, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(R.image_grid(rgba.transpose(0, 3, 1, 2).copy(), 3), R.image_grid(rgba, 3))
    gray = R.image_grid(imgs[..., 0], ncols=3)
    assert gray.shape[2] == 1
    with pytest.raises(ValueError, match="at least one image"):
        R.image_grid(imgs[:0])
    with pytest.raises(ValueError, match="channels"):
        R.image_grid(np.zeros((2, 5, 6, 7), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        R.image_grid(imgs, mean=mean)


def test_misclassified_grid_cells(tmp_path):
    imgs, colours = _solid(5, 32, 32)
    true = ["airplane", "bird", "a very long class name indeed", "cat", "dog"]
    pred = ["bird", "airplane", "another extremely long class name", "dog", "cat"]
    probs = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    path = tmp_path / "worst.png"
    boxes = R.save_misclassified_grid(imgs, true, pred, probs, path, ncols=3, min_cell=128)
    assert len(boxes) == 5 and _no_temp_files(tmp_path)
    with Image.open(path) as im:
        im.load()
        pix = np.asarray(im.convert("RGB"))
    arr = R.render_misclassified_grid(imgs, true, pred, probs, ncols=3, min_cell=128)
    assert pix.shape == arr.shape
    lefts = sorted({b[0] for b in boxes})
    tops = sorted({b[1] for b in boxes})
    assert len(lefts) == 3 and len(tops) == 2
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        assert (x1 - x0, y1 - y0) == (128, 128)  # 32 px enlarged 4x
        assert x0 == lefts[i % 3] and y0 == tops[i // 3]  # row-major order
        assert (pix[y0:y1, x0:x1] == colours[i]).all(), f"image {i} not exactly in its box"
        caption = pix[y1 + 2:y1 + 30, x0:x1]
        assert (caption != 255).any(), f"no caption under image {i}"
    assert pix.shape[1] >= boxes[2][2] and pix.shape[0] >= boxes[4][3]
    with pytest.raises(ValueError, match="one true name"):
        R.save_misclassified_grid(imgs, true[:4], pred, probs, path)


def test_caption_lines():
    assert R._caption_lines("cat", "dog", 0.876, 40) == ["cat \u2192 dog (0.88)"]
    two = R._caption_lines("aquarium_fish", "sweet_pepper", 0.5, 20)
    assert two == ["aquarium_fish \u2192", "sweet_pepper (0.50)"]
    long = R._caption_lines("x" * 30, "y" * 30, 0.1, 10)
    assert all(len(line) <= 10 for line in long) and long[0].endswith("\u2026 \u2192")
