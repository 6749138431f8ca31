"""The bad-input corpus: every kind of file a person might give as "an image".

Each case is generated here, in memory (Pillow, NumPy, zlib, struct); nothing is
downloaded. A case says what an uploader would send (``filename``, whose
extension is one the Explore page's uploader accepts, because Streamlit refuses
any other extension before the app sees the file) and what must happen:

- ``Image(width, height)``: ``gradcam.load_image`` gives an RGB image of that
  size (after EXIF rotation), optionally with some pixels checked;
- ``Refused(phrase)``: ``gradcam.InvalidImageError`` whose one-sentence message
  contains ``phrase`` (case-insensitive).

Write every case to a folder, to try them in the browser::

    python tests/corpus.py /tmp/bad-input
"""

from __future__ import annotations

import io
import mimetypes
import struct
import sys
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import PIL.Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
ORANGE = (250, 140, 20)


# --- expected outcomes ---------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """Decodes to an RGB image of this size; ``pixels`` maps (x, y) to an expected colour."""

    width: int
    height: int
    pixels: dict = field(default_factory=dict)
    tolerance: int = 0


@dataclass(frozen=True)
class Refused:
    """``gradcam.InvalidImageError`` whose message contains ``phrase`` (any case)."""

    phrase: str


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    make: Callable[[], bytes]
    expected: Image | Refused
    why: str
    max_seconds: float | None = None  # load_image must decide within this time

    @property
    def mime(self) -> str:
        """What a browser sends for ``filename`` (it goes by the extension)."""
        if self.filename.lower().endswith(".ico"):
            return "image/x-icon"
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    @property
    def refused(self) -> bool:
        return isinstance(self.expected, Refused)


# --- building blocks -----------------------------------------------------------


