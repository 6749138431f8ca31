"""Decode work and memory an image file may cost, checked before a decoder runs.

The 50-megapixel limit bounds how many pixels come out, but not what it costs to
get them: a few kilobytes can ask a decoder for thousands of passes over the
picture (progressive JPEG scans), millions of Python-level steps (PNG chunks, TIFF
strips, run-length BMP) or several bytes of scratch memory per pixel (WebP,
floating-point TIFF). Each check here reads only headers and counts markers,
in time proportional to what it refuses at worst, and raises ``InvalidImageError``
with one sentence when a file asks for far more work than any real photo does.
"""

from __future__ import annotations

import struct

from PIL import Image

from ..errors import InvalidImageError
from .text import megabytes

# 24 MP phone photos must load; the limit exists to refuse decompression bombs
# (tiny files that claim gigapixels) before any memory is allocated.
MAX_PIXELS = 50_000_000
# Progressive JPEGs use about 10 scans (mozjpeg up to ~20; a photo with an embedded
# progressive thumbnail or a multi-picture file twice or three times that). Every
# scan is a pass over the whole picture: 2,800 empty scans made a 90 KB, 16 MP file
# cost 11 s. Allowed: 24 passes over 50 MP (~1 s here), more scans for smaller images.
MAX_JPEG_SCAN_PIXELS = 24 * 50_000_000
MAX_JPEG_SCANS = 1000  # whatever the size: each scan has a fixed cost too
# Real PNG writers put 8-64 KB of pixel data in each chunk; a million empty chunks
# (12 MB) cost Pillow a Python-level step each. Allowed: a thousand small ones,
# then one per 2 KB of file.
PNG_FREE_CHUNKS = 1000
PNG_BYTES_PER_CHUNK = 2048
# Pillow reads the extension blocks before a GIF's first picture in Python, one
# sub-block (1-255 bytes) at a time: 3,000,000 one-byte sub-blocks (6 MB) took 12 s.
# Comments, loop counts and XMP need hundreds; allowed: a thousand, then one per 64 bytes.
GIF_FREE_SUBBLOCKS = 1000
GIF_BYTES_PER_SUBBLOCK = 64
# Pillow reads an uncompressed TIFF strip by strip in Python (~25 us a strip). Real
# files use 8 KB strips or 256 px tiles: a 24 MP photo has ~9,000 strips.
MAX_TIFF_STRIPS = 25_000
# Pillow decodes run-length BMPs in pure Python: a 5 KB RLE8 file of 50 MP took
# 28 s. RLE BMPs are old, small graphics; 2 MP (1920 x 1080) is plenty.
MAX_RLE_BMP_PIXELS = 2_100_000
# Peak memory of one decode, estimated from the header (see _bytes_per_pixel).
# 450 MiB keeps every 50 MP RGB, RGBA, CMYK, grey or palette image loading as before
# (a palette with a transparent colour: 9 B/px).
MAX_DECODE_BYTES = 450 * 1024 * 1024

_JPEG_SOS = b"\xff\xda"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_STRIP_TAGS = (273, 324)  # StripOffsets, TileOffsets


