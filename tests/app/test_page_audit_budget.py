"""The Audit page and a session's decoded pixels (issue 30): a small zip of PNGs that declare
7000 x 7000 is audited on the page, run in its session's sandbox context as the router runs it,
each photo decoded at most 1024 px, every decoded pixel counted against the session; past its
budget a photo is a row with the sentence (an audit of no readable photo used to crash the page's class
table), and another session is served."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from gradcam.intake import pixel_budget
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
        # The page in its session's sandbox context, as the router runs it (the router itself also imports
        # the live video page, whose PyAV crashed in a process that had loaded pyarrow before).
        at = run(AppTest.from_string("from dashboard.runtime.boot import boot, this_session_in_the_sandbox\n"
                                     "boot()\n"
                                     "from dashboard.pages.audit import page\n"
                                     "with this_session_in_the_sandbox():\n"
                                     "    page()\n", default_timeout=300))
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
    # A fresh hour for every session: AppTest gives all its apps one session id, so the pixels
    # earlier tests in this process decoded counted here (all three photos were refused when
    # tests/app ran in one process).
    monkeypatch.setattr(pixel_budget, "_ledgers", type(pixel_budget._ledgers)())
    first = audited(zip_of({f"disc/{k}.png": png_declaring(7000, (10 * k, 200, 40)) for k in range(3)}))
    assert "2 photos could not be audited:" in [w.value for w in first.warning]
    why = next(list(d.value["why"]) for d in first.dataframe if "why" in d.value.columns)
    # 49 megapixels of the first photo, and whatever else this session decoded first, on whichever page.
    assert len(why) == 2 and all(w.startswith("This session has decoded ") and "this photo's 49 megapixels would "
                                 "pass the limit of 60 megapixels an hour; try again in about" in w for w in why), why
    # Again, a new photo: nothing left to decode. The page says why, photo by photo (an audit in which no
    # photo could be read had no class, and its class table raised KeyError).
    again = audited(zip_of({"disc/a.png": png_declaring(7000, (1, 2, 3))}), first)
    assert "1 photo could not be audited:" in [w.value for w in again.warning]
    # Another session (AppTest gives every test one session id: the library's own key here) is served.
    with gradcam.sandbox_session("another visitor"):
        assert gradcam.load_image_safely(png_declaring(7000), max_side=1024).size == (1024, 1024)


def audited_by(visitor: str, archive: bytes, press: bool = True) -> AppTest:
    """The Audit page in the sandbox session named ``visitor`` (AppTest gives every app one session id,
    so the visitor is chosen here), the zip uploaded and, with ``press``, the Audit button pressed."""
    at = AppTest.from_string("import streamlit as st\n"
                             "import gradcam\n"
                             "from dashboard.runtime.boot import boot\n"
                             "boot()\n"
                             "from dashboard.pages.audit import page\n"
                             "with gradcam.sandbox_session(st.session_state['visitor']):\n"
                             "    page()\n", default_timeout=300)
    at.session_state["visitor"] = visitor
    run(at)
    at.radio(key="audit_source").set_value("mine")
    run(at)
    at.selectbox(key="audit_model").set_value("Clever Hans demo")
    at.file_uploader(key="audit_zip").set_value([("photos.zip", archive, "application/zip")])
    run(at)
    if press:
        at.button(key="audit_go").click()
        run(at)
    return at


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


@pytest.mark.slow
def test_an_audit_the_budget_refused_stays_with_its_session_and_another_session_audits_the_same_zip_whole(
        monkeypatch):
    monkeypatch.setattr(pixel_budget, "MAX_SESSION_PIXELS", 60_000_000)
    archive = zip_of({f"disc/{k}.png": png_declaring(3000, (7 * k + 3, 180, 60)) for k in range(3)})
    with gradcam.sandbox_session("first visitor"):  # this visitor decoded 49 megapixels elsewhere first
        gradcam.load_image_safely(png_declaring(7000, (9, 9, 9)), max_side=1024)
    first = audited_by("first visitor", archive)
    assert "2 photos could not be audited:" in warnings(first)
    run(first)  # another run of the same session (a click on the chart): its own audit, not redone
    assert "2 photos could not be audited:" in warnings(first)
    assert "audit_go" not in [b.key for b in first.button]
    # Another visitor, the same zip and model: the refusals were the first visitor's, so it is audited
    # again (the button is there to press) and every photo is read.
    second = audited_by("second visitor", archive)
    assert not any("could not be audited" in w for w in warnings(second))
    table = next(d.value for d in second.dataframe if "Photos" in d.value.columns)
    assert list(table["Photos"]) == [3]
    # That whole audit is shared: a third visitor sees it at once, without pressing Audit.
    third = audited_by("third visitor", archive, press=False)
    assert "audit_go" not in [b.key for b in third.button]
    assert list(next(d.value for d in third.dataframe if "Photos" in d.value.columns)["Photos"]) == [3]
