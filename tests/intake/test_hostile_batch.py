"""Batch uploads from untrusted hands (issue 8): zips that are built to cost time and
memory before the entry limit can refuse them, or to crash the listing or reading, and
file names and labels that would break or subvert the CSV download."""

from __future__ import annotations

import csv
import io
import time
import zipfile

import numpy as np
import pytest

import gradcam
from gradcam.intake import archives
from gradcam.report import batch
from zips import corrupt_member_zip, many_entries_zip, nul_name_zip, understated_entries_zip, zip_of

PAYLOAD = np.random.default_rng(0).bytes(2000)  # incompressible, so the compressed stream is long


def one_sentence(text: str) -> None:
    assert text.endswith(".") and "\n" not in text and "Error" not in text, text

# Bytes that start like a JPEG or a PNG: listed as images (only the first bytes are looked at there).
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("archive, words", [
    pytest.param(lambda: many_entries_zip(1_000_000), "1,000,000 entries", id="1M-entries-zip64-51MB"),
    pytest.param(lambda: many_entries_zip(60_000), "60,000 entries", id="60k-entries"),
    pytest.param(lambda: understated_entries_zip(50_000), "list of contents of 2 MB", id="count-understated"),
])
def test_an_archive_of_too_many_entries_is_refused_before_zipfile_lists_them(archive, words) -> None:
    data = archive()
    started = time.perf_counter()
    unpacked = archives.batch_sources([("many.zip", data), ("cat.jpg", JPEG + b"next")])
    elapsed = time.perf_counter() - started
    assert len(unpacked.problems) == 1 and words in unpacked.problems[0], unpacked.problems
    one_sentence(unpacked.problems[0])
    assert [s.name for s in unpacked.sources] == ["cat.jpg"]  # the rest of the upload carries on
    assert elapsed < 0.5  # before: 7.7 s (1M entries), listing every entry first


def test_a_member_name_starting_with_nul_is_skipped_not_a_crash() -> None:
    unpacked = archives.batch_sources([("nul.zip", nul_name_zip(PAYLOAD))])  # before: IndexError
    assert unpacked.sources == [] and unpacked.problems == [] and unpacked.skipped == 1


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2],
                         ids=["deflate", "lzma", "bzip2"])
def test_a_member_with_corrupt_compressed_data_is_one_sentence(compression) -> None:
    (source,) = archives.batch_sources([("bad.zip", corrupt_member_zip(PAYLOAD, compression))]).sources
    with pytest.raises(gradcam.InvalidImageError) as caught:  # before: zlib.error, LZMAError
        source.read()
    assert type(caught.value) is gradcam.InvalidImageError
    assert str(caught.value) == ("This archive entry cannot be read "
                                 "(it is damaged, encrypted or compressed in an unsupported way).")


def test_members_that_share_a_name_are_each_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("a.jpg", JPEG + b"first")
        archive.writestr("a.jpg", JPEG + b"second!")
    unpacked = archives.batch_sources([("twice.zip", buffer.getvalue())])
    assert [s.name for s in unpacked.sources] == ["twice.zip/a.jpg", "twice.zip/a.jpg (2)"]
    assert [s.read() for s in unpacked.sources] == [JPEG + b"first", JPEG + b"second!"]


def test_a_normal_archive_still_lists_and_reads() -> None:
    unpacked = archives.batch_sources([("set.zip", zip_of({"x/a.png": PNG + b"a", "b.jpg": JPEG + b"bb", "notes.txt": b""}))])
    assert [(s.name, s.read()) for s in unpacked.sources] == [("set.zip/x/a.png", PNG + b"a"),
                                                                  ("set.zip/b.jpg", JPEG + b"bb")]
    assert unpacked.skipped == 1 and unpacked.problems == []


# --- the CSV download ------------------------------------------------------------------


def record(file: str, label: str = "tabby", error: str | None = None) -> dict:
    if error:
        return {"file": file, "sha256": "0" * 64, "error": error}
    top5 = [{"index": k, "label": label if k == 0 else f"class {k}", "probability": 0.5 / (k + 1), "logit": 1.0}
            for k in range(5)]
    return {"file": file, "sha256": "0" * 64, "error": None, "label": label, "probability": 0.5,
            "top5": top5, "layer": "top_activation", "method": "gradcam"}


def spreadsheet_rows(text: str) -> list[list[str]]:
    """How a spreadsheet splits the CSV: RFC 4180, quotes honoured (Python's reader)."""
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("name", ["a\r=HYPERLINK(\"http://x\")", "a\n=1+1", "a\r\n@SUM(A1)", "\r-2", "=1\r+2"],
                         ids=["CR", "LF", "CRLF", "starts-with-CR", "two-formulas"])
def test_a_line_break_in_a_name_stays_inside_its_quoted_cell_and_no_line_starts_a_formula(name) -> None:
    text = batch.predictions_csv([record(name, label=name), record("next.jpg")])
    rows = spreadsheet_rows(text)
    assert len(rows) == 3 and len(rows[1]) == len(batch.CSV_COLUMNS), rows  # header, two files
    for cell in (rows[1][0], rows[1][2]):  # file and top-1 label
        assert cell.replace("'", "") == name  # the same text, only guarded
        for line in cell.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            assert line[:1] not in ("=", "+", "-", "@"), cell
    assert rows[2][0] == "next.jpg"
    # ...and a reader that splits at every CR or LF (no quotes honoured) finds no formula either.
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        for cell in line.split(","):
            assert cell.lstrip('"')[:1] not in ("=", "+", "-", "@"), line


def test_lone_surrogates_in_names_are_written_as_valid_utf8() -> None:
    unpacked = archives.batch_sources([("caf\udce9.jpg", JPEG + b"data"),
                                       ("set\ud800.zip", zip_of({"a.jpg": JPEG + b"x"}))])
    assert [s.name for s in unpacked.sources] == ["caf\ufffd.jpg", "set\ufffd.zip/a.jpg"]
    text = batch.predictions_csv([record("x\ud800y.jpg", label="\udfff"), record("e.jpg", error="bad \ud800")])
    encoded = text.encode("utf-8")  # before: UnicodeEncodeError on download
    assert "x\ufffdy.jpg" in encoded.decode("utf-8") and "bad \ufffd" in text


def test_ordinary_names_are_written_as_they_are() -> None:
    rows = spreadsheet_rows(batch.predictions_csv([record("holiday, day 1.jpg", label="Egyptian cat")]))
    assert rows[1][0] == "holiday, day 1.jpg" and rows[1][2] == "Egyptian cat"
