"""gradcam.report without Streamlit: the self-contained HTML report, the PDF, and
the batch helpers (archives read safely, records, CSV, overlays archive)."""

import base64
import csv
import hashlib
import io
import re
import struct
import zipfile
from datetime import datetime, timezone
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

import gradcam
from zips import zip_of
from gradcam import report
from gradcam.intake import archives
from gradcam.report import batch, pdf
from gradcam.engine.model import sha256_of_weights

HOSTILE = "<script>alert(1)</script>"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class Tags(HTMLParser):
    """Every start tag with its attributes, and the document's text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def named(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.tags if tag == name]


def decoded_images(html_text: str) -> list[Image.Image]:
    """Every <img> of the page, decoded from its data: URI (fails on anything else)."""
    images = []
    for attrs in Tags(html_text).named("img"):
        match = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", attrs.get("src", ""))
        assert match, attrs.get("src", "")[:80]
        image = Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=True)))
        image.load()
        images.append(image)
    return images


@pytest.fixture(scope="module")
def photo_bytes(cat):
    return jpeg(cat)


@pytest.fixture(scope="module")
def items(lite0, cat, photo_bytes):
    image = gradcam.load_image(photo_bytes)
    digest = hashlib.sha256(photo_bytes).hexdigest()
    first = gradcam.explain(lite0, image)
    second = gradcam.explain(lite0, image, target=first.predictions[1].index, method="gradcam++")
    return [report.ReportItem.from_explanation(image, "chelsea.jpg", digest, e) for e in (first, second)]


@pytest.fixture(scope="module")
def page(lite0, items):
    return report.report_html(items, model=lite0, created=CREATED)


def test_the_html_parses_and_every_image_is_embedded(page):
    parsed = Tags(page)
    assert [tag for tag, _ in parsed.tags[:2]] == ["html", "head"]
    images = decoded_images(page)
    # Two items: photo, overlay and colour scale each.
    assert len(images) == 6
    assert all(image.size[0] > 0 for image in images)
    assert not parsed.named("script") and "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert not parsed.named("link")  # no external stylesheet either


def test_the_html_says_what_was_explained(page, lite0, items, photo_bytes):
    text = " ".join(" ".join(Tags(page).text).split())
    weights = sha256_of_weights(lite0)
    assert re.fullmatch(r"[0-9a-f]{64}", weights) and weights in text
    assert hashlib.sha256(photo_bytes).hexdigest() in text
    assert lite0.name in text
    for item in items:
        assert item.label in text
        assert f"{item.layer_resolution[0]} x {item.layer_resolution[1]} cells" in text
    assert "Grad-CAM" in text and "Grad-CAM++" in text and "top_activation" in text
    assert "2026-01-02 03:04:05 UTC" in text
    for name, version in report.library_versions().items():
        assert name in text and version in text
    assert {"python", "tensorflow", "keras", "numpy", "pillow"} <= set(report.library_versions())
    assert "what it does not show" in text and "not causation" in text and "no positive evidence" in text


def test_two_items_give_two_overlays_and_thumbnails_stay_small(lite0, cat, items):
    page = report.report_html(items[:1], model=lite0)
    assert len(Tags(page).named("img")) == 3
    big = cat.resize((3000, 2000))
    item = report.ReportItem.from_explanation(big, "big.jpg", "0" * 64, gradcam.explain(lite0, big))
    sizes = [image.size for image in decoded_images(report.report_html([item], weights_sha256="f" * 64))]
    assert max(max(size) for size in sizes) <= report.MAX_EMBEDDED_SIDE


def test_user_text_is_escaped(lite0, items):
    hostile = [
        report.ReportItem(**{**vars(items[0]), "image_name": HOSTILE, "label": HOSTILE}),
    ]
    page = report.report_html(hostile, title=HOSTILE, model_name=HOSTILE, weights_sha256="a" * 64,
                              problems=[(HOSTILE, HOSTILE)])
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE in " ".join(Tags(page).text)  # shown exactly as written


def test_the_pdf_has_a_summary_page_and_one_page_per_item(lite0, items):
    pdf = report.report_pdf(items, model=lite0, created=CREATED)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 1 + len(items)
    # A label that looks like mathtext stays text instead of failing.
    dollars = report.ReportItem(**{**vars(items[0]), "label": "$5 \\frac{1}{0} bill$", "image_name": HOSTILE})
    assert report.report_pdf([dollars], weights_sha256="a" * 64).startswith(b"%PDF")


# --- batches -------------------------------------------------------------------




def lying_zip(sizes: dict[str, int]) -> bytes:
    """Tiny members whose central directory claims ``sizes`` (a zip bomb's header)."""
    data = bytearray(zip_of({name: b"x" * 10 for name in sizes}))
    start = 0
    for declared in sizes.values():
        start = data.index(b"PK\x01\x02", start)
        data[start + 24:start + 28] = struct.pack("<I", declared)  # uncompressed size field
        start += 4
    return bytes(data)


def test_archives_are_read_in_memory_skipping_what_is_not_a_photo(cat, coffee):
    archive = zip_of({"photos/cat.jpg": jpeg(cat), "coffee.JPG": jpeg(coffee), "__MACOSX/._cat.jpg": b"junk",
                      ".hidden.jpg": b"junk", "notes.txt": b"hello", "photos/": b""})
    damaged = jpeg(cat)[:300]  # starts like a JPEG: listed, and fails later with its own sentence
    unpacked = archives.batch_sources([("set.zip", archive), ("cat.jpg", jpeg(cat)), ("cat.jpg", damaged),
                                       ("notes.jpg", b"a text saved under a photo's name")])
    assert [s.name for s in unpacked.sources] == ["set.zip/photos/cat.jpg", "set.zip/coffee.JPG", "cat.jpg",
                                                  "cat.jpg (2)"]
    # A hidden ".jpg" and macOS' resource forks are not counted as "not images"; the folder is not counted at all;
    # a text named like a photo is not an image, and is named.
    assert (unpacked.hidden, unpacked.not_images, unpacked.problems) == (2, 2, [])
    assert unpacked.skipped_text() == ("2 hidden or system files and 2 files that are not images skipped "
                                       "(notes.jpg)")
    assert unpacked.sources[0].read() == jpeg(cat) and unpacked.sources[3].read() == damaged


def test_a_text_named_like_a_photo_inside_an_archive_is_skipped_by_name(cat):
    archive = zip_of({"cat.jpg": jpeg(cat), "readme.png": b"# not a picture\n"})
    unpacked = archives.batch_sources([("set.zip", archive)])
    assert [s.name for s in unpacked.sources] == ["set.zip/cat.jpg"]
    assert unpacked.skipped_text() == "1 file that is not an image skipped (set.zip/readme.png)"


@pytest.mark.parametrize("archive, words", [
    (lying_zip({"bomb.jpg": 600 * 2**20}), "per image"),
    (lying_zip({f"{n}.jpg": 190 * 2**20 for n in range(3)}), "would unpack to"),
    (zip_of({f"{n}.jpg": b"" for n in range(archives.MAX_ARCHIVE_MEMBERS + 1)}), "entries"),
    (b"PK\x03\x04 not really a zip", "not a readable .zip"),
])
def test_a_hostile_archive_is_refused_with_one_sentence_before_reading(archive, words):
    unpacked = archives.batch_sources([("bomb.zip", archive)])
    assert unpacked.sources == [] and len(unpacked.problems) == 1
    assert words in unpacked.problems[0] and unpacked.problems[0].startswith("bomb.zip ")


def test_a_member_that_lies_about_its_size_is_never_read_past_it(cat):
    data = bytearray(zip_of({"cat.jpg": jpeg(cat)}))
    start = data.index(b"PK\x01\x02")
    data[start + 24:start + 28] = struct.pack("<I", 100)  # claims 100 bytes, holds kilobytes
    (source,) = archives.batch_sources([("liar.zip", bytes(data))]).sources
    with pytest.raises(gradcam.InvalidImageError):
        source.read()


@pytest.fixture(scope="module")
def records(lite0, cat, coffee):
    out = []
    for name, data in (("b-cat.jpg", jpeg(cat)), ("a-coffee.jpg", jpeg(coffee)), ("=evil.jpg", b"not an image")):
        try:
            record = batch.explain_for_batch(lite0, data)
            out.append({"file": name, "sha256": batch.sha256(data), **record, "error": None})
        except gradcam.InvalidImageError as error:
            out.append({"file": name, "sha256": batch.sha256(data), "error": str(error)})
    return out


def test_a_batch_record_is_small(records):
    record = records[0]
    assert record["label"] in {"Egyptian cat", "tabby", "tiger cat"} and len(record["top5"]) == 5
    assert max(Image.open(io.BytesIO(record["overlay_jpeg"])).size) == batch.THUMBNAIL_SIDE
    assert record["raw"].shape == (7, 7)
    small = sum(len(v) for v in (record["photo_jpeg"], record["overlay_jpeg"])) + record["raw"].nbytes
    assert small < 100_000


def test_select_filters_and_sorts(records):
    good = [r for r in records if not r["error"]]
    assert [r["file"] for r in batch.select(records, order="file name")] == ["a-coffee.jpg", "b-cat.jpg"]
    ascending = [r["probability"] for r in batch.select(records, order="confidence, low to high")]
    assert ascending == sorted(ascending)
    assert [r["file"] for r in batch.select(records, classes=["espresso"])] == ["a-coffee.jpg"]
    assert len(batch.select(records, min_probability=max(r["probability"] for r in good))) == 1


@pytest.mark.slow  # two faithfulness runs on Lite0: about 10 s on a loaded machine
def test_a_map_worse_than_random_is_flagged_in_the_sheet_and_the_csv_and_sorts_first(records, lite0, coffee):
    """The coffee photo scored twice: with its own Grad-CAM map, and with that map turned upside down (the cup
    least important), which must do worse than a random map: insertion AUC minus deletion AUC below random's."""
    explanation = gradcam.explain(lite0, coffee)
    own = gradcam.faithfulness(lite0, coffee, explanation, steps=10, road=False, seeds=1).numbers()
    upside_down = gradcam.faithfulness(lite0, coffee, explanation.heatmap.max() - explanation.heatmap,
                                       target=explanation.target, steps=10, road=False, seeds=1).numbers()
    coffee_record = next(r for r in records if r["file"] == "a-coffee.jpg")
    good = {**coffee_record, "faithfulness": own}
    bad = {**coffee_record, "file": "upside-down.jpg", "faithfulness": upside_down}
    margin = lambda n: (n["map"]["insertion_auc"] - n["map"]["deletion_auc"]) - (  # noqa: E731
        n["random"]["insertion_auc"] - n["random"]["deletion_auc"])
    assert margin(own) > 0 > margin(upside_down)
    assert "worse than a random map" in batch.auc_caption(bad) and "worse" not in batch.auc_caption(good)
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(batch.predictions_csv([good, bad])))}
    assert (rows["upside-down.jpg"]["worse_than_random"], rows["a-coffee.jpg"]["worse_than_random"]) == ("yes", "no")
    assert [r["file"] for r in batch.select([good, bad], order="faithfulness, worst first")] == [
        "upside-down.jpg", "a-coffee.jpg"]
    assert [r["file"] for r in batch.select([bad, good], order="faithfulness, best first")] == [
        "a-coffee.jpg", "upside-down.jpg"]


