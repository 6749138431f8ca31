"""What one session unpacks is bounded over its runs, not only per run (issue 16): a small
.zip of large BMPs, explained again and again, stops at the session's hourly limit with one
sentence, and the results already made stay."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

from gradcam.intake import archives
from zips import zip_of

PAGE = "batch"
BMP_BYTES = 1200 * 1000 * 3 + 54  # what each entry inflates to: uncompressed 24-bit pixels and the header


def bmp(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 1000), colour).save(buffer, "BMP")
    assert len(buffer.getvalue()) == BMP_BYTES
    return buffer.getvalue()


def test_the_ledger_counts_a_sessions_runs_within_the_window(monkeypatch):
    monkeypatch.setattr(archives, "MAX_SESSION_BYTES", 100)
    now = [0.0]
    ledger = archives.InflationLedger(clock=lambda: now[0])
    sources = [archives.BatchSource(f"{i}.bmp", 40, lambda: b"") for i in range(3)]
    allowed, problem = ledger.charge(sources)
    assert [s.name for s in allowed] == ["0.bmp", "1.bmp"] and "only the first 2 of 3" in problem
    now[0] = 600.0
    allowed, problem = ledger.charge(sources)
    assert allowed == [] and problem.endswith("try again in about 50 minutes.")
    now[0] = archives.SESSION_WINDOW_SECONDS + 1.0  # the first run left the window
    allowed, problem = ledger.charge(sources[:2])
    assert len(allowed) == 2 and problem is None and ledger.used() == 80


@pytest.mark.slow
def test_a_session_that_unpacks_again_and_again_is_stopped_with_a_sentence(monkeypatch):
    monkeypatch.setattr(archives, "MAX_SESSION_BYTES", 2 * BMP_BYTES + 1000)  # two entries' worth an hour
    archive = zip_of({f"big{i}.bmp": bmp((40 * i, 90, 160)) for i in range(3)})
    assert len(archive) < 200_000  # 10 MB of pixels in a small upload
    at = page_app(PAGE, default_timeout=300)
    at.run()
    at.file_uploader(key="batch_upload").set_value([("big.zip", archive, "application/zip")])
    at.run()
    at.button(key="batch_explain").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    said = [e.value.replace("\\", "") for e in at.error]  # shown as Markdown, escaped
    assert said == ["This session may unpack 7 MB in 60 minutes; only the first 2 of 3 images are explained now."], said
    assert [r["file"] for r in at.session_state["batch_results"]] == ["big.zip/big0.bmp", "big.zip/big1.bmp"]
    at.button(key="batch_explain").click()
    at.run()
    said = [e.value.replace("\\", "") for e in at.error]
    assert len(said) == 1 and "the most it may in 60 minutes; try again in about 60 minutes." in said[0], said
    assert len(at.session_state["batch_results"]) == 2  # nothing lost: the first run's results stay
