"""lucid.save / lucid.load: round trips, atomic writes, clear errors on bad files, interop with torch."""
import io
import json
import math
import os
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lucid
from lucid import nn
from lucid.serialization import SerializationError

RNG = np.random.default_rng(3)


def _same(a, b):
    """a (lucid) equals b in type, dtype, shape and values."""
    assert isinstance(a, lucid.Tensor)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.detach().numpy(), b)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64", "int32", "uint8", "bool"])
def test_tensor_round_trip_dtypes(tmp_path, dtype):
    a = (RNG.standard_normal((3, 4)) * 100).astype(dtype)
    f = tmp_path / "t.safetensors"
    lucid.save(lucid.Tensor(a), f)
    out = lucid.load(f)
    _same(out, a)
    assert out.device == "cpu" and not out.requires_grad
    out.array[0] = out.array[1]  # loaded arrays are writable and owned


@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (1,), (5, 1, 1)])
def test_tensor_round_trip_shapes(tmp_path, shape):
    a = RNG.standard_normal(shape).astype(np.float32)
    lucid.save(lucid.Tensor(a), tmp_path / "s.safetensors")
    _same(lucid.load(tmp_path / "s.safetensors"), a)


def test_non_contiguous_tensors_keep_logical_values(tmp_path):
    nhwc = RNG.standard_normal((2, 4, 5, 3)).astype(np.float32)
    cl = lucid.Tensor(nhwc.transpose(0, 3, 1, 2))  # channels-last storage under an NCHW shape
    tr = lucid.Tensor(RNG.standard_normal((4, 6)).astype(np.float32).T)
    lucid.save({"cl": cl, "tr": tr}, tmp_path / "nc.safetensors")
    out = lucid.load(tmp_path / "nc.safetensors")
    _same(out["cl"], nhwc.transpose(0, 3, 1, 2))
    _same(out["tr"], tr.numpy())


def test_nested_structure_round_trip(tmp_path):
    t1 = lucid.randn(2, 3)
    p = nn.Parameter(lucid.randn(4))
    obj = {
        "model": OrderedDict([("a.weight", t1), ("a.num_batches_tracked", lucid.tensor(12, dtype=lucid.int64))]),
        "optimizer": {
            "state": {0: {"step": 10, "exp_avg": lucid.zeros(2, 3)}, 1: {"step": 10}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "amsgrad": False,
                              "name": None}],
        },
        "epoch": 3, "best": 71.25, "loss": float("nan"), "bound": -math.inf, "tag": "run-α",
        "tied": [t1, t1], "param": p, "np": np.arange(5, dtype=np.int16), "np_scalar": np.float32(0.5),
        "big": 2 ** 70, (1, "x"): "tuple key", "__tensor__": "a user key that looks like a tag",
        "rng": lucid.random.get_rng_state(),
    }
    f = tmp_path / "nested.safetensors"
    lucid.save(obj, f)
    out = lucid.load(f)
    assert list(out) == list(obj)
    _same(out["model"]["a.weight"], t1.numpy())
    nbt = out["model"]["a.num_batches_tracked"]
    assert nbt.dtype == lucid.int64 and nbt.shape == () and nbt.item() == 12
    assert out["optimizer"]["state"][0]["step"] == 10
    assert set(out["optimizer"]["state"]) == {0, 1}
    _same(out["optimizer"]["state"][0]["exp_avg"], np.zeros((2, 3), np.float32))
    assert out["optimizer"]["param_groups"] == [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                                                 "amsgrad": False, "name": None}]
    assert out["epoch"] == 3 and out["best"] == 71.25 and math.isnan(out["loss"]) and out["bound"] == -math.inf
    assert out["tag"] == "run-α" and out["big"] == 2 ** 70
    assert out["tied"][0] is out["tied"][1]  # stored once, shared after loading
    assert isinstance(out["param"], nn.Parameter) and out["param"].requires_grad
    assert isinstance(out["np"], np.ndarray) and out["np"].dtype == np.int16
    assert out["np_scalar"] == 0.5
    assert out[(1, "x")] == "tuple key"
    assert out["__tensor__"] == "a user key that looks like a tag"
    lucid.random.set_rng_state(out["rng"])  # the RNG state (2**64-sized ints) survives
    assert lucid.random.get_rng_state() == obj["rng"]


def test_file_is_plain_safetensors_with_readable_names(tmp_path):
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as torch_load_file

    sd = nn.Linear(3, 2).state_dict()
    f = tmp_path / "lin.safetensors"
    lucid.save({"model": sd, "epoch": 1}, f)
    raw = load_file(f)
    assert set(raw) == {"model.weight", "model.bias"}
    np.testing.assert_array_equal(raw["model.weight"], sd["weight"].numpy())
    lucid.save(sd, f)
    tt = torch_load_file(f)  # a torch user can read lucid weights without lucid
    np.testing.assert_array_equal(tt["weight"].numpy(), sd["weight"].numpy())


