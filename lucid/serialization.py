"""``save`` / ``load``: tensors and nested containers of them in one safetensors file, with no pickle.

    lucid.save(model.state_dict(), "ckpt.safetensors")
    model.load_state_dict(lucid.load("ckpt.safetensors"))
    lucid.save({"model": model.state_dict(), "epoch": 3, "best": 71.2}, "run.safetensors")

File format: a standard safetensors file. Every array is one safetensors tensor, named after its path in the
saved object ("model.stem.0.weight"; a lone tensor is "tensor"), so any safetensors reader (including
``safetensors.torch.load_file``) gets the weights. The object's structure (dicts, lists, tuples, numbers,
strings, None, bools) is stored as JSON in the header metadata under the ``__lucid__`` key, with tensors
replaced by references to their array names. Loading a safetensors file that has no ``__lucid__`` entry (for
example one written by ``safetensors.torch.save_file``) gives a dict of name -> Tensor.

Nothing here can execute code from a file: the metadata is parsed as JSON and the arrays are plain bytes.
Writes are atomic: the file is written under a temporary name in the same directory, flushed and fsynced,
then renamed over the destination, so a crash or an error mid-way leaves the previous file untouched.

What round-trips: Tensor (dtype, shape, values, requires_grad, and the device it lived on), Parameter,
numpy arrays (loaded back as numpy arrays), dict (any order, str/int/float/bool/None/tuple keys), OrderedDict
(loaded as a plain dict, which keeps the order), list, tuple, int, float (nan and inf included), bool, str,
None. NumPy scalars are stored as the Python number they hold. A tensor object that appears several times
(tied weights) is stored once and loaded back as one shared object. Values come back C-contiguous.
"""
from __future__ import annotations

import json
import math
import os
import struct
import uuid

import numpy as np

from . import _backend
from ._tensor import Tensor

__all__ = ["save", "load", "SerializationError"]

_META_KEY = "__lucid__"
_FORMAT_VERSION = 1
_LONE_TENSOR_NAME = "tensor"
# the JSON tags; a user dict with a key of this dunder form is escaped (stored as a list of items)
_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__")
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header size


class SerializationError(RuntimeError):
    """A file cannot be read as a lucid/safetensors checkpoint, or an object cannot be saved."""


