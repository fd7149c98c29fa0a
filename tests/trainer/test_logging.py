"""trainer.logging: write with our SummaryWriter, read back with tensorboard's EventAccumulator, and compare the
image/histogram encodings with torch's own tensorboard summaries (torch is allowed in tests, never in trainer)."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hp_meta

import lucid
from trainer.logging import (
    ConsoleLogger,
    SummaryWriter,
    flatten_dict,
    format_duration,
    format_epoch_line,
    make_image_grid,
)

REPO = Path(__file__).resolve().parents[2]


def _acc(path) -> ea.EventAccumulator:
    guidance = {k: 0 for k in (ea.COMPRESSED_HISTOGRAMS, ea.IMAGES, ea.AUDIO, ea.SCALARS, ea.HISTOGRAMS,
                               ea.TENSORS)}
    acc = ea.EventAccumulator(str(path), size_guidance=guidance)
    acc.Reload()
    return acc


def _event_files(path) -> list[Path]:
    return sorted(Path(path).glob("events.out.tfevents.*"))


def _decode(image_event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_event.encoded_image_string)))


# ------------------------------------------------------------------------------------------------ scalars
def test_scalars_tags_steps_values(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalar("train/loss", 2.0 - 0.5 * step, step)
        w.add_scalar("lr", np.float32(1e-3), 7, walltime=123.0)
        w.add_scalar("np0d", np.array(0.25, dtype=np.float64), 1)
        w.add_scalar("tensor", lucid.tensor(np.float32(3.5)), 2)
        w.add_scalar("param", lucid.tensor(np.ones((1,), np.float32), requires_grad=True), 2)
        w.add_scalars_dict({"val/top1": 45.5, "val/top5": 80.25, "val/loss": np.float32(1.5), "skipped": None}, 9)
    acc = _acc(tmp_path)
    tags = acc.Tags()["scalars"]
    assert set(tags) == {"train/loss", "lr", "np0d", "tensor", "param", "val/top1", "val/top5", "val/loss"}
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1, 2]
    assert [e.value for e in loss] == [2.0, 1.5, 1.0]
    lr = acc.Scalars("lr")[0]
    assert lr.step == 7 and lr.wall_time == 123.0 and lr.value == pytest.approx(1e-3, rel=1e-6)
    assert acc.Scalars("np0d")[0].value == 0.25
    assert acc.Scalars("tensor")[0].value == 3.5
    assert acc.Scalars("param")[0].value == 1.0
    for tag, v in (("val/top1", 45.5), ("val/top5", 80.25), ("val/loss", 1.5)):
        (e,) = acc.Scalars(tag)
        assert (e.step, e.value) == (9, v)
    # add_scalars_dict writes all tags in one event with one wall time
    assert len({acc.Scalars(t)[0].wall_time for t in ("val/top1", "val/top5", "val/loss")}) == 1


def test_scalar_errors(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="one element.*\\(2,\\)"):
            w.add_scalar("x", np.zeros(2), 0)
        with pytest.raises(TypeError, match="tag"):
            w.add_scalar("", 1.0, 0)
        with pytest.raises(TypeError, match="step"):
            w.add_scalar("x", 1.0, "three")
        with pytest.raises(ValueError, match="whole number"):
            w.add_scalar("x", 1.0, 1.5)
        with pytest.raises(TypeError, match="mapping"):
            w.add_scalars_dict([("a", 1.0)], 0)
    with pytest.raises(ValueError, match="flush_secs"):
        SummaryWriter(tmp_path, flush_secs=0)


# ------------------------------------------------------------------------------------------------ images
def test_add_image_uint8_float_and_formats(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    flt = rng.random((4, 6, 3), dtype=np.float32) * 1.2 - 0.1  # out-of-range values are clipped
    gray = rng.random((3, 2), dtype=np.float32)
    rgba_chw = rng.integers(0, 256, (4, 3, 5), dtype=np.uint8)
    with SummaryWriter(tmp_path) as w:
        w.add_image("img/rgb", rgb, 1)
        w.add_image("img/float", flt, 2)
        w.add_image("img/gray", gray, 3, dataformats="HW")
        w.add_image("img/rgba", rgba_chw, 4, dataformats="CHW")
        with pytest.raises(ValueError, match="1, 3 or 4 channels"):
            w.add_image("bad", np.zeros((4, 4, 2), np.uint8), 0)
        with pytest.raises(ValueError, match="3-D"):
            w.add_image("bad", np.zeros((4, 4), np.uint8), 0)
        with pytest.raises(TypeError, match="dtype int64"):
            w.add_image("bad", np.zeros((4, 4, 3), np.int64), 0)
    acc = _acc(tmp_path)
    (e,) = acc.Images("img/rgb")
    assert (e.step, e.width, e.height) == (1, 7, 5)
    np.testing.assert_array_equal(_decode(e), rgb)
    (e,) = acc.Images("img/float")
    assert (e.width, e.height) == (6, 4)
    np.testing.assert_array_equal(_decode(e), (np.clip(flt * 255, 0, 255)).astype(np.uint8))
    (e,) = acc.Images("img/gray")
    assert (e.width, e.height) == (2, 3) and _decode(e).shape == (3, 2)
    (e,) = acc.Images("img/rgba")
    np.testing.assert_array_equal(_decode(e), rgba_chw.transpose(1, 2, 0))


def test_add_image_matches_torch_summary():
    """Same pixels as torch's SummaryWriter.add_image for a float image (its scale/clip/truncate rule)."""
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import summary as tsum

    rng = np.random.default_rng(1)
    x = rng.random((3, 9, 11), dtype=np.float32) * 1.1 - 0.05
    ref = tsum.image("t", torch.from_numpy(x), dataformats="CHW").value[0].image
    from trainer.logging import _hwc_uint8, _png_image

    ours = _png_image(_hwc_uint8(x, "CHW"))
    assert (ours.height, ours.width, ours.colorspace) == (ref.height, ref.width, ref.colorspace)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(ours.encoded_image_string))),
                                  np.asarray(Image.open(io.BytesIO(ref.encoded_image_string))))


