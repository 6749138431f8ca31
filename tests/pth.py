"""Legacy (pre-zip) PyTorch .pth files written without torch, for the reader's tests and
the fuzz harness' seeds. The pickles name the same globals torch.save writes
(torch.FloatStorage, torch._utils._rebuild_tensor_v2, collections.OrderedDict), through
stand-in modules that exist only while pickling."""

from __future__ import annotations

import collections
import contextlib
import io
import pickle
import struct
import sys
import types

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage", np.dtype(np.uint8): "ByteStorage"}


class Storage:
    def __init__(self, key: str, values: np.ndarray):
        self.key, self.values = key, np.ascontiguousarray(values).ravel()


class Tensor:
    """A tensor as torch.save pickles it: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (*self.args, False, collections.OrderedDict())


@contextlib.contextmanager
def _stand_in_torch():
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in _DTYPES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Pickler(pickle.Pickler):
    def __init__(self, file, torch):
        super().__init__(file, protocol=2)
        self.torch = torch

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            kind = getattr(self.torch, _DTYPES[obj.values.dtype])
            return ("storage", kind, obj.key, "cpu", obj.values.size)
        if isinstance(obj, tuple) and obj[:1] == ("raw-pid",):
            return obj[1]  # a hand-made persistent id, for hostile files
        return None


def legacy_file(state, storages: list[Storage], keys=None, magic=MAGIC) -> bytes:
    """The bytes of a legacy .pth: magic, protocol, system info, ``state``, the storage
    keys, then each storage's element count and data."""
    out = io.BytesIO()
    with _stand_in_torch() as torch:
        for header in (magic, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, out, protocol=2)
        _Pickler(out, torch).dump(state)
    pickle.dump([s.key for s in storages] if keys is None else keys, out, protocol=2)
    for storage in storages:
        out.write(struct.pack("<q", storage.values.size) + storage.values.astype("<" + storage.values.dtype.str[1:]).tobytes())
    return out.getvalue()


def small_state_dict() -> tuple[bytes, dict[str, np.ndarray]]:
    """A valid file of three tensors (one a transposed view of a shared storage) and what
    it must read as."""
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    bias = np.array([0.5, -1.5], np.float32)
    steps = np.array([7], np.int64)
    s0, s1, s2 = Storage("0", weight), Storage("1", bias), Storage("2", steps)
    state = collections.OrderedDict([
        ("conv.weight", Tensor(s0, 0, (2, 3), (3, 1))),
        ("conv.weight_t", Tensor(s0, 0, (3, 2), (1, 3))),
        ("conv.bias", Tensor(s1, 0, (2,), (1,))),
        ("steps", Tensor(s2, 0, (), ())),
    ])
    expected = {"conv.weight": weight, "conv.weight_t": weight.T, "conv.bias": bias, "steps": np.array(7)}
    return legacy_file(state, [s0, s1, s2]), expected
