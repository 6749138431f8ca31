"""The one guarded read of a file named by a path: regular files only, and at most so many bytes.

A path given by a person (or found in a folder, or named in a list) may name a FIFO, whose
``open`` blocks until someone writes to it, or a device (``/dev/zero``, ``/dev/urandom``)
that never ends, whatever its name says (``photos.zip``, ``masks.csv``). So the path is
looked at before it is opened, opened without blocking (were it swapped for a FIFO after
the look), looked at again, and read with a cap. Every refusal is a ``FileRefused`` whose
``reason`` completes a sentence about the file ("... is not a regular file (...)."), so each
caller says it with its own name for the file and its own exception type.
"""

from __future__ import annotations

import os
import stat

from .text import megabytes


class FileRefused(ValueError):
    """Why a path was not read: ``reason`` follows the file's name in a sentence."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # "missing", "folder", "special", "too large", "denied", "unreadable", "name"


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``max_bytes``), or ``FileRefused``."""
    try:
        name = os.fsdecode(path)
    except (TypeError, ValueError, UnicodeError):
        raise FileRefused("is not a valid file name", "name") from None
    if "\0" in name:
        raise FileRefused("contains a NUL character, so it cannot name a file", "name")
    try:
        _refuse_non_regular(os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as file:
            status = os.fstat(file.fileno())
            _refuse_non_regular(status.st_mode)
            if status.st_size > max_bytes:  # refused by its size, unread
                raise FileRefused(f"is larger than {megabytes(max_bytes)}", "too large")
            data = file.read(max_bytes + 1)  # and read with the cap: a file may grow meanwhile
    except FileRefused:
        raise
    except FileNotFoundError:
        raise FileRefused("does not exist", "missing") from None
    except IsADirectoryError:
        raise FileRefused("is a folder", "folder") from None
    except PermissionError:
        if os.path.isdir(path):  # Windows reports opening a folder as a permission problem
            raise FileRefused("is a folder", "folder") from None
        raise FileRefused("cannot be read (permission denied)", "denied") from None
    except (OSError, ValueError):
        raise FileRefused("could not be read", "unreadable") from None
    if len(data) > max_bytes:
        raise FileRefused(f"is larger than {megabytes(max_bytes)}", "too large")
    return data


def _refuse_non_regular(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise FileRefused("is a folder", "folder")
    if not stat.S_ISREG(mode):
        raise FileRefused("is not a regular file (it is a device, a pipe or a socket)", "special")
