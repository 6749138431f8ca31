"""The Batch page through Streamlit's AppTest: a mixed upload, the run, the contact
sheet's filters and sorting, the downloads, and hostile archives."""

import csv
import io
import re
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

from zips import zip_of
from gradcam.intake import archives
from gradcam.report import batch

PAGE = "batch"
CAPTION = re.compile(r"(?P<label>.+) \((?P<percent>\d+\.\d)%\) · (?P<file>.+)")


def photo(name: str) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(getattr(data, name)()).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()




@pytest.fixture(scope="module")
def uploads():
    archive = zip_of({"more/rocket.jpg": photo("rocket"), "coffee-again.jpg": photo("coffee")[:-2] + b"\xff\xd9",
                      "__MACOSX/._x.jpg": b"\x00\x05\x16\x07 resource fork", "notes.txt": b"not a photo"})
    return [
        ("chelsea.jpg", photo("chelsea"), "image/jpeg"),
        ("coffee.jpg", photo("coffee"), "image/jpeg"),
        ("astronaut.jpg", photo("astronaut"), "image/jpeg"),
        ("broken.jpg", photo("coffee")[:300], "image/jpeg"),  # a JPEG cut short: counted, fails with a sentence
        ("notes.jpg", b"a text saved under a photo's name", "image/jpeg"),  # not an image: skipped, by name
        ("more photos.zip", archive, "application/zip"),
    ]