def test_the_csv_has_a_row_per_file_with_its_error(records):
    rows = list(csv.DictReader(io.StringIO(batch.predictions_csv(records))))
    assert len(rows) == 3 and rows[0]["top1_label"] == records[0]["label"]
    assert float(rows[1]["top1_probability"]) == pytest.approx(records[1]["probability"], abs=1e-6)
    assert rows[1]["top5_label"] and rows[2]["error"] and not rows[2]["top1_label"]
    assert rows[2]["file"] == "'=evil.jpg"  # no spreadsheet formula from a file name


def test_the_overlays_archive_redraws_full_size_overlays_without_the_model(records, cat):
    originals = {"b-cat.jpg": lambda: jpeg(cat)}  # the coffee's upload is gone: its thumbnail goes in
    archive = zipfile.ZipFile(io.BytesIO(batch.overlays_zip(records, originals)))
    assert sorted(archive.namelist()) == ["a-coffee-gradcam.jpg", "b-cat-gradcam.jpg", "predictions.csv"]
    assert Image.open(archive.open("b-cat-gradcam.jpg")).size == cat.size
    assert max(Image.open(archive.open("a-coffee-gradcam.jpg")).size) == batch.THUMBNAIL_SIDE
    assert len(archive.read("predictions.csv").decode().splitlines()) == 4