def test_name_collisions_are_resolved(tmp_path):
    a, b = lucid.ones(2), lucid.zeros(3)
    lucid.save({"x.y": a, "x": {"y": b}}, tmp_path / "c.safetensors")
    out = lucid.load(tmp_path / "c.safetensors")
    _same(out["x.y"], np.ones(2, np.float32))
    _same(out["x"]["y"], np.zeros(3, np.float32))


def test_state_dict_round_trip_into_model(tmp_path):
    lucid.manual_seed(0)
    src = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    src[0].register_buffer("count", lucid.tensor(7, dtype=lucid.int64))
    src[0].register_buffer("scratch", lucid.ones(3), persistent=False)
    f = tmp_path / "model.safetensors"
    lucid.save(src.state_dict(), f)
    dst = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    dst[0].register_buffer("count", lucid.tensor(0, dtype=lucid.int64))
    weight_array = dst[0].weight.array
    result = dst.load_state_dict(lucid.load(f))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst[0].weight.array is weight_array
    x = lucid.randn(5, 4)
    np.testing.assert_array_equal(dst(x).detach().numpy(), src(x).detach().numpy())
    assert dst[0].count.item() == 7 and dst[0].count.dtype == lucid.int64


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    lucid.save({"w": lucid.arange(4, dtype=lucid.float32), "n": 2}, buf)
    buf.seek(0)
    out = lucid.load(buf)
    _same(out["w"], np.arange(4, dtype=np.float32))
    assert out["n"] == 2
    with pytest.raises(SerializationError, match="not a safetensors file"):
        lucid.load(io.BytesIO(b"abc"))


def test_load_file_written_by_torch_safetensors(tmp_path):
    from safetensors.torch import save_file

    tensors = {"stem.0.weight": torch.randn(4, 3, 2, 2), "stem.1.num_batches_tracked": torch.tensor(5),
               "head.fc.bias": torch.randn(7, dtype=torch.float64), "mask": torch.tensor([True, False]),
               "half": torch.randn(3).half()}
    f = tmp_path / "torch.safetensors"
    save_file(tensors, str(f), metadata={"format": "pt"})
    out = lucid.load(f)
    assert set(out) == set(tensors)
    for k, t in tensors.items():
        _same(out[k], t.numpy())
    # and it loads straight into a lucid module with the same keys
    m = nn.Linear(3, 7, dtype=lucid.float64)
    m.load_state_dict({"weight": lucid.zeros(7, 3, dtype=lucid.float64), "bias": out["head.fc.bias"]})
    np.testing.assert_array_equal(m.bias.detach().numpy(), tensors["head.fc.bias"].numpy())


def test_map_location(tmp_path):
    lucid.save({"a": lucid.ones(2)}, tmp_path / "m.safetensors")
    assert lucid.load(tmp_path / "m.safetensors", map_location="cpu")["a"].device == "cpu"
    with pytest.raises(ValueError, match="'tpu'"):
        lucid.load(tmp_path / "m.safetensors", map_location="tpu")
    if lucid.gpu_available():
        g = lucid.load(tmp_path / "m.safetensors", map_location="gpu")["a"]
        assert g.device == "gpu"
        lucid.save({"g": g}, tmp_path / "g.safetensors")  # saved through a host copy
        assert lucid.load(tmp_path / "g.safetensors")["g"].device == "gpu"  # restored where it was
        assert lucid.load(tmp_path / "g.safetensors", map_location="cpu")["g"].device == "cpu"


def test_gpu_tagged_file_loads_on_cpu_without_gpu(tmp_path):
    """A checkpoint written on a GPU machine loads on a CPU-only one with the default map_location."""
    lucid.save({"a": lucid.ones(2)}, tmp_path / "x.safetensors")
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(tmp_path / "x.safetensors"), framework="np") as fh:
        meta, arrays = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    doc = json.loads(meta["__lucid__"])
    doc["root"]["a"]["device"] = "gpu"
    save_file(arrays, str(tmp_path / "y.safetensors"), metadata={"__lucid__": json.dumps(doc)})
    out = lucid.load(tmp_path / "y.safetensors")["a"]
    assert out.device == ("gpu" if lucid.gpu_available() else "cpu")


