"""Tests for gradcam.intake.images.load_image.

Every test image is generated here, in memory or in tmp_path, so the suite
needs no downloads. Good images must come out RGB, the right size and the
right colour; broken ones must raise InvalidImageError with one plain sentence.
"""

from __future__ import annotations

import io
import pathlib
import struct
import time
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from corpus import crafted_png, encode, halves, icon, la_png, multipage_tiff, rgba_png, solid, truncated
from corpus import palette_transparency_png as palette_with_transparency_png
from corpus import png_corrupt_idat as png_with_corrupt_idat
from gradcam.errors import InvalidImageError
from gradcam.intake.images import MAX_PIXELS, SUPPORTED_FORMATS, load_image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
ORANGE = (250, 140, 20)


# --- building test images ---------------------------------------------------











def png_rows(pixels: np.ndarray) -> bytes:
    """Raw PNG scanlines (filter byte 0) from a big-endian array."""
    return b"".join(b"\x00" + row.tobytes() for row in pixels)


def gray16_png() -> bytes:
    values = np.array([[0, 32768, 65535, 100 * 257]], dtype=np.uint16)
    return encode(Image.fromarray(values), "PNG")


def rgb16_png() -> bytes:
    pixels = np.zeros((4, 6, 3), dtype=">u2")
    pixels[...] = (65535, 32768, 0)
    return crafted_png(6, 4, 16, 2, png_rows(pixels))


def gray16_big_endian_tiff() -> bytes:
    values = np.full((4, 6), 65535, dtype=">u2")
    values[:, :3] = 32768
    return encode(Image.fromarray(values), "TIFF")


def float_tiff() -> bytes:
    values = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)
    return encode(Image.fromarray(values), "TIFF")








def one_bit_png() -> bytes:
    return encode(halves(0, 1, mode="1"), "PNG")


def animated(fmt: str, **params) -> bytes:
    frames = [Image.new("RGB", (10, 10), colour) for colour in (RED, GREEN, BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **params)






def small_jpeg() -> bytes:
    noise = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise), "JPEG", quality=90)


def small_png() -> bytes:
    noise = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise), "PNG")


# --- good images -----------------------------------------------------------

GOOD = [
    # (make bytes, expected size, {(x, y): expected colour}, tolerance)
    pytest.param(lambda: solid("PNG"), (16, 12), {(5, 5): ORANGE}, 0, id="png"),
    pytest.param(lambda: solid("JPEG"), (16, 12), {(5, 5): ORANGE}, 10, id="jpeg"),
    pytest.param(lambda: solid("WEBP"), (16, 12), {(5, 5): ORANGE}, 10, id="webp-lossy"),
    pytest.param(lambda: solid("WEBP", lossless=True), (16, 12), {(5, 5): ORANGE}, 0, id="webp-lossless"),
    pytest.param(lambda: solid("BMP"), (16, 12), {(5, 5): ORANGE}, 0, id="bmp"),
    pytest.param(icon, (32, 32), {(5, 5): (0, 128, 255)}, 0, id="ico"),
    pytest.param(lambda: solid("GIF"), (16, 12), {(5, 5): ORANGE}, 0, id="gif"),
    pytest.param(lambda: solid("TIFF"), (16, 12), {(5, 5): ORANGE}, 0, id="tiff"),
    pytest.param(lambda: solid("PNG", size=(1, 1)), (1, 1), {(0, 0): ORANGE}, 0, id="1x1-pixel"),
    pytest.param(lambda: solid("PNG", size=(10000, 10)), (10000, 10), {(9999, 9): ORANGE}, 0,
                 id="10000x10-strip"),
    pytest.param(lambda: solid("PNG", 100, mode="L"), (16, 12), {(5, 5): (100, 100, 100)}, 0,
                 id="grayscale-L"),
    pytest.param(one_bit_png, (16, 8), {(0, 0): BLACK, (15, 7): WHITE}, 0, id="1-bit"),
    pytest.param(gray16_png, (4, 1),
                 {(0, 0): BLACK, (1, 0): (128, 128, 128), (2, 0): WHITE, (3, 0): (100, 100, 100)}, 1,
                 id="16-bit-grayscale-png"),
    pytest.param(rgb16_png, (6, 4), {(3, 2): (255, 128, 0)}, 1, id="16-bit-rgb-png"),
    pytest.param(gray16_big_endian_tiff, (6, 4), {(0, 0): (128, 128, 128), (5, 3): WHITE}, 1,
                 id="16-bit-big-endian-tiff"),
    pytest.param(float_tiff, (3, 1), {(0, 0): BLACK, (1, 0): (128, 128, 128), (2, 0): WHITE}, 1,
                 id="float-tiff-min-to-max"),
    pytest.param(lambda: solid("JPEG", (255, 0, 0, 0), mode="CMYK"), (16, 12), {(5, 5): (0, 255, 255)}, 10,
                 id="cmyk-jpeg-cyan"),
    pytest.param(rgba_png, (12, 4), {(1, 1): WHITE, (5, 1): (127, 127, 127), (10, 1): BLUE}, 2,
                 id="rgba-transparent-is-white"),
    pytest.param(la_png, (16, 8), {(1, 1): WHITE, (12, 1): (50, 50, 50)}, 0, id="gray-with-alpha-LA"),
    pytest.param(palette_with_transparency_png, (16, 8), {(1, 1): WHITE, (12, 1): GREEN}, 0,
                 id="palette-transparent-index-is-white"),
    pytest.param(lambda: animated("GIF"), (10, 10), {(5, 5): RED}, 0, id="animated-gif-first-frame"),
    pytest.param(lambda: animated("WEBP", lossless=True), (10, 10), {(5, 5): RED}, 0,
                 id="animated-webp-first-frame"),
    pytest.param(lambda: animated("PNG"), (10, 10), {(5, 5): RED}, 0, id="animated-png-first-frame"),
    pytest.param(multipage_tiff, (20, 10), {(5, 5): RED}, 0, id="multipage-tiff-first-page"),
]


