"""The safetensors file format, read and written here rather than by the ``safetensors`` package.

    file = u64 little-endian N | N bytes of JSON header (space-padded to a multiple of 8) | data
    header = {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}}

Why by hand: lucid.load must never block on a FIFO or trust a hostile header (it validates every field and caps
the header's size, entry count and nesting before doing any work), and lucid.save must write into its own
temporary file (the package writes through a temporary of its own with a generic name and mode 0600, which a
crash leaves behind and which does not get the umask's permissions). Reading copies each tensor straight from
the file into its own array (no mmap, no whole-file buffer); writing streams each array's bytes.

Files written here are plain safetensors files: tensors sorted by item size (largest first, so every tensor's
data is aligned to its item size) and otherwise in the order given; the header is padded with spaces to 8 bytes.
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np

# safetensors dtype names <-> NumPy dtypes (little-endian, as the format stores them)
DTYPES = {"BOOL": "?", "U8": "<u1", "I8": "<i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
          "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8"}
NAME_OF = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}


class SerializationError(RuntimeError):
    """A file cannot be read as a lucid/safetensors checkpoint, or an object cannot be saved."""


# -- writing -------------------------------------------------------------------------------------------------
def encode_header(arrays: dict, metadata: dict) -> tuple[bytes, list]:
    """The file's first bytes (length prefix + padded JSON header) and the order the arrays' data follows in."""
    order = sorted(arrays, key=lambda k: -arrays[k].dtype.itemsize)  # stable: insertion order within a size
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": NAME_OF[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, order


def write_arrays(f, arrays: dict, order: list) -> None:
    """Stream each array's little-endian C-order bytes to ``f`` (arrays must be C-contiguous)."""
    for name in order:
        a = arrays[name]
        if a.nbytes:
            a = a.astype(a.dtype.newbyteorder("<"), copy=False)  # a no-op on little-endian machines
            f.write(a.reshape(-1).view(np.uint8))


# -- reading -------------------------------------------------------------------------------------------------
def _hint(first: bytes) -> str:
    if first[:1] in (b"{", b"["):
        return " (it starts like a JSON file)"
    if first[:2] == b"PK":
        return " (it looks like a zip archive, e.g. a torch.save/pickle checkpoint; lucid does not read pickle)"
    if first[:1] == b"\x80":
        return " (it looks like a pickle file; lucid does not read pickle)"
    return ""


def json_depth(obj) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            depth = max(depth, d)
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return depth