# -- atomicity -----------------------------------------------------------------------------------------------
def _dir_listing(d):
    return sorted(os.listdir(d))


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    f = tmp_path / "ckpt.safetensors"
    lucid.save({"v": lucid.ones(3)}, f)
    before = f.read_bytes()

    import safetensors.numpy

    real = safetensors.numpy.save_file

    def crash_mid_way(tensors, filename, metadata=None):
        real(tensors, filename, metadata)
        with open(filename, "r+b") as fh:  # the file is half there when the "disk" fails
            fh.truncate(os.path.getsize(filename) // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash_mid_way)
    with pytest.raises(OSError, match="No space"):
        lucid.save({"v": lucid.zeros(1000)}, f)
    assert f.read_bytes() == before
    assert _dir_listing(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    _same(lucid.load(f)["v"], np.ones(3, np.float32))


def test_failed_fsync_keeps_old_file(tmp_path, monkeypatch):
    f = tmp_path / "ckpt.safetensors"
    lucid.save(lucid.ones(2), f)
    before = f.read_bytes()

    def bad_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", bad_fsync)
    with pytest.raises(OSError, match="Input/output"):
        lucid.save(lucid.zeros(2), f)
    monkeypatch.undo()
    assert f.read_bytes() == before and _dir_listing(tmp_path) == ["ckpt.safetensors"]


def test_unsupported_object_fails_before_writing(tmp_path):
    f = tmp_path / "ckpt.safetensors"
    lucid.save({"a": 1}, f)
    with pytest.raises(SerializationError, match=r"object.*at opt\.fn.*no pickle"):
        lucid.save({"opt": {"fn": object()}}, f)
    assert lucid.load(f) == {"a": 1}
    assert _dir_listing(tmp_path) == ["ckpt.safetensors"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lucid.save({"a": 1}, tmp_path / "missing_dir" / "x.safetensors")


# -- corrupt and foreign files ------------------------------------------------------------------------------
def test_truncated_file(tmp_path):
    f = tmp_path / "t.safetensors"
    lucid.save({"w": lucid.randn(100)}, f)
    data = f.read_bytes()
    f.write_bytes(data[:-50])
    with pytest.raises(SerializationError, match=r"t\.safetensors.*truncated"):
        lucid.load(f)
    f.write_bytes(data[:20])  # cut inside the header
    with pytest.raises(SerializationError, match=r"t\.safetensors"):
        lucid.load(f)
    f.write_bytes(data[:3])
    with pytest.raises(SerializationError, match=r"t\.safetensors.*3 bytes"):
        lucid.load(f)
    f.write_bytes(b"")
    with pytest.raises(SerializationError, match=r"t\.safetensors"):
        lucid.load(f)


def test_random_bytes_file(tmp_path):
    f = tmp_path / "noise.safetensors"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SerializationError, match=r"noise\.safetensors.*not a"):
        lucid.load(f)
    # a plausible header length followed by garbage
    f.write_bytes((100).to_bytes(8, "little") + b"\xff" * 100)
    with pytest.raises(SerializationError, match=r"noise\.safetensors.*not JSON"):
        lucid.load(f)


def test_json_file_renamed(tmp_path):
    f = tmp_path / "config.safetensors"
    f.write_text(json.dumps({"lr": 0.1, "epochs": 10, "notes": "x" * 50}))
    with pytest.raises(SerializationError, match=r"config\.safetensors.*JSON"):
        lucid.load(f)


def test_pickle_checkpoint_is_refused(tmp_path):
    f = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, f)
    with pytest.raises(SerializationError, match=r"model\.pt.*(pickle|zip)"):
        lucid.load(f)


def test_corrupt_metadata(tmp_path):
    from safetensors.numpy import save_file

    f = tmp_path / "meta.safetensors"
    save_file({"a": np.ones(2, np.float32)}, str(f), metadata={"__lucid__": "{not json"})
    with pytest.raises(SerializationError, match=r"meta\.safetensors.*__lucid__"):
        lucid.load(f)
    save_file({"a": np.ones(2, np.float32)}, str(f),
              metadata={"__lucid__": json.dumps({"version": 1, "root": {"__tensor__": "b"}})})
    with pytest.raises(SerializationError, match=r"meta\.safetensors.*'b'"):
        lucid.load(f)
    save_file({"a": np.ones(2, np.float32)}, str(f),
              metadata={"__lucid__": json.dumps({"version": 99, "root": None})})
    with pytest.raises(SerializationError, match="newer lucid"):
        lucid.load(f)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        lucid.load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError):
        lucid.load(tmp_path)


def test_no_pickle_in_module():
    import lucid.serialization as ser

    src = open(ser.__file__).read()
    assert "import pickle" not in src and "pickle.load" not in src