# -- encoding ------------------------------------------------------------------------------------------------
class _Encoder:
    """Walks the object, collects arrays under unique names and builds the JSON structure."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._by_id: dict[int, str] = {}
        self._keep: list = []  # keeps objects alive so their ids stay unique during the walk

    def _name(self, path: str) -> str:
        base = path or _LONE_TENSOR_NAME
        name, k = base, 1
        while name in self.arrays:  # {"a.b": t, "a": {"b": u}} both want "a.b"
            name = f"{base}#{k}"
            k += 1
        return name

    def _array(self, obj, host, path: str) -> str:
        key = id(obj)
        if key in self._by_id:
            return self._by_id[key]
        name = self._name(path)
        # safetensors.numpy writes the raw memory of the array, so it has to be C-contiguous (a channels-last
        # or transposed array would otherwise be stored in memory order under a logical shape)
        # (not np.ascontiguousarray: it turns a 0-d array into a 1-element 1-d one)
        self.arrays[name] = host if host.flags.c_contiguous else host.copy(order="C")
        self._by_id[key] = name
        self._keep.append(obj)
        return name

    def encode(self, obj, path: str):
        if isinstance(obj, Tensor):
            if obj.dtype.kind not in "fiub":
                raise SerializationError(f"save: tensor at {path or '<root>'} has unsupported dtype {obj.dtype}")
            name = self._array(obj, _backend.to_device(obj.array, "cpu"), path)
            node = {"__tensor__": name}
            if obj.device != "cpu":
                node["device"] = obj.device
            if obj.requires_grad and obj.grad_fn is None:
                node["requires_grad"] = True
            from .nn.parameter import Parameter  # noqa: PLC0415  (lucid.nn is imported after this module)

            if isinstance(obj, Parameter):
                node["parameter"] = True
            return node
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "fiub" or obj.dtype.byteorder == ">":
                raise SerializationError(f"save: array at {path or '<root>'} has unsupported dtype {obj.dtype}")
            return {"__ndarray__": self._array(obj, obj, path)}
        if _backend.device_of(obj) == "gpu" and hasattr(obj, "get"):  # a raw CuPy array
            return {"__ndarray__": self._array(obj, obj.get(), path)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, np.integer)):
            return int(obj)
        if isinstance(obj, (float, np.floating)):
            f = float(obj)
            return f if math.isfinite(f) else {"__float__": repr(f)}  # JSON has no nan/inf
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, list):
            return [self.encode(v, _join(path, str(i))) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, _join(path, str(i))) for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            plain = all(isinstance(k, str) and not (k.startswith("__") and k.endswith("__") and len(k) > 4)
                        for k in obj)
            if plain:
                return {k: self.encode(v, _join(path, k)) for k, v in obj.items()}
            items = []
            for k, v in obj.items():
                if not isinstance(k, (str, int, float, bool, tuple, type(None), np.integer, np.floating)):
                    raise SerializationError(f"save: dict key {k!r} at {path or '<root>'} has type "
                                             f"{type(k).__name__}; keys must be str, int, float, bool, None "
                                             "or tuple")
                items.append([self.encode(k, path), self.encode(v, _join(path, str(k)))])
            return {"__dict__": items}
        raise SerializationError(
            f"save: cannot store an object of type {type(obj).__module__}.{type(obj).__qualname__} at "
            f"{path or '<root>'}; lucid.save takes Tensors, numpy arrays, dict/list/tuple, numbers, str, bool "
            "and None (no pickle). Convert it first, e.g. to a dict of plain values.")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- decoding ------------------------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, arrays: dict, device, where: str) -> None:
        self.arrays, self.device, self.where = arrays, device, where
        self._made: dict[tuple, object] = {}

    def _get(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise SerializationError(f"{self.where}: the metadata refers to array {name!r}, which the file "
                                     "does not contain (the file is corrupt)")
        return self.arrays[name]

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "__tensor__" in node:
            name = node["__tensor__"]
            if ("t", name) not in self._made:
                self._made[("t", name)] = self._tensor(self._get(name), node)
            return self._made[("t", name)]
        if "__ndarray__" in node:
            name = node["__ndarray__"]
            if ("a", name) not in self._made:
                self._made[("a", name)] = self._get(name)
            return self._made[("a", name)]
        if "__tuple__" in node:
            return tuple(self.decode(v) for v in node["__tuple__"])
        if "__float__" in node:
            return float(node["__float__"])
        if "__dict__" in node:
            out = {}
            for item in node["__dict__"]:
                k = self.decode(item[0])
                out[k] = self.decode(item[1])
            return out
        return {k: self.decode(v) for k, v in node.items()}

    def _tensor(self, arr, node: dict) -> Tensor:
        device = self.device or node.get("device", "cpu")
        if device == "gpu" and self.device is None and not _backend.gpu_available():
            device = "cpu"  # saved on a GPU, loaded where there is none: default to the host (documented)
        arr = _backend.to_device(arr, device)
        if node.get("parameter"):
            from .nn.parameter import Parameter  # noqa: PLC0415  (nn imports this module's package)

            return Parameter(Tensor._wrap(arr), requires_grad=bool(node.get("requires_grad", False)))
        t = Tensor._wrap(arr)
        if node.get("requires_grad") and arr.dtype.kind == "f":
            t.requires_grad_(True)
        return t


# -- file I/O ------------------------------------------------------------------------------------------------
def save(obj, path) -> None:
    """Save a Tensor, or a (nested) dict/list/tuple of Tensors and plain values, to a safetensors file.

    Args:
        obj: what to save (see the module docstring for the supported types).
        path: destination file name (str or os.PathLike; ".safetensors" is the usual suffix), or a binary
            file object opened for writing.

    The write is atomic: the destination is replaced only after the whole file has been written and synced.
    GPU tensors are copied to the host first. Raises SerializationError for an unsupported object (naming
    where in ``obj`` it is), before anything is written.
    """
    import safetensors.numpy  # noqa: PLC0415  (import cost only when saving)

    enc = _Encoder()
    root = enc.encode(obj, "")
    meta = {_META_KEY: json.dumps({"version": _FORMAT_VERSION, "root": root}, allow_nan=False,
                                  separators=(",", ":"))}
    if hasattr(path, "write"):
        path.write(safetensors.numpy.save(enc.arrays, metadata=meta))
        return
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: directory {directory!r} (for {path!r}) does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        safetensors.numpy.save_file(enc.arrays, tmp, metadata=meta)
        with open(tmp, "rb+") as f:  # safetensors closed its handle without fsync: sync the data now
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_header(head: bytes, size: int, where: str) -> dict:
    """Validate the safetensors framing (8-byte little-endian header length + JSON) with errors that say what
    the file looks like instead, and return the parsed header."""
    hint = ""
    if head[:1] in (b"{", b"["):
        hint = " (it starts like a JSON file)"
    elif head[:2] == b"PK":
        hint = " (it looks like a zip archive, e.g. a torch.save/pickle checkpoint; lucid does not read pickle)"
    elif head[:1] == b"\x80":
        hint = " (it looks like a pickle file; lucid does not read pickle)"
    if size < 8:
        raise SerializationError(f"{where} is not a safetensors file: it is only {size} bytes long{hint}")
    (n,) = struct.unpack("<Q", head[:8])
    if n == 0 or n > _MAX_HEADER:
        raise SerializationError(f"{where} is not a safetensors file{hint}: a safetensors file starts with the "
                                 f"byte length of its JSON header, and this one's first 8 bytes read as {n}")
    if 8 + n > size:
        raise SerializationError(f"{where} is truncated or not a safetensors file{hint}: its header should be "
                                 f"{n} bytes long but the file has only {size} bytes")
    raw = head[8:8 + n]
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SerializationError(f"{where} is not a valid safetensors file: its header is not JSON ({exc})"
                                 f"{hint}") from None
    if not isinstance(header, dict):
        raise SerializationError(f"{where} is not a valid safetensors file: its header is not a JSON object")
    end = 0
    for k, v in header.items():
        if k == "__metadata__":
            continue
        offs = v.get("data_offsets") if isinstance(v, dict) else None
        if not (isinstance(offs, list) and len(offs) == 2):
            raise SerializationError(f"{where} is not a valid safetensors file: entry {k!r} has no data offsets")
        end = max(end, int(offs[1]))
    if 8 + n + end > size:
        raise SerializationError(f"{where} is truncated: its header describes {8 + n + end} bytes but the file "
                                 f"has {size} bytes (an interrupted copy or download?)")
    return header


def load(path, map_location=None):
    """Load what ``save`` wrote (or any safetensors file) and return it.

    Args:
        path: file name (str or os.PathLike) or a binary file object.
        map_location: "cpu" or "gpu" ("cuda") to place every loaded tensor there; None (default) puts each
            tensor back on the device it was saved from, or on the CPU when no GPU is available (where lucid
            differs from torch.load, which would fail). NumPy arrays always load as NumPy arrays.

    Returns:
        The saved object; for a safetensors file not written by lucid, a dict of name -> Tensor.

    Raises:
        FileNotFoundError: no such file.
        SerializationError: the file is truncated, corrupt, or not a safetensors file (the message names it).
    """
    import safetensors.numpy  # noqa: PLC0415

    device = None if map_location is None else _backend.normalize_device(map_location)
    if hasattr(path, "read"):
        data = path.read()
        where = f"checkpoint {getattr(path, 'name', '<file object>')!r}"
        n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else 0
        header = _read_header(data[:8 + min(n, _MAX_HEADER)], len(data), where)
        try:
            arrays = {k: np.array(v) for k, v in safetensors.numpy.load(data).items()}  # own, writable copies
        except Exception as exc:  # noqa: BLE001  (the Rust reader's SafetensorError and friends)
            raise SerializationError(f"{where} could not be read as safetensors: {exc}") from None
    else:
        path = os.fspath(path)
        where = f"checkpoint file {path!r}"
        if not os.path.exists(path):
            raise FileNotFoundError(f"load: no such file {path!r}")
        if os.path.isdir(path):
            raise IsADirectoryError(f"load: {path!r} is a directory, expected a .safetensors file")
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) == 8:
                n = struct.unpack("<Q", head)[0]
                if 0 < n <= _MAX_HEADER:
                    head += f.read(n)
        header = _read_header(head, size, where)
        try:
            with safetensors.safe_open(path, framework="np") as f:
                arrays = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001
            raise SerializationError(f"{where} could not be read as safetensors: {exc}") from None

    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or _META_KEY not in meta:
        # a plain safetensors file (e.g. from safetensors.torch): its tensors by name, in file order
        order = sorted((k for k in header if k != "__metadata__"),
                       key=lambda k: header[k]["data_offsets"][0])
        return {k: _Decoder(arrays, device, where)._tensor(arrays[k], {}) for k in order}
    try:
        doc = json.loads(meta[_META_KEY])
        version, root = doc["version"], doc["root"]
    except (TypeError, ValueError, KeyError) as exc:
        raise SerializationError(f"{where}: its {_META_KEY} metadata is not valid ({exc!r})") from None
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise SerializationError(f"{where} was written by a newer lucid (format version {version}; this lucid "
                                 f"reads up to {_FORMAT_VERSION}); upgrade lucid to load it")
    try:
        return _Decoder(arrays, device, where).decode(root)
    except SerializationError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise SerializationError(f"{where}: its {_META_KEY} metadata is malformed ({exc!r})") from None