@pytest.mark.parametrize("n,ncols,c", [(6, 4, 3), (8, 8, 3), (5, 2, 1), (1, 8, 3), (3, 8, 3)])
def test_image_grid_matches_torchvision(n, ncols, c):
    torch = pytest.importorskip("torch")
    tvu = pytest.importorskip("torchvision.utils")
    rng = np.random.default_rng(n * 10 + c)
    mean = np.array([0.485, 0.456, 0.406][:c], np.float32)
    std = np.array([0.229, 0.224, 0.225][:c], np.float32)
    raw = rng.random((n, c, 5, 4), dtype=np.float32)
    normed = (raw - mean[:, None, None]) / std[:, None, None]
    # channels-last storage under an NCHW shape, as lucid's activations are
    normed = np.ascontiguousarray(normed.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    grid = make_image_grid(normed, ncols=ncols, mean=mean, std=std)
    ref = tvu.make_grid(torch.from_numpy(raw), nrow=ncols, padding=2, pad_value=0.0)  # (3 or c, H, W)
    ref = np.clip(ref.numpy().transpose(1, 2, 0) * 255, 0, 255).astype(np.uint8)
    if c == 1:
        ref = ref[:, :, :1] if ref.ndim == 3 else ref[:, :, None]
    assert grid.shape == ref.shape
    # the denormalisation x*std+mean differs from raw by float rounding: allow 1 step at truncation edges
    assert np.abs(grid.astype(int) - ref.astype(int)).max() <= 1
    assert (grid.astype(int) != ref.astype(int)).mean() < 0.01


def test_images_grid_uint8_nhwc_and_readback(tmp_path):
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (10, 8, 6, 3), dtype=np.uint8)  # N, H, W, C
    with SummaryWriter(tmp_path) as w:
        w.add_images_grid("train/inputs", imgs, 0, ncols=4)
        w.add_images_grid("train/normed", rng.standard_normal((3, 3, 8, 8)).astype(np.float32), 0,
                          mean=[0.5, 0.5, 0.5], std=0.25)
        with pytest.raises(ValueError, match="mean/std"):
            w.add_images_grid("bad", imgs, 0, mean=0.5)
        with pytest.raises(ValueError, match="std has 2 values, expected 1 or 3"):
            w.add_images_grid("bad", np.zeros((2, 3, 4, 4), np.float32), 0, std=[1, 2])
        with pytest.raises(ValueError, match="empty"):
            w.add_images_grid("bad", np.zeros((0, 3, 4, 4), np.float32), 0)
        with pytest.raises(ValueError, match="4-D"):
            w.add_images_grid("bad", np.zeros((3, 4, 4), np.float32), 0)
    acc = _acc(tmp_path)
    (e,) = acc.Images("train/inputs")
    # 4 columns, 3 rows, 2-pixel padding
    assert (e.width, e.height) == (4 * (6 + 2) + 2, 3 * (8 + 2) + 2)
    pix = _decode(e)
    np.testing.assert_array_equal(pix[2:10, 2:8], imgs[0])
    np.testing.assert_array_equal(pix[12:20, 10:16], imgs[5])  # row 1, column 1
    assert (pix[22:30, 18:]).max() == 0  # empty cells of the last row stay padding
    (e,) = acc.Images("train/normed")
    assert (e.width, e.height) == (3 * 10 + 2, 12)