def encode(image: PIL.Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def solid(fmt: str, colour=ORANGE, size=(16, 12), mode="RGB", **params) -> bytes:
    return encode(PIL.Image.new(mode, size, colour), fmt, **params)


def halves(left, right, size=(16, 8), mode="RGB") -> PIL.Image.Image:
    """An image whose left half is ``left`` and right half is ``right``."""
    image = PIL.Image.new(mode, size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def crafted_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG assembled by hand, for what Pillow cannot write (16-bit RGB, huge headers)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def noise_jpeg() -> bytes:
    noise = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return encode(PIL.Image.fromarray(noise), "JPEG", quality=90)


def noise_png() -> bytes:
    noise = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return encode(PIL.Image.fromarray(noise), "PNG")


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


# --- the cases' contents -------------------------------------------------------


def text() -> bytes:
    return b"Shopping list:\n- eggs\n- milk\n- coffee\n"


def html() -> bytes:
    return (b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
            b"<body><h1>Forbidden</h1><p>Hotlinking is not allowed.</p></body></html>\n")


def bomb_png() -> bytes:
    """IHDR claims 30000 x 30000 RGB (2.7 GB decoded); the body is 4 bytes."""
    return crafted_png(30000, 30000, 8, 2, b"\x00\x00\x00\x00")


@lru_cache(maxsize=1)
def big_gradient_jpeg() -> bytes:
    """6000 x 4000 (24 MP, a phone photo's size), smooth so the file stays small."""
    x = np.linspace(0, 255, 6000, dtype=np.float32)
    y = np.linspace(0, 255, 4000, dtype=np.float32)
    pixels = np.empty((4000, 6000, 3), np.uint8)
    pixels[..., 0] = x[None, :]
    pixels[..., 1] = y[:, None]
    pixels[..., 2] = 128
    return encode(PIL.Image.fromarray(pixels), "JPEG", quality=85)


def rgb16_png() -> bytes:
    pixels = np.zeros((4, 6, 3), dtype=">u2")
    pixels[...] = (65535, 32768, 0)
    return crafted_png(6, 4, 16, 2, b"".join(b"\x00" + row.tobytes() for row in pixels))


def rgba_png() -> bytes:
    image = PIL.Image.new("RGBA", (12, 4), (0, 0, 255, 255))
    image.paste((255, 0, 0, 0), (0, 0, 4, 4))  # fully transparent red
    image.paste((0, 0, 0, 128), (4, 0, 8, 4))  # half-transparent black
    return encode(image, "PNG")


def la_png() -> bytes:
    return encode(halves((0, 0), (50, 255), mode="LA"), "PNG")


def palette_transparency_png() -> bytes:
    image = PIL.Image.new("P", (16, 8), 1)
    image.putpalette([0, 0, 0, 0, 255, 0])  # 0: black (transparent), 1: green
    image.paste(0, (0, 0, 8, 8))
    return encode(image, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [PIL.Image.new("RGB", (10, 10), colour) for colour in (RED, GREEN, BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multipage_tiff() -> bytes:
    pages = [PIL.Image.new("RGB", (20, 10), RED), PIL.Image.new("RGB", (30, 30), GREEN)]
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def exif_rotated_jpeg() -> bytes:
    """Stored 40 x 20, red left; orientation 6 means a viewer sees 20 x 40, red on top."""
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    return encode(halves(RED, BLUE, size=(40, 20)), "JPEG", exif=exif, quality=95)


def icon() -> bytes:
    return encode(PIL.Image.new("RGBA", (32, 32), (0, 128, 255, 255)), "ICO", sizes=[(32, 32)])


def svg() -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
            b'<circle cx="32" cy="32" r="30" fill="orange"/></svg>\n')


def heic() -> bytes:
    """The start of an iPhone photo: an ISO-BMFF ``ftyp`` box with the ``heic`` brand."""
    body = b"heic" + b"\x00\x00\x00\x00" + b"mif1heic"
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + struct.pack(">I", 8) + b"meta" + bytes(256)


def pdf() -> bytes:
    return (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
            b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")


def random_bytes() -> bytes:
    return np.random.default_rng(0).bytes(5000)


def png_corrupt_idat() -> bytes:
    data = bytearray(noise_png())
    start = data.index(b"IDAT") + 4
    for i in range(start + 10, start + 30):
        data[i] ^= 0xFF
    return bytes(data)


# --- files built to cost decode work far beyond their pixel count -------------------
# (issue 8: each took seconds or hundreds of MB before gradcam/intake/decode_budget.py)


def many_scans_jpeg(scans: int = 2800, size=(1024, 1024)) -> bytes:
    """A progressive JPEG followed by thousands of empty DC scans: libjpeg makes a pass
    over the whole picture for each (28 KB: ~1 s at 1 MP, 11 s at 16 MP)."""
    base = encode(PIL.Image.new("L", size, 128), "JPEG", progressive=True, quality=50)
    end = base.rindex(b"\xff\xd9")
    empty_scan = b"\xff\xda\x00\x08\x01\x01\x00\x00\x00\x00"  # one component, DC, no data
    return base[:end] + empty_scan * scans + base[end:]


def many_chunks_png(chunks: int = 200_000) -> bytes:
    """A 64 x 64 PNG with as many empty IDAT chunks (allowed by the format) as asked:
    Pillow walks each in Python (a million: 12 MB, ~10 s)."""
    base = encode(PIL.Image.new("RGB", (64, 64), ORANGE), "PNG")
    end = base.index(b"IEND") - 4
    return base[:end] + png_chunk(b"IDAT", b"") * chunks + base[end:]


def tiff(width: int, height: int, strip: bytes, strips: int, bits: int = 8, sample_format: int = 1,
         compression: int = 1) -> bytes:
    """A hand-made grayscale little-endian TIFF whose ``strips`` strips all point at the same
    ``strip`` bytes, so a big image costs a small file."""
    rows_per_strip = -(-height // strips)
    short, long_ = 3, 4
    tags = {256: (long_, width), 257: (long_, height), 258: (short, bits), 259: (short, compression),
            262: (short, 1), 277: (short, 1), 278: (long_, rows_per_strip), 339: (short, sample_format)}
    entries = len(tags) + 2
    data_at = 8 + 2 + 12 * entries + 4
    offsets_at = data_at + len(strip)
    counts_at = offsets_at + 4 * strips
    tags[273] = (long_, strips, offsets_at if strips > 1 else data_at)  # StripOffsets
    tags[279] = (long_, strips, counts_at if strips > 1 else len(strip))  # StripByteCounts
    ifd = struct.pack("<H", entries)
    for tag in sorted(tags):
        kind, *value = tags[tag]
        count, value = (value[0], value[1]) if len(value) == 2 else (1, value[0])
        ifd += struct.pack("<HHII" if kind == long_ else "<HHIHH", tag, kind, count, value,
                           *(() if kind == long_ else (0,)))
    arrays = struct.pack("<I", data_at) * strips + struct.pack("<I", len(strip)) * strips if strips > 1 else b""
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 4 + strip + arrays


def one_row_per_strip_tiff() -> bytes:
    """25 x 100,000 pixels, one row per strip: Pillow reads strips one by one in Python
    (2,000,000 strips: 16 MB, 53 s)."""
    return tiff(25, 100_000, bytes(25), strips=100_000)


def float_tiff_bomb() -> bytes:
    """7000 x 7000 32-bit float pixels from 56 KB (each deflated row shared by every strip):
    under the pixel limit, but decoding and scaling floats cost 6-8 s and +800 MB."""
    return tiff(7000, 7000, zlib.compress(bytes(7000 * 4), 9), strips=7000, bits=32, sample_format=3,
                compression=8)


def rle8_bmp(width: int = 50_000, height: int = 1000) -> bytes:
    """A run-length (RLE8) BMP: each row one pixel, then "end of line", which Pillow's
    pure-Python decoder pads a byte at a time (5 KB, 50 MP: 28 s)."""
    body = b"\x01\x05\x00\x00" * height + b"\x00\x01"
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = struct.pack("<2sIHHI", b"BM", offset + len(body), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(body), 2835, 2835, 256, 0)
    return header + info + palette + body


def big_flat_webp() -> bytes:
    """7000 x 7000 of one colour, lossless: 2 KB that libwebp decodes with ~750 MB."""
    return encode(PIL.Image.new("RGB", (7000, 7000), ORANGE), "WEBP", lossless=True)


def gif_with_tiny_subblocks(subblocks: int = 1_000_000) -> bytes:
    """A 16 x 16 GIF whose comment, before the picture, is cut into one-byte sub-blocks:
    Pillow reads each in Python (3,000,000: 6 MB, 12 s)."""
    gif = encode(PIL.Image.new("P", (16, 16), 1), "GIF")
    first = min(at for at in (gif.find(b"!\xf9"), gif.index(b",")) if at >= 0)
    return gif[:first] + b"!\xfe" + b"\x01x" * subblocks + b"\x00" + gif[first:]


def icon_around(picture: bytes) -> bytes:
    """An .ico whose directory says 256 x 256 around any PNG or BMP picture."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(picture), 6 + 16)
    return header + entry + picture


# --- the corpus ----------------------------------------------------------------

CASES: list[Case] = [
    # Nothing at all: a failed download or an empty drag-and-drop.
    Case("zero-bytes", "empty.png", lambda: b"", Refused("empty"),
         "an upload with no bytes"),
    # Someone renamed a note, or a download saved an error text as .jpg.
    Case("text-named-jpg", "notes.jpg", text, Refused("text"),
         "plain text behind an image extension"),
    # "Save image as" on a hotlink-protected picture saves the server's error page.
    Case("html", "saved-image.jpg", html, Refused("web page"),
         "an HTML page saved under an image name"),
    # An interrupted download: the JPEG stops half way.
    Case("truncated-jpeg", "cut-off.jpg", lambda: truncated(noise_jpeg()), Refused("damaged"),
         "a JPEG cut in half"),
    # The same for PNG, whose decoder fails differently.
    Case("truncated-png", "cut-off.png", lambda: truncated(noise_png()), Refused("damaged"),
         "a PNG cut in half"),
    # The extension lies but the content is a fine image: go by the content.
    Case("png-named-jpg", "really-a-png.jpg", lambda: solid("PNG"),
         Image(16, 12, {(5, 5): ORANGE}), "a good PNG with a .jpg extension"),
    # The smallest possible image still goes through resizing and the network.
    Case("1x1", "pixel.png", lambda: solid("PNG", size=(1, 1)), Image(1, 1, {(0, 0): ORANGE}),
         "a single pixel"),
    # Extreme aspect ratio: thumbnails and resizing must not produce a 0-pixel side.
    Case("10000x10", "strip.png", lambda: solid("PNG", size=(10000, 10)),
         Image(10000, 10, {(9999, 9): ORANGE}), "a 10000 x 10 strip"),
    # A decompression bomb: a tiny file that would need 2.7 GB; refused from the header.
    Case("bomb-30000x30000", "bomb.png", bomb_png, Refused("30000 x 30000"),
         "a PNG header claiming 30000 x 30000 with a 4-byte body", max_seconds=1.0),
    # A 24-megapixel phone photo must work (it is under the 50 MP limit).
    Case("6000x4000-jpeg", "phone-photo.jpg", big_gradient_jpeg,
         Image(6000, 4000, {(0, 0): (0, 0, 128), (5999, 3999): (255, 255, 128)}, 12),
         "a 6000 x 4000 JPEG"),
    # 16 bits per channel: Pillow's own convert would clip it to white.
    Case("16-bit-png", "scan-16bit.png", rgb16_png, Image(6, 4, {(3, 2): (255, 128, 0)}, 1),
         "a 16-bit RGB PNG"),
    # Print workflows produce CMYK JPEGs; they must come out in RGB colours.
    Case("cmyk-jpeg", "print.jpg", lambda: solid("JPEG", (255, 0, 0, 0), mode="CMYK"),
         Image(16, 12, {(5, 5): (0, 255, 255)}, 10), "a CMYK JPEG (pure cyan)"),
    # Transparency is shown on white, not on black or as garbage.
    Case("rgba-png", "logo.png", rgba_png,
         Image(12, 4, {(1, 1): WHITE, (5, 1): (127, 127, 127), (10, 1): BLUE}, 2),
         "an RGBA PNG with transparent and half-transparent parts"),
    # Grayscale with alpha, a mode many converters trip on.
    Case("la-png", "gray-alpha.png", la_png, Image(16, 8, {(1, 1): WHITE, (12, 1): (50, 50, 50)}),
         "an LA (gray + alpha) PNG"),
    # A palette image whose transparency is one palette index (tRNS).
    Case("palette-transparency", "palette.png", palette_transparency_png,
         Image(16, 8, {(1, 1): WHITE, (12, 1): GREEN}), "a palette PNG with a transparent index"),
    # An animation: explain the first frame.
    Case("animated-gif", "animation.gif", animated_gif, Image(10, 10, {(5, 5): RED}),
         "an animated GIF (red, green, blue frames)"),
    # A scanner's multi-page TIFF: explain the first page.
    Case("multipage-tiff", "scan.tiff", multipage_tiff, Image(20, 10, {(5, 5): RED}),
         "a two-page TIFF (20 x 10 red, then 30 x 30 green)"),
    # A phone photo taken in portrait: the pixels are stored sideways with an EXIF tag.
    Case("exif-rotated-jpeg", "portrait.jpg", exif_rotated_jpeg,
         Image(20, 40, {(10, 5): RED, (10, 35): BLUE}, 30), "a JPEG with EXIF orientation 6"),
    # WebP, what browsers save images from the web as.
    Case("webp", "photo.webp", lambda: solid("WEBP", lossless=True), Image(16, 12, {(5, 5): ORANGE}),
         "a lossless WebP"),
    # BMP, from old tools and screenshots on Windows.
    Case("bmp", "paint.bmp", lambda: solid("BMP"), Image(16, 12, {(5, 5): ORANGE}),
         "a BMP"),
    # ICO, a favicon.
    Case("ico", "favicon.ico", icon, Image(32, 32, {(5, 5): (0, 128, 255)}),
         "a 32 x 32 ICO"),
    # A vector image some sites serve under a .png name: not supported, say so.
    Case("svg", "logo-svg.png", svg, Refused("SVG"),
         "an SVG file behind a .png name"),
    # An iPhone photo renamed to .jpg: HEIC is not supported, say so.
    Case("heic", "IMG_0042.jpg", heic, Refused("HEIC"),
         "a HEIC photo (ftyp heic box) behind a .jpg name"),
    # A scanned document exported as PDF and renamed.
    Case("pdf", "scan-pdf.png", pdf, Refused("PDF"),
         "a PDF behind a .png name"),
    # Noise: no signature at all.
    Case("random-bytes", "random.jpg", random_bytes, Refused("not an image"),
         "5000 random bytes"),
    # The header is fine but the compressed pixels are not.
    Case("png-corrupt-data", "corrupt.png", png_corrupt_idat, Refused("damaged"),
         "a PNG with 20 flipped bytes inside its IDAT chunk"),
    # Files built to make the decoder work far beyond their pixel count (issue 8).
    Case("jpeg-2800-empty-scans", "scans.jpg", many_scans_jpeg, Refused("2,806 scans"),
         "a progressive JPEG with 2,800 empty scans", max_seconds=1.0),
    Case("png-200000-empty-chunks", "chunks.png", many_chunks_png, Refused("chunks"),
         "a 64 x 64 PNG with 200,000 empty IDAT chunks", max_seconds=1.0),
    Case("tiff-one-row-per-strip", "strips.tiff", one_row_per_strip_tiff, Refused("100,000 strips"),
         "a 25 x 100,000 TIFF with one row per strip", max_seconds=1.0),
    Case("tiff-float-bomb", "float.tiff", float_tiff_bomb, Refused("memory"),
         "a 56 KB 7000 x 7000 floating-point TIFF", max_seconds=1.0),
    Case("bmp-rle8-50mp", "old.bmp", rle8_bmp, Refused("run-length"),
         "a 5 KB run-length BMP of 50000 x 1000 pixels", max_seconds=1.0),
    Case("webp-7000x7000-flat", "flat.webp", big_flat_webp, Refused("memory"),
         "a 2 KB lossless WebP of 7000 x 7000 pixels", max_seconds=1.0),
    Case("gif-1000000-comment-pieces", "comment.gif", gif_with_tiny_subblocks, Refused("pieces of extra data"),
         "a 16 x 16 GIF with a comment in 1,000,000 one-byte sub-blocks", max_seconds=1.0),
    Case("ico-around-chunky-png", "favicon-chunks.ico", lambda: icon_around(many_chunks_png()), Refused("chunks"),
         "an icon holding a PNG with 200,000 empty chunks", max_seconds=1.0),
    Case("ico-around-8000x8000-png", "favicon-big.ico",
         lambda: icon_around(crafted_png(8000, 8000, 8, 0, bytes(8001 * 8000))), Refused("8000 x 8000"),
         "an icon holding a black 8000 x 8000 PNG (64 MP: decoded, then refused, before)", max_seconds=1.0),
]

assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"


def write_all(folder: Path) -> list[Path]:
    """Write every case's file into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in CASES:
        path = folder / case.filename
        path.write_bytes(case.make())
        paths.append(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} FOLDER")
    for case, path in zip(CASES, write_all(Path(sys.argv[1]))):
        outcome = (f"refused ({case.expected.phrase!r})" if case.refused
                   else f"{case.expected.width} x {case.expected.height}")
        print(f"{path.name:<22} {path.stat().st_size:>9} bytes  {case.why}: {outcome}")
