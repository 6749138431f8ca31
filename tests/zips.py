"""Hostile .zip archives, built byte by byte in memory (issue 8). Used by the batch
tests and as seeds of the fuzz harness."""

from __future__ import annotations

import io
import struct
import zipfile


def zip_of(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A .zip made in memory from {member name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def many_entries_zip(entries: int, name: bytes = b"a.jpg") -> bytes:
    """Only a central directory of ``entries`` empty stored members (and its end record),
    which is all zipfile reads to list them: 1,000,000 entries make 51 MB."""
    record = struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0,
                         len(name), 0, 0, 0, 0, 0, 0) + name
    directory = record * entries
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(entries, 0xFFFF), min(entries, 0xFFFF),
                      len(directory), 0, 0)
    if entries < 0xFFFF:
        return directory + end
    # More than 65,535 entries need the Zip64 end record, as real tools write it.
    zip64_end = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                            len(directory), 0)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return directory + zip64_end + locator + end


def understated_entries_zip(entries: int) -> bytes:
    """A directory of ``entries`` entries whose end record claims just one."""
    data = bytearray(many_entries_zip(entries))
    end = data.rindex(b"PK\x05\x06")
    data[end + 8:end + 12] = struct.pack("<HH", 1, 1)
    return bytes(data)


def nul_name_zip(data: bytes) -> bytes:
    """One member whose name starts with a NUL byte (zipfile cuts it to "")."""
    placeholder = b"Xevil.jpg"
    return zip_of({placeholder.decode(): data}).replace(placeholder, b"\x00evil.jpg")


def corrupt_member_zip(data: bytes, compression: int) -> bytes:
    """One member whose compressed stream is garbage (its headers are fine)."""
    archive = bytearray(zip_of({"photo.jpg": data}, compression))
    name_length, extra_length = struct.unpack_from("<HH", archive, 26)
    start = 30 + name_length + extra_length
    if compression == zipfile.ZIP_LZMA:
        start += 4 + 5  # zipfile's LZMA header: version, properties size, properties
    archive[start:start + 16] = b"\xff" * 16  # deflate: reserved block type; LZMA: no valid range code
    return bytes(archive)
