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

Hostile or broken files: ``load`` reads only regular files (a FIFO, socket or device is refused without being
waited on), checks the whole header before reading any data, and caps what a file may ask of it:
``MAX_HEADER_BYTES`` of header, ``MAX_ENTRIES`` tensors and ``MAX_DEPTH`` levels of nesting (module constants;
``save`` refuses to write a file over them, so everything lucid writes, lucid reads). Every malformed file gives
a SerializationError that names it, never a bare ValueError/KeyError/RecursionError.

Temporary files: ``save`` and ``atomic_write`` write to ``.<name>.lucid-tmp-<hex>`` beside the destination,
created with mode 0o666 minus the process umask (the permissions any new file gets). A process killed mid-write
leaves that file behind; ``remove_stale_temporaries(directory)`` deletes lucid's own leftovers (and nothing
else), e.g. when a training run starts.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import uuid

import numpy as np

from . import _backend, _safetensors
from ._safetensors import SerializationError
from ._tensor import Tensor

__all__ = ["save", "load", "SerializationError", "atomic_write", "remove_stale_temporaries",
           "is_temporary_name"]

_META_KEY = "__lucid__"
_FORMAT_VERSION = 1
_LONE_TENSOR_NAME = "tensor"
# the JSON tags; a user dict with a key of this dunder form is escaped (stored as a list of items)
_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__")
# What one file may ask of load (and what save may write). {model, AdamW optimizer, epoch, rng} of an
# InceptionNeXt-base has 2,080 tensors, a 371 KB header and nesting depth 8. A million-entry header (78 MB) took
# 20 s and 1.9 GB before these caps; it is now refused from its first 8 bytes.
MAX_HEADER_BYTES = 16 * 2**20
MAX_ENTRIES = 100_000
MAX_DEPTH = 100  # JSON levels; a Python tuple is 2 levels, a dict with non-str keys 3
TEMP_MARKER = ".lucid-tmp-"
_TEMP_NAME = re.compile(r"^\..+(\.lucid-tmp-[0-9a-f]{8,}|\.[0-9a-f]{12}\.tmp)$")  # this name | the older one


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

    def encode(self, obj, path: str, depth: int = 0):
        if depth > MAX_DEPTH:
            raise SerializationError(f"save: the object is nested deeper than {MAX_DEPTH} levels at "
                                     f"{path[:80] or '<root>'}... (a container that contains itself?)")
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
            return [self.encode(v, _join(path, str(i)), depth + 1) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, _join(path, str(i)), depth + 1) for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            plain = all(isinstance(k, str) and not (k.startswith("__") and k.endswith("__") and len(k) > 4)
                        for k in obj)
            if plain:
                return {k: self.encode(v, _join(path, k), depth + 1) for k, v in obj.items()}
            items = []
            for k, v in obj.items():
                if not isinstance(k, (str, int, float, bool, tuple, type(None), np.integer, np.floating)):
                    raise SerializationError(f"save: dict key {k!r} at {path or '<root>'} has type "
                                             f"{type(k).__name__}; keys must be str, int, float, bool, None "
                                             "or tuple")
                items.append([self.encode(k, path, depth + 1), self.encode(v, _join(path, str(k)), depth + 1)])
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
        self._made: dict[str, Tensor] = {}

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
            name, arr = node["__tensor__"], self._get(node["__tensor__"])
            if name not in self._made:  # a tensor saved several times (tied weights) loads as one object
                self._made[name] = self._tensor(arr, node)
            return self._made[name]
        if "__ndarray__" in node:
            return self._get(node["__ndarray__"])
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


# -- temporary files and atomic writes -----------------------------------------------------------------------
def is_temporary_name(name: str) -> bool:
    """Whether ``name`` (a file name, not a path) is one of lucid's own temporary files:
    ``.<destination>.lucid-tmp-<hex>`` (and ``.<destination>.<12 hex>.tmp`` from earlier versions)."""
    return bool(_TEMP_NAME.match(name))


