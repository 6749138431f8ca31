"""Images from untrusted places: what load_image reads and how much work it lets a
file ask for (issue 8). The hostile files themselves are in tests/corpus.py, where
they also go through the CLI and the Explore page; here: paths and file objects that
are not files at all, and proof that the decode budgets leave real photos alone.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from helpers import photo
from corpus import crafted_png, encode, many_chunks_png, many_scans_jpeg, rle8_bmp, tiff
from gradcam.intake import decode_budget
from gradcam.errors import InvalidImageError
from gradcam.intake.images import load_image

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
FAST = 1.0  # seconds: generous, a refusal reads a header


def refused(source) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(InvalidImageError) as caught:
        load_image(source)
    elapsed = time.perf_counter() - started
    assert type(caught.value) is InvalidImageError
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message and "Error" not in message, message
    return message, elapsed


# --- paths and file objects that are not image files ----------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    outcome = {}
    # Before the fix open() blocked for ever; run it aside so a regression fails, not hangs.
    worker = threading.Thread(target=lambda: outcome.update(result=refused(fifo)), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        with open(fifo, "wb"):  # unblock the reader so the thread ends
            pass
        pytest.fail("load_image blocked on a FIFO")
    message, elapsed = outcome["result"]
    assert "not a regular file" in message and elapsed < FAST


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_that_never_ends_is_refused_before_reading(device) -> None:
    message, elapsed = refused(device)
    assert message == f"The path {device} is not a regular file (it is a device, a pipe or a socket)."
    assert elapsed < FAST


def test_an_endless_file_object_is_read_only_up_to_the_size_limit(monkeypatch) -> None:
    monkeypatch.setattr("gradcam.intake.images.MAX_FILE_BYTES", 1024 * 1024)
    with open("/dev/zero", "rb") as endless:
        message, elapsed = refused(endless)
    assert message.startswith("The file is larger than 1 MB") and elapsed < FAST


def test_a_huge_regular_file_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("gradcam.intake.images.MAX_FILE_BYTES", 1024 * 1024)
    path = tmp_path / "big.bmp"
    path.write_bytes(encode(Image.new("RGB", (1000, 1000)), "BMP"))  # 3 MB
    assert refused(path)[0] == "The file is larger than 1 MB, more than any image this tool accepts needs."


@pytest.mark.parametrize("path", ["photo\0.jpg", b"photo.jpg".decode() + "\0", Path("a\0b.png")],
                         ids=["str", "str-at-end", "pathlib"])
def test_a_path_with_a_nul_byte_is_one_sentence(path) -> None:
    assert refused(path)[0] == "The path contains a NUL character, so it cannot name a file."


def test_a_closed_file_is_one_sentence(tmp_path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encode(Image.new("RGB", (4, 4)), "PNG"))
    file = open(path, "rb")
    file.close()
    assert refused(file)[0] == "The file was already closed, so it could not be read."
    stream = io.BytesIO(b"x")
    stream.close()
    assert refused(stream)[0] == "The file was already closed, so it could not be read."


def test_a_path_that_cannot_be_shown_still_gets_a_sentence(tmp_path) -> None:
    message = refused(str(tmp_path / "caf\udce9.png"))[0]  # undecodable byte from os.listdir
    assert message.startswith("No such file: ") and message.encode("utf-8")


def test_a_reader_returning_something_odd_is_one_sentence() -> None:
    class Odd:
        def read(self, size=-1):
            return 42

    assert refused(Odd())[0] == "The uploaded file could not be read."


# --- the budgets leave real photos alone ------------------------------------------


def pillow_rgb(data: bytes) -> np.ndarray:
    """What Pillow alone makes of a photo: upright, RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.jpg")), ids=lambda p: p.name)
def test_the_sample_photos_load_exactly_as_pillow_decodes_them(path) -> None:
    data = path.read_bytes()
    assert np.array_equal(np.asarray(load_image(data)), pillow_rgb(data))
    assert np.array_equal(np.asarray(load_image(path)), pillow_rgb(data))


PHOTO_ENCODINGS = [
    pytest.param("JPEG", {"quality": 90}, id="jpeg"),
    pytest.param("JPEG", {"quality": 90, "progressive": True}, id="progressive-jpeg"),
    pytest.param("PNG", {}, id="png"),
    pytest.param("WEBP", {"quality": 90}, id="webp"),
    pytest.param("WEBP", {"lossless": True}, id="webp-lossless"),
    pytest.param("TIFF", {"compression": "tiff_deflate"}, id="tiff-deflate"),
    pytest.param("TIFF", {}, id="tiff-uncompressed-strips"),
    pytest.param("BMP", {}, id="bmp"),
]


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut", "rocket"])
@pytest.mark.parametrize("fmt, params", PHOTO_ENCODINGS)
def test_real_photos_in_every_format_load_exactly_as_pillow_decodes_them(name, fmt, params) -> None:
    data = encode(photo(name), fmt, **params)
    assert np.array_equal(np.asarray(load_image(data)), pillow_rgb(data))


def test_a_6000_x_4000_progressive_photo_is_within_the_scan_budget() -> None:
    big = photo("coffee").resize((6000, 4000))
    data = encode(big, "JPEG", quality=85, progressive=True)
    assert data.count(b"\xff\xda") == 10
    assert load_image(data).size == (6000, 4000)


def test_a_photo_with_one_row_per_strip_still_loads() -> None:
    # Some scanners write a strip per row; 4000 rows is far from the strip budget.
    rows = tiff(3000, 4000, bytes(3000), strips=4000)
    assert load_image(rows).size == (3000, 4000)


def test_budgets_sit_just_above_what_the_formats_need() -> None:
    # Below each limit the same kind of file loads: the limits refuse absurd counts only.
    assert load_image(many_scans_jpeg(90, (256, 256))).size == (256, 256)
    assert load_image(many_chunks_png(900)).size == (64, 64)
    assert load_image(rle8_bmp(1920, 1080)).size == (1920, 1080)


@pytest.mark.parametrize("colour_type, bit_depth, loads", [
    pytest.param(2, 8, True, id="rgb"), pytest.param(6, 8, True, id="rgba"), pytest.param(0, 8, True, id="grey"),
    pytest.param(2, 16, True, id="rgb-16-bit"),  # Pillow decodes it to 8-bit RGB
    pytest.param(0, 16, False, id="grey-16-bit"),  # NumPy scratch arrays: 14 bytes a pixel
])
def test_the_memory_budget_keeps_50_megapixel_photos(colour_type, bit_depth, loads) -> None:
    header = crafted_png(7070, 7070, bit_depth, colour_type, b"\0")  # 49.98 MP, not decoded here
    with Image.open(io.BytesIO(header)) as image:
        if loads:
            decode_budget.check_before_load(image, header)
        else:
            with pytest.raises(InvalidImageError, match="would need about 667 MB of memory; the limit is 450 MB"):
                decode_budget.check_before_load(image, header)
