"""The legacy .pth reader (gradcam/zoo/torch_legacy.py) on hostile files (issue 8): each
is built here, read through ``read_state_dict``, and must end as one
``ModelLoadError`` sentence, quickly and without a memory spike. Before the fix these
raised EOFError, AttributeError, struct.error, OverflowError, MemoryError, TypeError
or RecursionError, took +1.5 GB (memo index) or hung (printing a shared nested key)."""

from __future__ import annotations

import collections
import os
import pickle
import resource
import struct
import time

import numpy as np
import pytest

from gradcam.zoo import efficientnet_lite
from gradcam.errors import ModelLoadError
from gradcam.zoo.torch_legacy import read_state_dict
from pth import MAGIC, Storage, Tensor, legacy_file, small_state_dict

FAST = 2.0  # seconds, generous: a refusal reads at most 100,000 opcodes (~0.3 s here)


def header_pickles() -> bytes:
    return b"".join(pickle.dumps(h, protocol=2) for h in (MAGIC, 1001, {"little_endian": True}))


def with_state_pickle(state_pickle: bytes) -> bytes:
    return header_pickles() + state_pickle + pickle.dumps([], protocol=2)


def laughs(levels: int = 60):
    """A tuple holding the previous one twice, 60 times: a few hundred bytes pickled
    (the memo shares them), 2**60 leaves to print or walk."""
    value = ("lol",)
    for _ in range(levels):
        value = (value, value)
    return value


def refusal(data: bytes) -> str:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        read_state_dict(data)
    elapsed = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert type(caught.value) is ModelLoadError
    message = str(caught.value)
    assert message.startswith("The weights file ") and message.endswith(".") and "\n" not in message, message
    assert elapsed < FAST, f"took {elapsed:.2f} s"
    assert grown_mb < 100, f"peak memory grew by {grown_mb:.0f} MB"
    return message


def test_a_synthetic_state_dict_reads_exactly() -> None:
    data, expected = small_state_dict()
    state = read_state_dict(data)
    assert list(state) == list(expected)
    for name, values in expected.items():
        assert state[name].dtype == values.dtype and np.array_equal(state[name], values), name


def test_the_shipped_weights_read_the_same_from_a_path_and_from_bytes() -> None:
    path = efficientnet_lite.weights_file("efficientnet-lite0")
    from_path, from_bytes = read_state_dict(path), read_state_dict(path.read_bytes())
    assert list(from_path) == list(from_bytes) and len(from_path) == 296
    assert all(np.array_equal(from_path[k], from_bytes[k]) for k in from_path)


def test_a_9_byte_pickle_with_a_huge_memo_index_is_refused_before_unpickling() -> None:
    bomb = b"\x80\x02N" + b"r" + struct.pack("<I", 0x7FFFFFFF) + b"."  # NONE, LONG_BINPUT 2**31-1, STOP
    assert len(bomb) == 9
    assert "memo index" in refusal(bomb)  # before: +1.5 GB inside CPython's unpickler
    assert "memo index" in refusal(with_state_pickle(b"\x80\x02N" + b"j" + struct.pack("<I", 10**9) + b"."))


@pytest.mark.parametrize("size, stride", [
    pytest.param((50_000, 50_000), (0, 0), id="zero-strides-10GB"),
    pytest.param((50_000, 1), (0, 1), id="zero-stride-one-dim"),
    pytest.param((3,), (-1,), id="negative-stride"),
    pytest.param((4, 4), (1, 1), id="overlapping-more-elements-than-storage"),
])
def test_strides_that_repeat_or_reverse_elements_are_refused(size, stride) -> None:
    storage = Storage("0", np.zeros(4, np.float32))
    data = legacy_file({"w": Tensor(storage, 0, size, stride)}, [storage])
    assert "lies outside its storage" in refusal(data)  # before: zero strides passed, then GBs


def laughs_as_dict_key(levels: int = 60) -> bytes:
    """A state-dict pickle whose one key is ``laughs()``, written opcode by opcode (the
    test cannot build that dict: hashing the key would never end either)."""
    out = b"\x80\x02}" + b"X\x03\x00\x00\x00lol\x85q\x00"  # {}, ("lol",) memo 0
    for level in range(1, levels + 1):
        out += b"h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"\x86q" + bytes([level])  # (t, t)
    return out + b"Ns."  # value None, SETITEM, STOP


@pytest.mark.parametrize("where", ["storage-key", "tensor-size", "dict-key"])
def test_a_billion_laughs_of_shared_tuples_is_never_hashed_printed_or_walked(where) -> None:
    if where == "dict-key":
        data = with_state_pickle(laughs_as_dict_key())
    else:
        value = laughs()
        storage = Storage(value if where == "storage-key" else "0", np.zeros(1, np.float32))
        tensor = Tensor(storage, 0, value if where == "tensor-size" else (1,), (1,))
        data = legacy_file({"w": tensor}, [storage])
    assert len(data) < 1500  # before: str(key) or the unpickler's hash(key) ran for ever
    assert "share their parts so deeply" in refusal(data)


def test_code_named_in_the_file_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    message = refusal(with_state_pickle(pickle.dumps({"w": Evil()}, protocol=2)))
    assert "refusing to load it" in message and "system" in message
    assert not marker.exists()


@pytest.mark.parametrize("state_pickle, words", [
    pytest.param(b"\x80\x02" + b"(" * 1000 + b"t" * 1000 + b".", "nests", id="1000-nested-marks"),
    pytest.param(b"\x80\x02c__builtin__\nobject\n)\x81.", "NEWOBJ", id="newobj-opcode"),
    pytest.param(b"\x80\x02(i__builtin__\nobject\n.", "INST", id="inst-opcode"),
    pytest.param(b"\x80\x02]" + b"N" * 120_000 + b".", "instructions", id="120k-opcodes"),
    pytest.param(pickle.dumps([1, 2], protocol=2), "plain state dict", id="a-list"),
    pytest.param(pickle.dumps({"w": 1.5}, protocol=2), "plain state dict", id="not-a-tensor"),
])
def test_pickles_no_state_dict_needs_are_refused(state_pickle, words) -> None:
    assert words in refusal(with_state_pickle(state_pickle))


def test_other_files_are_named_for_what_they_are(tmp_path) -> None:
    assert "not a legacy PyTorch weights file" in refusal(pickle.dumps(12345) + struct.pack("<q", 0))
    with pytest.raises(ModelLoadError, match=r"^\S+ is not a regular file\.$"):
        read_state_dict(tmp_path)


def test_every_truncation_and_byte_flip_of_a_real_file_is_one_modelloaderror() -> None:
    # The types seen before the fix: EOFError, AttributeError, struct.error, OverflowError,
    # MemoryError, TypeError, RecursionError. Every prefix, and each byte set to 0x00, 0x7f, 0xff.
    data, _ = small_state_dict()
    variants = [data[:n] for n in range(len(data))]
    variants += [data[:i] + bytes([b]) + data[i + 1:] for i in range(len(data)) for b in (0x00, 0x7F, 0xFF)]
    started = time.perf_counter()
    outcomes = collections.Counter()
    for variant in variants:
        try:
            read_state_dict(variant)
            outcomes["read"] += 1
        except ModelLoadError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > len(data)  # every truncation at least
    assert time.perf_counter() - started < 30