@pytest.fixture
def offered(monkeypatch):
    """What each download button offers, by file name (AppTest cannot click a download)."""
    files: dict[str, object] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record_add(self, data, mimetype, coordinates, file_name=None, *args, **kwargs):
        if file_name:
            files[file_name] = data
        return add(self, data, mimetype, coordinates, file_name, *args, **kwargs)

    def record_deferred(self, make, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            files[file_name] = make
        return add_deferred(self, make, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", record_add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return lambda name: files[name]() if callable(files[name]) else files[name]


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sheet(at: AppTest) -> list[dict]:
    """The contact sheet's captions, parsed (Markdown escapes removed)."""
    shown = []
    for image in at.image:
        for caption in image.captions:
            match = CAPTION.fullmatch(re.sub(r"\\(.)", r"\1", caption))
            assert match, caption
            shown.append({"label": match["label"], "percent": float(match["percent"]), "file": match["file"]})
    return shown


def shown_count(at: AppTest) -> tuple[int, int]:
    text = next(c.value for c in at.caption if c.value.endswith(" shown"))
    shown, total = re.fullmatch(r"(\d+) of (\d+) shown", text).groups()
    return int(shown), int(total)


@pytest.fixture(scope="module")
def explained(uploads):
    at = run(page_app(PAGE, default_timeout=180))
    at.file_uploader(key="batch_upload").set_value(uploads)
    run(at)
    assert not at.error
    shown = [re.sub(r"\\(.)", r"\1", c.value) for c in at.caption]  # as a person reads it (escapes removed)
    assert "6 images ready; 1 hidden or system file and 2 files that are not images skipped (notes.jpg)." in shown
    at.button(key="batch_explain").click()
    return run(at)


def test_explain_all_explains_the_good_photos_and_reports_the_broken_one(explained):
    at = explained
    results = at.session_state["batch_results"]
    assert len(results) == 6
    good = [r for r in results if not r["error"]]
    assert sorted(r["file"] for r in good) == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg",
                                               "more photos.zip/coffee-again.jpg", "more photos.zip/more/rocket.jpg"]
    # Only small things are kept per photo: no full-size array.
    assert all(len(r["overlay_jpeg"]) < 60_000 and r["raw"].size <= 49 for r in good)
    assert "Explained 5 of 6 files" in [h.value for h in at.subheader]
    assert at.warning[0].value == "1 file could not be explained:"
    errors = at.dataframe[0].value
    assert errors["file"].tolist() == ["broken.jpg"]
    assert errors["error"].tolist()[0].endswith(".") and len(errors["error"].tolist()[0].split()) > 3


def test_the_contact_sheet_shows_every_photo_with_its_label_and_confidence(explained):
    shown = sheet(explained)
    assert len(shown) == 5 and shown_count(explained) == (5, 5)
    by_file = {s["file"]: s for s in shown}
    assert by_file["chelsea.jpg"]["label"] in {"Egyptian cat", "tabby", "tiger cat"}
    assert by_file["coffee.jpg"]["label"] == "espresso"
    percents = [s["percent"] for s in shown]
    assert percents == sorted(percents, reverse=True)  # most confident first by default


def test_filters_and_sorting(explained):
    at = explained
    at.selectbox(key="batch_sort").set_value("file name")
    run(at)
    files = [s["file"] for s in sheet(at)]
    assert files == sorted(files, key=str.casefold)
    at.selectbox(key="batch_sort").set_value("confidence, low to high")
    run(at)
    percents = [s["percent"] for s in sheet(at)]
    assert percents == sorted(percents)

    at.multiselect(key="batch_classes").set_value(["espresso"])
    run(at)
    assert {s["label"] for s in sheet(at)} == {"espresso"} and shown_count(at)[0] < 5
    at.multiselect(key="batch_classes").set_value([])
    run(at)

    lowest = min(s["percent"] for s in sheet(at))
    at.slider(key="batch_min").set_value(int(lowest // 5 + 1) * 5)
    run(at)
    assert 0 < len(sheet(at)) < 5 and all(s["percent"] > lowest for s in sheet(at))
    assert shown_count(at) == (len(sheet(at)), 5)
    at.slider(key="batch_min").set_value(0)
    run(at)
    assert len(sheet(at)) == 5


def test_the_downloads(explained, offered):
    at = run(explained)
    rows = list(csv.DictReader(io.StringIO(offered("gradcam-predictions.csv").decode())))
    assert len(rows) == 6
    broken = next(r for r in rows if r["file"] == "broken.jpg")
    assert broken["error"] and not broken["top1_label"]
    assert all(r["top1_label"] and 0 < float(r["top1_probability"]) <= 1 and r["top5_label"]
               for r in rows if r["file"] != "broken.jpg")
    assert offered("gradcam-predictions.csv").decode() == batch.predictions_csv(at.session_state["batch_results"])

    archive = zipfile.ZipFile(io.BytesIO(offered("gradcam-overlays.zip")))
    overlays = [n for n in archive.namelist() if n.endswith("-gradcam.jpg")]
    assert len(overlays) == 5 and "predictions.csv" in archive.namelist()
    # Redrawn at display size from the uploads, not the thumbnails: the astronaut is 512 x 512.
    assert Image.open(archive.open("astronaut-gradcam.jpg")).size == (512, 512)

    page = offered("gradcam-report-batch.html")
    assert page.count("<section class=\"item\" id=\"item-") == 5 and "broken.jpg" in page
    assert "<script" not in page and "https://" not in page


def bomb(declared: int) -> bytes:
    data = bytearray(zip_of({"bomb.jpg": b"x" * 10}))
    start = data.index(b"PK\x01\x02")
    data[start + 24:start + 28] = struct.pack("<I", declared)  # the central directory's uncompressed size
    return bytes(data)


@pytest.mark.parametrize("archive", [
    bomb(600 * 2**20),
    zip_of({f"{n}.jpg": b"" for n in range(archives.MAX_ARCHIVE_MEMBERS + 1)}),
    b"PK\x03\x04 and then nothing",
], ids=["declared-size", "too-many-members", "not-a-zip"])
def test_a_hostile_archive_gives_one_sentence(archive):
    at = run(page_app(PAGE, default_timeout=180))
    at.file_uploader(key="batch_upload").set_value([("bomb.zip", archive, "application/zip")])
    run(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("bomb\\.zip ")
    assert at.button(key="batch_explain").disabled


# --- concepts shared across the set --------------------------------------------------------

CATS = {"Egyptian cat", "tabby", "tiger cat"}
COFFEE = {"espresso", "cup", "coffee mug", "coffeepot", "teapot"}


def flipped(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo(name))).transpose(Image.FLIP_LEFT_RIGHT).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def cropped(name: str, box) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo(name))).crop(box).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def concept_lines(at: AppTest) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", m.value) for m in at.markdown if " concept** · in " in m.value]


@pytest.mark.slow
def test_concepts_shared_across_the_set_each_with_its_photos_and_votes():
    at = run(page_app(PAGE, default_timeout=240))
    at.file_uploader(key="batch_upload").set_value([
        ("cat-1.jpg", photo("chelsea"), "image/jpeg"), ("cat-2.jpg", flipped("chelsea"), "image/jpeg"),
        ("cat-3.jpg", cropped("chelsea", (50, 0, 400, 300)), "image/jpeg"),
        ("cup-1.jpg", photo("coffee"), "image/jpeg"), ("cup-2.jpg", flipped("coffee"), "image/jpeg")])
    run(at)
    at.button(key="batch_explain").click()
    run(at)
    assert "Concepts these photos share" in [h.value for h in at.subheader]
    assert any("One forward pass per photo shown (5)" in c.value for c in at.caption)  # nothing ran yet
    assert not concept_lines(at)
    at.slider(key="batch_concepts").set_value(2)
    run(at)
    at.button(key="batch_concepts_go").click()
    run(at)
    assert not at.error
    lines = concept_lines(at)
    assert len(lines) == 2
    strips = [image for image in at.image if image.captions and all(c.endswith(".jpg") for c in image.captions)
              and not any(" · " in c for c in image.captions)]
    assert len(strips) == 2
    by_line = dict(zip(lines, ([c.replace("\\", "") for c in s.captions] for s in strips)))
    cat_line = next(line for line in lines if line.split("votes ")[1].split(" ")[0] in {"Egyptian", "tabby", "tiger"})
    cup_line = next(line for line in lines if line is not cat_line)
    # The cat concept's strip starts with cat photos; the cup's with cup photos and votes for a coffee class.
    assert by_line[cat_line][0].startswith("cat-") and by_line[cup_line][0].startswith("cup-")
    assert set(by_line[cat_line]) >= {"cat-1.jpg", "cat-2.jpg"}
    assert any(name.split(" ")[0] in {"espresso", "cup", "coffee", "coffeepot", "teapot"}
               for name in cup_line.split("votes ")[1].split(", "))
    # Narrowing the set to one class asks again before anything runs.
    at.multiselect(key="batch_classes").set_value(["espresso"])
    run(at)
    assert not concept_lines(at) and any("One forward pass per photo shown (2)" in c.value for c in at.caption)