def check_before_open(raw: bytes) -> None:
    """Refuse ``raw`` if its structure asks for far more decode work than its pixels
    need. Only headers are read; a file this module does not know passes."""
    if raw.startswith(_PNG_SIGNATURE):
        _check_png_chunks(raw)
    elif raw[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        _check_tiff_strips(raw)
    elif raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        _check_webp_memory(raw)
    elif raw[:4] == b"\x00\x00\x01\x00":
        _check_icon_pictures(raw)
    elif raw[:6] in (b"GIF87a", b"GIF89a"):
        _check_gif_blocks(raw)


def check_before_load(image: Image.Image, raw: bytes) -> None:
    """Refuse an image opened (not yet decoded) from ``raw`` whose decode would cost
    too much time or memory for its size."""
    width, height = image.size
    pixels = width * height
    if image.format == "JPEG":
        _check_jpeg_scans(raw, pixels)
    tile = image.tile[0] if getattr(image, "tile", None) else None
    if image.format == "BMP" and tile is not None and tile[0] == "bmp_rle" and pixels > MAX_RLE_BMP_PIXELS:
        raise InvalidImageError(
            f"The image is a run-length compressed BMP of {width} x {height} pixels; such BMPs are only "
            f"accepted up to {MAX_RLE_BMP_PIXELS / 1e6:.1f} megapixels, so please save it as PNG.")
    needed = pixels * _bytes_per_pixel(image.format, image.mode, "transparency" in image.info)
    if needed > MAX_DECODE_BYTES:
        raise InvalidImageError(_too_much_memory(image.format, (width, height), needed))


def _bytes_per_pixel(file_format: str | None, mode: str, transparent: bool = False) -> int:
    """Peak bytes per pixel to decode an image of ``mode`` and bring it to RGB.

    Pillow keeps 8-bit single-band pixels in 1 byte, 16-bit in 2 and everything else
    in 4 (RGB too). Bringing a mode to RGB costs a second 4-byte image, transparency
    a white background besides, high bit depths NumPy scratch arrays
    (images._high_depth_to_8bit). libwebp keeps canvases of its own.
    Measured at 49 MP (peak RSS): RGB JPEG/PNG 3.9 B/px, RGB lossless WebP 15.3.
    """
    if mode == "RGB":
        cost = 4
    elif mode in ("1", "L"):
        cost = 1 + 4
    elif mode == "P":
        cost = 1 + 4 + (4 if transparent else 0)  # a transparent index goes through RGBA
    elif mode in ("LA", "La", "PA"):
        cost = 4 + 4 + 4
    elif mode.startswith("I;16"):
        cost = 2 + 2 + 4 + 1 + 1 + 4  # NumPy copy, uint32 scratch, uint8, "L", RGB
    elif mode in ("I", "F"):
        cost = 4 + 4 + 4 + 1 + 1 + 1 + 4  # NumPy copy, float32 scratch, mask, uint8, "L", RGB
    else:  # RGBA, CMYK, YCbCr, LAB, ...
        cost = 4 + 4
    if file_format == "WEBP":
        cost += 12  # its RGBA canvas, the previous frame's, and the lossless ARGB buffer
    return cost


def _too_much_memory(file_format: str | None, size: tuple[int, int], needed: int) -> str:
    name = {"WEBP": "WebP"}.get(file_format or "", file_format or "")
    return (f"Decoding this {size[0]} x {size[1]} {name} image would need about {megabytes(needed)} "
            f"of memory; the limit is {megabytes(MAX_DECODE_BYTES)}.").replace("  ", " ")


def _check_jpeg_scans(raw: bytes, pixels: int) -> None:
    # Entropy-coded data escapes every 0xFF byte (FF 00), so FF DA only ever starts a
    # scan header, or sits inside an APPn/COM payload (an EXIF thumbnail's own scans):
    # counting them all over-counts a little and never under-counts.
    scans = raw.count(_JPEG_SOS)
    if scans > MAX_JPEG_SCANS or scans * pixels > MAX_JPEG_SCAN_PIXELS:
        raise InvalidImageError(
            f"The JPEG file has {scans:,} scans, each a pass over all its pixels (real photos have "
            f"about 10), so it would take far too long to decode.")


def _check_png_chunks(raw: bytes) -> None:
    # Walk the chunks Pillow walks: everything up to IEND, or for an animated PNG up
    # to the second frame's control chunk (only the first frame is decoded).
    limit = PNG_FREE_CHUNKS + len(raw) // PNG_BYTES_PER_CHUNK
    pos, chunks, seen_pixels = 8, 0, False
    while pos + 8 <= len(raw):
        length, kind = struct.unpack_from(">I4s", raw, pos)
        chunks += 1
        if chunks > limit:
            raise InvalidImageError(
                f"The PNG file is cut into more than {limit:,} pieces (chunks) for its size, "
                f"so it would take far too long to decode.")
        if kind == b"IEND" or (kind == b"fcTL" and seen_pixels):
            return
        seen_pixels = seen_pixels or kind in (b"IDAT", b"fdAT")
        pos += 12 + length


def _check_gif_blocks(raw: bytes) -> None:
    # Walk the blocks Pillow walks: from after the global palette to the first picture.
    limit = GIF_FREE_SUBBLOCKS + len(raw) // GIF_BYTES_PER_SUBBLOCK
    palette = 3 << ((raw[10] & 7) + 1) if len(raw) > 10 and raw[10] & 0x80 else 0
    pos = 13 + palette
    subblocks = 0
    while pos + 2 <= len(raw) and raw[pos] == 0x21:  # an extension: label, then sub-blocks
        pos += 2
        while pos < len(raw) and raw[pos]:
            subblocks += 1
            if subblocks > limit:
                raise InvalidImageError(
                    f"The GIF file holds more than {limit:,} pieces of extra data before its picture, "
                    f"so it would take far too long to decode.")
            pos += 1 + raw[pos]
        pos += 1


def _check_tiff_strips(raw: bytes) -> None:
    strips = _tiff_strip_count(raw)
    if strips is not None and strips > MAX_TIFF_STRIPS:
        raise InvalidImageError(
            f"The TIFF file is cut into {strips:,} strips or tiles (the limit is {MAX_TIFF_STRIPS:,}), "
            f"so it would take far too long to decode.")


def _tiff_strip_count(raw: bytes) -> int | None:
    """The number of strips (or tiles) of the first image, from its directory only."""
    order = "<" if raw[:2] == b"II" else ">"
    try:
        big = struct.unpack_from(order + "H", raw, 2)[0] == 43  # BigTIFF
        if big:
            ifd = struct.unpack_from(order + "Q", raw, 8)[0]
            entries = struct.unpack_from(order + "Q", raw, ifd)[0]
            entry_size, first, count_format = 20, ifd + 8, order + "HHQ"
        else:
            ifd = struct.unpack_from(order + "I", raw, 4)[0]
            entries = struct.unpack_from(order + "H", raw, ifd)[0]
            entry_size, first, count_format = 12, ifd + 2, order + "HHI"
        counts = []
        for index in range(min(entries, 4096)):  # a directory has a few dozen tags
            tag, _, count = struct.unpack_from(count_format, raw, first + index * entry_size)
            if tag in _TIFF_STRIP_TAGS:
                counts.append(count)
    except struct.error:
        return None  # a directory cut short: Pillow's own parser will refuse it
    return max(counts, default=None)


def _check_webp_memory(raw: bytes) -> None:
    # libwebp allocates its canvases when Pillow opens the file, so this check cannot
    # wait for check_before_load.
    size = _webp_size(raw)
    if size is not None:
        width, height, alpha = size
        needed = width * height * _bytes_per_pixel("WEBP", "RGBA" if alpha else "RGB")
        if needed > MAX_DECODE_BYTES:
            raise InvalidImageError(_too_much_memory("WEBP", (width, height), needed))


def _webp_size(raw: bytes) -> tuple[int, int, bool] | None:
    """Canvas width, height and whether it has alpha, as the header declares them
    (each of the three encodings keeps them differently)."""
    kind = raw[12:16]
    if kind == b"VP8X" and len(raw) >= 30:
        width = int.from_bytes(raw[24:27], "little") + 1
        return width, int.from_bytes(raw[27:30], "little") + 1, bool(raw[20] & 0x10)
    if kind == b"VP8L" and len(raw) >= 25 and raw[20] == 0x2F:
        bits = int.from_bytes(raw[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    if kind == b"VP8 " and len(raw) >= 30 and raw[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", raw, 26)
        return width & 0x3FFF, height & 0x3FFF, False
    return None


def _check_icon_pictures(raw: bytes) -> None:
    """An .ico file is a directory of PNG or BMP pictures, and Pillow decodes the one it
    picks at whatever size that picture's own header says, whatever the directory
    claims (at most 256 x 256): check each picture as a file of its own."""
    (count,) = struct.unpack_from("<H", raw, 4)
    for index in range(count):
        entry = 6 + 16 * index
        if entry + 16 > len(raw):
            return
        size, offset = struct.unpack_from("<II", raw, entry + 8)
        picture = raw[offset:offset + size]
        if picture.startswith(_PNG_SIGNATURE):
            check_before_open(picture)
            width, height = struct.unpack_from(">II", picture, 16) if len(picture) >= 24 else (0, 0)
            compression = 0
        elif len(picture) >= 20:
            width, height, _, _, compression = struct.unpack_from("<iiHHI", picture, 4)
            width, height = abs(width), abs(height) // 2  # the height counts the mask too
        else:
            continue
        if width * height > MAX_PIXELS or (compression in (1, 2) and width * height > MAX_RLE_BMP_PIXELS):
            raise InvalidImageError(
                f"The icon file holds a picture of {width} x {height} pixels, far larger than an icon; "
                f"the limit is {MAX_PIXELS / 1e6:g} megapixels ({MAX_RLE_BMP_PIXELS / 1e6:.1f} for run-length BMPs).")
