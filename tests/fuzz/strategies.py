"""Hypothesis strategies: a target's seeds, mutated the way file-format bugs hide
(header fields set to edge values, bytes flipped, runs repeated, cut short), or raw bytes."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

_EDGE_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
              0xFFFFFFFF, 16383, 65500, 30000, 7000)


@st.composite
def mutated(draw, seeds: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(("flip", "byte", "int", "insert", "delete", "repeat", "truncate")))
        if kind == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[where] = draw(st.sampled_from((0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)))
        elif kind == "int":
            value = draw(st.sampled_from(_EDGE_INTS))
            layout = draw(st.sampled_from(("<H", ">H", "<I", ">I", "<Q")))
            packed = struct.pack(layout, value & ((1 << (8 * struct.calcsize(layout))) - 1))
            data[where:where + len(packed)] = packed
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[where:where + draw(st.integers(1, 16))]
        elif kind == "repeat":
            length = draw(st.integers(1, 32))
            data[where:where] = bytes(data[where:where + length]) * draw(st.integers(2, 64))
        elif kind == "truncate":
            del data[where:]
    return bytes(data)


def inputs(seeds: tuple[bytes, ...]):
    """Mostly mutated seeds; sometimes raw bytes or a seed as it is."""
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), st.sampled_from(seeds),
                     st.binary(max_size=512))