def assert_rgb_image(image: Image.Image, size, expected: dict, tolerance: int) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == size
    for xy, colour in expected.items():
        actual = image.getpixel(xy)
        assert all(abs(a - e) <= tolerance for a, e in zip(actual, colour)), (
            f"pixel {xy} is {actual}, expected about {colour}")


@pytest.mark.parametrize("make, size, expected, tolerance", GOOD)
def test_good_image_becomes_rgb(make: Callable[[], bytes], size, expected, tolerance) -> None:
    assert_rgb_image(load_image(make()), size, expected, tolerance)


@pytest.mark.parametrize("orientation, red_at, blue_at", [
    pytest.param(3, (35, 10), (5, 10), id="exif-3-upside-down"),
    pytest.param(6, (10, 5), (10, 35), id="exif-6-rotated-right"),
    pytest.param(8, (10, 35), (10, 5), id="exif-8-rotated-left"),
])
def test_exif_rotated_photo_comes_out_upright(orientation, red_at, blue_at) -> None:
    # As stored: 40 wide, 20 high, red on the left. Orientation 6 means the
    # camera was turned clockwise, so the viewer sees it 20 x 40 with red on top.
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = encode(halves(RED, BLUE, size=(40, 20)), "JPEG", exif=exif, quality=95)
    size = (40, 20) if orientation == 3 else (20, 40)
    assert_rgb_image(load_image(stored), size, {red_at: RED, blue_at: BLUE}, 30)


def test_24_megapixel_photo_loads() -> None:
    image = load_image(solid("JPEG", size=(6000, 4000)))
    assert image.mode == "RGB" and image.size == (6000, 4000)


