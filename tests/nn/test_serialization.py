"""lucid.save / lucid.load: round trips, atomic writes, clear errors on bad files, interop with torch."""
import io
import json
import math
import os
import struct
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

    import lucid._safetensors as fmt

    real = fmt.write_arrays

    def crash_mid_way(fh, arrays, order):
        real(fh, {k: a[: a.size // 2] for k, a in arrays.items()}, order)  # half the data is there ...
        raise OSError(28, "No space left on device")  # ... when the "disk" fills up

    monkeypatch.setattr(fmt, "write_arrays", crash_mid_way)
    # the message names the file and the space the whole file needs (4 KB of data + the header)
    with pytest.raises(OSError, match=r"No space left on device while writing .*ckpt\.safetensors.*needs 4\d\d\d bytes"):
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


# -- hostile and malformed files (issue 16): every one a SerializationError naming the file, none a hang --------
def _raw_file(path, header, data=b"", length=None):
    """A file with ``header`` (a dict, or raw JSON text) as its safetensors header, followed by ``data``."""
    h = (header if isinstance(header, str) else json.dumps(header)).encode()
    path.write_bytes(struct.pack("<Q", len(h) if length is None else length) + h + data)
    return path


def _entry(offsets, dtype="F32", shape=(1,)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": offsets}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "ckpt.safetensors"
    os.mkfifo(fifo)  # no writer: a plain open() for reading would wait forever
    with pytest.raises(SerializationError, match=r"ckpt\.safetensors.*not a regular file.*FIFO"):
        lucid.load(fifo)
    with pytest.raises(SerializationError, match=r"/dev/null.*not a regular file.*character device"):
        lucid.load(os.devnull)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_file_swapped_for_a_fifo_after_the_check_does_not_block(tmp_path, monkeypatch):
    """The race: the path passes the stat as a regular file, then is replaced by a FIFO before the open."""
    import lucid.serialization as ser

    f = tmp_path / "ckpt.safetensors"
    lucid.save({"a": 1}, f)
    real_stat = os.stat

    def stat_then_swap(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if os.fspath(path) == str(f):
            os.unlink(f)
            os.mkfifo(f)
        return st

    monkeypatch.setattr(ser.os, "stat", stat_then_swap)
    with pytest.raises(SerializationError, match=r"ckpt\.safetensors.*not a regular file.*FIFO"):
        lucid.load(f)


@pytest.mark.parametrize("spec,match", [
    ({"w": _entry(["0", "4"])}, r"'w' has data_offsets \['0', '4'\]"),  # string offsets (a raw ValueError before)
    ({"w": _entry([0.0, 4.0])}, r"'w' has data_offsets"),
    ({"w": _entry([4, 0])}, r"'w' has data_offsets"),
    ({"w": _entry([0, 4], shape=(-1,))}, r"'w' has shape \[-1\]"),
    ({"w": _entry([0, 4], shape=("1",))}, r"'w' has shape"),
    ({"w": _entry([0, 4], dtype="BF16", shape=(2,))}, r"'w' has dtype 'BF16'.*no such type"),
    ({"w": _entry([0, 4], dtype=7)}, r"'w' has dtype 7"),
    ({"w": _entry([0, 4], shape=(2,))}, r"'w' has shape \[2\] and dtype F32 \(8 bytes\)"),
    ({"w": [0, 4]}, r"'w' is described by list"),
    ({"w": _entry([0, 4]), "v": _entry([0, 4])}, r"overlaps the previous tensor"),
    ({"w": _entry([0, 4]), "v": _entry([8, 12])}, r"truncated"),
    ({"__metadata__": [1], "w": _entry([0, 4])}, r"__metadata__ is not an object of strings"),
    ({"__metadata__": {"k": 1}, "w": _entry([0, 4])}, r"__metadata__ is not an object of strings"),
    ([1, 2], r"header is not a JSON object"),
])
def test_malformed_headers(tmp_path, spec, match):
    f = _raw_file(tmp_path / "bad.safetensors", spec, b"\0" * 4)
    with pytest.raises(SerializationError, match=r"bad\.safetensors.*" + match):
        lucid.load(f)
    with pytest.raises(SerializationError, match=match):  # the same through a file object
        lucid.load(io.BytesIO(f.read_bytes()))


def test_gaps_and_trailing_bytes_are_refused(tmp_path):
    f = _raw_file(tmp_path / "g.safetensors", {"w": _entry([0, 4]), "v": _entry([8, 12])}, b"\0" * 12)
    with pytest.raises(SerializationError, match=r"g\.safetensors.*'v' leaves a gap of 4 bytes"):
        lucid.load(f)
    f = _raw_file(tmp_path / "g.safetensors", {"w": _entry([0, 4])}, b"\0" * 12)
    with pytest.raises(SerializationError, match=r"g\.safetensors.*8 bytes follow its last tensor"):
        lucid.load(f)


def _lucid_meta(doc: str) -> dict:
    return {"__metadata__": {"__lucid__": doc}}


@pytest.mark.parametrize("doc,match", [
    ('{"version":1,"root":' + "[" * 150 + "]" * 150 + "}", r"__lucid__ metadata is nested deeper than 100"),
    ('{"version":1,"root":' + "[" * 100_000 + "]" * 100_000 + "}", r"nested deeper than 100"),  # RecursionError
    ('{"version":1,"root":{"__float__":"abc"}}', r"__lucid__ metadata is malformed"),
    ('{"version":1,"root":{"__dict__":[[[1],2]]}}', r"__lucid__ metadata is malformed"),  # unhashable key
    ('{"version":1,"root":{"__dict__":5}}', r"__lucid__ metadata is malformed"),
    ('{"version":1,"root":{"__tuple__":5}}', r"__lucid__ metadata is malformed"),
    ('{"version":1,"root":{"__tensor__":["a"]}}', r"refers to array \['a'\]"),
    ('[]', r"__lucid__ metadata is not valid"),
    ('{"version":"1","root":null}', r"newer lucid \(format version '1'"),
])
def test_malformed_lucid_metadata(tmp_path, doc, match):
    f = _raw_file(tmp_path / "m.safetensors", _lucid_meta(doc))
    with pytest.raises(SerializationError, match=r"m\.safetensors.*" + match):
        lucid.load(f)


def test_deeply_nested_header_is_refused(tmp_path):
    f = _raw_file(tmp_path / "d.safetensors", '{"w":' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SerializationError, match=r"d\.safetensors.*header is nested deeper than 100"):
        lucid.load(f)


def test_huge_headers_are_refused_before_parsing(tmp_path, monkeypatch):
    import lucid.serialization as ser

    # a header over the byte limit is refused from its length alone (a million entries took 20 s and 1.9 GB)
    monkeypatch.setattr(ser, "MAX_HEADER_BYTES", 1000)
    header = {f"w{i}": _entry([4 * i, 4 * i + 4]) for i in range(40)}
    f = _raw_file(tmp_path / "h.safetensors", header, b"\0" * 160)
    with pytest.raises(SerializationError, match=r"h\.safetensors.*header is \d+ bytes long, over lucid's limit "
                                                 r"of 1000 bytes.*MAX_HEADER_BYTES"):
        lucid.load(f)
    monkeypatch.setattr(ser, "MAX_HEADER_BYTES", 16 * 2**20)
    monkeypatch.setattr(ser, "MAX_ENTRIES", 39)
    with pytest.raises(SerializationError, match=r"h\.safetensors.*describes 40 tensors, over lucid's limit of 39"):
        lucid.load(f)
    # save refuses what load would refuse, before writing anything
    with pytest.raises(SerializationError, match="holds 40 arrays, over lucid's limit of 39"):
        lucid.save([lucid.ones(1) for _ in range(40)], tmp_path / "s.safetensors")
    monkeypatch.setattr(ser, "MAX_HEADER_BYTES", 200)
    with pytest.raises(SerializationError, match="header would be .* bytes, over lucid's limit of 200"):
        lucid.save({"history": list(range(100))}, tmp_path / "s.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["h.safetensors"]


def test_save_refuses_self_referencing_and_too_deep_objects(tmp_path):
    loop = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="nested deeper than 100 levels.*contains itself"):
        lucid.save(loop, tmp_path / "x.safetensors")
    deep = 1
    for _ in range(60):
        deep = (deep,)  # 60 tuples are 120 JSON levels
    with pytest.raises(SerializationError, match="nested deeper than lucid's limit of 100"):
        lucid.save(deep, tmp_path / "x.safetensors")
    for _ in range(40):
        deep = deep[0]
    lucid.save(deep, tmp_path / "x.safetensors")  # 20 tuples fit
    assert lucid.load(tmp_path / "x.safetensors") == deep


def test_files_from_other_writers_stay_readable_and_ours_are_aligned(tmp_path):
    """lucid writes its own safetensors bytes: the reference reader accepts them, every tensor's data is
    aligned to its item size (torch's reader needs that), and lucid reads the reference writer's files."""
    from safetensors import safe_open

    objs = {"odd_half": lucid.ones(3, dtype=lucid.float16), "mask": lucid.tensor([True, False, True]),
            "w64": lucid.randn(5, dtype=lucid.float64), "i8": lucid.tensor([1, -2, 3], dtype=lucid.int8),
            "empty": lucid.zeros(0, 4), "scalar": lucid.tensor(2.5)}
    f = tmp_path / "mixed.safetensors"
    lucid.save(objs, f)
    with safe_open(str(f), framework="pt") as fh:
        for k, v in objs.items():
            np.testing.assert_array_equal(fh.get_tensor(k).numpy(), v.numpy())
    header = json.loads(f.read_bytes()[8:8 + struct.unpack("<Q", f.read_bytes()[:8])[0]])
    for k, v in objs.items():
        assert header[k]["data_offsets"][0] % v.array.dtype.itemsize == 0
    out = lucid.load(f)
    for k, v in objs.items():
        _same(out[k], v.numpy())


# -- permissions, atomic_write and temporaries ----------------------------------------------------------------
@pytest.fixture
def umask():
    def set_umask(mask):
        return os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_umask
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_saved_files_get_a_new_files_permissions(tmp_path, umask, mask):
    umask(mask)
    lucid.save({"a": lucid.ones(2)}, tmp_path / "c.safetensors")  # was 0o600 whatever the umask
    assert os.stat(tmp_path / "c.safetensors").st_mode & 0o777 == 0o666 & ~mask
    open(tmp_path / "plain", "wb").close()
    assert os.stat(tmp_path / "plain").st_mode & 0o777 == 0o666 & ~mask  # the same as any new file


def test_atomic_write(tmp_path):
    from lucid.serialization import atomic_write, is_temporary_name

    p = tmp_path / "report.json"
    with atomic_write(p, "w") as fh:
        fh.write('{"top1": 73.5, "note": "α"}')
        (tmp_name,) = [n for n in os.listdir(tmp_path)]
        assert is_temporary_name(tmp_name) and tmp_name.startswith(".report.json.lucid-tmp-")
        assert not p.exists()  # nothing at the destination until the block ends
    assert json.loads(p.read_text("utf-8"))["note"] == "α" and os.listdir(tmp_path) == ["report.json"]
    with pytest.raises(KeyError):
        with atomic_write(p) as fh:
            fh.write(b"half a fi")
            raise KeyError("the writer failed")
    assert json.loads(p.read_text("utf-8"))["top1"] == 73.5 and os.listdir(tmp_path) == ["report.json"]
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic_write(p, "a"):
            pass
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "no" / "x"):
            pass


def test_temporaries_of_a_killed_writer_are_removed(tmp_path):
    import subprocess
    import sys

    from lucid.serialization import is_temporary_name, remove_stale_temporaries

    ckpt = tmp_path / "last.safetensors"
    lucid.save({"epoch": 1}, ckpt)
    # a process dies mid-save (os._exit skips every cleanup, as kill -9 does)
    code = ("import os, sys, lucid.serialization as s\n"
            "with s.atomic_write(sys.argv[1]) as f:\n    f.write(b'x' * 1000)\n    f.flush()\n    os._exit(0)\n")
    subprocess.run([sys.executable, "-c", code, str(ckpt)], check=True, cwd=os.path.dirname(os.path.dirname(
        lucid.__file__)))
    orphans = [n for n in os.listdir(tmp_path) if n != "last.safetensors"]
    assert len(orphans) == 1 and is_temporary_name(orphans[0])
    assert lucid.load(ckpt) == {"epoch": 1}  # the good checkpoint is intact
    # other files that look a little like temporaries are not lucid's and stay
    keep = [".last.safetensors.tmp", "last.safetensors.lucid-tmp-1234abcd", ".x.lucid-tmp-NOTHEX",
            ".tmpa1b2c3", "notes.txt"]
    for name in keep:
        (tmp_path / name).write_text("not lucid's")
    (tmp_path / ".dir.lucid-tmp-0123abcd").mkdir()  # a directory with the pattern is not a file of ours
    os.symlink(ckpt, tmp_path / ".link.lucid-tmp-0123abcd")
    assert remove_stale_temporaries(tmp_path, older_than=3600) == []  # too recent to be stale
    assert remove_stale_temporaries(tmp_path) == [str(tmp_path / orphans[0])]
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["last.safetensors", ".dir.lucid-tmp-0123abcd",
                                                          ".link.lucid-tmp-0123abcd"])
    assert lucid.load(ckpt) == {"epoch": 1}
    assert remove_stale_temporaries(tmp_path / "missing") == []
    # the name format of lucid before this change is recognised too
    assert is_temporary_name(".last.safetensors.0123456789ab.tmp")
