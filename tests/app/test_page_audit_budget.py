"""The Audit page and a session's decoded pixels (issue 30): a small zip of PNGs that declare
7000 x 7000 is audited through the router (so the page runs in its session's sandbox context),
each photo decoded at most 1024 px, every decoded pixel counted against the session; past its
budget a photo is a row with the sentence (an audit of no readable photo used to crash the page's class
table), and another session is served."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from gradcam.intake import pixel_budget
from tests.app.pages import ROUTER, switch_to
from tests.app.test_app import run
from zips import zip_of


def png_declaring(side: int, colour=(200, 30, 40)) -> bytes:
    """A real PNG of one colour: ~140 kB for 7000 x 7000 (49 megapixels). (Not imported from the audit's
    tests: they import pyarrow, which crashed the router's import of the live video page's PyAV here.)"""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, "PNG")
    return buffer.getvalue()


def audited(archive: bytes, at: AppTest | None = None) -> AppTest:
    if at is None:
        at = run(AppTest.from_file(ROUTER, default_timeout=300))
        run(switch_to(at, "audit"))
        at.radio(key="audit_source").set_value("mine")
        run(at)
        at.selectbox(key="audit_model").set_value("Clever Hans demo")
    at.file_uploader(key="audit_zip").set_value([("huge.zip", archive, "application/zip")])
    run(at)
    at.button(key="audit_go").click()
    return run(at)


@pytest.mark.slow
def test_huge_pngs_on_the_audit_page_count_against_the_session_and_another_session_is_served(monkeypatch):
    monkeypatch.setattr(pixel_budget, "MAX_SESSION_PIXELS", 60_000_000)
    first = audited(zip_of({f"disc/{k}.png": png_declaring(7000, (10 * k, 200, 40)) for k in range(3)}))
    assert "2 photos could not be audited:" in [w.value for w in first.warning]
    why = next(list(d.value["why"]) for d in first.dataframe if "why" in d.value.columns)
    # 49 megapixels of the first photo and the Explore page's own sample photo: whichever page decoded them.
    assert len(why) == 2 and all(w.startswith("This session has decoded 50 megapixels of photos in the last 60 "
                                              "minutes; this photo's 49 megapixels would pass the limit of 60 "
                                              "megapixels an hour; try again in about") for w in why), why
    # Again, a new photo: nothing left to decode. The page says why, photo by photo (an audit in which no
    # photo could be read had no class, and its class table raised KeyError).
    again = audited(zip_of({"disc/a.png": png_declaring(7000, (1, 2, 3))}), first)
    assert "1 photo could not be audited:" in [w.value for w in again.warning]
    # Another session (AppTest gives every test one session id: the library's own key here) is served.
    with gradcam.sandbox_session("another visitor"):
        assert gradcam.load_image_safely(png_declaring(7000), max_side=1024).size == (1024, 1024)