class ReadOnlyStream:
    """A minimal upload object: nothing but read()."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


def _already_read(data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.read()
    return stream


def _write(tmp_path: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("wrap", [
    pytest.param(lambda data, tmp: data, id="bytes"),
    pytest.param(lambda data, tmp: bytearray(data), id="bytearray"),
    pytest.param(lambda data, tmp: memoryview(data), id="memoryview"),
    pytest.param(lambda data, tmp: io.BytesIO(data), id="BytesIO"),
    pytest.param(lambda data, tmp: _already_read(data), id="BytesIO-already-read-once"),
    pytest.param(lambda data, tmp: ReadOnlyStream(data), id="stream-with-only-read"),
    pytest.param(lambda data, tmp: open(_write(tmp, "a.png", data), "rb"), id="open-binary-file"),
    pytest.param(lambda data, tmp: str(_write(tmp, "a.png", data)), id="str-path"),
    pytest.param(lambda data, tmp: _write(tmp, "a.png", data), id="pathlib-path"),
    pytest.param(lambda data, tmp: _write(tmp, "photo.jpg", data), id="png-named-jpg"),
])
def test_every_kind_of_input(wrap, tmp_path) -> None:
    source = wrap(solid("PNG"), tmp_path)
    try:
        assert_rgb_image(load_image(source), (16, 12), {(5, 5): ORANGE}, 0)
    finally:
        if hasattr(source, "close"):
            source.close()


def test_image_is_fully_loaded_and_independent_of_its_source(tmp_path) -> None:
    path = _write(tmp_path, "a.jpg", small_jpeg())
    image = load_image(path)
    path.unlink()
    stream = io.BytesIO(small_png())
    from_stream = load_image(stream)
    stream.close()
    assert len(image.tobytes()) == 64 * 48 * 3
    assert len(from_stream.tobytes()) == 64 * 48 * 3


def test_supported_formats_are_lower_case_extensions() -> None:
    assert set(SUPPORTED_FORMATS) == {"png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "ico"}


# --- broken input ----------------------------------------------------------



def png_header(width: int, height: int) -> bytes:
    return crafted_png(width, height, 8, 2, b"\x00\x00\x00\x00")


def jpeg_header(width: int, height: int) -> bytes:
    data = bytearray(solid("JPEG", size=(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 64


def ppm() -> bytes:
    return b"P6\n2 2\n255\n" + bytes(12)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'

BROKEN = [
    # (make the argument for load_image from tmp_path, words the message must contain)
    pytest.param(lambda tmp: b"", "The file is empty.", id="zero-bytes"),
    pytest.param(lambda tmp: _write(tmp, "notes.jpg", b"Shopping list:\n- eggs\n- milk\n"), "text",
                 id="text-named-jpg"),
    pytest.param(lambda tmp: b"<!DOCTYPE html>\n<html><body>Not found</body></html>", "web page", id="html"),
    pytest.param(lambda tmp: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "text", id="postscript"),
    pytest.param(lambda tmp: truncated(small_jpeg()), "damaged", id="jpeg-truncated-to-half"),
    pytest.param(lambda tmp: truncated(small_png()), "damaged", id="png-truncated-to-half"),
    pytest.param(lambda tmp: png_with_corrupt_idat(), "damaged", id="png-corrupt-idat"),
    pytest.param(lambda tmp: b"\x89PNG\r\n\x1a\n" + bytes(range(40)), "PNG format, but its header is damaged",
                 id="png-bad-header"),
    pytest.param(lambda tmp: crafted_png(0, 5, 8, 0, b""), "no pixels", id="png-zero-width"),
    pytest.param(lambda tmp: np.random.default_rng(0).bytes(5000), "not an image", id="random-bytes"),
    pytest.param(lambda tmp: ppm(), "not an image in a supported format", id="ppm-not-supported"),
    pytest.param(lambda tmp: png_header(30000, 30000), "30000 x 30000 pixels", id="png-30000x30000"),
    pytest.param(lambda tmp: SVG, "SVG", id="svg"),
    pytest.param(lambda tmp: b'<?xml version="1.0"?>\n' + SVG, "SVG", id="svg-with-xml-prolog"),
    pytest.param(lambda tmp: ftyp(b"heic", b"mif1", b"heic"), "HEIC", id="fake-heic"),
    pytest.param(lambda tmp: ftyp(b"mif1", b"mif1", b"heic"), "HEIC", id="fake-heif-mif1"),
    pytest.param(lambda tmp: ftyp(b"avif", b"avif", b"mif1"), "AVIF", id="fake-avif"),
    pytest.param(lambda tmp: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF", id="pdf"),
    pytest.param(lambda tmp: tmp / "missing.png", "No such file: ", id="missing-path"),
    pytest.param(lambda tmp: str(tmp), "folder", id="directory"),
]


def assert_plain_sentence(message: str) -> None:
    assert message.endswith("."), message
    assert message[0].isupper(), message
    assert "\n" not in message, message
    for jargon in ("Traceback", "Error", "Exception", "errno", "<_io"):
        assert jargon not in message, message


@pytest.mark.parametrize("make, words", BROKEN)
def test_broken_input_raises_one_plain_sentence(make, words, tmp_path) -> None:
    with pytest.raises(InvalidImageError) as caught:
        load_image(make(tmp_path))
    assert type(caught.value) is InvalidImageError
    message = str(caught.value)
    assert_plain_sentence(message)
    assert words in message


def test_missing_path_names_the_file(tmp_path) -> None:
    path = tmp_path / "holiday.png"
    with pytest.raises(InvalidImageError, match=r"^No such file: .*holiday\.png\.$"):
        load_image(path)


def test_svg_message_suggests_raster_formats() -> None:
    with pytest.raises(InvalidImageError) as caught:
        load_image(SVG)
    assert str(caught.value) == (
        "SVG (vector) images are not supported; please use PNG, JPEG, WebP, BMP, GIF or TIFF.")


@pytest.mark.parametrize("bomb, size", [
    pytest.param(lambda: png_header(7100, 7100), "7100 x 7100", id="png-50.4MP-our-limit"),
    pytest.param(lambda: png_header(10000, 10000), "10000 x 10000", id="png-100MP-pillow-warning"),
    pytest.param(lambda: png_header(30000, 30000), "30000 x 30000", id="png-900MP-pillow-error"),
    pytest.param(lambda: jpeg_header(30000, 30000), "30000 x 30000", id="jpeg-900MP-pillow-error"),
])
def test_pixel_bomb_is_refused_quickly_with_its_size(bomb, size) -> None:
    data = bomb()
    assert len(data) < 2000  # a tiny file that claims a huge image
    pillow_limit = Image.MAX_IMAGE_PIXELS
    started = time.perf_counter()
    with pytest.raises(InvalidImageError) as caught:
        load_image(data)
    assert time.perf_counter() - started < 1.0
    message = str(caught.value)
    assert_plain_sentence(message)
    assert message == f"The image is {size} pixels; the limit is 50 megapixels."
    assert Image.MAX_IMAGE_PIXELS == pillow_limit  # Pillow's global setting is left alone


def test_limit_allows_images_just_under_it() -> None:
    assert MAX_PIXELS == 50_000_000
    image = load_image(solid("PNG", size=(7000, 7000)))  # 49 MP
    assert image.size == (7000, 7000)


@pytest.mark.parametrize("not_a_source", [None, 42, ["a.png"]], ids=["None", "int", "list"])
def test_non_image_arguments_are_a_programming_error(not_a_source) -> None:
    with pytest.raises(TypeError):
        load_image(not_a_source)