def parse_json(raw, what: str, where: str, max_depth: int):
    """``json.loads`` whose every failure (bad bytes, bad syntax, nesting past ``max_depth``) is a
    SerializationError naming the file."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SerializationError(f"{where} is not a valid safetensors file: its {what} is not JSON ({exc})"
                                 f"{_hint(raw[:2] if isinstance(raw, bytes) else b'')}") from None
    except RecursionError:  # the C scanner stops at the interpreter's recursion limit
        raise SerializationError(f"{where}: its {what} is nested deeper than {max_depth} levels (lucid's limit; "
                                 "the file is corrupt or hostile)") from None
    if json_depth(value) > max_depth:
        raise SerializationError(f"{where}: its {what} is nested deeper than {max_depth} levels (lucid's limit; "
                                 "the file is corrupt or hostile)")
    return value


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _entry(name: str, spec, where: str) -> tuple:
    """Validate one tensor entry of the header; returns (dtype, shape, begin, end)."""
    bad = f"{where} is not a valid safetensors file: tensor {name!r}"
    if not isinstance(spec, dict):
        raise SerializationError(f"{bad} is described by {type(spec).__name__} {spec!r:.60}, expected an object")
    dtype, shape, offs = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in DTYPES:
        more = " (NumPy, and so lucid, has no such type; convert it to float32 first)" if isinstance(dtype, str) \
            and dtype[:2] in ("BF", "F8", "F6", "F4", "C6") else ""
        raise SerializationError(f"{bad} has dtype {dtype!r}; lucid reads {', '.join(DTYPES)}{more}")
    if not (isinstance(shape, list) and all(_int(s) and s >= 0 for s in shape)):
        raise SerializationError(f"{bad} has shape {shape!r:.60}, expected a list of non-negative integers")
    if not (isinstance(offs, list) and len(offs) == 2 and all(_int(o) and o >= 0 for o in offs)
            and offs[0] <= offs[1]):
        raise SerializationError(f"{bad} has data_offsets {offs!r:.60}, expected [begin, end] with integers "
                                 "0 <= begin <= end")
    nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if offs[1] - offs[0] != nbytes:
        raise SerializationError(f"{bad} has shape {shape} and dtype {dtype} ({nbytes} bytes) but its "
                                 f"data_offsets {offs} span {offs[1] - offs[0]} bytes")
    return np.dtype(DTYPES[dtype]), tuple(shape), offs[0], offs[1]


def read(f, size: int, where: str, *, max_header: int, max_entries: int, max_depth: int):
    """Read a safetensors file from the binary file object ``f`` (positioned at its start, ``size`` bytes).

    Returns ``(metadata, arrays)``: the ``__metadata__`` dict (str -> str) and name -> ndarray in file order,
    each array its own writable copy. Everything about the header is checked before any tensor is read:
    its length (at most ``max_header`` bytes), the number of tensors (at most ``max_entries``), its nesting,
    every entry's dtype/shape/offsets, and that the tensors tile the data section exactly.
    """
    head = f.read(8)
    hint = _hint(head)
    if len(head) < 8:
        raise SerializationError(f"{where} is not a safetensors file: it is only {size} bytes long{hint}")
    (n,) = struct.unpack("<Q", head)
    if n > max_header and 8 + n <= size and f.read(1) == b"{":
        raise SerializationError(f"{where}: its header is {n} bytes long, over lucid's limit of {max_header} "
                                 "bytes (lucid.serialization.MAX_HEADER_BYTES; raise it only for a file you trust)")
    if n == 0 or n > max_header:
        raise SerializationError(f"{where} is not a safetensors file{hint}: a safetensors file starts with the "
                                 f"byte length of its JSON header, and this one's first 8 bytes read as {n}")
    if 8 + n > size:
        raise SerializationError(f"{where} is truncated or not a safetensors file{hint}: its header should be "
                                 f"{n} bytes long but the file has only {size} bytes")
    f.seek(8)
    raw = f.read(n)
    if len(raw) < n:
        raise SerializationError(f"{where} is truncated: it ended inside its header (was it being written?)")
    count = raw.count(b'"data_offsets"')  # a cheap upper bound on the entries, before parsing anything
    if count > max_entries:
        raise SerializationError(f"{where}: its header describes {count} tensors, over lucid's limit of "
                                 f"{max_entries} (lucid.serialization.MAX_ENTRIES)")
    header = parse_json(raw, "header", where, max_depth)
    if not isinstance(header, dict):
        raise SerializationError(f"{where} is not a valid safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise SerializationError(f"{where} is not a valid safetensors file: its __metadata__ is not an object of "
                                 "strings")
    if len(header) > max_entries:
        raise SerializationError(f"{where}: its header describes {len(header)} tensors, over lucid's limit of "
                                 f"{max_entries} (lucid.serialization.MAX_ENTRIES)")
    entries = sorted(((k, _entry(k, v, where)) for k, v in header.items()), key=lambda kv: kv[1][2:])
    data_size = size - 8 - n
    end = max((e[3] for _, e in entries), default=0)
    if end > data_size:
        raise SerializationError(f"{where} is truncated: its header describes {8 + n + end} bytes but the file "
                                 f"has {size} bytes (an interrupted copy or download?)")
    pos = 0
    for name, (_, _, begin, stop) in entries:
        if begin != pos:
            what = "overlaps the previous tensor" if begin < pos else f"leaves a gap of {begin - pos} bytes"
            raise SerializationError(f"{where} is not a valid safetensors file: tensor {name!r} {what}")
        pos = stop
    if pos != data_size:
        raise SerializationError(f"{where} is not a valid safetensors file: {data_size - pos} bytes follow its "
                                 "last tensor")
    arrays = {}
    for name, (dtype, shape, begin, stop) in entries:
        arr = np.empty(shape, dtype.newbyteorder("="))
        if stop > begin:
            got = f.readinto(arr.reshape(-1).view(np.uint8))
            if got != stop - begin:
                raise SerializationError(f"{where} is truncated: it ended inside tensor {name!r} (was it being "
                                         "written?)")
            if dtype.byteorder == "<":  # only on a big-endian machine (NumPy writes native order as "=")
                arr.byteswap(inplace=True)
        arrays[name] = arr
    return metadata, arrays