def test_a_batch_report_uses_the_thumbnails_and_lists_the_failures(records):
    items = batch.batch_report_items(records)
    page = report.report_html(items, model_name="EfficientNet-Lite0", weights_sha256="b" * 64,
                              problems=[(r["file"], r["error"]) for r in records if r["error"]])
    assert len(decoded_images(page)) == 2 * 3
    text = " ".join(Tags(page).text)
    assert "Not explained (1)" in text and "=evil.jpg" in text
    assert "{} x {} px".format(*records[0]["size"]) in text


def test_file_stem_is_safe_for_a_download_name():
    assert report.file_stem("my cat.JPG") == "my-cat"
    assert report.file_stem("../../etc/passwd") == "passwd"
    assert report.file_stem('a<b>"c".png') == "a-b-c"
    assert report.file_stem(HOSTILE) == "script"  # the "/" ends a folder name
    assert report.file_stem("") == "image"


def test_the_engine_never_imports_streamlit():
    import ast
    from pathlib import Path

    for module in Path(gradcam.__file__).parent.rglob("*.py"):
        tree = ast.parse(module.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(name.split(".")[0] == "streamlit" for name in imported), module.name


# --- the PDF as a reader meets it ----------------------------------------------------

LONG_NAME = ("a-very-long-file-name-from-a-phone-camera-roll-with-coffee-and-office-affairs-"
             "IMG_20260101_123456789_HDR_portrait_mode_final_final.jpg")


@pytest.fixture(scope="module")
def long_named(items):
    return report.ReportItem(**{**vars(items[0]), "image_name": LONG_NAME, "colormap": "viridis"})


def test_pdf_text_can_be_copied_and_searched_with_no_ligatures(lite0, long_named):
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(report.report_pdf([long_named], model=lite0, title="Coffee office")))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "coffee" in text and "office" in text and "different" in text
    # Viewers copy a ligature glyph ("ff" as one character, U+FB00) as nothing: "co ee". None may be drawn.
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            encoding = font.get_object().get("/Encoding")
            glyphs = str(encoding.get_object()) if encoding is not None else ""
            assert not re.search(r"/(uniFB0[0-6]|f[fil]{1,2})'", glyphs), glyphs
    # The item page names its colormap and shows the colour scale with its ends, as the HTML does.
    item_page = reader.pages[1].extract_text()
    assert "colormap viridis" in item_page and "no evidence" in item_page and "strongest" in item_page
    assert "the yellow regions raised the score most" in item_page