# ------------------------------------------------------------------------------------------------ histograms
def test_histogram_stats_and_torch_buckets(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard.summary import make_histogram

    rng = np.random.default_rng(4)
    values = rng.standard_normal((30, 40)).astype(np.float32)[:, ::2]  # non-contiguous
    const = np.full(17, 3.0, np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("weights/w", values, 5)
        w.add_histogram("weights/const", const, 5, bins=10)
        w.add_histogram("weights/t", lucid.tensor(values), 6)
    acc = _acc(tmp_path)
    (h,) = acc.Histograms("weights/w")
    v64 = values.astype(np.float64).ravel()
    assert h.step == 5
    hv = h.histogram_value
    assert hv.num == values.size
    assert hv.min == v64.min() and hv.max == v64.max()
    assert hv.sum == pytest.approx(v64.sum(), rel=1e-12, abs=1e-9)
    assert hv.sum_squares == pytest.approx(float(v64 @ v64), rel=1e-12)
    assert sum(hv.bucket) == values.size
    ref = make_histogram(values.astype(float), 64)
    np.testing.assert_allclose(hv.bucket_limit, ref.bucket_limit, rtol=1e-12)
    np.testing.assert_array_equal(hv.bucket, ref.bucket)
    (h,) = acc.Histograms("weights/const")
    hv = h.histogram_value
    ref = make_histogram(const.astype(float), 10)
    assert (hv.min, hv.max, hv.num, hv.sum) == (3.0, 3.0, 17, 51.0)
    np.testing.assert_array_equal(hv.bucket, ref.bucket)
    np.testing.assert_allclose(hv.bucket_limit, ref.bucket_limit)
    assert acc.Histograms("weights/t")[0].histogram_value.num == values.size


def test_histogram_errors_and_many(tmp_path):
    # tensors that require grad, like Parameters: the writer must detach them
    lin = lucid.randn(4, 3, requires_grad=True)
    bias = lucid.randn(4, requires_grad=True)
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="2 of 5 values are NaN or infinite"):
            w.add_histogram("bad", np.array([1, np.nan, 2, np.inf, 3], np.float32), 0)
        with pytest.raises(ValueError, match="empty"):
            w.add_histogram("bad", np.zeros((0, 3), np.float32), 0)
        w.add_histograms([("fc.weight", lin), ("fc.bias", bias), ("none", None)], 3, prefix="weights/")
        w.add_histograms({"g": np.arange(5)}, 4, bins=5)
    acc = _acc(tmp_path)
    assert set(acc.Tags()["histograms"]) == {"weights/fc.weight", "weights/fc.bias", "g"}
    hv = acc.Histograms("weights/fc.weight")[0].histogram_value
    assert hv.num == 12 and hv.max == pytest.approx(float(lin.array.max()))
    assert acc.Histograms("g")[0].histogram_value.sum == 10


# ------------------------------------------------------------------------------------------------ text
def test_text(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("config", "**lr**: 1e-3 — ünïcode", 0)
        w.add_text("config", "second", 1)
        with pytest.raises(TypeError, match="expected str"):
            w.add_text("config", 3, 0)
    acc = _acc(tmp_path)
    events = acc.Tensors("config/text_summary")
    assert [e.step for e in events] == [0, 1]
    assert events[0].tensor_proto.string_val[0].decode("utf-8") == "**lr**: 1e-3 — ünïcode"
    assert acc.SummaryMetadata("config/text_summary").plugin_data.plugin_name == "text"


# ------------------------------------------------------------------------------------------------ hparams
def _hparams_data(acc):
    content = acc.PluginTagToContent(hp_meta.PLUGIN_NAME)
    assert set(content) == {hp_meta.EXPERIMENT_TAG, hp_meta.SESSION_START_INFO_TAG, hp_meta.SESSION_END_INFO_TAG}
    return {tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in content.items()}


def test_hparams_in_own_run(tmp_path):
    hp = {"model": "inception_next_atto", "optim": {"lr": 1e-3, "name": "adamw", "betas": [0.9, 0.999]},
          "epochs": 3, "ema": False, "seed": np.int64(7), "unused": None}
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("val/top1", 40.0, 11)
        w.add_hparams(hp, {"hparam/top1": 41.5, "hparam/loss": np.float32(1.25)})
    acc = _acc(tmp_path)
    data = _hparams_data(acc)
    for d in data.values():
        assert d.version == hp_meta.PLUGIN_DATA_VERSION
    start = data[hp_meta.SESSION_START_INFO_TAG].session_start_info
    hps = start.hparams
    assert set(hps) == {"model", "optim.lr", "optim.name", "optim.betas", "epochs", "ema", "seed"}
    assert hps["model"].string_value == "inception_next_atto"
    assert hps["optim.lr"].number_value == 1e-3
    assert hps["optim.name"].string_value == "adamw"
    assert hps["optim.betas"].string_value == "[0.9, 0.999]"
    assert hps["epochs"].number_value == 3
    assert hps["ema"].WhichOneof("kind") == "bool_value" and hps["ema"].bool_value is False
    assert hps["seed"].number_value == 7
    exp = data[hp_meta.EXPERIMENT_TAG].experiment
    assert [m.name.tag for m in exp.metric_infos] == ["hparam/top1", "hparam/loss"]
    types = {i.name: i.type for i in exp.hparam_infos}
    assert types["ema"] == api_pb2.DATA_TYPE_BOOL and types["model"] == api_pb2.DATA_TYPE_STRING
    assert types["optim.lr"] == api_pb2.DATA_TYPE_FLOAT64
    assert data[hp_meta.SESSION_END_INFO_TAG].session_end_info.status == api_pb2.STATUS_SUCCESS
    # metric values are scalars of the same run, at the last step written
    (top1,) = acc.Scalars("hparam/top1")
    assert (top1.step, top1.value) == (11, 41.5)
    assert acc.Scalars("hparam/loss")[0].value == 1.25


def test_hparams_sub_run_domain_and_errors(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_hparams({"bs": 64, "opt": "sgd"}, {"hparam/acc": 0.5}, hparam_domain_discrete={"opt": ["sgd", "adamw"]},
                      run_name="trial1", global_step=4, status="failure")
        with pytest.raises(TypeError, match="'obj'.*object"):
            w.add_hparams({"obj": object()}, {})
        with pytest.raises(ValueError, match="status"):
            w.add_hparams({"a": 1}, {}, status="ok")
        with pytest.raises(ValueError, match="'nope'"):
            w.add_hparams({"a": 1}, {}, hparam_domain_discrete={"nope": [1]})
        with pytest.raises(TypeError, match="mappings"):
            w.add_hparams([("a", 1)], {})
        with pytest.raises(ValueError, match="run_name"):
            w.add_hparams({"a": 1}, {}, run_name="/abs")
    with pytest.raises(KeyError):  # nothing half-written in the parent run by the failed calls
        _acc(tmp_path).PluginTagToContent(hp_meta.PLUGIN_NAME)
    acc = _acc(tmp_path / "trial1")
    data = _hparams_data(acc)
    (info,) = [i for i in data[hp_meta.EXPERIMENT_TAG].experiment.hparam_infos if i.name == "opt"]
    assert [v.string_value for v in info.domain_discrete.values] == ["sgd", "adamw"]
    assert data[hp_meta.SESSION_END_INFO_TAG].session_end_info.status == api_pb2.STATUS_FAILURE
    assert [(e.step, e.value) for e in acc.Scalars("hparam/acc")] == [(4, 0.5)]


def test_hparams_visible_to_tensorboard_plugin(tmp_path):
    """TensorBoard's own hparams backend (the one behind the HPARAMS tab) finds the session and its metric."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context
    from tensorboard import context as tb_context

    with SummaryWriter(tmp_path / "run_a") as w:
        w.add_scalar("train/loss", 1.0, 0)
        w.add_hparams({"lr": 0.1, "model": "atto"}, {"hparam/top1": 12.5})
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(tmp_path))
    ctx = backend_context.Context(base_plugin.TBContext(logdir=str(tmp_path), data_provider=provider))
    rc = tb_context.RequestContext()
    meta = ctx.hparams_metadata(rc, "")
    assert hp_meta.SESSION_START_INFO_TAG in meta["run_a"]
    exp = ctx.experiment_from_metadata(rc, "", True, meta, None)
    assert {i.name for i in exp.hparam_infos} == {"lr", "model"}
    assert [m.name.tag for m in exp.metric_infos] == ["hparam/top1"]
    last = ctx.read_last_scalars(rc, "", None)
    assert last["run_a"]["hparam/top1"].value == 12.5


# ------------------------------------------------------------------------------------------------ files, lifecycle
def test_reopen_appends_new_event_file(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", 1.0, 0)
        w.add_scalar("loss", 0.9, 1)
    (first,) = _event_files(tmp_path)
    size = first.stat().st_size
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", 0.8, 2)
    files = _event_files(tmp_path)
    assert len(files) == 2 and first in files
    assert first.stat().st_size == size  # the old file is untouched
    assert [(e.step, e.value) for e in _acc(tmp_path).Scalars("loss")] == [(0, 1.0), (1, pytest.approx(0.9)),
                                                                             (2, pytest.approx(0.8))]


def test_purge_step_hides_steps_of_crashed_run(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for s in range(5):
            w.add_scalar("loss", float(s), s)
    with SummaryWriter(tmp_path, purge_step=3) as w:  # resumed from a checkpoint at step 3
        for s in range(3, 6):
            w.add_scalar("loss", 10.0 + s, s)
    got = [(e.step, e.value) for e in _acc(tmp_path).Scalars("loss")]
    assert got == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 13.0), (4, 14.0), (5, 15.0)]


def test_close_flush_context_and_reuse(tmp_path):
    w = SummaryWriter(tmp_path, flush_secs=1000)
    w.add_scalar("a", 1.0, 0)
    w.flush()  # visible without closing
    assert [e.value for e in _acc(tmp_path).Scalars("a")] == [1.0]
    w.close()
    w.close()  # idempotent
    w.add_scalar("a", 2.0, 1)  # as torch: a new event file after close
    w.close()
    assert len(_event_files(tmp_path)) == 2
    assert [e.value for e in _acc(tmp_path).Scalars("a")] == [1.0, 2.0]
    assert "open=False" in repr(w) and w.get_logdir() == str(tmp_path)


def test_threads(tmp_path):
    with SummaryWriter(tmp_path, max_queue=2) as w:
        def work(k):
            for s in range(50):
                w.add_scalar(f"t{k}", float(s), s)
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    acc = _acc(tmp_path)
    for k in range(4):
        assert sorted(e.step for e in acc.Scalars(f"t{k}")) == list(range(50))


def test_no_torch_import():
    """trainer/logging.py on its own (loaded by path, whatever trainer/__init__ imports) never imports torch."""
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('tb_logging', {str(REPO / 'trainer' / 'logging.py')!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "import tempfile, numpy as np; d = tempfile.mkdtemp(); w = m.SummaryWriter(d); "
            "w.add_image('i', np.zeros((2, 2, 3), np.uint8), 0); w.add_hparams({'a': 1}, {'m': 1.0}); w.close(); "
            "bad = [k for k in sys.modules if k.split('.')[0] in ('torch', 'tensorflow')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": ""})


# ------------------------------------------------------------------------------------------------ console
def test_format_duration():
    assert format_duration(0) == "0.00s"
    assert format_duration(0.424) == "0.42s"
    assert format_duration(9.999) == "10.0s"
    assert format_duration(12.34) == "12.3s"
    assert format_duration(59.96) == "1m 00s"
    assert format_duration(83.2) == "1m 23s"
    assert format_duration(3600) == "1h 00m 00s"
    assert format_duration(2 * 3600 + 3 * 60 + 4.4) == "2h 03m 04s"
    assert format_duration(3 * 86400 + 4 * 3600 + 5 * 60) == "3d 04h 05m"
    assert format_duration(float("nan")) == "?"
    with pytest.raises(ValueError, match="-1"):
        format_duration(-1)


def test_format_epoch_line():
    metrics = {"train/loss": 2.345678, "train/acc": 34.5612, "val/loss": np.float32(2.1), "val/top1": 45.67,
               "val/top5": 78.9, "lr": 1e-3, "throughput": 1234.4, "grad_norm": 1.23456, "ema/top1": None}
    line = format_epoch_line(3, 90, metrics, 83.2)
    assert line == ("epoch  3/90 | train loss 2.3457 acc 34.56% | val loss 2.1000 top-1 45.67% top-5 78.90% "
                    "| lr 1.00e-03 | 1,234 img/s | grad-norm 1.23 | 1m 23s")
    assert format_epoch_line(10, 10, {}, 1.5) == "epoch 10/10 | 1.50s"
    line = format_epoch_line(1, 5, {"loss": float("nan"), "top5": 100, "custom": 0.000123456, "lr": lucid.tensor(
        np.float32(0.5))}, 0.1)
    assert line == "epoch 1/5 | loss nan | top-5 100.00% | custom 0.0001235 | lr 5.00e-01 | 0.10s"
    with pytest.raises(ValueError, match="epochs"):
        format_epoch_line(1, 0, {}, 1.0)
    with pytest.raises(ValueError, match="'val/loss'.*one element"):
        format_epoch_line(1, 2, {"val/loss": np.zeros(3)}, 1.0)


def test_console_logger(caplog):
    buf = io.StringIO()
    line = ConsoleLogger(stream=buf).epoch(2, 3, {"train/loss": 1.0}, 5.0)
    assert line == "epoch 2/3 | train loss 1.0000 | 5.00s"
    assert buf.getvalue() == line + "\n"
    logger = logging.getLogger("lucid.test.console")
    with caplog.at_level(logging.INFO, logger="lucid.test.console"):
        ConsoleLogger(logger=logger).info("hello")
    assert [r.getMessage() for r in caplog.records] == ["hello"]


def test_flatten_dict():
    assert flatten_dict({"a": {"b": {"c": 1}, "d": 2}, "e": 3}) == {"a.b.c": 1, "a.d": 2, "e": 3}
