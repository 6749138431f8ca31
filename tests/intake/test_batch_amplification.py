"""Zip amplification on the Batch page (issue 16): limits per archive are not enough, so
the images of one run may inflate to MAX_RUN_BYTES in all, and each is decoded downscaled."""

import io
import zipfile

import numpy as np
from PIL import Image

from gradcam.intake import archives
from gradcam.report import batch


def bmp(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (10, 200, 30)).save(buffer, "BMP")
    return buffer.getvalue()


def zipped(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_run_stops_at_its_inflated_bytes_and_says_so(monkeypatch):
    photo = bmp(400)  # 480 kB inflated, a few kB zipped
    monkeypatch.setattr(archives, "MAX_RUN_BYTES", 4 * len(photo) + 10)
    uploads = [(f"part{i}.zip", zipped({f"a{i}.bmp": photo, f"b{i}.bmp": photo})) for i in range(5)]
    assert sum(len(data) for _, data in uploads) < len(photo)  # ten photos' worth from less than one
    unpacked = archives.batch_sources(uploads)
    assert len(unpacked.sources) == 4
    assert unpacked.problems == [f"The images unpack to more than {archives.megabytes(archives.MAX_RUN_BYTES)} "
                                 "in all; only the first 4 are explained."]


def test_batch_photos_come_back_from_the_sandbox_at_display_size():
    image = batch._display_image(bmp(3000), 512)  # a 27 MB BMP
    assert image.size == (512, 512)
    assert np.asarray(image)[0, 0].tolist() == [10, 200, 30]
