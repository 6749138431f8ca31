"""Many photos at once: uploads and .zip archives read safely, in memory.

A .zip is refused when it is built to exhaust memory or time ("zip bomb"): its
entry count and the size of its list of contents are read from the archive's end
record before Python's ``zipfile`` lists anything, and declared sizes are checked
before anything is decompressed. Hidden and system files (``__MACOSX/``) are
skipped and counted. Members are read late, so listing 500 photos decompresses
nothing. This module never decodes an image: that is the sandbox's job.
"""

from __future__ import annotations

import lzma
import struct
import time
import zipfile
import zlib
import io
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import InvalidImageError
from .images import SUPPORTED_FORMATS, has_image_signature
from .text import megabytes, valid_text


# A .zip is refused when it is built to exhaust memory or time ("zip bomb"): too many
# entries, or declared sizes beyond these, are checked before anything is decompressed.
MAX_ARCHIVE_MEMBERS = 500
MAX_ARCHIVE_BYTES = 500 * 1024 * 1024  # total uncompressed size of the images in one archive
MAX_MEMBER_BYTES = 200 * 1024 * 1024  # one image inside an archive (the uploader's own per-file limit)
MAX_BATCH_IMAGES = 1000  # per run: each result is small, but time is not free
# Per run, what every image together inflates to: per-archive limits alone let 1,000 small
# zips of 187 MB BMPs ask for 187 GB of decoding.
MAX_RUN_BYTES = 2 * 1024 * 1024 * 1024
# Per session, summed over its runs of the last hour: a per-run limit alone lets one session
# start run after run (each inflating 2 GB and holding an image worker for minutes).
MAX_SESSION_BYTES = 8 * 1024 * 1024 * 1024
SESSION_WINDOW_SECONDS = 3600
# zipfile builds an object per central-directory entry before anyone can count them
# (1M entries: 7.7 s, +511 MB), so the count and the directory's size are read from
# the end-of-central-directory record first. 2 KB an entry covers long names and extras.
MAX_CENTRAL_DIRECTORY_BYTES = MAX_ARCHIVE_MEMBERS * 2048
IMAGE_EXTENSIONS = frozenset(SUPPORTED_FORMATS)


@dataclass(frozen=True)
class BatchSource:
    """One image to explain: its shown name and how to get its bytes (read late, so
    listing a 500-photo archive decompresses nothing)."""

    name: str
    size: int
    read: Callable[[], bytes] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Unpacked:
    sources: list[BatchSource]
    problems: list[str]  # one sentence per refused archive (or other refused input)
    hidden: int = 0  # archive entries that are hidden or system files (dot-files, macOS' __MACOSX/, ._x.jpg)
    not_images: int = 0  # other files of a type that is not an image (folders are not counted)
    not_image_names: tuple = ()  # those of them named like an image (notes.jpg holding text), by name
    outside: int = 0  # entries named outside the archive's folder ("../x.png", "/etc/x.png"): never read

    @property
    def skipped(self) -> int:
        return self.hidden + self.outside + self.not_images

    def skipped_text(self) -> str:
        """What was left out of the archives, in words ("" when nothing was)."""
        parts = []
        if self.outside:
            parts.append(f"{self.outside} file{'s' if self.outside != 1 else ''} named outside the archive's "
                         "folder (../ or /)")
        if self.hidden:
            parts.append(f"{self.hidden} hidden or system file{'s' if self.hidden != 1 else ''}")
        if self.not_images:
            parts.append(f"{self.not_images} file that is not an image" if self.not_images == 1
                         else f"{self.not_images} files that are not images")
        named = f" ({', '.join(self.not_image_names[:5])}{', ...' if len(self.not_image_names) > 5 else ''})"
        return " and ".join(parts) + " skipped" + (named if self.not_image_names else "") if parts else ""


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""


def _outside(member: str) -> bool:
    """A name that climbs out of the archive's folder (a "zip slip" name): '..' as a part, or an
    absolute path. Not a hidden file (".." starts with a dot, but it is no dot-file): skipped, and said."""
    name = member.replace("\\", "/")
    return name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/")


def _hidden(member: str) -> bool:
    """macOS resource forks (__MACOSX/, ._x.jpg) and dot-files are not photos."""
    parts = [p for p in member.replace("\\", "/").split("/") if p]
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