def remove_stale_temporaries(directory, older_than: float = 0.0) -> list[str]:
    """Delete lucid's own temporary files left in ``directory`` by a process killed mid-write; returns the paths.

    Only regular files whose names match ``is_temporary_name`` are touched (never a checkpoint, never another
    program's file, never through a symlink). ``older_than`` (seconds) spares temporaries modified more recently,
    for a directory another live process may be saving into; a save whose temporary is removed under it fails
    with an error and leaves its previous file intact, so nothing good is lost either way.
    """
    import time  # noqa: PLC0415

    directory = os.fspath(directory)
    removed, now = [], time.time()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in sorted(names):
        if not is_temporary_name(name):
            continue
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than:
                os.unlink(path)
                removed.append(path)
        except FileNotFoundError:  # another process cleaned it first
            continue
    return removed


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """Write ``path`` all at once or not at all: ``with atomic_write(p) as f: f.write(...)``.

    Yields a file object (``mode`` "wb" or "w"; text mode defaults to UTF-8) on a temporary file beside ``path``
    (``.<name>.lucid-tmp-<hex>``, see ``remove_stale_temporaries``); when the block ends without an exception the
    data is flushed and fsynced, renamed over ``path`` and the directory entry synced. If the block raises, the
    temporary file is removed and ``path`` is untouched. The file gets the permissions a newly created file gets
    under the process umask (0o644 with the usual umask 022), not those of a file it replaces.

    Raises FileNotFoundError when the directory does not exist, and for a full disk an OSError (ENOSPC/EDQUOT)
    that names ``path``, the bytes written so far and the space left.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"directory {directory!r} (for {path!r}) does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}{TEMP_MARKER}{uuid.uuid4().hex[:16]}")
    # O_EXCL: never write through someone else's file or symlink; 0o666 & ~umask is applied by the kernel
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if mode == "w" else None) as f:
            try:
                yield f
                f.flush()
                os.fsync(f.fileno())
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                    raise _disk_full(exc, path, directory, f.tell()) from None
                raise
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _disk_full(exc: OSError, path: str, directory: str, written: int, needed: int | None = None) -> OSError:
    try:
        st = os.statvfs(directory)
        free = f"{_bytes(st.f_bavail * st.f_frsize)} free there"
    except (OSError, AttributeError):
        free = "free space unknown"
    size = f"it needs {_bytes(needed)}" if needed else f"{_bytes(written)} were written"
    return OSError(exc.errno, f"No space left on device while writing {path!r}: {size}, {free}; the previous "
                              "file (if any) is untouched")


def _bytes(n: int) -> str:
    return f"{n} bytes" if n < 10**6 else f"{n / 1e6:.1f} MB"


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


# -- save / load ---------------------------------------------------------------------------------------------
def save(obj, path) -> None:
    """Save a Tensor, or a (nested) dict/list/tuple of Tensors and plain values, to a safetensors file.

    Args:
        obj: what to save (see the module docstring for the supported types).
        path: destination file name (str or os.PathLike; ".safetensors" is the usual suffix), or a binary
            file object opened for writing.

    The write is atomic (``atomic_write``): the destination is replaced only after the whole file has been
    written and synced, and gets a new file's usual permissions. GPU tensors are copied to the host first.
    Raises SerializationError for an unsupported object (naming where in ``obj`` it is) or one past the limits
    ``load`` enforces, before anything is written; OSError naming the file and the space needed on a full disk.
    """
    enc = _Encoder()
    root = enc.encode(obj, "")
    meta = {_META_KEY: json.dumps({"version": _FORMAT_VERSION, "root": root}, allow_nan=False,
                                  separators=(",", ":"))}
    if len(enc.arrays) > MAX_ENTRIES:
        raise SerializationError(f"save: the object holds {len(enc.arrays)} arrays, over lucid's limit of "
                                 f"{MAX_ENTRIES} per file (lucid.serialization.MAX_ENTRIES)")
    if _safetensors.json_depth(root) + 2 > MAX_DEPTH:  # + the {"root": ...} document and the metadata object
        raise SerializationError(f"save: the object is nested deeper than lucid's limit of {MAX_DEPTH} levels")
    head, order = _safetensors.encode_header(enc.arrays, meta)
    if len(head) - 8 > MAX_HEADER_BYTES:
        raise SerializationError(f"save: the file's header would be {len(head) - 8} bytes, over lucid's limit of "
                                 f"{MAX_HEADER_BYTES} (lucid.serialization.MAX_HEADER_BYTES): store big lists of "
                                 "numbers as arrays, not Python lists")
    if hasattr(path, "write"):
        path.write(head)
        _safetensors.write_arrays(path, enc.arrays, order)
        return
    path = os.fspath(path)
    try:
        with atomic_write(path) as f:
            f.write(head)
            _safetensors.write_arrays(f, enc.arrays, order)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"save: {exc}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            needed = len(head) + sum(a.nbytes for a in enc.arrays.values())
            raise _disk_full(exc, path, os.path.dirname(os.path.abspath(path)), 0, needed) from None
        raise


def _open_regular(path: str):
    """Open ``path`` for reading if it is a regular file, without ever blocking (a FIFO with no writer would
    block a plain open forever); returns (file object, size)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file {path!r}") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"load: {path!r} is a directory, expected a .safetensors file")
    if not stat.S_ISREG(st.st_mode):
        raise SerializationError(f"load: {path!r} is not a regular file (it is a {_kind(st.st_mode)}); lucid.load "
                                 "reads only regular files")
    # O_NONBLOCK: if the path was swapped for a FIFO after the stat, open returns at once instead of waiting
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SerializationError(f"load: {path!r} is not a regular file (it is a {_kind(st.st_mode)}); "
                                     "lucid.load reads only regular files")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


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
        IsADirectoryError: ``path`` is a directory.
        SerializationError: anything else wrong with the file, with its name in the message: not a regular file
            (FIFO, device, socket), truncated, corrupt, not a safetensors file, over the limits
            ``MAX_HEADER_BYTES`` / ``MAX_ENTRIES`` / ``MAX_DEPTH``, or malformed lucid metadata.
    """
    import io  # noqa: PLC0415

    device = None if map_location is None else _backend.normalize_device(map_location)
    limits = dict(max_header=MAX_HEADER_BYTES, max_entries=MAX_ENTRIES, max_depth=MAX_DEPTH)
    if hasattr(path, "read"):
        data = path.read()
        where = f"checkpoint {getattr(path, 'name', '<file object>')!r}"
        meta, arrays = _safetensors.read(io.BytesIO(data), len(data), where, **limits)
    else:
        path = os.fspath(path)
        where = f"checkpoint file {path!r}"
        f, size = _open_regular(path)
        with f:
            meta, arrays = _safetensors.read(f, size, where, **limits)

    if _META_KEY not in meta:
        # a plain safetensors file (e.g. from safetensors.torch): its tensors by name, in file order
        return {k: _Decoder(arrays, device, where)._tensor(a, {}) for k, a in arrays.items()}
    doc = _safetensors.parse_json(meta[_META_KEY], f"{_META_KEY} metadata", where, MAX_DEPTH)
    if not (isinstance(doc, dict) and "version" in doc and "root" in doc):
        raise SerializationError(f"{where}: its {_META_KEY} metadata is not valid (expected an object with "
                                 "'version' and 'root')")
    version, root = doc["version"], doc["root"]
    if not isinstance(version, int) or version > _FORMAT_VERSION:
        raise SerializationError(f"{where} was written by a newer lucid (format version {version!r}; this lucid "
                                 f"reads up to {_FORMAT_VERSION}); upgrade lucid to load it")
    try:
        return _Decoder(arrays, device, where).decode(root)
    except SerializationError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise SerializationError(f"{where}: its {_META_KEY} metadata is malformed ({exc!r})") from None