def test_pdf_pages_keep_a_long_file_name_on_the_page(lite0, long_named):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    title = f"Grad-CAM report: {LONG_NAME}"
    pages = [pdf._summary_page([long_named], title, LONG_NAME, "a" * 64, "now", True, []),
             *pdf._item_page(1, long_named, LONG_NAME, "a" * 64, True)]
    for figure in pages:
        renderer = FigureCanvasAgg(figure).get_renderer()
        page = figure.bbox
        for text in figure.texts:
            box = text.get_window_extent(renderer)
            assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, \
                text.get_text()
    drawn = " ".join(t.get_text() for t in pages[1].texts)
    assert "IMG_20260101" in drawn and "coffee" in drawn  # wrapped, not cut off


def test_batch_records_run_score_cam_on_the_budget_they_are_given(lite0, coffee):
    """The Batch page passes the dashboard's Score-CAM budget: a set of photos must not
    run every channel (minutes per photo) when Explore runs 32."""
    data = jpeg(coffee)
    (record,) = batch.explain_records(lite0, [data], method="scorecam", max_channels=8)
    image = batch._display_image(data, gradcam.intake.images.DISPLAY_MAX_SIDE)
    alone = gradcam.explain(lite0, image, method="scorecam", max_channels=8)
    assert record["label"] == alone.label == "espresso"
    assert np.allclose(record["raw"], alone.raw, atol=1e-5)