# What the zip, zlib, bz2 and lzma modules raise for damaged or hostile data.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
               ValueError, zlib.error, lzma.LZMAError, struct.error, OverflowError, IndexError, KeyError)


def _read_member(data: bytes, info: zipfile.ZipInfo) -> bytes:
    size = info.file_size
    try:
        # By its ZipInfo, not its name: two entries may share a name.
        with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(info) as handle:
            # At most one byte more than declared: a header that lies about its
            # size cannot make us decompress more than the limit.
            content = handle.read(size + 1)
    except _ZIP_ERRORS as error:
        raise InvalidImageError(
            "This archive entry cannot be read (it is damaged, encrypted or compressed in an unsupported way)."
        ) from error
    if len(content) > size:
        raise InvalidImageError("This archive entry holds more data than its header declares.")
    return content


def _declared_directory(data: bytes) -> tuple[int, int] | None:
    """(entries, central directory bytes) from the end-of-central-directory record (or
    its Zip64 twin), found where zipfile looks for it: at the end, or before a comment
    of at most 64 KB. None when there is none (zipfile will then refuse the file)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if at < 0 or at + 22 > len(data):
        return None
    entries, directory_bytes = struct.unpack_from("<HI", data, at + 10)
    locator = at - 20
    if locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":
        (record,) = struct.unpack_from("<Q", data, locator + 8)
        if data[record:record + 4] == b"PK\x06\x06" and record + 56 <= len(data):
            entries, directory_bytes = struct.unpack_from("<QQ", data, record + 32)
    return entries, directory_bytes


def _archive_sources(name: str, data: bytes) -> tuple[list[BatchSource], int, int, int, list[str]]:
    """The images inside a .zip, checked against the limits before reading any; raises
    ValueError with one sentence when the archive is refused."""
    declared = _declared_directory(data)
    if declared is not None:
        entries, directory_bytes = declared
        if entries > MAX_ARCHIVE_MEMBERS:
            raise ValueError(f"{name} has {entries:,} entries; the limit is {MAX_ARCHIVE_MEMBERS} per archive.")
        if directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
            raise ValueError(f"{name} has a list of contents of {megabytes(directory_bytes)}, more than "
                             f"{MAX_ARCHIVE_MEMBERS} entries need; the limit is {MAX_ARCHIVE_MEMBERS} per archive.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))  # closed below, after each entry's first bytes are read
        members = archive.infolist()
    except _ZIP_ERRORS:
        raise ValueError(f"{name} is not a readable .zip archive.") from None
    if len(members) > MAX_ARCHIVE_MEMBERS:
        archive.close()
        raise ValueError(f"{name} has {len(members):,} entries; the limit is {MAX_ARCHIVE_MEMBERS} per archive.")
    with archive:
        images, hidden, outside, not_images, named = [], 0, 0, 0, []
        for info in members:
            # zipfile cuts a name at its first NUL: a name starting with one is empty (and
            # ZipInfo.is_dir() would fail on it), so that test comes first.
            if not info.filename:
                not_images += 1
                continue
            if info.is_dir():  # folders are not counted
                continue
            if _outside(info.filename):
                outside += 1
                continue
            if _hidden(info.filename):
                hidden += 1
                continue
            if _extension(info.filename) not in IMAGE_EXTENSIONS:
                not_images += 1
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                raise ValueError(f"{name} holds an entry that unpacks to {megabytes(info.file_size)}; "
                                 f"the limit is {megabytes(MAX_MEMBER_BYTES)} per image.")
            images.append(info)
        total = sum(info.file_size for info in images)
        if total > MAX_ARCHIVE_BYTES:
            raise ValueError(f"{name} would unpack to {megabytes(total)}; the limit is "
                             f"{megabytes(MAX_ARCHIVE_BYTES)}.")
        # Within the limits, each entry named like an image shows its first bytes: a text is not an image.
        for info in [info for info in images if not _starts_like_an_image(archive, info)]:
            images.remove(info)
            not_images += 1
            named.append(f"{name}/{valid_text(info.filename)}")
    sources = [
        BatchSource(f"{name}/{valid_text(info.filename)}", info.file_size,
                    lambda data=data, info=info: _read_member(data, info))
        for info in images
    ]
    return sources, hidden, outside, not_images, named


def _starts_like_an_image(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """An entry's first 16 bytes carry an image format's signature (only that much is decompressed).
    An entry that cannot be read counts as an image here: reading it later gives its own sentence."""
    try:
        with archive.open(info) as handle:
            return has_image_signature(handle.read(16))
    except _ZIP_ERRORS:
        return True


def batch_sources(uploads: Iterable[tuple[str, bytes]]) -> Unpacked:
    """The images to explain from uploaded (file name, bytes): plain files as they are
    (a broken one fails later, with its own sentence), archives unpacked in memory
    (never to disk). Shown names are unique, so results and downloads can refer to them."""
    sources: list[BatchSource] = []
    problems: list[str] = []
    hidden = outside = not_images = 0
    named: list[str] = []  # files named like images that hold something else: counted as skipped, by name
    for name, data in uploads:
        if _extension(name) == "zip":
            try:
                inner, inner_hidden, inner_outside, inner_not_images, inner_named = _archive_sources(
                    valid_text(name), data)
            except ValueError as error:
                problems.append(str(error))
                continue
            sources.extend(inner)
            hidden += inner_hidden
            outside += inner_outside
            not_images += inner_not_images
            named += inner_named
        elif not has_image_signature(data):  # a text saved as notes.jpg is not one of the "images ready"
            not_images += 1
            named.append(valid_text(name))
        else:
            sources.append(BatchSource(valid_text(name), len(data), lambda data=data: data))
    if len(sources) > MAX_BATCH_IMAGES:
        problems.append(f"{len(sources):,} images were given; only the first {MAX_BATCH_IMAGES:,} are explained.")
        sources = sources[:MAX_BATCH_IMAGES]
    total = 0
    for kept, source in enumerate(sources):
        total += source.size
        if total > MAX_RUN_BYTES:
            problems.append(f"The images unpack to more than {megabytes(MAX_RUN_BYTES)} in all; only the first "
                            f"{kept:,} are explained.")
            sources = sources[:kept]
            break
    seen: dict[str, int] = {}
    unique = []
    for source in sources:
        count = seen[source.name] = seen.get(source.name, 0) + 1
        unique.append(source if count == 1 else BatchSource(f"{source.name} ({count})", source.size, source.read))
    return Unpacked(unique, problems, hidden, not_images, tuple(named), outside)




class InflationLedger:
    """What one session's runs have unpacked (the images' sizes, inflated) within the last
    SESSION_WINDOW_SECONDS, so that a session, not only a run, is bounded (MAX_SESSION_BYTES).
    One per session: the dashboard keeps it in the session's state."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._charged: list[tuple[float, int]] = []  # (when, bytes)

    def used(self) -> int:
        """Bytes unpacked within the window."""
        start = self._clock() - SESSION_WINDOW_SECONDS
        self._charged = [(when, size) for when, size in self._charged if when > start]
        return sum(size for _, size in self._charged)

    def charge(self, sources: list[BatchSource]) -> tuple[list[BatchSource], str | None]:
        """The first of ``sources`` this session may still unpack now (charged to it), and one
        sentence when the others are left out (None when none are)."""
        used, allowed, total = self.used(), [], 0
        for source in sources:
            if used + total + source.size > MAX_SESSION_BYTES:
                break
            allowed.append(source)
            total += source.size
        if allowed:
            self._charged.append((self._clock(), total))
        if len(allowed) == len(sources):
            return allowed, None
        limit = f"{megabytes(MAX_SESSION_BYTES)} in {SESSION_WINDOW_SECONDS // 60} minutes"
        if allowed:
            return allowed, (f"This session may unpack {limit}; only the first {len(allowed):,} of "
                             f"{len(sources):,} images are explained now.")
        oldest = min((when for when, _ in self._charged), default=self._clock())
        minutes = max(1, -(-int(oldest + SESSION_WINDOW_SECONDS - self._clock()) // 60))
        return [], (f"This session has unpacked {megabytes(used)} of images, the most it may in "
                    f"{SESSION_WINDOW_SECONDS // 60} minutes; try again in about {minutes} minute"
                    f"{'s' if minutes != 1 else ''}.")
